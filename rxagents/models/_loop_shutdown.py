"""Run clean-ups (close HTTP clients) when an event loop shuts down.

HTTP clients are per event loop: a connection belongs to the loop that opened it. A loop that ends - every
``asyncio.run(agent.arun(...))`` - must close its clients first, or their pooled connections stay open and
Python reports ``ResourceWarning: unclosed transport`` when the sockets are collected.

:func:`at_loop_shutdown` registers a clean-up for the running loop. The first time on each loop it starts a
tiny async generator there and parks it at its first ``yield``. The loop tracks it like any other async
generator, and ``loop.shutdown_asyncgens()`` - which ``asyncio.run`` and the rxagents runtime loop (at
interpreter exit) call before they close the loop - closes it: its ``finally`` awaits each clean-up registered
on that loop (and only that loop's) while the loop can still run them. Unlike a task, a parked generator is
not in ``asyncio.all_tasks()``, so it never looks like work left behind. A loop closed without
``shutdown_asyncgens()`` (``loop.close()`` alone) gets no clean-up, nor does a loop class that takes no
attributes (uvloop's).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable

__all__ = ["at_loop_shutdown"]

_ATTRIBUTE = "_rxagents_shutdown_hooks"
_CLOSE_TIMEOUT = 5.0  # seconds one clean-up may take at shutdown

Cleanup = Callable[[], Awaitable[object]]


class _Hooks:
    """The clean-ups of one loop, and the parked generator that runs them."""

    __slots__ = ("cleanups", "watcher")

    def __init__(self) -> None:
        self.cleanups: dict[str, Cleanup] = {}
        self.watcher = self._watch()

    async def _watch(self) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            for cleanup in list(self.cleanups.values()):
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(cleanup(), _CLOSE_TIMEOUT)


async def at_loop_shutdown(name: str, cleanup: Cleanup) -> bool:
    """Arrange for ``await cleanup()`` when the running loop shuts down (once per ``name`` and loop: a later
    registration under the same name does nothing). False when this loop cannot take clean-ups."""
    loop = asyncio.get_running_loop()
    hooks = getattr(loop, _ATTRIBUTE, None)
    if hooks is None:
        hooks = _Hooks()
        try:
            # The loop holds its async generators weakly: the loop itself keeps this one alive, as long as it lives.
            setattr(loop, _ATTRIBUTE, hooks)
        except AttributeError:  # a loop class without a __dict__ (uvloop)
            return False
        await hooks.watcher.asend(None)  # parked at its yield; the loop's asyncgen hooks have registered it
    hooks.cleanups.setdefault(name, cleanup)
    return True
