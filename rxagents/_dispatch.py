"""Delivering a run's events to user callbacks off the event loop.

The run's loop only reads the socket and puts events on a queue; a *callback thread* takes them
off and calls the handlers. A slow or raising callback therefore never slows the socket reader
nor restarts, aborts or duplicates the stream. For ``Agent.run`` the callback thread is the thread
that called ``run``; for ``Agent.arun`` it is a worker thread of the loop's default executor.
"""

from __future__ import annotations

import asyncio
import logging
import queue
from collections.abc import Callable, Sequence
from typing import Any

from reactivex import Observable

from rxagents.errors import RunError, RxAgentsError, partial_text_of
from rxagents.events import EventKind, TokenEvent

__all__ = ["CallbackErrorPolicy", "Dispatcher"]

log = logging.getLogger("rxagents")

#: "log": count a raising callback's errors and log them once per run, keep streaming.
#: "raise": the first callback error stops the run; ``run`` raises a RunError from it.
CallbackErrorPolicy = str

_END = object()


class Dispatcher:
    """Queue between the run's loop and the callback thread (see the module docstring)."""

    def __init__(
        self, handlers: Sequence[Callable[[TokenEvent], Any]], *, agent: str, on_callback_error: str = "log"
    ) -> None:
        self.handlers = tuple(handlers)
        self.agent = agent
        self.policy = on_callback_error
        self.events: list[TokenEvent] = []
        self.callback_errors = 0
        self.first_callback_error: BaseException | None = None
        self.error: BaseException | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        #: Called (on the callback thread) when a callback error is fatal; cancels the run.
        self.on_fatal: Callable[[], Any] | None = None

    # producer side (the run's loop) ------------------------------------------------------------
    def push(self, event: TokenEvent) -> None:
        self._queue.put(event)

    def push_error(self, error: Exception) -> None:
        self._queue.put((_END, error))

    def push_end(self) -> None:
        self._queue.put((_END, None))

    # consumer side (the callback thread) --------------------------------------------------------
    def drain(self) -> None:
        """Call the handlers for every event until the run ends. Returns normally either way;
        :meth:`result` tells the outcome."""
        get = self._queue.get
        handlers = self.handlers
        while True:
            item = get()
            if type(item) is tuple and item[0] is _END:
                if item[1] is not None and self.error is None:
                    self.error = item[1]
                break
            self.events.append(item)
            for handler in handlers:
                try:
                    handler(item)
                except Exception as exc:
                    self._callback_failed(exc)
            if self.error is not None:  # a fatal callback error: the run was cancelled
                break
        self._report()

    # driving a run -----------------------------------------------------------------------------
    def consume(self, observable: Observable[TokenEvent]) -> None:
        """Subscribe ``observable`` and call the handlers on *this* thread until it ends.

        Any exception here (``KeyboardInterrupt`` included) disposes the subscription, which
        cancels the run and closes its HTTP stream, before it propagates.
        """
        subscription = observable.subscribe(on_next=self.push, on_error=self.push_error, on_completed=self.push_end)
        self.on_fatal = subscription.dispose
        try:
            self.drain()
        except BaseException:
            subscription.dispose()
            raise

    async def aconsume(self, observable: Observable[TokenEvent]) -> None:
        """Subscribe ``observable`` and call the handlers on a worker thread of the running loop's
        default executor until it ends; cancelling the awaiting task cancels the run."""
        loop = asyncio.get_running_loop()
        subscription = observable.subscribe(on_next=self.push, on_error=self.push_error, on_completed=self.push_end)
        self.on_fatal = subscription.dispose
        try:
            await loop.run_in_executor(None, self.drain)
        except BaseException:
            subscription.dispose()
            self.push_end()
            raise

    def _callback_failed(self, exc: Exception) -> None:
        self.callback_errors += 1
        if self.first_callback_error is None:
            self.first_callback_error = exc
        if self.policy == "raise" and self.error is None:
            self.error = RunError(
                f"agent {self.agent!r}: streaming_callback raised {type(exc).__name__}: {exc} "
                "(on_callback_error='raise'; use 'log' to keep streaming)",
                partial_text=partial_text_of(self.events),
                events=self.events,
            )
            self.error.__cause__ = exc
            if self.on_fatal is not None:
                self.on_fatal()

    def _report(self) -> None:
        if self.callback_errors and self.policy != "raise":
            log.warning(
                "agent %r: streaming_callback raised %d time(s) during the run; the stream continued. First error:",
                self.agent,
                self.callback_errors,
                exc_info=self.first_callback_error,
            )

    def result(self) -> str:
        """The final answer (text of the last loop), or raise :class:`RunError` with the partial text."""
        if self.error is not None:
            error = self.error
            if isinstance(error, RunError):
                raise error
            partial = partial_text_of(self.events)
            message = str(error)
            run_error = RunError(
                f"agent {self.agent!r} run failed: {message}", partial_text=partial, events=self.events
            )
            if isinstance(error, RxAgentsError):
                run_error.partial_text = error.partial_text or partial
            raise run_error from error
        events = self.events
        restarts = [i for i, e in enumerate(events) if e.kind is EventKind.RETRY]
        if restarts:  # the run restarted: its text before the last retry event was discarded
            events = events[restarts[-1] + 1 :]
        last = max((e.loop for e in events), default=1)
        return "".join(e.text for e in events if e.kind is EventKind.TOKEN and e.loop == last)
