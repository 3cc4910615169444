"""Where a secret can still be read from an exception: every exception linked to it and everything they hold.

:func:`secret_paths` walks an exception's whole chain (``__cause__``, ``__context__``, litellm's
``original_exception``, ``__notes__``), each exception's ``args``, ``str()`` and every attribute (``vars()``,
``__slots__``), into containers, httpx requests (headers, URL, body) and responses (text, headers, request),
and nested objects, and returns the path of every place the secret appears.
"""

from __future__ import annotations

import contextlib
import types
from typing import Any

import httpx

__all__ = ["secret_paths"]

_LEAVES = (int, float, complex, bool, type(None), type, types.ModuleType, types.FunctionType, types.MethodType,
           types.BuiltinFunctionType, types.CodeType, types.FrameType, types.TracebackType)  # fmt: skip


class _Search:
    def __init__(self, fragments: tuple[str, ...], max_depth: int) -> None:
        self.fragments = fragments
        self.raw = tuple(fragment.encode() for fragment in fragments)
        self.max_depth = max_depth
        self.seen: set[int] = set()
        self.found: list[str] = []

    def visit(self, value: Any, path: str, depth: int = 0) -> None:
        if isinstance(value, str):
            if any(fragment in value for fragment in self.fragments):
                self.found.append(path)
            return
        if isinstance(value, bytes | bytearray | memoryview):
            if any(raw in bytes(value) for raw in self.raw):
                self.found.append(path)
            return
        if isinstance(value, _LEAVES) or depth > self.max_depth or id(value) in self.seen:
            return
        self.seen.add(id(value))
        step = depth + 1
        if isinstance(value, dict):
            for key, item in list(value.items()):
                self.visit(key, f"{path} key {key!r:.40}", step)
                self.visit(item, f"{path}[{key!r:.40}]", step)
            return
        if isinstance(value, list | tuple | set | frozenset):
            for n, item in enumerate(list(value)):
                self.visit(item, f"{path}[{n}]", step)
            return
        if isinstance(value, httpx.Headers):
            self.visit(list(value.multi_items()), f"{path}.items()", step)
            return
        if isinstance(value, httpx.Request):
            self.visit(value.headers, f"{path}.headers", step)
            self.visit(str(value.url), f"{path}.url", step)
            self.visit(getattr(value, "_content", None), f"{path}.content", step)
        if isinstance(value, httpx.Response):
            with contextlib.suppress(httpx.ResponseNotRead):
                self.visit(value.text, f"{path}.text", step)
            self.visit(value.headers, f"{path}.headers", step)
            self.visit(getattr(value, "_request", None), f"{path}.request", step)
        if isinstance(value, BaseException):
            self.visit(str(value), f"{path}.str()", step)
            self.visit(repr(value), f"{path}.repr()", step)
            self.visit(value.args, f"{path}.args", step)
            self.visit(value.__cause__, f"{path}.__cause__", step)
            self.visit(value.__context__, f"{path}.__context__", step)
        attributes = getattr(value, "__dict__", None)
        if isinstance(attributes, dict):
            for name, item in list(attributes.items()):
                self.visit(item, f"{path}.{name}", step)
        for name in getattr(type(value), "__slots__", ()):
            if isinstance(name, str) and not name.startswith("__"):
                self.visit(getattr(value, name, None), f"{path}.{name}", step)


def secret_paths(error: BaseException, *fragments: str, max_depth: int = 12) -> list[str]:
    """The paths from ``error`` to every string, bytes or body holding one of ``fragments`` (``[]``: none)."""
    search = _Search(fragments, max_depth)
    search.visit(error, "error")
    return search.found
