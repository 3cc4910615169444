"""Silence guards: ``first_token_timeout`` and ``gap_timeout`` (which limit runs when: ``_core.silence``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rxagents import _runtime
from rxagents._core.silence import Silence, SilenceWatch
from rxagents._validate import check_scheduler, check_seconds
from rxagents.events import TERMINAL_KINDS, EventKind, TokenEvent
from rxagents.operators._errors import Relay, StreamTimeout

__all__ = ["first_token_timeout", "gap_timeout"]

Operator = Callable[[Observable[TokenEvent]], Observable[TokenEvent]]

#: Kinds that show the model has started answering (for ``first_token_timeout``).
_CONTENT_KINDS = frozenset({EventKind.TOKEN, EventKind.REASONING, EventKind.TOOL_CALL})


def _timeout(seconds: float, scheduler: abc.SchedulerBase | None, phase: Literal["first_token", "gap"]) -> Operator:
    silence = Silence(seconds, phase)
    first_token = phase == "first_token"

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            sched = _runtime.default_scheduler(scheduler)
            relay: Relay[TokenEvent] = Relay(observer, keep_events=True)
            timer = SerialDisposable()
            # first_token: the limit runs until content arrives; gap: again from every event
            watch = SilenceWatch(silence, None if first_token else silence)
            last_seq: list[int | None] = [None]

            def fire(_: abc.SchedulerBase, __: Any = None) -> None:
                with relay.lock:
                    if relay.done:
                        return
                    if first_token:
                        message = (
                            f"no token within {seconds:g}s of subscribing (first_token_timeout): the model "
                            "did not start answering; retry, or allow more time"
                        )
                    else:
                        after = "subscribing" if last_seq[0] is None else f"event #{last_seq[0]}"
                        message = (
                            f"no event for {seconds:g}s after {after} (gap_timeout): the stream stalled; "
                            "partial text is in .partial_text"
                        )
                    relay.fail(StreamTimeout(message, seconds=seconds, phase=phase), _runtime.clock(sched))

            def arm(limit: Silence | None) -> None:
                if limit is None:
                    timer.dispose()
                else:
                    timer.disposable = sched.schedule_relative(limit.seconds, fire)

            def on_next(event: TokenEvent) -> None:
                with relay.lock:
                    if relay.done:
                        return
                    last_seq[0] = event.seq
                    starts = not first_token or event.kind in _CONTENT_KINDS
                    if watch.seen(starts=starts, ends=event.kind in TERMINAL_KINDS):
                        arm(watch.limit)
                    relay.on_next(event)

            def on_error(error: Exception) -> None:
                timer.dispose()
                relay.on_error(error)

            def on_completed() -> None:
                timer.dispose()
                relay.on_completed()

            def dispose() -> None:
                timer.dispose()
                relay.dispose()

            arm(watch.arm())
            relay.upstream.disposable = source.subscribe(on_next, on_error, on_completed, scheduler=subscribe_scheduler)
            return Disposable(dispose)

        return reactivex.create(subscribe)

    return operator


def first_token_timeout(seconds: float, *, scheduler: abc.SchedulerBase | None = None) -> Operator:
    """Fail with :class:`StreamTimeout` if the model does not start answering within ``seconds``.

    The window starts at subscription and ends at the first token, reasoning or tool-call event (or at a
    terminal event). On timeout the upstream run is cancelled (disposed), an ``error`` event ends the run
    (when ``start`` was delivered) and the stream fails with ``StreamTimeout(phase="first_token")``. Put
    :func:`retry` after it to try again. An event arriving at exactly ``seconds`` is too late.

    .. code-block:: text

        source:  -s-----------a--f-|
        timer:   [---- 5s ----]                first_token_timeout(5)
        output:  -s-----------X                X = error event, then on_error(StreamTimeout)

        source:  -s---a---------f-|
        output:  -s---a---------f-|            (the first token came in time: no more watching)

    Args:
        seconds: the longest wait for the first token.
        scheduler: the clock; default: the run's loop scheduler (chosen at subscription).

    Returns:
        An operator passing events through unchanged until it times out.

    Example::

        stream = agent.stream(task).pipe(first_token_timeout(10), retry(3))
    """
    value = check_seconds("seconds", seconds)
    check_scheduler(scheduler)
    return _timeout(value, scheduler, "first_token")


def gap_timeout(seconds: float, *, scheduler: abc.SchedulerBase | None = None) -> Operator:
    """Fail with :class:`StreamTimeout` if no event arrives for ``seconds`` (stall detection).

    The window restarts at subscription and after every event; a terminal event stops it. On timeout the
    upstream run is cancelled (disposed: its HTTP stream is closed), an ``error`` event ends the run, and
    the stream fails with ``StreamTimeout(phase="gap")`` carrying the text delivered so far.

    .. code-block:: text

        source:  -s--a--b-----------c-f-|
        window:           [-- 3s --]           gap_timeout(3)
        output:  -s--a--b----------X           X = error event, then on_error(StreamTimeout), partial "ab"

    Args:
        seconds: the longest silence allowed between events.
        scheduler: the clock; default: the run's loop scheduler (chosen at subscription).

    Returns:
        An operator passing events through unchanged until it times out.

    Example::

        stream = agent.stream(task).pipe(gap_timeout(30))
    """
    value = check_seconds("seconds", seconds)
    check_scheduler(scheduler)
    return _timeout(value, scheduler, "gap")
