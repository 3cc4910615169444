"""What the HTTP backends share about failures: scrubbing a key, ``Retry-After``, and connections never made.

Used by the direct OpenAI-compatible backend (:mod:`rxagents.models._openai_compat_errors`) and the litellm
backend (:mod:`rxagents.models._litellm_errors`). Nothing here imports an HTTP library: an exception can only
be one of httpx's or aiohttp's once that library is loaded, so they are looked up in ``sys.modules``.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import sys
from collections.abc import Mapping
from typing import Any

from rxagents._urls import safe_url
from rxagents.errors import ProviderUnreachable
from rxagents.models._base import ModelRequest

__all__ = [
    "causes",
    "connect_failure",
    "every_exception",
    "retry_after",
    "retry_after_in",
    "scrub",
    "scrub_chain",
    "unreachable",
]

_MAX_CHAIN = 16  # exceptions looked at in one chain
_MAX_DEPTH = 6  # containers followed inside one exception's attributes


def scrub(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` (if any, and at least 4 characters) replaced by ``***``."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps: litellm's ``original_exception``, then ``__cause__``/``__context__``."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not seen for seen in chain) and len(chain) < _MAX_CHAIN:
        chain.append(current)
        original = getattr(current, "original_exception", None)
        current = original if isinstance(original, BaseException) else current.__cause__ or current.__context__
    return chain


def every_exception(exc: BaseException) -> list[BaseException]:
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
        self.secret, self.raw, self.httpx = secret, secret.encode(), sys.modules.get("httpx")
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
        elif httpx is None:
            pass
        elif isinstance(value, httpx.Headers):
            for name, item in list(value.items()):
                if self.secret in item:
                    value[name] = scrub(item, self.secret)
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
        httpx = self.httpx
        if httpx is not None and isinstance(stream, httpx.ByteStream) and isinstance(body, bytes) and self.raw in body:
            response.stream = httpx.ByteStream(body.replace(self.raw, b"***"))
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
    for linked in every_exception(exc):
        scrubber.exception(linked)


def _header(headers: Any, name: str) -> Any:
    """``headers[name]`` case-insensitively (httpx/aiohttp headers are; a plain dict may hold any case)."""
    value = headers.get(name)
    if value is None and isinstance(headers, Mapping):
        lowered = name.lower()
        value = next((v for k, v in headers.items() if isinstance(k, str) and k.lower() == lowered), None)
    return value


def retry_after(headers: Any) -> float | None:
    """Seconds to wait before retrying, from a response's headers, or None when they don't say (or say
    something unusable).

    ``retry-after-ms`` (milliseconds, OpenAI's) wins; then ``Retry-After`` as delay-seconds, or as an
    HTTP-date. A date is a moment on the server's clock, so it is read against the response's own ``Date``
    header (RFC 9110 asks every server with a clock to send one): the wait is ``Retry-After - Date``, whatever
    the client's clock says, and nothing here reads the wall clock. A date without a ``Date`` header is not
    honoured (None: the run's own backoff applies). A date in the past is 0 s; negative, NaN and infinite
    numbers are unusable.
    """
    if not headers:
        return None
    try:
        millis = _header(headers, "retry-after-ms")
        if millis is not None:
            return _seconds(float(millis) / 1000)
        value = _header(headers, "retry-after")
        if value is None:
            return None
        try:
            return _seconds(float(value))
        except ValueError:
            pass
        date = _header(headers, "date")
        if not isinstance(value, str) or not isinstance(date, str):
            return None
        from email.utils import parsedate_to_datetime  # here: email.utils costs milliseconds to import
        return max(0.0, (parsedate_to_datetime(value) - parsedate_to_datetime(date)).total_seconds())
    except (TypeError, ValueError, AttributeError, OverflowError, IndexError):
        return None


def _seconds(value: float) -> float | None:
    return value if 0 <= value < float("inf") else None


def retry_after_in(chain: list[BaseException]) -> float | None:
    """The first :func:`retry_after` found in the headers of ``chain``'s exceptions (their own or their
    response's)."""
    for exc in chain:
        headers: Any = getattr(exc, "headers", None) or getattr(getattr(exc, "response", None), "headers", None)
        seconds = retry_after(headers)
        if seconds is not None:
            return seconds
    return None


def connect_failure(chain: list[BaseException]) -> tuple[str, str] | None:
    """``(reason, what happened)`` when ``chain`` says no connection could be made, else None.

    Only failures while connecting count (aiohttp's ``ClientConnectorError`` family and its connect timeout,
    httpx's ``ConnectError``/``ConnectTimeout``): a TLS or socket error on an established stream is a cut.
    """
    aiohttp, httpx = sys.modules.get("aiohttp"), sys.modules.get("httpx")
    dns: tuple[type[BaseException], ...] = (socket.gaierror,)
    tls: tuple[type[BaseException], ...] = (ssl.SSLError,)
    timeout: tuple[type[BaseException], ...] = ()
    connecting: tuple[type[BaseException], ...] = ()
    if aiohttp is not None:
        connecting += (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError)
        dns += (aiohttp.ClientConnectorDNSError,)
        tls += (aiohttp.ClientSSLError,)
        timeout += (aiohttp.ConnectionTimeoutError,)
    if httpx is not None:
        connecting += (httpx.ConnectError, httpx.ConnectTimeout)
        timeout += (httpx.ConnectTimeout,)
    if not any(isinstance(exc, connecting) for exc in chain):
        return None
    for exc in chain:
        if isinstance(exc, dns):
            host = getattr(exc, "host", None)
            return "dns", f"the DNS lookup of {host!r} failed" if host else "the DNS lookup failed"
        if isinstance(exc, tls):
            detail = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or type(exc).__name__
            return "tls", f"the TLS handshake failed ({detail})"
        if isinstance(exc, ConnectionRefusedError):
            return "refused", "the connection was refused (nothing listens on that port?)"
        if isinstance(exc, timeout):
            return "timeout", "no connection within the connect timeout"
    reason = next((exc.strerror for exc in chain if isinstance(exc, OSError) and exc.strerror), None)
    return "unreachable", f"the host could not be reached ({reason or 'connection failed'})"


def unreachable(
    failure: tuple[str, str], request: ModelRequest, url: str | None, connect_timeout: float | None
) -> ProviderUnreachable:
    """The :class:`ProviderUnreachable` for a :func:`connect_failure` of ``request`` to ``url`` (shown without
    credentials; ``None``: the request's ``api_base``)."""
    reason, what = failure
    if reason == "timeout" and connect_timeout is not None:
        what = f"no connection within the {connect_timeout:g} s connect timeout"
    url = url or request.api_base
    shown = scrub(safe_url(url), request.api_key) if url else None
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
