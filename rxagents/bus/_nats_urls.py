"""NATS server URLs: several separated by commas, credentials taken out of them (never shown)."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit, urlunsplit

from rxagents._urls import safe_url
from rxagents.errors import ConfigurationError

__all__ = ["split_servers"]

_SCHEMES = ("nats", "tls")


def split_servers(url: str) -> tuple[list[str], str | None, str | None, str | None]:
    """The server URLs without credentials, and the user, password and token the URLs carried."""
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"url must be a NATS URL such as 'nats://127.0.0.1:4222', got {url!r}")
    servers: list[str] = []
    user = password = token = None
    for part in url.split(","):
        part = part.strip()
        try:
            pieces = urlsplit(part)
            host, port = pieces.hostname, pieces.port
        except ValueError:
            raise ConfigurationError(
                f"url must be a NATS URL such as 'nats://127.0.0.1:4222', got {safe_url(part)!r}"
            ) from None
        if pieces.scheme not in _SCHEMES or not host:
            raise ConfigurationError(
                f"url must be nats://host:port or tls://host:port (commas between servers), got {safe_url(part)!r}"
            )
        if pieces.username is not None and pieces.password is not None:
            user, password = unquote(pieces.username), unquote(pieces.password)
        elif pieces.username:
            token = unquote(pieces.username)
        shown_host = f"[{host}]" if ":" in host else host
        servers.append(urlunsplit((pieces.scheme, f"{shown_host}:{port or 4222}", "", "", "")))
    return servers, user, password, token
