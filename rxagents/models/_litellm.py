"""The litellm backend: any provider litellm supports, and any OpenAI-compatible endpoint.

litellm is imported lazily (it takes seconds), with its offline settings applied first:
``LITELLM_LOCAL_MODEL_COST_MAP=True`` (no blocking network fetch at import) and
``LITELLM_MODE=PRODUCTION`` (no implicit ``.env`` loading). Retries are disabled in litellm
(``max_retries=0``): they belong to rxagents, which can retry without duplicating tokens.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from types import ModuleType
from typing import Any

from rxagents.errors import ModelError
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


def _retry_after(exc: BaseException) -> float | None:
    headers: Any = getattr(exc, "headers", None) or getattr(getattr(exc, "response", None), "headers", None)
    if not headers:
        return None
    try:
        value = headers.get("retry-after") or headers.get("Retry-After")
        return float(value) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


def wrap_error(exc: BaseException, request: ModelRequest) -> ModelError:
    """A provider exception as a :class:`ModelError` with status and Retry-After, key scrubbed."""
    if isinstance(exc, ModelError):
        return exc
    status = getattr(exc, "status_code", None)
    message = _scrub(f"{type(exc).__name__}: {exc}", request.api_key)
    error = ModelError(
        f"model {request.model!r} failed: {message}",
        status_code=status if isinstance(status, int) else None,
        retry_after=_retry_after(exc),
    )
    error.__cause__ = exc
    return error


class LiteLLMModel:
    """Streams chat completions through ``litellm.acompletion``."""

    @property
    def name(self) -> str:
        return "litellm"

    def __repr__(self) -> str:
        return "LiteLLMModel()"

    async def stream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        litellm = import_litellm()
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
                            yield Delta(EventKind.REASONING, text=reasoning)
                        if delta.content:
                            yield Delta(EventKind.TOKEN, text=delta.content)
                        for call in getattr(delta, "tool_calls", None) or ():
                            fn = call.function
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
            raise ModelError(
                f"model {request.model!r}: the stream ended without a finish_reason (connection cut?)"
            )
        if usage is not None:
            yield Delta(EventKind.USAGE, usage=usage)
        yield Delta(EventKind.FINISH, finish_reason=finish)
