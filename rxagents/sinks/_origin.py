"""Which requests a local server answers: the ``Host`` and ``Origin`` checks of the SSE and WebSocket servers.

Two attacks reach a server on ``127.0.0.1`` through the user's own browser:

- **Cross-site requests.** Any page the user opens may call ``fetch("http://127.0.0.1:PORT/runs")`` or
  ``new WebSocket("ws://127.0.0.1:PORT")``. A WebSocket is not subject to CORS: without a check the page drives the
  agent and reads every token, at the user's API cost. The browser always sends the page's ``Origin`` with such a
  request, and a page cannot forge or remove it, so the server refuses origins other than its own and those it was
  told to trust (:func:`origin_refusal`).
- **DNS rebinding.** A page at ``http://evil.example:PORT`` whose name then resolves to ``127.0.0.1`` is
  same-origin with itself, so the browser lets it read the answers. Its requests still carry
  ``Host: evil.example:PORT``, so a server bound to a loopback address answers only loopback names
  (:func:`host_refusal`).

A request without ``Origin`` does not come from a page (browsers send it with every WebSocket handshake and every
cross-origin request): it is a program on this machine, which could connect without a browser anyway.
"""

from __future__ import annotations

from collections.abc import Iterable

from rxagents._validate import fail

__all__ = ["LOOPBACK_HOSTS", "host_name", "host_refusal", "normalize_origins", "origin_refusal"]

#: Host names of the loopback interface: a server bound to one answers only requests addressed to one.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def host_name(host_header: str) -> str:
    """``"[::1]:8000"`` -> ``"::1"``, ``"localhost:8000"`` -> ``"localhost"`` (lower case)."""
    host_header = host_header.strip().lower()
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


def host_refusal(bound_host: str, host_header: str | None) -> str | None:
    """Why a server bound to ``bound_host`` refuses a request with this ``Host`` header, or ``None`` to answer it.

    On a loopback bind, only loopback names are answered (DNS-rebinding guard); elsewhere any ``Host`` is.
    """
    if bound_host.lower() in LOOPBACK_HOSTS and host_name(host_header or "") not in LOOPBACK_HOSTS:
        return "this server only answers requests addressed to the loopback interface (127.0.0.1, localhost, ::1)"
    return None


def _authority(origin: str) -> str:
    """``"http://127.0.0.1:8000"`` -> ``"127.0.0.1:8000"``; ``"null"`` -> ``""``."""
    return origin.strip().lower().partition("://")[2].rstrip("/")


def origin_refusal(origin: str | None, host_header: str | None, allowed: frozenset[str] = frozenset()) -> str | None:
    """Why a request from ``origin`` is refused, or ``None`` to answer it.

    Answered: no ``Origin`` (not a page); a page of the server's own origin (its host and port are the request's
    ``Host``; the scheme is not compared, as it may differ behind a TLS proxy); an origin in ``allowed``
    (normalized by :func:`normalize_origins`). Refused: every other page, and ``Origin: null`` (a file, a sandboxed
    frame) unless ``"null"`` is allowed.
    """
    if origin is None:
        return None
    mine = _authority(origin)
    if mine and host_header is not None and mine == host_header.strip().lower():
        return None
    if origin.strip().lower().rstrip("/") in allowed:
        return None
    return f"cross-origin requests are refused (Origin {origin[:80]!r})"


def normalize_origins(origins: Iterable[str], parameter: str = "allowed_origins") -> frozenset[str]:
    """Check and normalize trusted origins: ``"http://localhost:5173"`` (scheme, host, port; no path) or ``"null"``.

    Raises :class:`~rxagents.errors.ConfigurationError` naming ``parameter`` and the bad value.
    """
    example = "e.g. ['http://localhost:5173']"
    if isinstance(origins, str | bytes) or not isinstance(origins, Iterable):
        fail(parameter, "a list of origins", origins, hint=example)
    out: set[str] = set()
    for origin in origins:
        if not isinstance(origin, str):
            fail(f"{parameter} entries", "strings such as 'http://localhost:5173'", origin)
        value = origin.strip().lower().rstrip("/")
        scheme, sep, authority = value.partition("://")
        if value != "null" and (
            not sep or scheme not in ("http", "https") or not authority or any(c in authority for c in "/?#@ ")
        ):
            fail(
                f"{parameter} entries",
                "origins: scheme, host and optional port, no path, such as 'http://localhost:5173' "
                "(or 'null' for file pages)",
                origin,
            )
        out.add(value)
    return frozenset(out)
