"""Endpoint URLs: the check an ``api_base`` must pass, and the form of a URL that is safe to show.

Shared by :func:`rxagents.models.resolve_model` (which refuses a bad ``api_base=`` before anything runs), the
litellm backend (whose connection errors name the URL) and ``rxagents doctor``.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from rxagents.errors import ConfigurationError

__all__ = ["api_base_problem", "check_api_base", "safe_url"]

#: Query parameters whose value may be a credential (``?key=`` for Gemini, ``api-key``, SAS ``sig``, tokens...).
_SECRET_PARAM = re.compile(r"key|token|secret|pass|sig|auth|cred|session|code", re.IGNORECASE)
_EXAMPLE = "http://127.0.0.1:8000/v1"


def safe_url(url: str) -> str:
    """``url`` without its user info and fragment, key-like query values replaced by ``***``.

    >>> safe_url("https://user:pw@example.test:8443/v1?key=abc&api-version=2024")
    'https://example.test:8443/v1?key=***&api-version=2024'
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:  # an IPv6 literal keeps its brackets
            host = f"[{host}]"
        port = parts.port
        query = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return "<unparseable URL>"
    netloc = f"{host}:{port}" if port is not None else host
    shown = [(name, "***" if _SECRET_PARAM.search(name) else value) for name, value in query]
    return urlunsplit((parts.scheme, netloc, parts.path, urlencode(shown, safe="*"), ""))


def api_base_problem(url: str) -> str | None:
    """Why ``url`` cannot be an OpenAI-compatible base URL, or ``None`` when it can: it must be ``http(s)``
    with a host (and a valid port, if one is given), and no user info (the key goes in a header)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port  # raises for a port that is not a number in 0..65535
    except ValueError as error:
        return f"it is not a valid URL ({error})"
    if parts.scheme.lower() not in ("http", "https"):
        return "it is not an http(s) URL"
    if not parts.hostname:
        return "it has no host"
    if parts.username is not None or parts.password is not None:
        return "it carries user info (user:password@), which litellm cannot send with a key; pass the key as api_key="
    if port == 0:
        return "port 0 is not a port a server listens on"
    return None


def check_api_base(url: object, *, parameter: str, secret: str | None = None) -> str:
    """``url`` stripped of surrounding spaces, or :class:`ConfigurationError` naming ``parameter``, the value
    (credentials and ``secret`` hidden) and the fix."""
    if not isinstance(url, str):
        raise ConfigurationError(f"{parameter} must be a URL string such as {_EXAMPLE!r}, got {type(url).__name__}")
    problem = api_base_problem(url)
    if problem is not None:
        shown = safe_url(url.strip())
        if secret and len(secret) >= 4:
            shown = shown.replace(secret, "***")
        raise ConfigurationError(
            f"{parameter}={shown!r} is not usable: {problem}. Give the server's base URL with "
            f"scheme and host, e.g. {_EXAMPLE!r} (or use model_name='offline' for the embedded offline model)."
        )
    return url.strip()
