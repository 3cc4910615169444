"""One pooled ``aiohttp.ClientSession`` per event loop, shared by every run on that loop.

A session owns a connection pool (keep-alive: the next request to the same host reuses an idle connection
instead of a new TCP and TLS handshake). Connections belong to the loop that opened them, so there is one
session per loop (and per connection limit asked for), created on first use and closed when the loop shuts
down - ``asyncio.run`` and the rxagents runtime loop at interpreter exit included - through
:func:`rxagents.models._loop_shutdown.at_loop_shutdown`. On a loop that takes no clean-up hooks (uvloop's),
each request gets a session of its own instead, closed with its stream.

The pool holds up to ``max_connections`` connections in all (default 1,000: sized for 1,000 concurrent
streams; a request beyond it waits for a free connection) with no per-host limit. The session ignores
``~/.netrc`` (the key goes in the ``Authorization`` header); proxies come from the environment
(``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY``, ``NO_PROXY``), as httpx and so litellm read them:
see :func:`proxy_for`.
"""

from __future__ import annotations

import asyncio
import os
from typing import TYPE_CHECKING

from rxagents.models._loop_shutdown import at_loop_shutdown

if TYPE_CHECKING:
    import aiohttp

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_CONNECTIONS",
    "close_loop_sessions",
    "loop_session",
    "new_session",
    "proxy_for",
]

#: Seconds to establish a connection (TCP and TLS) before :class:`~rxagents.errors.ProviderUnreachable`.
DEFAULT_CONNECT_TIMEOUT = 10.0
#: Connections one loop's pool may hold at once (all hosts together).
DEFAULT_MAX_CONNECTIONS = 1000
_ATTRIBUTE = "_rxagents_http_sessions"


def new_session(max_connections: int = DEFAULT_MAX_CONNECTIONS) -> aiohttp.ClientSession:
    """A new session with rxagents' pool settings, on the running loop."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=max_connections, limit_per_host=0)  # idle connections kept 15 s
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),  # each request sets its connect timeout
        trust_env=False,  # no ~/.netrc (and no executor hop per request); proxies: proxy_for()
    )


async def loop_session(max_connections: int = DEFAULT_MAX_CONNECTIONS) -> aiohttp.ClientSession | None:
    """The running loop's pooled session for ``max_connections``, created on first use; None on a loop that
    cannot close it at shutdown (the caller then uses a :func:`new_session` of its own and closes it)."""
    loop = asyncio.get_running_loop()
    sessions: dict[int, aiohttp.ClientSession] | None = getattr(loop, _ATTRIBUTE, None)
    if sessions is None:
        if not await at_loop_shutdown("http-pool", close_loop_sessions):
            return None
        sessions = {}
        setattr(loop, _ATTRIBUTE, sessions)
    session = sessions.get(max_connections)
    if session is None or session.closed:
        session = sessions[max_connections] = new_session(max_connections)
    return session


async def close_loop_sessions() -> int:
    """Close the running loop's pooled sessions (their connections with them); returns how many."""
    loop = asyncio.get_running_loop()
    sessions: dict[int, aiohttp.ClientSession] = getattr(loop, _ATTRIBUTE, None) or {}
    closing = list(sessions.values())
    sessions.clear()
    for session in closing:
        await session.close()  # waits until every connection's transport has closed
    return len(closing)


def proxy_for(url: str, host: str) -> str | None:
    """The proxy the environment names for ``url`` (``HTTPS_PROXY`` for https, ``HTTP_PROXY`` for http,
    else ``ALL_PROXY``), or None when there is none or ``NO_PROXY`` covers ``host``.

    The variables are read as urllib reads them (:func:`urllib.request.getproxies_environment`), by name: the
    lower-case name wins when it is set (set empty, it means none), else the upper-case one, except
    ``HTTP_PROXY`` in a CGI script (``REQUEST_METHOD`` set: CVE-2016-1000110). urllib scans the whole environment
    instead, which costs tens of microseconds a request.
    """
    scheme = url.split(":", 1)[0].lower()
    proxy = _environment_proxy(scheme) or _environment_proxy("all")
    if not proxy:
        return None
    bypass = _environment_proxy("no")
    if bypass and _bypass(host, bypass):
        return None
    return proxy


def _environment_proxy(scheme: str) -> str | None:
    """``<scheme>_proxy`` (or ``<SCHEME>_PROXY``) from the environment, as :func:`proxy_for` reads it."""
    environ = os.environ
    value = environ.get(f"{scheme}_proxy")
    if value is None and not (scheme == "http" and "REQUEST_METHOD" in environ):
        value = environ.get(f"{scheme.upper()}_PROXY")
    return value or None


def _bypass(host: str, no_proxy: str) -> bool:
    import urllib.request  # here: it costs milliseconds to import

    check = urllib.request.proxy_bypass_environment  # type: ignore[attr-defined]  # not in typeshed
    return bool(check(host, {"no": no_proxy}))
