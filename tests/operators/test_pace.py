"""Tests of rxagents/operators/_pace.py: pace and throttle_text."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.notification import Notification
from reactivex.testing import ReactiveTest, TestScheduler

from rxagents import _runtime
from rxagents.events import EventKind, TokenEvent
from rxagents.operators._pace import pace, throttle_text
from rxagents.testing._laws import check_operator_laws
from rxagents.testing._marbles import MarbleValue, cold_events, events_of_trace, record

CAT: dict[str, MarbleValue] = {
    "a": "The",
    "b": " cat",
    "c": " sat",
    "d": " on",
    "e": " it",
    "r": TokenEvent(EventKind.RETRY, "", "", 0, text="retrying"),
}


class TimerScheduler(TestScheduler):
    """A TestScheduler that knows how many scheduled actions are still pending (neither run nor cancelled)."""

    def __init__(self) -> None:
        super().__init__()
        self.pending: set[object] = set()

    def schedule_absolute(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        token = object()
        self.pending.add(token)

        def run(scheduler: abc.SchedulerBase, state: Any = None) -> Any:
            self.pending.discard(token)
            return action(scheduler, state)

        inner = super().schedule_absolute(duetime, run, state)

        def cancel() -> None:
            self.pending.discard(token)
            inner.dispose()

        return Disposable(cancel)


def rendered(trace: list[tuple[float, Notification[Any]]]) -> list[tuple[float, Any]]:
    """(time, value) for on_next, (time, "|") for on_completed, (time, "#") for on_error."""
    out: list[tuple[float, Any]] = []
    for t, n in trace:
        out.append((t, n.value if n.kind == "N" else "|" if n.kind == "C" else "#"))
    return out


def cold_items(scheduler: TestScheduler, marbles: str, error: Exception | None = None) -> Observable[str]:
    """A cold observable of plain strings: each letter is an item, ``|`` completes, ``#`` fails."""
    messages = []
    for t, ch in enumerate(marbles):
        if ch == "|":
            messages.append(ReactiveTest.on_completed(t))
        elif ch == "#":
            messages.append(ReactiveTest.on_error(t, error or RuntimeError("marble error")))
        elif ch != "-":
            messages.append(ReactiveTest.on_next(t, ch))
    return scheduler.create_cold_observable(messages)


def paced(marbles: str, seconds: float, error: Exception | None = None, **kw: Any) -> list[tuple[float, Any]]:
    scheduler = TestScheduler()
    source = cold_items(scheduler, marbles, error)
    return rendered(record(scheduler, source.pipe(pace(seconds, scheduler=scheduler)), **kw))


# --- pace ------------------------------------------------------------------------------------------------


def test_pace_spaces_items_and_completes_after_the_queue_drains() -> None:
    assert paced("-abc-------de|", 3) == [
        (1, "a"),
        (4, "b"),
        (7, "c"),
        (11, "d"),
        (14, "e"),
        (14, "|"),
    ]


def test_pace_emits_an_item_that_arrives_late_enough_at_once() -> None:
    assert paced("-a-----b---|", 3) == [(1, "a"), (7, "b"), (11, "|")]


def test_pace_delivers_the_error_after_the_queued_items() -> None:
    boom = ConnectionError("dropped")
    scheduler = TestScheduler()
    trace = record(scheduler, cold_items(scheduler, "-abc#", boom).pipe(pace(3, scheduler=scheduler)))
    assert rendered(trace) == [(1, "a"), (4, "b"), (7, "c"), (7, "#")]
    assert trace[-1][1].exception is boom  # type: ignore[attr-defined]


def test_pace_of_an_empty_stream_completes_at_once() -> None:
    assert paced("--|", 5) == [(2, "|")]


def test_pace_never_makes_the_producer_wait_and_runs_one_timer_at_a_time() -> None:
    scheduler = TimerScheduler()
    subject: reactivex.subject.Subject[int] = reactivex.subject.Subject()
    out: list[tuple[float, int]] = []
    subject.pipe(pace(2, scheduler=scheduler)).subscribe(lambda i: out.append((scheduler.clock, i)))
    for i in range(100):
        subject.on_next(i)  # returns at once: nothing waits on the clock
    assert out == [(0, 0)]
    assert len(scheduler.pending) == 1
    subject.on_completed()
    scheduler.start()
    assert out == [(2 * i, i) for i in range(100)]


def test_pace_dispose_cancels_the_timer_and_drops_the_queue() -> None:
    scheduler = TimerScheduler()
    source = cold_items(scheduler, "-abc")  # never ends
    trace = record(scheduler, source.pipe(pace(10, scheduler=scheduler)), disposed=5, until=5)
    assert rendered(trace) == [(1, "a")]
    assert scheduler.pending == set()
    scheduler.advance_to(100)
    assert rendered(trace) == [(1, "a")]


def test_pace_passes_token_events_through_unchanged() -> None:
    scheduler = TestScheduler()
    plain = events_of_trace(record(scheduler, cold_events(scheduler, "-ab-|", CAT)))
    scheduler = TestScheduler()
    source = cold_events(scheduler, "-ab-|", CAT)
    trace = record(scheduler, source.pipe(pace(1, scheduler=scheduler)))
    assert events_of_trace(trace) == plain
    assert [t for t, _ in trace] == [0, 1, 2, 4, 4]


def test_pace_zero_returns_the_source_itself() -> None:
    source = reactivex.of(1, 2, 3)
    assert pace(0)(source) is source


def test_pace_takes_the_default_scheduler_at_subscription(monkeypatch: pytest.MonkeyPatch) -> None:
    scheduler = TestScheduler()
    calls: list[Any] = []

    def fake_default(given: abc.SchedulerBase | None = None) -> abc.SchedulerBase:
        calls.append(given)
        return scheduler

    monkeypatch.setattr(_runtime, "default_scheduler", fake_default)
    operator = pace(2)
    assert calls == []  # building the operator chooses nothing
    trace = record(scheduler, cold_items(scheduler, "-ab|").pipe(operator))
    assert calls == [None]
    assert rendered(trace) == [(1, "a"), (3, "b"), (3, "|")]


@pytest.mark.parametrize("bad", [-0.1, float("inf"), float("nan")])
def test_pace_rejects_an_interval_that_is_negative_or_not_finite(bad: float) -> None:
    with pytest.raises(ValueError, match=r"min_interval must be a finite number of seconds >= 0"):
        pace(bad)


def test_pace_rejects_an_interval_that_is_not_a_number() -> None:
    expected = r"^min_interval must be a finite number of seconds >= 0, got '0.1'; pass 0.1 without quotes$"
    with pytest.raises(TypeError, match=expected):
        pace("0.1")  # type: ignore[arg-type]


def test_pace_rejects_a_scheduler_that_is_not_one() -> None:
    with pytest.raises(TypeError, match=r"scheduler must be a reactivex scheduler"):
        pace(1, scheduler=object())  # type: ignore[arg-type]


# --- throttle_text -------------------------------------------------------------------------------------


def frames(marbles: str, interval: float, error: Exception | None = None, **kw: Any) -> list[tuple[float, Any]]:
    scheduler = TestScheduler()
    source = cold_events(scheduler, marbles, CAT, error=error)
    return rendered(record(scheduler, source.pipe(throttle_text(interval, scheduler=scheduler)), **kw))


def test_throttle_text_emits_the_latest_text_per_window_and_the_final_text_at_once() -> None:
    assert frames("---abc---------d-e-|", 4) == [
        (3, "The"),
        (7, "The cat sat"),
        (15, "The cat sat on"),
        (19, "The cat sat on it"),
        (19, "|"),
    ]


def test_throttle_text_does_not_repeat_a_frame_already_shown() -> None:
    assert frames("-a--------|", 2) == [(1, "The"), (10, "|")]


def test_throttle_text_emits_the_latest_text_before_the_error() -> None:
    boom = TimeoutError("stalled")
    scheduler = TestScheduler()
    source = cold_events(scheduler, "-ab#", CAT, error=boom)
    trace = record(scheduler, source.pipe(throttle_text(10, scheduler=scheduler)))
    assert rendered(trace) == [(1, "The"), (3, "The cat"), (3, "#")]
    assert trace[-1][1].exception is boom  # type: ignore[attr-defined]


def test_throttle_text_of_a_stream_without_text_only_completes() -> None:
    assert frames("---|", 1) == [(3, "|")]


def test_throttle_text_restarts_the_text_at_a_retry_event() -> None:
    assert frames("-a-r-------b-|", 1) == [(1, "The"), (3, ""), (11, " cat"), (13, "|")]


def test_throttle_text_zero_is_a_frame_per_token() -> None:
    assert frames("-ab-|", 0) == [(1, "The"), (2, "The cat"), (4, "|")]


def test_throttle_text_dispose_cancels_the_window_timer() -> None:
    scheduler = TimerScheduler()
    source = cold_events(scheduler, "-ab", CAT)  # never ends
    stream = source.pipe(throttle_text(10, scheduler=scheduler))
    trace = record(scheduler, stream, disposed=4, until=4)
    assert rendered(trace) == [(1, "The")]
    assert scheduler.pending == set()


def test_throttle_text_completion_cancels_the_window_timer() -> None:
    scheduler = TimerScheduler()
    source = cold_events(scheduler, "-a|", CAT)
    trace = record(scheduler, source.pipe(throttle_text(10, scheduler=scheduler)), until=2)
    assert rendered(trace) == [(1, "The"), (2, "|")]
    assert scheduler.pending == set()


@pytest.mark.parametrize("bad", [-1, float("nan"), float("inf")])
def test_throttle_text_rejects_a_bad_interval(bad: float) -> None:
    with pytest.raises(ValueError, match=r"interval must be a finite number of seconds >= 0"):
        throttle_text(bad)


# --- laws ----------------------------------------------------------------------------------------------


def last_text(items: list[Any]) -> str:
    """The text a running-text stream stands for: its last frame."""
    return str(items[-1]) if items else ""


def test_pace_obeys_the_laws() -> None:
    check_operator_laws(lambda s: pace(0.5, scheduler=s))


def test_pace_zero_obeys_the_laws() -> None:
    check_operator_laws(lambda s: pace(0, scheduler=s))


def test_throttle_text_obeys_the_laws() -> None:
    check_operator_laws(lambda s: throttle_text(0.5, scheduler=s), text_of=last_text)


def test_throttle_text_zero_obeys_the_laws() -> None:
    check_operator_laws(lambda s: throttle_text(0, scheduler=s), text_of=last_text)
