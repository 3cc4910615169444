"""Close litellm's per-loop HTTP clients when their event loop shuts down.

litellm caches one HTTP client per event loop (its client cache key ends with the loop's token) and never
closes it: a loop that ends - every ``asyncio.run(agent.arun(...))`` - leaves that client's pooled
connection open, and Python reports ``ResourceWarning: unclosed transport`` when the socket is collected.

:func:`close_clients_at_loop_shutdown` is called by the litellm backend on the loop that runs a request; it
registers :func:`close_loop_clients` with :func:`rxagents.models._loop_shutdown.at_loop_shutdown`, which runs
it when that loop shuts down (``asyncio.run`` and the rxagents runtime loop included).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from typing import Any

from rxagents.models._loop_shutdown import at_loop_shutdown

__all__ = ["close_clients_at_loop_shutdown", "close_loop_clients"]


def _cache() -> Any:
    litellm = sys.modules.get("litellm")
    return getattr(litellm, "in_memory_llm_clients_cache", None)


def _loop_token() -> int | None:
    closer = sys.modules.get("litellm.caching.evicted_client_closer")
    token = getattr(closer, "running_loop_token", None)
    return token() if callable(token) else None


async def close_loop_clients() -> int:
    """Close and forget the clients litellm cached for the running loop; returns how many were closed."""
    cache, token = _cache(), _loop_token()
    if cache is None or token is None:
        return 0
    suffix = f"-{token}"
    entries: dict[str, Any] = getattr(cache, "cache_dict", {})
    mine = [key for key in list(entries) if isinstance(key, str) and key.endswith(suffix)]
    closed = 0
    for key in mine:
        client = entries.get(key)
        with contextlib.suppress(Exception):
            cache.delete_cache(key)
        close = getattr(client, "close", None) or getattr(client, "aclose", None)
        if close is None:
            continue
        with contextlib.suppress(Exception):
            result = close()
            if asyncio.iscoroutine(result):
                await result
            closed += 1
    return closed


async def close_clients_at_loop_shutdown() -> None:
    """Arrange (once per loop) for litellm's clients on the running loop to be closed when it shuts down."""
    await at_loop_shutdown("litellm", close_loop_clients)
