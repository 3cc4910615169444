"""Close litellm's per-loop HTTP clients when their event loop shuts down.

litellm caches one HTTP client per event loop (its client cache key ends with the loop's token) and never
closes it: a loop that ends - every ``asyncio.run(agent.arun(...))`` - leaves that client's pooled
connection open, and Python reports ``ResourceWarning: unclosed transport`` when the socket is collected.

:func:`close_clients_at_loop_shutdown` is called by the litellm backend on the loop that runs a request.
The first time on each loop it starts a tiny async generator there and parks it at its first ``yield``.
The loop tracks it like any other async generator, and ``loop.shutdown_asyncgens()`` - which
``asyncio.run`` and the rxagents runtime loop call before they close the loop - closes it: its
``finally`` closes that loop's clients (and only that loop's) while the loop can still run their close.
Unlike a task, a parked generator is not in ``asyncio.all_tasks()``, so it never looks like work left behind.
A loop closed without ``shutdown_asyncgens()`` (``loop.close()`` alone) gets no such cleanup.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import AsyncGenerator
from typing import Any

__all__ = ["close_clients_at_loop_shutdown", "close_loop_clients"]

_ATTRIBUTE = "_rxagents_litellm_watch"
_CLOSE_TIMEOUT = 5.0  # seconds one loop's clients may take to close at shutdown


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


async def _watch() -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            await asyncio.wait_for(close_loop_clients(), _CLOSE_TIMEOUT)


async def close_clients_at_loop_shutdown() -> None:
    """Arrange (once per loop) for litellm's clients on the running loop to be closed when it shuts down."""
    loop = asyncio.get_running_loop()
    if getattr(loop, _ATTRIBUTE, None) is not None:
        return
    watcher = _watch()
    try:
        # The loop holds its async generators weakly: the loop itself keeps this one alive, as long as it lives.
        setattr(loop, _ATTRIBUTE, watcher)
    except AttributeError:  # a loop class without a __dict__ (uvloop): no cleanup, as before
        return
    await watcher.asend(None)  # parked at its yield; the loop's asyncgen hooks have registered it
