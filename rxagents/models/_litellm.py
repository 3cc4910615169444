"""The litellm backend: any provider litellm supports, and any OpenAI-compatible endpoint.

litellm is imported lazily (it takes seconds), with its offline settings applied first:
``LITELLM_LOCAL_MODEL_COST_MAP=True`` (no blocking network fetch at import) and
``LITELLM_MODE=PRODUCTION`` (no implicit ``.env`` loading). Retries are disabled in litellm
(``max_retries=0``): they belong to rxagents, which can retry without duplicating tokens.

Connections time out after ``connect_timeout`` seconds (default 10; OpenAI-compatible endpoints, which
is what ``api_base`` uses, and Azure); the read timeout is litellm's (600 s) and rxagents' own
``first_token_timeout``/``stall_timeout`` bound a silent stream. litellm's per-loop HTTP clients are closed
when their loop shuts down (:mod:`rxagents.models._litellm_loops`).

Failures are raised as the typed errors of :mod:`rxagents.errors` (see
:func:`~rxagents.models._litellm_errors.wrap_error`), the provider's exception as ``__cause__``,
the key scrubbed from the whole chain. A stream that ends without a ``finish_reason`` is a
:class:`~rxagents.errors.StreamCutError`; one that ends with nothing in it (no text, reasoning,
tool call or usage: litellm makes up ``finish_reason="stop"`` for a bare ``[DONE]``) is an
:class:`~rxagents.errors.EmptyStreamError`. A stream without ``[DONE]`` whose finish (and usage)
arrived is a complete answer.
"""

from __future__ import annotations

import asyncio
import math
import os
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, ToolCallDelta, Usage
from rxagents.models._base import Delta, ModelRequest, stream_end
from rxagents.models._http_pool import DEFAULT_CONNECT_TIMEOUT
from rxagents.models._litellm_errors import wrap_error
from rxagents.models._litellm_loops import close_clients_at_loop_shutdown

__all__ = ["DEFAULT_CONNECT_TIMEOUT", "LiteLLMModel", "import_litellm"]

_READ_TIMEOUT = 600.0  # litellm's own default; rxagents' first_token/stall timeouts are the real bound

_litellm: ModuleType | None = None

_ABSENT = object()
#: (class, attribute) -> read the attribute from the instance's ``__dict__`` / ``__pydantic_extra__`` (see _field)
_PLAIN: dict[tuple[type, str], bool] = {}


def _field(obj: Any, name: str) -> Any:
    """``getattr(obj, name, None)``, cheaply for the pydantic objects litellm streams.

    Of a chunk's fields, litellm keeps some in the instance ``__dict__`` and the rest in ``__pydantic_extra__``,
    and deletes the ones a chunk lacks (``usage``, ``reasoning_content``); pydantic's ``__getattr__`` serves the
    extras (about 1 µs a read) and, for a missing one, raises the AttributeError ``getattr`` then swallows
    (2.5 µs): together about 8 µs a chunk, 2 % of litellm's own cost per token. An attribute the class itself
    defines (a property, a descriptor), or an object that is not a pydantic model, is read with ``getattr``.
    """
    cls = type(obj)
    plain = _PLAIN.get((cls, name))
    if plain is None:
        plain = hasattr(cls, "__pydantic_extra__") and hasattr(obj, "__dict__") and not hasattr(cls, name)
        if len(_PLAIN) < 1024:  # a few classes, a few names: bounded all the same
            _PLAIN[cls, name] = plain
    if not plain:
        return getattr(obj, name, None)
    value = obj.__dict__.get(name, _ABSENT)
    if value is _ABSENT:
        extra = obj.__pydantic_extra__
        return extra.get(name) if extra else None
    return value


def import_litellm() -> ModuleType:
    """Import litellm once, configured for offline-safe, quiet operation."""
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        os.environ.setdefault("LITELLM_MODE", "PRODUCTION")
        import litellm

        litellm.suppress_debug_info = True
        litellm.telemetry = False
        _litellm = litellm
    return _litellm


class LiteLLMModel:
    """Streams chat completions through ``litellm.acompletion``.

    ``connect_timeout``: seconds to connect (TCP and TLS) before the request fails with
    :class:`~rxagents.errors.ProviderUnreachable` (OpenAI-compatible endpoints and Azure; other providers use
    litellm's own). A ``timeout`` in the request's ``extra`` replaces it.
    """

    def __init__(self, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
        if (
            isinstance(connect_timeout, bool)
            or not isinstance(connect_timeout, int | float)
            or not math.isfinite(connect_timeout)
            or connect_timeout <= 0
        ):
            raise ConfigurationError(
                f"connect_timeout must be seconds > 0, got {connect_timeout!r}; e.g. LiteLLMModel(connect_timeout=10)"
            )
        self.connect_timeout = float(connect_timeout)

    @property
    def name(self) -> str:
        return "litellm"

    def __repr__(self) -> str:
        if self.connect_timeout == DEFAULT_CONNECT_TIMEOUT:
            return "LiteLLMModel()"
        return f"LiteLLMModel(connect_timeout={self.connect_timeout:g})"

    def stream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        # Imported here, not in the generator: the (slow, blocking) first import must not count
        # against the run's first-token timeout, which starts when the generator is first awaited.
        return self._stream(import_litellm(), request)

    async def aprepare(self) -> None:
        """Import litellm in a worker thread the first time, so its seconds-long import never
        blocks the event loop (every other run and connection on it keeps going)."""
        if _litellm is None:
            await asyncio.to_thread(import_litellm)

    async def _stream(self, litellm: ModuleType, request: ModelRequest) -> AsyncIterator[Delta]:
        import httpx

        await close_clients_at_loop_shutdown()
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [dict(m) for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_retries": 0,
            "timeout": httpx.Timeout(_READ_TIMEOUT, connect=self.connect_timeout),
            **request.extra,
        }
        for key in ("temperature", "max_tokens", "api_base", "api_key"):
            value = getattr(request, key)
            if value is not None:
                kwargs[key] = value
        try:
            response = await litellm.acompletion(**kwargs)
        except Exception as exc:
            raise wrap_error(exc, request, connect_timeout=self.connect_timeout) from exc
        usage: Usage | None = None
        finish: str | None = None
        content = False  # text, reasoning or a tool call arrived
        try:
            async for chunk in response:
                chunk_usage = _field(chunk, "usage")
                if chunk_usage is not None and _field(chunk_usage, "total_tokens") is not None:
                    usage = Usage(
                        int(_field(chunk_usage, "prompt_tokens") or 0),
                        int(_field(chunk_usage, "completion_tokens") or 0),
                        int(_field(chunk_usage, "total_tokens") or 0),
                    )
                for choice in _field(chunk, "choices") or ():
                    delta = _field(choice, "delta")
                    if delta is not None:
                        reasoning = _field(delta, "reasoning_content")
                        if reasoning:
                            content = True
                            yield Delta(EventKind.REASONING, text=reasoning)
                        text = _field(delta, "content")
                        if text:
                            content = True
                            yield Delta(EventKind.TOKEN, text=text)
                        for call in _field(delta, "tool_calls") or ():
                            fn = call.function
                            content = True
                            yield Delta(
                                EventKind.TOOL_CALL,
                                tool_call=ToolCallDelta(
                                    index=int(call.index or 0),
                                    id=call.id,
                                    name=getattr(fn, "name", None),
                                    arguments=getattr(fn, "arguments", None) or "",
                                ),
                            )
                    finish_reason = _field(choice, "finish_reason")
                    if finish_reason:
                        finish = str(finish_reason)
        except Exception as exc:
            raise wrap_error(exc, request, connect_timeout=self.connect_timeout) from exc
        finally:
            await response.aclose()
        for delta in stream_end(request.model, finish, content, usage, cut="a finish_reason", empty="[DONE]"):
            yield delta
