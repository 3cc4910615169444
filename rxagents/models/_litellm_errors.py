"""litellm's exceptions as the typed errors of :mod:`rxagents.errors`, with the API key scrubbed.

:func:`wrap_error` classifies what litellm raised (looking through the whole chain it wraps: litellm's
``original_exception``, ``__cause__``, ``__context__``) and removes the request's key from every exception in
that chain - messages, ``args``, ``body``, the HTTP response's text and the request's headers - so not even the
provider's own exceptions, kept as ``__cause__``, quote a key the provider echoed.
"""

from __future__ import annotations

import asyncio
import json

from rxagents.errors import (
    MalformedStreamError,
    ModelError,
    ProviderUnavailable,
    RateLimitError,
    StreamCutError,
)
from rxagents.models._base import ModelRequest
from rxagents.models._http_errors import (
    causes,
    connect_failure,
    retry_after_in,
    scrub,
    scrub_chain,
    unreachable,
)

__all__ = ["wrap_error"]


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


def _request_url(chain: list[BaseException], request: ModelRequest) -> str | None:
    """The URL the failed request went to, else the request's ``api_base``. The innermost request is the real
    one: litellm's own exceptions carry a placeholder (``https://api.openai.com/v1``) whatever the endpoint."""
    import httpx

    for exc in reversed(chain):
        try:
            sent = getattr(exc, "request", None)
        except RuntimeError:  # httpx raises when an error has no request attached
            continue
        if isinstance(sent, httpx.Request):
            return str(sent.url)
    return request.api_base


def _unreachable(chain: list[BaseException], request: ModelRequest, connect_timeout: float | None) -> ModelError | None:
    failure = connect_failure(chain)
    if failure is None:
        return None
    return unreachable(failure, request, _request_url(chain, request), connect_timeout)


def wrap_error(exc: BaseException, request: ModelRequest, *, connect_timeout: float | None = None) -> ModelError:
    """A provider exception as a typed :class:`ModelError` (``__cause__`` = ``exc``), key scrubbed.

    no connection could be made (refused, DNS, TLS, connect timeout) → :class:`ProviderUnreachable`;
    invalid JSON or invalid UTF-8 in the stream → :class:`MalformedStreamError`; HTTP 429 →
    :class:`RateLimitError` (``retry_after`` from ``Retry-After``); HTTP 5xx → :class:`ProviderUnavailable`;
    a connection that closed early → :class:`StreamCutError`; anything else → :class:`ModelError` with its
    ``status_code``.
    """
    if isinstance(exc, ModelError):
        return exc
    chain = causes(exc)
    scrub_chain(exc, request.api_key)
    message = scrub(f"{type(exc).__name__}: {exc}", request.api_key)
    model = request.model
    status = _http_status(chain)
    if status is None and not _is_cut(chain):
        raw = getattr(exc, "status_code", None)
        status = raw if isinstance(raw, int) and not isinstance(raw, bool) else None
    error = _unreachable(chain, request, connect_timeout)
    if error is not None:
        pass
    elif any(isinstance(e, json.JSONDecodeError) for e in chain):
        error = MalformedStreamError(f"model {model!r} sent a malformed stream chunk (invalid JSON): {message}")
    elif any(isinstance(e, UnicodeDecodeError) for e in chain):
        error = MalformedStreamError(f"model {model!r} sent a malformed stream chunk (invalid UTF-8): {message}")
    elif status == 429:
        retry_after = retry_after_in(chain)
        after = f", Retry-After {retry_after:g} s" if retry_after is not None else ""
        error = RateLimitError(
            f"model {model!r} is rate limited (HTTP 429{after}): {message}", status_code=429, retry_after=retry_after
        )
    elif status is not None and status >= 500:
        error = ProviderUnavailable(
            f"model {model!r}: the provider failed or is unavailable (HTTP {status}): {message}",
            status_code=status,
            retry_after=retry_after_in(chain),
        )
    elif status is None and _is_cut(chain):
        error = StreamCutError(f"model {model!r}: the connection was cut before the stream ended: {message}")
    else:
        error = ModelError(f"model {model!r} failed: {message}", status_code=status, retry_after=retry_after_in(chain))
    error.__cause__ = exc
    return error
