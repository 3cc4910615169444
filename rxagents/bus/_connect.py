"""``connect_bus``: the adapter for a broker URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from rxagents._urls import safe_url
from rxagents.bus._base import Bus
from rxagents.bus._nats import NatsBus
from rxagents.bus._redis import RedisBus
from rxagents.errors import ConfigurationError

__all__ = ["connect_bus"]

_ADAPTERS: dict[str, type[Bus]] = {"nats": NatsBus, "tls": NatsBus, "redis": RedisBus, "rediss": RedisBus}


def connect_bus(url: str, **options: Any) -> Bus:
    """The bus for ``url``, by scheme: ``nats://`` and ``tls://`` (NATS JetStream, :class:`NatsBus`),
    ``redis://`` and ``rediss://`` (Redis Streams, :class:`RedisBus`). ``options`` go to the adapter (stream
    names, retention limits, credentials, TLS: see each adapter).

    The bus is not connected yet: ``await`` it, or use it in ``async with`` (which closes it at the end).
    Credentials may be in the URL (``nats://user:password@host``, ``nats://token@host``,
    ``redis://:password@host``) or in ``options`` (``credentials="x.creds"``, ``token=``, ``password=``...);
    they never appear in the bus's ``repr``, in errors or in logs.

    Raises:
        ConfigurationError: the URL's scheme is not one of these, or an option is bad (the message says which).

    Example::

        async with connect_bus("nats://127.0.0.1:4222", max_age=3600) as bus:
            print(await bus.runs())
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"url must be a broker URL such as 'nats://127.0.0.1:4222', got {url!r}")
    first = url.strip().split(",", 1)[0]
    try:
        scheme = urlsplit(first).scheme.lower()
    except ValueError:
        scheme = ""
    adapter = _ADAPTERS.get(scheme)
    if adapter is None:
        raise ConfigurationError(
            f"url {safe_url(first)!r} has no supported scheme: use nats:// or tls:// (NATS JetStream), "
            f"redis:// or rediss:// (Redis Streams)"
        )
    return adapter(url.strip(), **options)
