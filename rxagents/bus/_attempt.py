"""One attempt at a task's run: continue the run's log after a previous attempt, and stop on a cancel request.

A worker that died mid-run left part of the run on the broker (events ``0..last``). The next attempt
(:func:`continue_run`) announces with a ``retry`` event at ``last + 1`` that the text so far is void, then
publishes its own run without its ``start``, every seq moved past the retry, so attached consumers see one
well-formed run: ``start ... retry ... finish`` (law 13), with neither gap nor duplicate.

:class:`Stop` ends a run from outside (a cancel request, the worker stopping): the upstream is disposed (the
model's HTTP stream closes), then an ``error`` event of :class:`~rxagents.bus.RunCancelled` is emitted as the
run's terminal event and the stream fails with it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SingleAssignmentDisposable

from rxagents.bus._errors import RunCancelled
from rxagents.bus._wire import Message
from rxagents.events import EventKind, TokenEvent

__all__ = ["Stop", "continue_run", "ending"]


def ending(run_id: str, error: BaseException, last: Message | None, agent: str, model: str,
           time: float) -> list[TokenEvent]:  # fmt: skip
    """The events that end run ``run_id`` with ``error`` after what the broker holds (``last``: its last
    message, None for nothing): a ``start`` first if the run never started."""
    if last is None:
        return [TokenEvent(EventKind.START, agent, run_id, 0, time=time, model=model),
                TokenEvent(EventKind.ERROR, agent, run_id, 1, error=error, time=time, model=model)]  # fmt: skip
    previous = last.events[-1]
    return [TokenEvent(EventKind.ERROR, previous.agent, run_id, last.last + 1, loop=previous.loop, error=error,
                       time=time, model=previous.model)]  # fmt: skip


def continue_run(
    last: Message | None, reason: str, now: Callable[[], float]
) -> Callable[[Observable[TokenEvent]], Observable[TokenEvent]]:
    """The run's events after what the broker holds: unchanged when it holds nothing (``last`` None); else a
    ``retry`` event (``text`` = ``reason``) at ``last.last + 1``, then the events without their ``start``, each
    seq moved by ``last.last + 1``.

    .. code-block:: text

        broker:  s a b                (a worker died after b: last seq 2)
        source:  -s-a-b-c-f-|         the new attempt
        output:  r-a-b-c-f-|          r: retry at seq 3; a..f at seqs 4..7
    """

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        if last is None:
            return source
        offset = last.last + 1
        previous = last.events[-1]

        def subscribe(
            observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            retry = TokenEvent(
                EventKind.RETRY, previous.agent, previous.run_id, offset, text=reason, time=now(), model=previous.model
            )
            observer.on_next(retry)

            def on_next(event: TokenEvent) -> None:
                if event.kind is not EventKind.START:
                    observer.on_next(replace(event, seq=event.seq + offset))

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return reactivex.create(subscribe)

    return operator


class Stop:
    """A switch that ends a run from outside; :meth:`operator` puts it in the run's pipeline (one subscription).
    Use it on the run's loop."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.reason: str | None = None
        self._trigger: Callable[[str], None] | None = None

    def __call__(self, reason: str) -> None:
        """End the run with :class:`RunCancelled` (``reason``); later calls do nothing."""
        if self.reason is not None:
            return
        self.reason = reason
        if self._trigger is not None:
            self._trigger(reason)

    def operator(self, source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        """``source`` until the switch is thrown: then its terminal ``error`` event and on_error.

        .. code-block:: text

            source:  -s-a-b-c-f-|
            stop:         ^ "cancelled on request"
            output:  -s-a-(e#)          e: error event of RunCancelled at seq 3; source disposed
        """

        def subscribe(
            observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            upstream = SingleAssignmentDisposable()
            last: list[TokenEvent] = []
            over = False

            def on_next(event: TokenEvent) -> None:
                if not over:
                    last[:] = [event]
                    observer.on_next(event)

            def on_error(error: Exception) -> None:
                nonlocal over
                if not over:
                    over = True
                    observer.on_error(error)

            def on_completed() -> None:
                nonlocal over
                if not over:
                    over = True
                    observer.on_completed()

            def trigger(reason: str) -> None:
                nonlocal over
                if over:
                    return
                over = True
                upstream.dispose()  # closes the model's HTTP stream
                error = RunCancelled(self.run_id, reason)
                if not last:  # nothing was emitted: the run ends before it started (its owner publishes the end)
                    observer.on_error(error)
                    return
                previous = last[0]
                if not previous.is_terminal:
                    observer.on_next(TokenEvent(EventKind.ERROR, previous.agent, previous.run_id, previous.seq + 1,
                                                loop=previous.loop, error=error, time=previous.time,
                                                model=previous.model))  # fmt: skip
                observer.on_error(error)

            def release() -> None:
                self._trigger = None

            self._trigger = trigger
            upstream.disposable = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)
            if self.reason is not None:
                trigger(self.reason)
            return CompositeDisposable(upstream, Disposable(release))

        return reactivex.create(subscribe)
