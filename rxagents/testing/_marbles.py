"""Marble helpers for token streams on reactivex's ``TestScheduler``.

Build a well-formed run from a compact diagram, subscribe in virtual time, and assert on what
came out::

    scheduler = TestScheduler()
    source = cold_events(scheduler, "-a-b-c-|", {"a": "Hel", "b": "lo", "c": "!"}, agent="A")
    trace = record(scheduler, source.pipe(my_operator()))
    assert text_of_trace(trace) == "Hello!"
    assert_well_formed_run(events_of_trace(trace))

Diagram syntax (one character is one frame of ``timespan`` virtual seconds; spaces are ignored):

====== =====================================================================================
``-``  nothing happens in this frame
``a``  any other character: an event; ``values`` maps it to a text (a ``token`` event), a
       :class:`~rxagents.events.Usage`, a :class:`~rxagents.events.ToolCallDelta` or a
       :class:`~rxagents.events.TokenEvent` (its kind and payload are kept, its identity is
       re-stamped); a character missing from ``values`` is a token with that character as text
``(ab)`` events ``a`` and ``b`` at the same time (the group still takes ``len("(ab)")`` frames)
``|``  the run finishes: a ``finish`` event, then ``on_completed``
``#``  the run fails: an ``error`` event carrying ``error``, then ``on_error(error)``
====== =====================================================================================

A ``start`` event is emitted at time 0 (before the first frame's events) and every event gets
``agent``, ``run_id``, ``seq`` (from 0, no gaps) and ``time`` (its offset in virtual seconds).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias, cast

from reactivex import Notification, Observable, abc
from reactivex.disposable import Disposable
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.testing import TestScheduler
from reactivex.testing.coldobservable import ColdObservable
from reactivex.testing.hotobservable import HotObservable
from reactivex.testing.recorded import Recorded

from rxagents._core.grammar import RunGrammar
from rxagents._core.partial import PartialText
from rxagents.events import EventKind, TokenEvent, ToolCallDelta, Usage

__all__ = [
    "MarbleValue",
    "Schedule",
    "Trace",
    "assert_seq_contiguous",
    "assert_well_formed_run",
    "cold_events",
    "events_from_marbles",
    "events_of_trace",
    "hot_events",
    "record",
    "run_schedule",
    "schedule_messages",
    "text_of_items",
    "text_of_trace",
    "token_run",
]

#: What a marble character may stand for.
MarbleValue: TypeAlias = "str | Usage | ToolCallDelta | TokenEvent"
#: A timed event list: ``(virtual seconds, event)`` pairs in time order.
Schedule: TypeAlias = "list[tuple[float, TokenEvent]]"
#: What :func:`record` returns: ``(virtual seconds, notification)`` pairs.
Trace: TypeAlias = "list[tuple[float, Notification[Any]]]"



def at(time: float, notification: Any) -> Recorded[Any]:
    """A notification recorded at ``time`` (virtual seconds; reactivex types the time as an int, but
    TestScheduler takes any number)."""
    return Recorded(cast(int, time), notification)


def on_error(error: BaseException) -> Notification[Any]:
    """The ``OnError`` notification of ``error`` (reactivex types it for ``Exception`` only; a run's error
    event may carry any exception)."""
    return OnError(cast(Exception, error))

def _stamp(template: MarbleValue, *, agent: str, run_id: str, seq: int, time: float, model: str) -> TokenEvent:
    if isinstance(template, TokenEvent):
        return dataclasses.replace(template, agent=agent, run_id=run_id, seq=seq, time=time, model=model)
    if isinstance(template, str):
        return TokenEvent(EventKind.TOKEN, agent, run_id, seq, text=template, time=time, model=model)
    if isinstance(template, Usage):
        return TokenEvent(EventKind.USAGE, agent, run_id, seq, usage=template, time=time, model=model)
    if isinstance(template, ToolCallDelta):
        return TokenEvent(EventKind.TOOL_CALL, agent, run_id, seq, tool_call=template, time=time, model=model)
    raise TypeError(
        f"values: a marble stands for a str, Usage, ToolCallDelta or TokenEvent, got {type(template).__name__}"
    )


def _frames(marbles: str) -> list[tuple[int, str]]:
    """(frame, symbol) pairs of a diagram; groups put their symbols on the frame of their ``(``."""
    out: list[tuple[int, str]] = []
    frame = 0
    text = marbles.replace(" ", "")
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "(":
            end = text.find(")", i)
            if end < 0:
                raise ValueError(f"marbles: unclosed group starting at position {i} in {marbles!r}")
            out.extend((frame, sym) for sym in text[i + 1 : end] if sym != ",")
            frame += end - i + 1
            i = end + 1
            continue
        if ch == ")":
            raise ValueError(f"marbles: ')' without '(' at position {i} in {marbles!r}")
        if ch != "-":
            out.append((frame, ch))
        frame += 1
        i += 1
    return out


def events_from_marbles(
    marbles: str,
    values: Mapping[str, MarbleValue] | None = None,
    *,
    agent: str = "agent",
    run_id: str | None = None,
    timespan: float = 1.0,
    error: BaseException | None = None,
    finish_reason: str = "stop",
    model: str = "marbles",
) -> list[Recorded[TokenEvent]]:
    """The timed notifications of one run drawn as a marble diagram (see the module docstring).

    The result can be given to ``scheduler.create_cold_observable`` (times relative to the
    subscription) or ``create_hot_observable`` (absolute times); :func:`cold_events` and
    :func:`hot_events` do that for you.

    Args:
        marbles: the diagram, e.g. ``"-a-b-c-|"``.
        values: what each character stands for (a text for a token, or a Usage, ToolCallDelta,
            TokenEvent); characters not in it are tokens with the character as text.
        agent: the agent name stamped on every event.
        run_id: the run id; defaults to ``f"run-{agent}"``.
        timespan: virtual seconds per frame.
        error: the exception for ``#``; defaults to ``RuntimeError("marble error")``.
        finish_reason: the ``finish_reason`` of the finish event.
        model: the model name stamped on every event.

    Returns:
        ``Recorded`` notifications: ``start`` at 0, the events, then ``finish`` + ``on_completed``
        or ``error`` + ``on_error``. A diagram without ``|`` or ``#`` never ends.

    Example:
        >>> msgs = events_from_marbles("-a-b-|", {"a": "Hel", "b": "lo"}, agent="A")
        >>> [(m.time, m.value.kind) for m in msgs]  # doctest: +SKIP
        [(0.0, 'N'), (1.0, 'N'), (3.0, 'N'), (5.0, 'N'), (5.0, 'C')]
    """
    if timespan <= 0:
        raise ValueError(f"timespan must be > 0, got {timespan!r}")
    lookup = dict(values or {})
    rid = run_id if run_id is not None else f"run-{agent}"
    exc = error if error is not None else RuntimeError("marble error")
    out: list[Recorded[TokenEvent]] = []
    seq = 0

    def emit(time: float, template: MarbleValue) -> None:
        nonlocal seq
        event = _stamp(template, agent=agent, run_id=rid, seq=seq, time=time, model=model)
        out.append(at(time, OnNext(event)))
        seq += 1

    emit(0.0, TokenEvent(EventKind.START, agent, rid, 0))
    ended = False
    for frame, sym in _frames(marbles):
        time = round(frame * timespan, 9)
        if ended:
            raise ValueError(f"marbles: {sym!r} after the end of the run in {marbles!r}")
        if sym == "|":
            emit(time, TokenEvent(EventKind.FINISH, agent, rid, 0, finish_reason=finish_reason))
            out.append(at(time, OnCompleted()))
            ended = True
        elif sym == "#":
            emit(time, TokenEvent(EventKind.ERROR, agent, rid, 0, error=exc))
            out.append(at(time, on_error(exc)))
            ended = True
        else:
            emit(time, lookup.get(sym, sym))
    return out


def token_run(
    texts: Iterable[str],
    *,
    spacing: float = 1.0,
    agent: str = "agent",
    run_id: str | None = None,
    error: BaseException | None = None,
    usage: Usage | None = None,
    finish_reason: str = "stop",
    model: str = "marbles",
) -> list[Recorded[TokenEvent]]:
    """A run that streams ``texts`` as tokens ``spacing`` virtual seconds apart.

    ``start`` at 0, token ``i`` at ``(i + 1) * spacing``, then (one ``spacing`` later) either
    ``usage`` (if given) and ``finish`` + ``on_completed``, or, when ``error`` is given,
    ``error`` + ``on_error(error)``.

    Example:
        >>> msgs = token_run(["Hel", "lo"], spacing=0.5, agent="A")
        >>> len(msgs)  # start, 2 tokens, finish, completion
        5
    """
    return schedule_messages(
        run_schedule(
            texts,
            spacing=spacing,
            agent=agent,
            run_id=run_id,
            error=error,
            usage=usage,
            finish_reason=finish_reason,
            model=model,
        )
    )


def run_schedule(
    texts: Iterable[str],
    *,
    spacing: float = 1.0,
    start: float = 0.0,
    agent: str = "agent",
    run_id: str | None = None,
    error: BaseException | None = None,
    usage: Usage | None = None,
    finish_reason: str = "stop",
    model: str = "marbles",
) -> Schedule:
    """The ``(time, event)`` pairs of the run :func:`token_run` describes, its ``start`` at ``start``.

    Times are rounded to 9 decimals, so steps of 0.1 land on 0.3, not 0.30000000000000004.
    """
    if spacing < 0:
        raise ValueError(f"spacing must be >= 0, got {spacing!r}")
    rid = run_id if run_id is not None else f"run-{agent}"
    schedule: Schedule = [(start, TokenEvent(EventKind.START, agent, rid, 0, time=start, model=model))]
    seq = 1
    t = start
    for text in texts:
        t = round(t + spacing, 9)
        schedule.append((t, TokenEvent(EventKind.TOKEN, agent, rid, seq, text=text, time=t, model=model)))
        seq += 1
    t = round(t + spacing, 9)
    if error is not None:
        schedule.append((t, TokenEvent(EventKind.ERROR, agent, rid, seq, error=error, time=t, model=model)))
    else:
        if usage is not None:
            schedule.append((t, TokenEvent(EventKind.USAGE, agent, rid, seq, usage=usage, time=t, model=model)))
            seq += 1
        schedule.append(
            (t, TokenEvent(EventKind.FINISH, agent, rid, seq, finish_reason=finish_reason, time=t, model=model))
        )
    return schedule


def schedule_messages(schedule: Sequence[tuple[float, TokenEvent]], *, complete: bool = True) -> list[Recorded[Any]]:
    """Turn ``(time, event)`` pairs into ``Recorded`` notifications for a test observable.

    Every event becomes an ``on_next``. If the last event is an ``error`` event, ``on_error`` with
    its exception follows at the same time; otherwise ``on_completed`` follows (unless
    ``complete=False``, for a stream that never ends).
    """
    out: list[Recorded[Any]] = [at(t, OnNext(ev)) for t, ev in schedule]
    if schedule:
        t_end, last = schedule[-1]
        if last.kind is EventKind.ERROR:
            exc = last.error if last.error is not None else RuntimeError("error event without an exception")
            out.append(at(t_end, on_error(exc)))
            return out
    if complete:
        out.append(at(schedule[-1][0] if schedule else 0.0, OnCompleted()))
    return out


def cold_events(
    scheduler: TestScheduler,
    marbles: str,
    values: Mapping[str, MarbleValue] | None = None,
    **kwargs: Any,
) -> ColdObservable[TokenEvent]:
    """A cold observable of the run drawn by ``marbles``: every subscription replays it from 0.

    Keyword arguments are those of :func:`events_from_marbles`. The result records its
    subscriptions (``.subscriptions``) like any reactivex ``ColdObservable``.
    """
    return scheduler.create_cold_observable(events_from_marbles(marbles, values, **kwargs))


def hot_events(
    scheduler: TestScheduler,
    marbles: str,
    values: Mapping[str, MarbleValue] | None = None,
    *,
    offset: float = 0.0,
    **kwargs: Any,
) -> HotObservable[TokenEvent]:
    """A hot observable of the run drawn by ``marbles``, frame 0 at absolute time ``offset``.

    Late subscribers miss what happened before they subscribed (that is what hot means).
    """
    msgs: list[Recorded[TokenEvent]] = [
        at(round(m.time + offset, 9), m.value)
        for m in events_from_marbles(marbles, values, **kwargs)
    ]
    return scheduler.create_hot_observable(msgs)


class _Recorder(abc.ObserverBase[Any]):
    def __init__(self, scheduler: TestScheduler, trace: Trace) -> None:
        self._scheduler = scheduler
        self._trace = trace

    def _now(self) -> float:
        return float(self._scheduler.to_seconds(self._scheduler.now))

    def on_next(self, value: Any) -> None:
        self._trace.append((self._now(), OnNext(value)))

    def on_error(self, error: Exception) -> None:
        self._trace.append((self._now(), OnError(error)))

    def on_completed(self) -> None:
        self._trace.append((self._now(), OnCompleted()))


def record(
    scheduler: TestScheduler,
    observable: Observable[Any],
    *,
    subscribed: float = 0.0,
    disposed: float | None = None,
    until: float | None = None,
) -> Trace:
    """Subscribe to ``observable`` at virtual time ``subscribed``, run the scheduler, return the trace.

    Args:
        scheduler: the ``TestScheduler`` the observable's time runs on.
        observable: what to subscribe to.
        subscribed: absolute virtual time of the subscription.
        disposed: absolute virtual time to dispose the subscription, or None to never dispose.
        until: run the scheduler only up to this absolute time (use it for streams that never
            stop scheduling, e.g. periodic timers); None runs until no work is left.

    Returns:
        ``(virtual seconds, notification)`` pairs in the order they arrived, as an ordinary
        subscriber sees them (reactivex drops anything after a terminal notification; the law
        checker, :func:`check_operator_laws`, looks underneath that).

    Example:
        >>> sched = TestScheduler()
        >>> trace = record(sched, cold_events(sched, "-a-|"))
        >>> text_of_trace(trace)
        'a'
    """
    trace: Trace = []
    observer = _Recorder(scheduler, trace)
    subscription: list[abc.DisposableBase] = []

    def subscribe(_: abc.SchedulerBase, __: Any = None) -> abc.DisposableBase:
        subscription.append(observable.subscribe(observer, scheduler=scheduler))
        return Disposable()

    def dispose(_: abc.SchedulerBase, __: Any = None) -> abc.DisposableBase:
        for sub in subscription:
            sub.dispose()
        return Disposable()

    scheduler.schedule_absolute(float(subscribed), subscribe)
    if disposed is not None:
        scheduler.schedule_absolute(float(disposed), dispose)
    if until is None:
        VirtualTimeScheduler.start(scheduler)  # not TestScheduler.start, which subscribes at 200 by itself
    else:
        scheduler.advance_to(float(until))
    return trace


def events_of_trace(trace: Iterable[tuple[float, Notification[Any]]]) -> list[Any]:
    """The ``on_next`` values of a trace, in order."""
    return [n.value for _, n in trace if isinstance(n, OnNext)]


def text_of_items(items: Iterable[Any]) -> str:
    """The answer text carried by stream items: the default ``text_of`` of the law checker.

    * a :class:`TokenEvent` contributes its text if it is a ``token`` event; a ``retry`` event
      discards the text its run emitted so far (consumers restart that run's text);
    * a ``str`` contributes itself;
    * a ``list`` or ``tuple`` contributes the text of its elements.

    Raises:
        TypeError: for any other item (pass your own ``text_of`` for such streams).
    """
    text = PartialText()

    def walk(item: Any) -> None:
        if isinstance(item, TokenEvent):
            text.add(item)
        elif isinstance(item, str):
            text.append(None, item)
        elif isinstance(item, list | tuple):
            for inner in item:
                walk(inner)
        else:
            raise TypeError(
                f"text_of: cannot take the text of a {type(item).__name__} item ({item!r}); "
                "pass text_of=... for this output type"
            )

    for item in items:
        walk(item)
    return text.text


def text_of_trace(trace: Iterable[tuple[float, Notification[Any]]]) -> str:
    """The text of a trace's ``on_next`` values (see :func:`text_of_items`)."""
    return text_of_items(events_of_trace(trace))


def assert_seq_contiguous(events: Iterable[TokenEvent]) -> None:
    """Assert that each run's ``seq`` numbers go 0, 1, 2, ... with no gap and no repeat.

    Events of several runs may be interleaved; each ``run_id`` is checked on its own.
    """
    expected: dict[str, int] = {}
    for i, ev in enumerate(events):
        want = expected.get(ev.run_id, 0)
        assert ev.seq == want, f"event {i} ({ev!r}) of run {ev.run_id!r} has seq {ev.seq}, expected {want}" + (
            " (a repeat)" if ev.seq < want else " (a gap)"
        )
        expected[ev.run_id] = want + 1


def assert_well_formed_run(events: Sequence[TokenEvent]) -> None:
    """Assert that ``events`` are exactly one well-formed run (the grammar of docs/architecture.md).

    ``start (token | reasoning | tool_call | retry)* usage? finish`` or ``start ... error``:
    ``start`` first, one terminal event (``finish`` or ``error``) last and nowhere else, ``usage``
    at most once and only right before ``finish``, seq 0..n-1, event times never going backwards,
    an ``error`` event carrying its exception, one ``run_id`` and one ``agent``. The grammar is
    :class:`rxagents._core.grammar.RunGrammar`'s (with ``cut=False``: a run as produced), the one
    :func:`~rxagents.operators.assert_well_formed` checks streams with.
    """
    assert events, "a run has at least a start and a terminal event, got no events"
    first = events[0]
    grammar = RunGrammar(cut=False)
    for i, ev in enumerate(events):
        assert ev.run_id == first.run_id, f"event {i} ({ev!r}) has run_id {ev.run_id!r}, expected {first.run_id!r}"
        assert ev.agent == first.agent, f"event {i} ({ev!r}) has agent {ev.agent!r}, expected {first.agent!r}"
        violation = grammar.check(ev)
        assert violation is None, f"event {i} ({ev!r}): {violation}"
    last = events[-1]
    assert last.is_terminal, f"a run ends with a finish or error event, got {last!r} last"
