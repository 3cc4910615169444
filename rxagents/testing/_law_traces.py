"""Traces of a law check's trials: showing them, and comparing two of them (values, times, errors)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from typing import Any

from rxagents.events import TokenEvent
from rxagents.testing._law_harness import Entry

__all__ = ["chains_to", "events_in", "fmt_entry", "fmt_trace", "is_subsequence", "trace_diff"]


def fmt_entry(e: Entry) -> str:
    t, kind, value = e
    if kind == "N":
        return f"{t:>8.3f}  on_next({value!r})"
    if kind == "E":
        return f"{t:>8.3f}  on_error({type(value).__name__}: {value})"
    return f"{t:>8.3f}  on_completed()"


def fmt_trace(trace: Sequence[Entry], limit: int = 60) -> str:
    lines = [fmt_entry(e) for e in trace[:limit]]
    if len(trace) > limit:
        lines.append(f"... {len(trace) - limit} more")
    return "\n".join("    " + line for line in lines) or "    (nothing)"


def events_in(items: Iterable[Any]) -> Iterable[TokenEvent]:
    for item in items:
        if isinstance(item, TokenEvent):
            yield item
        elif isinstance(item, list | tuple):
            yield from events_in(item)


def is_subsequence(small: str, big: str) -> bool:
    it = iter(big)
    return all(ch in it for ch in small)


def chains_to(exc: BaseException, origin: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if cur is origin:
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _rounded(value: Any) -> Any:
    """``value`` with event times rounded to the clock's resolution (microseconds)."""
    if isinstance(value, TokenEvent):
        return dataclasses.replace(value, time=round(value.time, 6))
    if type(value) in (list, tuple) and any(isinstance(v, TokenEvent | list | tuple) for v in value):
        return type(value)(_rounded(v) for v in value)
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal values (event times to the microsecond); exceptions by type and args; objects without
    ``__eq__`` by their attributes."""
    if a is b:
        return True
    a, b = _rounded(a), _rounded(b)
    if isinstance(a, BaseException) and isinstance(b, BaseException):
        return type(a) is type(b) and a.args == b.args
    if type(a) is type(b) and getattr(type(a), "__eq__", None) is object.__eq__:
        return bool(_attrs(a) == _attrs(b))
    try:
        return bool(a == b)
    except Exception:
        return repr(a) == repr(b)


def _attrs(obj: Any) -> Any:
    if hasattr(obj, "__dict__"):
        return vars(obj)
    return {name: getattr(obj, name, None) for name in getattr(type(obj), "__slots__", ())} or repr(obj)


def _unshift(value: Any, shift: float) -> Any:
    """``value`` with the ``time`` of the events in it moved back by ``shift`` (for cold traces)."""
    if not shift:
        return value
    if isinstance(value, TokenEvent):
        return dataclasses.replace(value, time=round(value.time - shift, 6))
    if type(value) in (list, tuple):
        return type(value)(_unshift(v, shift) for v in value)
    return value


def _field_diff(a: Any, b: Any) -> str:
    if isinstance(a, TokenEvent) and isinstance(b, TokenEvent):
        names = [f.name for f in dataclasses.fields(TokenEvent) if getattr(a, f.name) != getattr(b, f.name)]
        if names:
            return (
                " (differing fields: " + ", ".join(f"{n}={getattr(a, n)!r} vs {getattr(b, n)!r}" for n in names) + ")"
            )
    return ""


def trace_diff(a: Sequence[Entry], b: Sequence[Entry], shift: float) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        # events the operator stamps with the clock are ``shift`` later; events passed through are not
        yv = y[2] if _same(x[2], y[2]) else _unshift(y[2], shift)
        if x[1] != y[1] or abs((y[0] - shift) - x[0]) > 1e-5 or not _same(x[2], yv):
            return (
                f"notification #{i}: {fmt_entry(x).strip()}  vs  {fmt_entry((y[0] - shift, y[1], yv)).strip()}"
                + _field_diff(x[2], yv)
            )
    if len(a) != len(b):
        return f"{len(a)} notifications vs {len(b)}"
    return ""
