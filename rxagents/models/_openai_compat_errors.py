"""What goes wrong talking to an OpenAI-compatible endpoint, as the typed errors of :mod:`rxagents.errors`.

The same fault matrix as the litellm backend (:mod:`rxagents.models._litellm_errors`):

* no connection (refused, DNS, TLS, connect timeout) → :class:`ProviderUnreachable`, the URL without credentials;
* HTTP 429 → :class:`RateLimitError`, ``retry_after`` from ``retry-after-ms`` or ``Retry-After`` (seconds or an
  HTTP-date, see :func:`rxagents.models._http_errors.retry_after`); HTTP 5xx → :class:`ProviderUnavailable`;
  any other status → :class:`ModelError` with its ``status_code`` (401, 400, 404...);
* the connection closed or reset once the request was sent → :class:`StreamCutError`;
* a ``data:`` event that is not UTF-8, not JSON, or not a chat-completion chunk → :class:`MalformedStreamError`;
* an ``{"error": ...}`` event inside the stream → the error its ``code`` says (429, 5xx...) or :class:`ModelError`.

The provider's words (the error body's ``message``) are kept, truncated to :data:`MAX_SHOWN` characters, with the
request's key scrubbed out; the error body is read up to :data:`MAX_BODY` bytes. ``__cause__`` is the transport's
exception, or for an HTTP status an ``aiohttp.ClientResponseError`` built from the response with no request
headers (so no ``Authorization``), the response's headers scrubbed and the URL without credentials.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from rxagents._urls import safe_url
from rxagents.errors import (
    MalformedStreamError,
    ModelError,
    ProviderUnavailable,
    RateLimitError,
    StreamCutError,
)
from rxagents.models._base import ModelRequest
from rxagents.models._http_errors import causes, connect_failure, retry_after, scrub, scrub_chain, unreachable

if TYPE_CHECKING:
    import aiohttp

__all__ = ["MAX_BODY", "MAX_SHOWN", "malformed", "status_error", "stream_error", "transport_error"]

#: Bytes of an error response's body read, at most.
MAX_BODY = 64 * 1024
#: Characters of the provider's message shown in an error, at most.
MAX_SHOWN = 500


def _shown(text: str, secret: str | None) -> str:
    text = " ".join(scrub(text, secret).split())
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


def _provider_message(body: bytes, secret: str | None) -> str:
    """The message in an error body: OpenAI's ``{"error": {"message": ...}}`` and its variants, else the text."""
    text = body.decode("utf-8", "replace")
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        return _shown(text, secret)
    if isinstance(parsed, dict):
        error = parsed.get("error", parsed)
        if isinstance(error, dict):
            message = error.get("message") or error.get("detail") or parsed.get("message") or parsed.get("detail")
        else:
            message = error
        if isinstance(message, str) and message:
            return _shown(message, secret)
    return _shown(text, secret)


def _by_status(
    status: int | None, text: str, request: ModelRequest, retry: float | None, *, mid_stream: bool = False
) -> ModelError:
    model = request.model
    where = " mid-stream" if mid_stream else ""
    if status == 429:
        after = f", Retry-After {retry:g} s" if retry is not None else ""
        return RateLimitError(
            f"model {model!r} is rate limited{where} (HTTP 429{after}): {text}", status_code=429, retry_after=retry
        )
    if status is not None and status >= 500:
        return ProviderUnavailable(
            f"model {model!r}: the provider failed or is unavailable{where} (HTTP {status}): {text}",
            status_code=status,
            retry_after=retry,
        )
    shown = f" (HTTP {status})" if status is not None else ""
    return ModelError(f"model {model!r} failed{where}{shown}: {text}", status_code=status, retry_after=retry)


def _response_error(response: aiohttp.ClientResponse, url: str, secret: str | None) -> aiohttp.ClientResponseError:
    """``response`` as aiohttp's own error for a bad status, holding nothing secret."""
    import aiohttp
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    shown = URL(scrub(safe_url(url), secret))
    info = aiohttp.RequestInfo(shown, "POST", CIMultiDictProxy(CIMultiDict()), shown)
    headers = CIMultiDict((name, scrub(value, secret)) for name, value in response.headers.items())
    return aiohttp.ClientResponseError(
        info, (), status=response.status, message=response.reason or "", headers=CIMultiDictProxy(headers)
    )


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes:
    """Up to :data:`MAX_BODY` bytes of the body; what arrived if the connection fails meanwhile."""
    import aiohttp

    parts: list[bytes] = []
    size = 0
    try:
        while size < MAX_BODY:
            chunk = await response.content.readany()
            if not chunk:
                break
            parts.append(chunk)
            size += len(chunk)
    except (aiohttp.ClientError, OSError):
        pass
    return b"".join(parts)[:MAX_BODY]


async def status_error(response: aiohttp.ClientResponse, request: ModelRequest, url: str) -> ModelError:
    """The error for a response whose status is not 200 (its body is read, up to :data:`MAX_BODY` bytes)."""
    body = await _read_bounded(response)
    text = _provider_message(body, request.api_key) or response.reason or "no message"
    location = response.headers.get("Location")
    if 300 <= response.status < 400 and location:  # not followed: a POST would turn into a GET, and carry the key
        text = f"the endpoint redirects to {scrub(safe_url(location), request.api_key)}; use that address as api_base"
    error = _by_status(response.status, text, request, retry_after(response.headers))
    error.__cause__ = _response_error(response, url, request.api_key)
    return error


def stream_error(payload: object, request: ModelRequest) -> ModelError:
    """The error for an ``{"error": payload}`` event in the stream (OpenRouter, vLLM and others send these)."""
    status: int | None = None
    message: object = payload
    if isinstance(payload, dict):
        code = payload.get("code", payload.get("status"))
        if isinstance(code, str) and code.isdigit():
            code = int(code)
        if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
            status = code
        message = payload.get("message") or payload
    text = message if isinstance(message, str) else json.dumps(message, default=str)
    return _by_status(status, _shown(text, request.api_key) or "no message", request, None, mid_stream=True)


def malformed(request: ModelRequest, what: str, cause: BaseException | None = None) -> MalformedStreamError:
    """A :class:`MalformedStreamError` for a bad event (``what``: what was wrong with it)."""
    detail = f": {_shown(f'{type(cause).__name__}: {cause}', request.api_key)}" if cause is not None else ""
    error = MalformedStreamError(f"model {request.model!r} sent a malformed stream chunk ({what}){detail}")
    if cause is not None:
        scrub_chain(cause, request.api_key)
        error.__cause__ = cause
    return error


def transport_error(
    exc: BaseException, request: ModelRequest, url: str, connect_timeout: float | None, *, started: bool
) -> ModelError:
    """The error for an exception of the HTTP client (``started``: the response had begun)."""
    import aiohttp

    chain = causes(exc)
    scrub_chain(exc, request.api_key)
    failure = connect_failure(chain)
    if failure is not None:
        error: ModelError = unreachable(failure, request, url, connect_timeout)
    elif isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError | ConnectionError | OSError):
        when = "before the stream ended" if started else "before the response began"
        message = _shown(f"{type(exc).__name__}: {exc}", request.api_key)
        error = StreamCutError(f"model {request.model!r}: the connection was cut {when}: {message}")
    else:
        error = ModelError(f"model {request.model!r} failed: {_shown(f'{type(exc).__name__}: {exc}', request.api_key)}")
    error.__cause__ = exc
    return error
