"""Operators that hold items back: how one subscription releases what it holds before the stream's end.

A size buffer or ``chunk_by`` holds a tail of text (:class:`HeldTail`); ``pace``, ``throttle_text`` and the
time-based buffers also release what they hold from scheduler timers (:class:`TimedEmitter`). Either way what is
held goes out before the terminal notification, and a consumer that disposes from inside that last emission gets
no terminal notification after it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any, Generic, TypeVar

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from rxagents import _runtime

__all__ = ["HeldTail", "TimedEmitter", "timed_operator"]

_In = TypeVar("_In")
_Out = TypeVar("_Out")


def _attach(
    source: Observable[Any],
    on_next: Callable[[Any], None],
    held: HeldTail | TimedEmitter[Any, Any],
    scheduler: abc.SchedulerBase | None,
) -> abc.DisposableBase:
    """Subscribe ``held`` to ``source``; disposing the result disposes the upstream, then ``held``."""
    upstream = source.subscribe(on_next, held.on_error, held.on_completed, scheduler=scheduler)
    return CompositeDisposable(upstream, Disposable(held.dispose))


class HeldTail:
    """The end of one subscription that holds a tail of text back, without timers (single-threaded per subscription).

    ``flush`` emits the tail, ``clear`` drops it. On completion or error the tail goes out first, then the same
    terminal notification, unless the consumer disposed from inside the flush.
    """

    __slots__ = ("clear", "disposed", "flush", "observer")

    def __init__(self, observer: abc.ObserverBase[Any], flush: Callable[[], None], clear: Callable[[], None]) -> None:
        self.observer = observer
        self.flush = flush
        self.clear = clear
        self.disposed = False

    def on_error(self, error: Exception) -> None:
        self.flush()
        if not self.disposed:  # the consumer may dispose from inside the flush
            self.observer.on_error(error)

    def on_completed(self) -> None:
        self.flush()
        if not self.disposed:
            self.observer.on_completed()

    def dispose(self) -> None:
        self.disposed = True
        self.clear()

    def subscribe(
        self, source: Observable[Any], on_next: Callable[[Any], None], scheduler: abc.SchedulerBase | None
    ) -> abc.DisposableBase:
        """Subscribe ``on_next`` and this tail's ends to ``source``; the result disposes both."""
        return _attach(source, on_next, self, scheduler)


class TimedEmitter(Generic[_In, _Out]):
    """One subscription of an operator that emits from scheduler timers as well as from upstream events.

    Upstream events and timer actions are serialised by a re-entrant lock held while emitting ``on_next``;
    terminal notifications and timer cancellation happen outside it (so a thread-safe scheduler's cancel never
    waits on a thread blocked on this lock). Subclasses update their state before each emission, so a consumer
    that disposes (or raises) from inside ``on_next`` leaves it consistent. ``timer`` is the pending timer.

    A subclass implements ``on_next`` and, as it needs, the hooks ``_hold`` and ``_flush`` (the upstream's end)
    and ``_clear`` (disposal), all called with the lock held.
    """

    __slots__ = ("disposed", "ended", "lock", "observer", "scheduler", "timer")

    def __init__(self, observer: abc.ObserverBase[_Out], scheduler: abc.SchedulerBase) -> None:
        self.observer = observer
        self.scheduler = scheduler
        self.lock = threading.RLock()
        self.timer: abc.DisposableBase | None = None
        self.ended = False  # the upstream terminated
        self.disposed = False

    def on_next(self, item: _In) -> None:
        raise NotImplementedError

    def _hold(self, terminal: Callable[[], None]) -> bool:
        """At the upstream's end: keep ``terminal`` to send it later (True), or let it go now (False)."""
        return False

    def _flush(self) -> None:
        """At the upstream's end (the timer already taken): emit what is held back."""

    def _clear(self) -> None:
        """On disposal: drop what is held back."""

    def _end(self, terminal: Callable[[], None]) -> None:
        """Unless held: flush, cancel the timer, then send ``terminal`` (unless disposed meanwhile)."""
        timer = None
        try:
            with self.lock:
                if self.ended or self.disposed:
                    return
                self.ended = True
                if self._hold(terminal):
                    return
                timer, self.timer = self.timer, None
                self._flush()
                if self.disposed:  # the consumer disposed from inside the flush
                    return
        finally:
            if timer is not None:
                timer.dispose()
        terminal()

    def on_error(self, error: Exception) -> None:
        self._end(partial(self.observer.on_error, error))

    def on_completed(self) -> None:
        self._end(self.observer.on_completed)

    def dispose(self) -> None:
        with self.lock:
            self.disposed = True
            self._clear()
            timer, self.timer = self.timer, None
        if timer is not None:
            timer.dispose()


def timed_operator(
    make: Callable[[abc.ObserverBase[_Out], abc.SchedulerBase], TimedEmitter[_In, _Out]],
    scheduler: abc.SchedulerBase | None,
) -> Callable[[Observable[_In]], Observable[_Out]]:
    """An operator whose every subscription is ``make(observer, clock)``; the clock is ``scheduler`` or, by
    default, the run's loop scheduler (chosen at subscription)."""

    def operator(source: Observable[_In]) -> Observable[_Out]:
        def subscribe(
            observer: abc.ObserverBase[_Out], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            state = make(observer, _runtime.default_scheduler(scheduler))
            return _attach(source, state.on_next, state, subscribe_scheduler)

        return Observable(subscribe)

    return operator
