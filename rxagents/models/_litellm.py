"""The litellm backend: any provider litellm supports, and any OpenAI-compatible endpoint.

litellm is imported lazily (it takes seconds), with its offline settings applied first:
``LITELLM_LOCAL_MODEL_COST_MAP=True`` (no blocking network fetch at import) and
``LITELLM_MODE=PRODUCTION`` (no implicit ``.env`` loading). Retries are disabled in litellm
(``max_retries=0``): they belong to rxagents, which can retry without duplicating tokens.

Failures are raised as the typed errors of :mod:`rxagents.errors` (see :func:`wrap_error`), the
provider's exception as ``__cause__``. A stream that ends without a ``finish_reason`` is a
:class:`~rxagents.errors.StreamCutError`; one that ends with nothing in it (no text, reasoning,
tool call or usage: litellm makes up ``finish_reason="stop"`` for a bare ``[DONE]``) is an
:class:`~rxagents.errors.EmptyStreamError`. A stream without ``[DONE]`` whose finish (and usage)
arrived is a complete answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from rxagents.errors import (
    EmptyStreamError,
    MalformedStreamError,
    ModelError,
    ProviderUnavailable,
    RateLimitError,
    StreamCutError,
)
from rxagents.events import EventKind, ToolCallDelta, Usage
from rxagents.models._base import Delta, ModelRequest

__all__ = ["LiteLLMModel", "import_litellm"]

_litellm: ModuleType | None = None


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


def _scrub(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: litellm's ``original_exception``, then ``__cause__``/``__context__``."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain) and len(chain) < 16:
        chain.append(current)
        original = getattr(current, "original_exception", None)
        current = original if isinstance(original, BaseException) else current.__cause__ or current.__context__
    return chain


def _scrub_chain(chain: list[BaseException], secret: str | None) -> None:
    """Remove ``secret`` from every exception rxagents wraps (``args`` and litellm's ``message``), so
    not even a printed traceback of the provider's own exceptions quotes a key the provider echoed."""
    if not secret or len(secret) < 4:
        return
    for exc in chain:
        with contextlib.suppress(Exception):
            exc.args = tuple(_scrub(a, secret) if isinstance(a, str) else a for a in exc.args)
        message = getattr(exc, "message", None)
        if isinstance(message, str) and secret in message:
            with contextlib.suppress(Exception):
                exc.message = _scrub(message, secret)  # type: ignore[attr-defined]


def _retry_after(chain: list[BaseException]) -> float | None:
    for exc in chain:
        headers: Any = getattr(exc, "headers", None) or getattr(getattr(exc, "response", None), "headers", None)
        if not headers:
            continue
        try:
            millis = headers.get("retry-after-ms")
            if millis is not None:
                return float(millis) / 1000
            value = headers.get("retry-after") or headers.get("Retry-After")
            if value is not None:
                return float(value)  # an HTTP-date form is not honoured: the backoff applies
        except (TypeError, ValueError, AttributeError):
            return None
    return None


def _http_status(chain: list[BaseException]) -> int | None:
    """The status of a real HTTP error response in ``chain``, if any.

    litellm's ``MidStreamFallbackError`` (raised for any failure after the response started) and
    ``APIConnectionError`` carry made-up statuses (500, 503), so only exceptions that wrap an actual
    response count.
    """
    import httpx
    import openai

    for exc in chain:
        if type(exc).__name__ == "MidStreamFallbackError":
            continue
        if isinstance(exc, openai.APIStatusError | httpx.HTTPStatusError):
            return int(exc.response.status_code)
    return None


def _is_cut(chain: list[BaseException]) -> bool:
    """Whether ``chain`` says the connection failed or closed early (no HTTP status)."""
    import aiohttp
    import httpx
    import openai

    kinds = (
        openai.APIConnectionError,
        httpx.TransportError,
        aiohttp.ClientConnectionError,
        aiohttp.ClientPayloadError,
        ConnectionError,
        asyncio.IncompleteReadError,
    )
    return any(type(exc).__name__ == "MidStreamFallbackError" or isinstance(exc, kinds) for exc in chain)


def wrap_error(exc: BaseException, request: ModelRequest) -> ModelError:
    """A provider exception as a typed :class:`ModelError` (``__cause__`` = ``exc``), key scrubbed.

    invalid JSON in the stream → :class:`MalformedStreamError`; HTTP 429 → :class:`RateLimitError`
    (``retry_after`` from ``Retry-After``); HTTP 5xx → :class:`ProviderUnavailable`; a connection
    that failed or closed early → :class:`StreamCutError`; anything else → :class:`ModelError`
    with its ``status_code``.
    """
    if isinstance(exc, ModelError):
        return exc
    chain = _causes(exc)
    _scrub_chain(chain, request.api_key)
    message = _scrub(f"{type(exc).__name__}: {exc}", request.api_key)
    model = request.model
    status = _http_status(chain)
    if status is None and not _is_cut(chain):
        raw = getattr(exc, "status_code", None)
        status = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    error: ModelError
    if any(isinstance(e, json.JSONDecodeError) for e in chain):
        error = MalformedStreamError(f"model {model!r} sent a malformed stream chunk (invalid JSON): {message}")
    elif status == 429:
        retry_after = _retry_after(chain)
        after = f", Retry-After {retry_after:g} s" if retry_after is not None else ""
        error = RateLimitError(
            f"model {model!r} is rate limited (HTTP 429{after}): {message}", status_code=429, retry_after=retry_after
        )
    elif status is not None and status >= 500:
        error = ProviderUnavailable(
            f"model {model!r}: the provider failed or is unavailable (HTTP {status}): {message}",
            status_code=status,
            retry_after=_retry_after(chain),
        )
    elif status is None and _is_cut(chain):
        error = StreamCutError(f"model {model!r}: the connection was cut before the stream ended: {message}")
    else:
        error = ModelError(f"model {model!r} failed: {message}", status_code=status, retry_after=_retry_after(chain))
    error.__cause__ = exc
    return error


class LiteLLMModel:
    """Streams chat completions through ``litellm.acompletion``."""

    @property
    def name(self) -> str:
        return "litellm"

    def __repr__(self) -> str:
        return "LiteLLMModel()"

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
        kwargs: dict[str, Any] = {
            "model": request.model,
            "messages": [dict(m) for m in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_retries": 0,
            **request.extra,
        }
        for key in ("temperature", "max_tokens", "api_base", "api_key"):
            value = getattr(request, key)
            if value is not None:
                kwargs[key] = value
        try:
            response = await litellm.acompletion(**kwargs)
        except Exception as exc:
            raise wrap_error(exc, request) from exc
        usage: Usage | None = None
        finish: str | None = None
        content = False  # text, reasoning or a tool call arrived
        try:
            async for chunk in response:
                chunk_usage = getattr(chunk, "usage", None)
                if chunk_usage is not None and getattr(chunk_usage, "total_tokens", None) is not None:
                    usage = Usage(
                        int(chunk_usage.prompt_tokens or 0),
                        int(chunk_usage.completion_tokens or 0),
                        int(chunk_usage.total_tokens or 0),
                    )
                for choice in chunk.choices or ():
                    delta = choice.delta
                    if delta is not None:
                        reasoning = getattr(delta, "reasoning_content", None)
                        if reasoning:
                            content = True
                            yield Delta(EventKind.REASONING, text=reasoning)
                        if delta.content:
                            content = True
                            yield Delta(EventKind.TOKEN, text=delta.content)
                        for call in getattr(delta, "tool_calls", None) or ():
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
                    if choice.finish_reason:
                        finish = str(choice.finish_reason)
        except Exception as exc:
            raise wrap_error(exc, request) from exc
        finally:
            await response.aclose()
        if finish is None:
            raise StreamCutError(f"model {request.model!r}: the stream ended without a finish_reason (connection cut?)")
        if not content and usage is None:
            raise EmptyStreamError(
                f"model {request.model!r} sent an empty stream: no text, tool call or usage before [DONE]"
            )
        if usage is not None:
            yield Delta(EventKind.USAGE, usage=usage)
        yield Delta(EventKind.FINISH, finish_reason=finish)
