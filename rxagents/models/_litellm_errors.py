"""litellm's exceptions as the typed errors of :mod:`rxagents.errors`, with the API key scrubbed.

:func:`wrap_error` classifies what litellm raised (looking through the whole chain it wraps: litellm's
``original_exception``, ``__cause__``, ``__context__``) and removes the request's key from every exception in
that chain - messages, ``args``, ``body``, the HTTP response's text and the request's headers - so not even the
provider's own exceptions, kept as ``__cause__``, quote a key the provider echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import ssl
from typing import Any

from rxagents._urls import safe_url
from rxagents.errors import (
    MalformedStreamError,
    ModelError,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimitError,
    StreamCutError,
)
from rxagents.models._base import ModelRequest

__all__ = ["wrap_error"]

_MAX_CHAIN = 16  # exceptions looked at in one chain
_MAX_DEPTH = 6  # containers followed inside one exception's attributes


def _scrub(text: str, secret: str | None) -> str:
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: litellm's ``original_exception``, then ``__cause__``/``__context__``."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain) and len(chain) < _MAX_CHAIN:
        chain.append(current)
        original = getattr(current, "original_exception", None)
        current = original if isinstance(original, BaseException) else current.__cause__ or current.__context__
    return chain


def _every_exception(exc: BaseException) -> list[BaseException]:
    """Every exception reachable from ``exc`` through ``original_exception``, ``__cause__`` and ``__context__``
    (all three, not the first that is set, as a traceback printer or a debugger may follow any of them)."""
    found: list[BaseException] = []
    pending = [exc]
    while pending and len(found) < 4 * _MAX_CHAIN:
        current = pending.pop(0)
        if any(current is seen for seen in found):
            continue
        found.append(current)
        original = getattr(current, "original_exception", None)
        for linked in (original, current.__cause__, current.__context__):
            if isinstance(linked, BaseException):
                pending.append(linked)
    return found


class _Scrubber:
    """Replaces one secret in strings, bytes, containers and httpx requests/responses, in place where the
    object is mutable (a dict, a list, headers, a response's body) and by returning a copy otherwise."""

    def __init__(self, secret: str) -> None:
        import httpx

        self.secret, self.raw, self.httpx = secret, secret.encode(), httpx
        self.seen: set[int] = set()

    def __call__(self, value: Any, depth: int = 0) -> Any:
        if isinstance(value, str):
            return value.replace(self.secret, "***") if self.secret in value else value
        if isinstance(value, bytes | bytearray):
            return value.replace(self.raw, b"***") if self.raw in value else value
        if depth > _MAX_DEPTH or id(value) in self.seen:
            return value
        self.seen.add(id(value))
        httpx = self.httpx
        if isinstance(value, dict):
            for key, item in list(value.items()):
                scrubbed = self(item, depth + 1)
                if scrubbed is not item:
                    value[key] = scrubbed
        elif isinstance(value, list):
            for n, item in enumerate(list(value)):
                scrubbed = self(item, depth + 1)
                if scrubbed is not item:
                    value[n] = scrubbed
        elif type(value) is tuple:
            return tuple(self(item, depth + 1) for item in value)
        elif isinstance(value, httpx.Headers):
            for name, item in list(value.items()):
                if self.secret in item:
                    value[name] = _scrub(item, self.secret)
        elif isinstance(value, httpx.Request):
            self(value.headers, depth + 1)
        elif isinstance(value, httpx.Response):
            self._response(value, depth)
        return value

    def _response(self, response: Any, depth: int) -> None:
        content = getattr(response, "_content", None)
        if isinstance(content, bytes) and self.raw in content:
            response._content = content.replace(self.raw, b"***")
            with contextlib.suppress(AttributeError):
                del response._text  # httpx caches the decoded text: decode the scrubbed body next time
        stream = getattr(response, "stream", None)
        body = getattr(stream, "_stream", None)  # a read body is kept as a replayable ByteStream too
        if isinstance(stream, self.httpx.ByteStream) and isinstance(body, bytes) and self.raw in body:
            response.stream = self.httpx.ByteStream(body.replace(self.raw, b"***"))
        self(response.headers, depth + 1)
        request = getattr(response, "_request", None)
        if request is not None:
            self(request, depth + 1)

    def exception(self, exc: BaseException) -> None:
        """Scrub ``exc``'s ``args`` and attributes; an object that refuses to change is left as it is."""
        with contextlib.suppress(Exception):
            exc.args = self(exc.args)
        for name, value in list(vars(exc).items()):
            if isinstance(value, BaseException):
                continue  # linked exceptions are scrubbed as members of the chain
            with contextlib.suppress(Exception):
                scrubbed = self(value)
                if scrubbed is not value:
                    setattr(exc, name, scrubbed)


def scrub_chain(exc: BaseException, secret: str | None) -> None:
    """Remove ``secret`` from every exception linked to ``exc``: ``args``, string attributes (litellm's
    ``message``), ``body`` dicts, and the httpx responses (body text) and requests (headers) they hold."""
    if not secret or len(secret) < 4:
        return
    scrubber = _Scrubber(secret)
    for linked in _every_exception(exc):
        scrubber.exception(linked)


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


def _connect_failure(chain: list[BaseException]) -> tuple[str, str] | None:
    """``(reason, what happened)`` when ``chain`` says no connection could be made, else None.

    Only failures while connecting count (aiohttp's ``ClientConnectorError`` family and its connect timeout,
    httpx's ``ConnectError``/``ConnectTimeout``): a TLS or socket error on an established stream is a cut.
    """
    import aiohttp
    import httpx

    connecting = (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError, httpx.ConnectError,
                  httpx.ConnectTimeout)  # fmt: skip
    if not any(isinstance(exc, connecting) for exc in chain):
        return None
    for exc in chain:
        if isinstance(exc, aiohttp.ClientConnectorDNSError | socket.gaierror):
            host = getattr(exc, "host", None)
            return "dns", f"the DNS lookup of {host!r} failed" if host else "the DNS lookup failed"
        if isinstance(exc, aiohttp.ClientSSLError | ssl.SSLError):
            detail = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
            return "tls", f"the TLS handshake failed ({detail})"
        if isinstance(exc, ConnectionRefusedError):
            return "refused", "the connection was refused (nothing listens on that port?)"
        if isinstance(exc, aiohttp.ConnectionTimeoutError | httpx.ConnectTimeout):
            return "timeout", "no connection within the connect timeout"
    reason = next((exc.strerror for exc in chain if isinstance(exc, OSError) and exc.strerror), None)
    return "unreachable", f"the host could not be reached ({reason or 'connection failed'})"


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
    failure = _connect_failure(chain)
    if failure is None:
        return None
    reason, what = failure
    if reason == "timeout" and connect_timeout is not None:
        what = f"no connection within the {connect_timeout:g} s connect timeout"
    url = _request_url(chain, request)
    shown = _scrub(safe_url(url), request.api_key) if url else None
    where = f"could not connect to {shown}" if shown else "could not connect to the provider"
    fix = (
        "Check that the server is running and that api_base is right."
        if request.api_base
        else "Check the network connection (and any proxy or firewall)."
    )
    return ProviderUnreachable(
        f"model {request.model!r}: {where}: {what}; nothing was sent. {fix}",
        url=shown,
        reason=reason,
    )


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
    chain = _causes(exc)
    scrub_chain(exc, request.api_key)
    message = _scrub(f"{type(exc).__name__}: {exc}", request.api_key)
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
