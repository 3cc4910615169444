"""Tests of rxagents/operators/_buffer.py: buffer_tokens, buffer_chars, buffer_time, buffer_time_or_count."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.notification import Notification
from reactivex.testing import TestScheduler

from rxagents import _runtime
from rxagents.events import EventKind, TokenEvent
from rxagents.operators._buffer import buffer_chars, buffer_time, buffer_time_or_count, buffer_tokens
from rxagents.testing._laws import check_operator_laws
from rxagents.testing._marbles import MarbleValue, cold_events, record

REASONING = TokenEvent(EventKind.REASONING, "", "", 0, text="thinking")
EMPTY = TokenEvent(EventKind.TOKEN, "", "", 0, text="")
HELLO: dict[str, MarbleValue] = {"a": "Hel", "b": "lo", "c": " wor", "d": "ld", "g": REASONING, "e": EMPTY}


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


def run(
    marbles: str,
    make: Any,
    values: dict[str, MarbleValue] | None = None,
    error: BaseException | None = None,
    disposed: float | None = None,
) -> list[tuple[float, Any]]:
    scheduler = TestScheduler()
    source = cold_events(scheduler, marbles, values, error=error)
    return rendered(record(scheduler, source.pipe(make(scheduler)), disposed=disposed))


# --- buffer_tokens -----------------------------------------------------------------------------------


def test_buffer_tokens_emits_chunks_of_count_tokens_and_the_tail_at_completion() -> None:
    assert run("---a-b-c-d-e-|", lambda s: buffer_tokens(2)) == [
        (5, "ab"),
        (9, "cd"),
        (13, "e"),
        (13, "|"),
    ]


def test_buffer_tokens_flushes_the_tail_before_the_error() -> None:
    boom = ConnectionError("dropped")
    scheduler = TestScheduler()
    trace = record(scheduler, cold_events(scheduler, "---a-b-c-#", error=boom).pipe(buffer_tokens(2)))
    assert rendered(trace) == [(5, "ab"), (9, "c"), (9, "#")]
    assert trace[-1][1].exception is boom  # type: ignore[attr-defined]


def test_buffer_tokens_emits_no_empty_chunk() -> None:
    assert run("---a-b-|", lambda s: buffer_tokens(2)) == [(5, "ab"), (7, "|")]


def test_buffer_tokens_of_a_stream_without_tokens_only_completes() -> None:
    assert run("-g-|", lambda s: buffer_tokens(3), HELLO) == [(3, "|")]


def test_buffer_tokens_does_not_count_empty_tokens_or_other_kinds() -> None:
    assert run("-a-e-g-b-|", lambda s: buffer_tokens(2), HELLO) == [(7, "Hello"), (9, "|")]


def test_buffer_tokens_of_one_passes_each_text() -> None:
    assert run("-a-b-|", lambda s: buffer_tokens(1), HELLO) == [(1, "Hel"), (3, "lo"), (5, "|")]


def test_buffer_tokens_dispose_drops_the_tail_and_stops() -> None:
    assert run("-a-b-c-|", lambda s: buffer_tokens(2), HELLO, disposed=4) == [(3, "Hello")]


@pytest.mark.parametrize("bad", [0, -1])
def test_buffer_tokens_rejects_a_count_below_one(bad: int) -> None:
    with pytest.raises(ValueError, match=rf"^count must be an int >= 1, got {bad}$"):
        buffer_tokens(bad)


@pytest.mark.parametrize("bad", [2.0, "2", True])
def test_buffer_tokens_rejects_a_count_that_is_not_an_int(bad: Any) -> None:
    with pytest.raises(TypeError, match=r"count must be an int"):
        buffer_tokens(bad)


# --- buffer_chars ------------------------------------------------------------------------------------


def test_buffer_chars_emits_when_min_chars_are_buffered_without_splitting_tokens() -> None:
    assert run("---a---b---c---d---|", lambda s: buffer_chars(5), HELLO) == [
        (7, "Hello"),
        (15, " world"),
        (19, "|"),
    ]


def test_buffer_chars_flushes_the_tail_before_the_error() -> None:
    assert run("---a---b---c---#", lambda s: buffer_chars(5), HELLO) == [(7, "Hello"), (15, " wor"), (15, "#")]


def test_buffer_chars_flushes_a_short_tail_at_completion() -> None:
    assert run("-a-|", lambda s: buffer_chars(100), HELLO) == [(3, "Hel"), (3, "|")]


def test_buffer_chars_may_exceed_min_chars_by_one_token() -> None:
    assert run("-a-c-|", lambda s: buffer_chars(4), HELLO) == [(3, "Hel wor"), (5, "|")]


@pytest.mark.parametrize("bad", [0, -5])
def test_buffer_chars_rejects_min_chars_below_one(bad: int) -> None:
    with pytest.raises(ValueError, match=rf"^min_chars must be an int >= 1, got {bad}$"):
        buffer_chars(bad)


# --- buffer_time -------------------------------------------------------------------------------------


def test_buffer_time_emits_each_chunk_seconds_after_its_first_token() -> None:
    assert run("---a-b-----c-------d|", lambda s: buffer_time(3, scheduler=s)) == [
        (6, "ab"),
        (14, "c"),
        (20, "d"),
        (20, "|"),
    ]


def test_buffer_time_flushes_the_tail_before_the_error() -> None:
    boom = TimeoutError("stalled")
    scheduler = TestScheduler()
    source = cold_events(scheduler, "-a-b-#", HELLO, error=boom)
    trace = record(scheduler, source.pipe(buffer_time(10, scheduler=scheduler)))
    assert rendered(trace) == [(5, "Hello"), (5, "#")]
    assert trace[-1][1].exception is boom  # type: ignore[attr-defined]


def test_buffer_time_schedules_no_timer_while_nothing_is_buffered() -> None:
    scheduler = TimerScheduler()
    source = cold_events(scheduler, "-g-g-g", HELLO)  # reasoning only, and it never ends
    record(scheduler, source.pipe(buffer_time(1, scheduler=scheduler)), until=10)
    assert scheduler.pending == set()


def test_buffer_time_completion_cancels_the_pending_timer() -> None:
    scheduler = TimerScheduler()
    source = cold_events(scheduler, "-a-|", HELLO)
    trace = record(scheduler, source.pipe(buffer_time(10, scheduler=scheduler)), until=3)
    assert rendered(trace) == [(3, "Hel"), (3, "|")]
    assert scheduler.pending == set()


def test_buffer_time_dispose_cancels_the_pending_timer_and_emits_nothing_more() -> None:
    scheduler = TimerScheduler()
    source = cold_events(scheduler, "-a-b----------|", HELLO)
    trace = record(scheduler, source.pipe(buffer_time(5, scheduler=scheduler)), disposed=4, until=4)
    assert trace == []
    assert scheduler.pending == set()
    scheduler.start()
    assert trace == []


def test_buffer_time_takes_the_default_scheduler_at_subscription(monkeypatch: pytest.MonkeyPatch) -> None:
    scheduler = TestScheduler()
    calls: list[Any] = []

    def fake_default(given: abc.SchedulerBase | None = None) -> abc.SchedulerBase:
        calls.append(given)
        return scheduler

    monkeypatch.setattr(_runtime, "default_scheduler", fake_default)
    operator = buffer_time(2)
    assert calls == []  # building the operator chooses nothing
    trace = record(scheduler, cold_events(scheduler, "-a-----|", HELLO).pipe(operator))
    assert calls == [None]
    assert rendered(trace) == [(3, "Hel"), (7, "|")]


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan")])
def test_buffer_time_rejects_seconds_that_are_not_positive_and_finite(bad: float) -> None:
    with pytest.raises(ValueError, match=r"seconds must be a finite number of seconds > 0"):
        buffer_time(bad)


def test_buffer_time_rejects_a_scheduler_that_is_not_one() -> None:
    with pytest.raises(TypeError, match=r"scheduler must be a reactivex scheduler"):
        buffer_time(1, scheduler="loop")  # type: ignore[arg-type]


# --- buffer_time_or_count ----------------------------------------------------------------------------


def test_buffer_time_or_count_emits_on_count_or_after_seconds() -> None:
    assert run("---a-b-c-d-e-------|", lambda s: buffer_time_or_count(5, 3, scheduler=s)) == [
        (7, "abc"),
        (14, "de"),
        (19, "|"),
    ]


def test_buffer_time_or_count_restarts_the_clock_after_a_full_chunk() -> None:
    # "ab" fills a chunk at 2; the timer of that chunk (due at 11) must not cut the next one short
    assert run("-ab------c----|", lambda s: buffer_time_or_count(10, 2, scheduler=s)) == [
        (2, "ab"),
        (14, "c"),
        (14, "|"),
    ]


def test_buffer_time_or_count_cancels_the_timer_of_a_full_chunk() -> None:
    scheduler = TimerScheduler()
    source = cold_events(scheduler, "-ab")  # never ends
    trace = record(scheduler, source.pipe(buffer_time_or_count(5, 2, scheduler=scheduler)), until=3)
    assert rendered(trace) == [(2, "ab")]
    assert scheduler.pending == set()  # the full chunk's timer was cancelled


def test_buffer_time_or_count_flushes_the_tail_before_the_error() -> None:
    assert run("-a-b-c-#", lambda s: buffer_time_or_count(10, 2, scheduler=s)) == [
        (3, "ab"),
        (7, "c"),
        (7, "#"),
    ]


def test_buffer_time_or_count_validates_both_limits() -> None:
    with pytest.raises(ValueError, match=r"seconds must be a finite number of seconds > 0, got 0"):
        buffer_time_or_count(0, 3)
    with pytest.raises(ValueError, match=r"^count must be an int >= 1, got 0$"):
        buffer_time_or_count(1, 0)


# --- laws ----------------------------------------------------------------------------------------------


def test_buffer_tokens_obeys_the_laws() -> None:
    check_operator_laws(lambda s: buffer_tokens(3))


def test_buffer_chars_obeys_the_laws() -> None:
    check_operator_laws(lambda s: buffer_chars(4))


def test_buffer_time_obeys_the_laws() -> None:
    check_operator_laws(lambda s: buffer_time(0.5, scheduler=s))


def test_buffer_time_or_count_obeys_the_laws() -> None:
    check_operator_laws(lambda s: buffer_time_or_count(0.5, 2, scheduler=s))
