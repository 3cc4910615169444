"""An asyncio event loop on a daemon thread of its own.

The rxagents runtime loop, the SSE server started with ``with`` and the local test model server each run a loop
on a background thread. :class:`LoopThread` is that one pattern: start the thread and wait until its loop runs,
hand it coroutines from any other thread, and stop it cleanly::

    worker = LoopThread("rxagents-example").start(setup(), timeout=30)  # setup() runs on the loop first
    answer = worker.run(compute(), timeout=10)  # blocks this thread; compute() runs on the worker's loop
    worker.stop(shutdown=release_resources)  # release_resources() runs on the loop, then what is left is
                                             # cancelled, async generators are closed, the loop stops and closes
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

_T = TypeVar("_T")

#: After the loop stops without a clean :meth:`LoopThread.stop`, how long its thread waits for cancelled tasks.
_CANCEL_GRACE = 1.0


class LoopThread:
    """An event loop running forever on a named daemon thread, from :meth:`start` until :meth:`stop`.

    ``run`` and ``submit`` may be called from any thread but the loop's own; the coroutines run on the loop.
    A loop thread is started once: after :meth:`stop`, make a new one.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._ready = threading.Event()

    def __repr__(self) -> str:
        state = "running" if self.running else "closed" if self.loop.is_closed() else "not started"
        return f"LoopThread({self.name!r}, {state})"

    @property
    def running(self) -> bool:
        """The thread is alive and its loop is open (started, not yet stopped)."""
        return self._thread.is_alive() and not self.loop.is_closed()

    def start(self, setup: Coroutine[Any, Any, object] | None = None, timeout: float | None = None) -> LoopThread:
        """Start the thread; returns once its loop is running and has run ``setup``, if given.

        If ``setup`` raises (or takes more than ``timeout`` seconds), the loop thread is stopped and the error raised.
        """
        self._thread.start()
        self._ready.wait()
        if setup is not None:
            try:
                self.run(setup, timeout)
            except BaseException:
                self.stop()
                raise
        return self

    def submit(self, coro: Coroutine[Any, Any, _T]) -> concurrent.futures.Future[_T]:
        """Schedule ``coro`` on the loop; its result (or exception) arrives in the returned future."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float | None = None) -> _T:
        """Run ``coro`` on the loop and wait for its result here (at most ``timeout`` seconds: ``TimeoutError``).

        If this thread stops waiting (a timeout, ``KeyboardInterrupt``) the coroutine is cancelled.
        """
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError(f"LoopThread.run called on its own thread ({self.name}): await the coroutine instead")
        future = self.submit(coro)
        try:
            return future.result(timeout)
        except BaseException:
            future.cancel()
            raise

    def stop(self, shutdown: Callable[[], Awaitable[None]] | None = None, timeout: float = 5.0) -> None:
        """Wind the loop down, stop it, join the thread and close the loop. Idempotent.

        On the loop: ``await shutdown()`` (if given), then cancel every task still running and wait for them,
        and close async generators — all within ``timeout`` seconds. Then the loop stops and the thread is joined
        (``timeout`` again); the loop is closed once its thread has ended. An exception of ``shutdown`` (or
        ``TimeoutError``) is raised after the loop has been stopped.
        """
        if threading.current_thread() is self._thread:
            raise RuntimeError(f"LoopThread.stop called on its own thread ({self.name}): call it from another thread")
        if self._thread.ident is None and not self.loop.is_closed():  # never started
            self.loop.close()
        if not self.running:
            return
        try:
            self.run(self._wind_down(shutdown), timeout)
        finally:
            with contextlib.suppress(RuntimeError):  # closed meanwhile
                self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)

    async def _wind_down(self, shutdown: Callable[[], Awaitable[None]] | None) -> None:
        try:
            if shutdown is not None:
                await shutdown()
        finally:
            tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.loop.shutdown_asyncgens()

    def _main(self) -> None:
        loop = self.loop
        asyncio.set_event_loop(loop)
        loop.call_soon(self._ready.set)
        try:
            loop.run_forever()
        finally:
            try:  # stopped without stop() (or its wind-down timed out): cancel what is left, briefly
                tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
                for task in tasks:
                    task.cancel()
                if tasks:
                    loop.run_until_complete(asyncio.wait(tasks, timeout=_CANCEL_GRACE))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
