"""Pacing: space items out in time without slowing the producer, and throttle the running text for UIs.

The swarms documentation paces output by calling ``time.sleep`` inside the streaming callback, i.e. in the
thread that reads the model's socket: the reader stalls, and with it everything else on that thread. Here
the producer never waits: :func:`pace` queues what arrives early and releases it with scheduler timers, and
:func:`throttle_text` keeps only the latest running text between frames.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from reactivex import Observable, abc

from rxagents._validate import check_scheduler, check_seconds
from rxagents.events import TokenEvent
from rxagents.operators._held import TimedEmitter, timed_operator
from rxagents.operators._text import running_text

__all__ = ["pace", "throttle_text"]

_T = TypeVar("_T")


def _identity(source: Observable[_T]) -> Observable[_T]:
    return source


# --- pace --------------------------------------------------------------------------------------------------


class _Pacer(TimedEmitter[Any, Any]):
    """One subscription of ``pace``.

    Invariant: the queue is non-empty exactly when a timer is pending. A terminal notification that arrives
    while items are queued is held until the queue drains.
    """

    __slots__ = ("interval", "next_at", "queue", "terminal")

    def __init__(self, observer: abc.ObserverBase[Any], interval: timedelta, scheduler: abc.SchedulerBase):
        super().__init__(observer, scheduler)
        self.interval = interval
        self.queue: deque[Any] = deque()
        self.next_at: datetime | None = None  # the earliest time the next item may go out
        self.terminal: Callable[[], None] | None = None  # held until the queue drains

    def on_next(self, item: Any) -> None:
        with self.lock:
            if self.ended or self.disposed:
                return
            if self.timer is not None:
                self.queue.append(item)
                return
            now = self.scheduler.now
            next_at = self.next_at
            if next_at is None or now >= next_at:
                self.next_at = now + self.interval
                self.observer.on_next(item)
                return
            self.queue.append(item)
            self.timer = self.scheduler.schedule_relative(next_at - now, self._release)

    def _release(self, _: abc.SchedulerBase, __: Any = None) -> None:
        with self.lock:
            if self.disposed or not self.queue:
                return
            item = self.queue.popleft()
            self.next_at = self.scheduler.now + self.interval
            terminal = None
            if self.queue:
                self.timer = self.scheduler.schedule_relative(self.interval, self._release)
            else:
                self.timer = None
                terminal, self.terminal = self.terminal, None
            self.observer.on_next(item)
            if terminal is None or self.disposed:
                return
        terminal()

    def _hold(self, terminal: Callable[[], None]) -> bool:
        if self.timer is None:
            return False
        self.terminal = terminal  # items are queued: the terminal goes out after them
        return True

    def _clear(self) -> None:
        self.queue.clear()
        self.terminal = None


def pace(
    min_interval: float, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Space items at least ``min_interval`` seconds apart, without ever blocking the producer.

    An item that arrives ``min_interval`` or more after the previous one went out is emitted at once;
    one that arrives sooner waits in a queue and is released by a scheduler timer. Nothing is dropped
    and the order is kept. The producer (the task reading the model's socket) is never slowed: a burst
    is absorbed by the queue, which grows while the source outpaces ``1 / min_interval`` items per second.

    Completion is delivered after the queue has drained. An error too is delivered after the queued
    items have gone out at their pace (they arrived before the error, so they are not lost). Disposing
    cancels the pending timer and drops the queue.

    ``pace(0)`` returns the source unchanged: no queue, no timer, no per-item cost.

    Works on any items: events, or the ``str`` chunks of a buffer.

    .. code-block:: text

        source:  -abc-------de|
        output:  -a--b--c---d--(e|)        pace(3): a goes at once; b and c wait their turn; d came late
                                           enough to go at once; e waits 3 after d, and the completion
                                           waits for e

        source:  -abc#
        output:  -a--b--(c#)               the error follows the queued items

    Args:
        min_interval: the least time between two emitted items, in seconds, >= 0.
        scheduler: the clock and the timers; default: the run's loop scheduler (chosen at subscription).

    Returns:
        An operator emitting the same items, spaced in time.

    Raises:
        ValueError: ``min_interval`` negative, infinite or NaN.

    Example::

        agent.stream(task).pipe(text_only(), pace(0.05)).subscribe(lambda t: print(t, end="", flush=True))
    """
    seconds = check_seconds("min_interval", min_interval, zero=True)
    check_scheduler(scheduler)
    if seconds == 0:
        return _identity
    interval = timedelta(seconds=seconds)

    def pacer(observer: abc.ObserverBase[Any], clock: abc.SchedulerBase) -> _Pacer:
        return _Pacer(observer, interval, clock)

    return timed_operator(pacer, scheduler)


# --- throttle_text ---------------------------------------------------------------------------------------


class _Throttle(TimedEmitter[str, str]):
    """One subscription of the latest-wins throttle behind ``throttle_text``.

    A change when no window is open goes out at once and opens a window of ``interval``; changes during
    the window are remembered (latest wins) and the latest goes out when it closes, opening a new one.
    ``timer`` is the open window.
    """

    __slots__ = ("interval", "latest", "pending")

    def __init__(self, observer: abc.ObserverBase[str], interval: float, scheduler: abc.SchedulerBase):
        super().__init__(observer, scheduler)
        self.interval = interval
        self.latest = ""
        self.pending = False  # ``latest`` has not gone out yet

    def on_next(self, text: str) -> None:
        with self.lock:
            if self.ended or self.disposed:
                return
            self.latest = text
            if self.timer is not None:
                self.pending = True
                return
            self.timer = self.scheduler.schedule_relative(self.interval, self._close)
            self.observer.on_next(text)

    def _close(self, _: abc.SchedulerBase, __: Any = None) -> None:
        with self.lock:
            if self.ended or self.disposed:
                return
            if not self.pending:
                self.timer = None
                return
            self.pending = False
            self.timer = self.scheduler.schedule_relative(self.interval, self._close)
            self.observer.on_next(self.latest)

    def _flush(self) -> None:
        """The latest text, if not sent yet (at the end, even inside a window)."""
        if self.pending:
            self.pending = False
            self.observer.on_next(self.latest)


def throttle_text(
    interval: float, *, scheduler: abc.SchedulerBase | None = None
) -> Callable[[Observable[TokenEvent]], Observable[str]]:
    """Frames of the running answer text for a display: at most one per ``interval``, the latest wins.

    The first token's text goes out at once and opens a window of ``interval`` seconds; tokens during the
    window only update the text, and when the window closes the latest running text goes out (opening the
    next window). When the stream completes, the full text goes out at once if the display does not have
    it yet (even inside a window: the final frame is never dropped or delayed), then the completion. On an
    error the latest text goes out the same way, then the error. Disposing cancels the window's timer.

    A ``retry`` event resets the running text to ``""``, as in :func:`running_text`. A stream without
    token text emits nothing. ``interval=0`` is :func:`running_text` (a frame per token).

    .. code-block:: text

        source:  -s-abc---------d-ef|       a="The", b=" cat", c=" sat", d=" on", e=" it", f finish
        output:  ---A---C-------D---(E|)    throttle_text(4)

        A = "The"                at once, opening a window until 7
        C = "The cat sat"        the latest text when the window closed ("The cat" was never shown)
        D = "The cat sat on"     at once: no window was open
        E = "The cat sat on it"  the final text, at completion (not delayed by D's window)

    Args:
        interval: the least time between two frames, in seconds, >= 0 (the final frame excepted).
        scheduler: the clock and the timers; default: the run's loop scheduler (chosen at subscription).

    Returns:
        An operator from TokenEvents to running-text frames (``str``); the last frame is the full text.

    Raises:
        ValueError: ``interval`` negative, infinite or NaN.

    Example::

        with Live() as live:
            agent.stream(task).pipe(throttle_text(1 / 15)).subscribe(lambda text: live.update(Markdown(text)))
    """
    seconds = check_seconds("interval", interval, zero=True)
    check_scheduler(scheduler)
    texts = running_text()
    if seconds == 0:
        return texts

    def window(observer: abc.ObserverBase[str], clock: abc.SchedulerBase) -> _Throttle:
        return _Throttle(observer, seconds, clock)

    throttle = timed_operator(window, scheduler)

    def operator(source: Observable[TokenEvent]) -> Observable[str]:
        return throttle(texts(source))

    return operator
