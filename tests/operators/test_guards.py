"""Guards: first-token and gap timeouts, usage meter, budget, run-grammar assertion."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest
from reactivex import Observable
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.recorded import Recorded

from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, TokenEvent, Usage
from rxagents.operators._errors import BudgetExceeded, StreamGrammarError, StreamTimeout
from rxagents.operators._guards import (
    UsageMeter,
    UsageTotals,
    assert_well_formed,
    budget,
    first_token_timeout,
    gap_timeout,
    usage_meter,
)
from rxagents.testing._laws import Law, check_operator_laws

# --- helpers ------------------------------------------------------------------------------------------------

S, T, F = EventKind.START, EventKind.TOKEN, EventKind.FINISH


def ev(kind: EventKind, seq: int, text: str = "", *, run_id: str = "r1", agent: str = "A", **kw: Any) -> TokenEvent:
    return TokenEvent(kind, agent, run_id, seq, text=text, **kw)


def timed(*pairs: tuple[float, TokenEvent], end: float | None = None, error: Exception | None = None) -> list[Any]:
    """Messages at relative virtual times; event.time set to the absolute time (subscribed at 200)."""
    messages: list[Recorded[Any]] = [
        ReactiveTest.on_next(int(t), dataclasses.replace(e, time=200.0 + t)) for t, e in pairs
    ]
    if error is not None:
        assert end is not None
        messages.append(ReactiveTest.on_error(int(end), error))
    elif end is not None:
        messages.append(ReactiveTest.on_completed(int(end)))
    return messages


def run_events(*texts: str, usage: Usage | None = None, step: float = 10) -> list[Any]:
    pairs = [(step, ev(S, 0))]
    for i, text in enumerate(texts, start=1):
        pairs.append((step * (i + 1), ev(T, i, text)))
    n = len(texts) + 1
    if usage is not None:
        pairs.append((step * (n + 1), ev(EventKind.USAGE, n, usage=usage)))
        n += 1
    pairs.append((step * (n + 1), ev(F, n, finish_reason="stop")))
    return timed(*pairs, end=step * (n + 2))


def play(make: Any, messages: list[Any]) -> tuple[Any, Any]:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(messages)
    op = make(scheduler)
    return scheduler.start(lambda: source.pipe(op)), source


def values(results: Any) -> list[Any]:
    return [m.value.value for m in results.messages if isinstance(m.value, OnNext)]


def error_of(results: Any) -> Exception:
    last = results.messages[-1].value
    assert isinstance(last, OnError), results.messages
    return last.exception


def texts(results: Any) -> str:
    return "".join(e.text for e in values(results) if e.kind is T)


# --- first_token_timeout --------------------------------------------------------------------------------------


def test_first_token_timeout_fires_when_no_token_in_time() -> None:
    messages = timed((10, ev(S, 0)), (80, ev(T, 1, "late")), (90, ev(F, 2)), end=100)
    results, source = play(lambda s: first_token_timeout(50, scheduler=s), messages)
    error = error_of(results)
    assert isinstance(error, StreamTimeout) and error.phase == "first_token" and error.seconds == 50
    assert results.messages[-1].time == 250
    got = values(results)
    assert [e.kind for e in got] == [S, EventKind.ERROR]
    assert got[-1].seq == 1 and got[-1].error is error and got[-1].time == 250.0
    assert source.subscriptions[0].unsubscribe == 250


def test_first_token_timeout_passes_a_timely_stream_unchanged() -> None:
    messages = run_events("a", "b", step=20)  # first token at 40 < 50
    results, _ = play(lambda s: first_token_timeout(50, scheduler=s), messages)
    assert values(results) == [m.value.value for m in messages if isinstance(m.value, OnNext)]
    assert isinstance(results.messages[-1].value, OnCompleted)


def test_first_token_timeout_stops_watching_after_the_first_token() -> None:
    messages = timed((10, ev(S, 0)), (20, ev(T, 1, "a")), (500, ev(T, 2, "b")), (510, ev(F, 3)), end=520)
    results, _ = play(lambda s: first_token_timeout(50, scheduler=s), messages)
    assert texts(results) == "ab" and isinstance(results.messages[-1].value, OnCompleted)


def test_first_token_timeout_reasoning_counts_as_the_model_answering() -> None:
    messages = timed((10, ev(S, 0)), (20, ev(EventKind.REASONING, 1, "hmm")), (300, ev(F, 2)), end=310)
    results, _ = play(lambda s: first_token_timeout(50, scheduler=s), messages)
    assert isinstance(results.messages[-1].value, OnCompleted)


def test_first_token_at_exactly_the_deadline_is_too_late() -> None:
    messages = timed((10, ev(S, 0)), (50, ev(T, 1, "a")), end=60)
    results, _ = play(lambda s: first_token_timeout(50, scheduler=s), messages)
    assert isinstance(error_of(results), StreamTimeout)


def test_timeout_before_start_has_no_error_event() -> None:
    results, _ = play(lambda s: first_token_timeout(5, scheduler=s), timed((10, ev(S, 0)), end=20))
    assert values(results) == [] and isinstance(error_of(results), StreamTimeout)


@pytest.mark.asyncio
async def test_first_token_timeout_defaults_to_the_running_loop() -> None:
    failed: asyncio.Future[Exception] = asyncio.get_running_loop().create_future()
    subject: Subject[TokenEvent] = Subject()
    subject.pipe(first_token_timeout(0.001)).subscribe(on_error=failed.set_result)
    subject.on_next(ev(S, 0))
    assert isinstance(await failed, StreamTimeout)


# --- gap_timeout ------------------------------------------------------------------------------------------------


def test_gap_timeout_fires_on_a_stall_with_partial_text() -> None:
    messages = timed((10, ev(S, 0)), (20, ev(T, 1, "Hel")), (30, ev(T, 2, "lo")), (200, ev(F, 3)), end=210)
    results, source = play(lambda s: gap_timeout(50, scheduler=s), messages)
    error = error_of(results)
    assert isinstance(error, StreamTimeout) and error.phase == "gap"
    assert results.messages[-1].time == 280  # last event at 230 + 50
    assert error.partial_text == "Hello"
    assert [e.kind for e in error.events] == [S, T, T, EventKind.ERROR]
    assert values(results)[-1].seq == 3
    assert source.subscriptions[0].unsubscribe == 280


def test_gap_timeout_window_restarts_after_every_event() -> None:
    messages = run_events(*"abcdefgh", step=40)  # 40 apart, window 50
    results, _ = play(lambda s: gap_timeout(50, scheduler=s), messages)
    assert texts(results) == "abcdefgh" and isinstance(results.messages[-1].value, OnCompleted)


def test_gap_timeout_counts_from_subscription() -> None:
    results, _ = play(lambda s: gap_timeout(50, scheduler=s), timed((60, ev(S, 0)), end=70))
    assert isinstance(error_of(results), StreamTimeout) and results.messages[-1].time == 250


def test_gap_timeout_stops_at_the_terminal_event() -> None:
    messages = timed((10, ev(S, 0)), (20, ev(F, 1)), end=400)
    results, _ = play(lambda s: gap_timeout(50, scheduler=s), messages)
    assert isinstance(results.messages[-1].value, OnCompleted)


def test_gap_timeout_upstream_error_passes_through_and_cancels_timer() -> None:
    boom = ValueError("x")
    results, _ = play(lambda s: gap_timeout(50, scheduler=s), timed((10, ev(S, 0)), end=20, error=boom))
    assert error_of(results) is boom and len(results.messages) == 2


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), "5", True])
def test_timeouts_reject_bad_seconds(bad: Any) -> None:
    with pytest.raises(ValueError, match=r"^seconds must be a finite number of seconds > 0, got "):
        gap_timeout(bad)
    with pytest.raises(ValueError, match=r"^seconds must be a finite number of seconds > 0, got "):
        first_token_timeout(bad)


def test_timeouts_reject_a_non_scheduler() -> None:
    with pytest.raises(TypeError, match="scheduler"):
        gap_timeout(1, scheduler="loop")  # type: ignore[arg-type]


# --- usage_meter --------------------------------------------------------------------------------------------


def test_usage_meter_counts_tokens_then_uses_reported_usage() -> None:
    meter = UsageMeter()
    subject: Subject[TokenEvent] = Subject()
    received: list[TokenEvent] = []
    subject.pipe(usage_meter(meter)).subscribe(received.append)
    events = [ev(S, 0), ev(T, 1, "a"), ev(T, 2, "b"), ev(T, 3, "c")]
    for event in events:
        subject.on_next(event)
    assert meter.totals == UsageTotals(completion_tokens=3, total_tokens=3, token_events=3, runs=1)
    subject.on_next(ev(EventKind.USAGE, 4, usage=Usage(7, 4, 11)))
    assert meter.totals == UsageTotals(7, 4, 11, token_events=3, runs=1, reported=1)
    assert received == [*events, ev(EventKind.USAGE, 4, usage=Usage(7, 4, 11))]


def test_usage_meter_prices_prompt_and_completion() -> None:
    meter = UsageMeter(cost_per_token=(0.5, 2.0))
    play(lambda s: usage_meter(meter), run_events("a", "b", usage=Usage(10, 2, 12)))
    assert meter.totals.cost == pytest.approx(10 * 0.5 + 2 * 2.0)


def test_usage_meter_sums_subscriptions_and_resets() -> None:
    meter = UsageMeter()
    op = usage_meter(meter)
    play(lambda s: op, run_events("a", usage=Usage(3, 1, 4)))
    play(lambda s: op, run_events("a", "b", usage=Usage(3, 2, 5)))
    assert (meter.totals.runs, meter.totals.completion_tokens, meter.totals.total_tokens) == (2, 3, 9)
    assert meter.reset().runs == 2 and meter.totals == UsageTotals()


def test_usage_meter_rejects_a_non_meter() -> None:
    with pytest.raises(TypeError, match="UsageMeter"):
        usage_meter(None)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [-1.0, (1.0,), (1.0, -2.0), float("nan"), "free"])
def test_usage_meter_rejects_bad_prices(bad: Any) -> None:
    with pytest.raises(ValueError, match="cost_per_token"):
        UsageMeter(cost_per_token=bad)


# --- budget -----------------------------------------------------------------------------------------------------


def test_budget_cancels_the_run_at_the_token_that_crosses_it() -> None:
    results, source = play(lambda s: budget(max_tokens=2), run_events("a", "b", "c", "d"))
    error = error_of(results)
    assert isinstance(error, BudgetExceeded)
    assert (error.limit, error.allowed, error.used) == ("max_tokens", 2, 3)
    assert error.partial_text == "ab" and texts(results) == "ab"
    assert values(results)[-1].kind is EventKind.ERROR and values(results)[-1].seq == 3
    assert source.subscriptions[0].unsubscribe == 240  # when "c" arrived


def test_budget_within_limit_is_transparent() -> None:
    messages = run_events("a", "b", usage=Usage(5, 2, 7))
    results, _ = play(lambda s: budget(max_tokens=2), messages)
    assert [m.value for m in results.messages] == [m.value for m in messages]  # same items, same kinds
    assert [m.time - 200 for m in results.messages] == [m.time for m in messages]


def test_budget_reported_usage_corrects_the_count() -> None:
    results, _ = play(lambda s: budget(max_tokens=3), run_events("ab", "cd", usage=Usage(1, 4, 5)))
    error = error_of(results)
    assert isinstance(error, BudgetExceeded) and error.used == 4 and error.partial_text == "abcd"
    assert [e.kind for e in values(results)] == [S, T, T, EventKind.ERROR]


def test_budget_max_cost() -> None:
    results, _ = play(lambda s: budget(max_cost=0.25, cost_per_token=0.1), run_events(*"abcd"))
    error = error_of(results)
    assert isinstance(error, BudgetExceeded) and error.limit == "max_cost"
    assert error.partial_text == "ab"


def test_budget_counts_all_runs_of_a_merged_stream() -> None:
    messages = timed(
        (10, ev(S, 0, run_id="x", agent="A")),
        (11, ev(S, 0, run_id="y", agent="B")),
        (20, ev(T, 1, "a", run_id="x", agent="A")),
        (21, ev(T, 1, "b", run_id="y", agent="B")),
        (30, ev(T, 2, "c", run_id="x", agent="A")),
        end=40,
    )
    results, _ = play(lambda s: budget(max_tokens=2), messages)
    error = error_of(results)
    assert isinstance(error, BudgetExceeded) and error.partial_text == "ab"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "max_tokens and/or max_cost"),
        ({"max_tokens": -1}, "max_tokens must be"),
        ({"max_tokens": 1.5}, "max_tokens must be"),
        ({"max_cost": 1.0}, r"cost_per_token must be a price per token, .* when max_cost is given, got None"),
        ({"max_cost": -1.0, "cost_per_token": 1.0}, "max_cost must be"),
        ({"max_tokens": 5, "cost_per_token": -1.0}, "cost_per_token"),
    ],
)
def test_budget_bad_arguments(kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        budget(**kwargs)


# --- assert_well_formed -----------------------------------------------------------------------------------------


def check(*items: TokenEvent, error: Exception | None = None, complete: bool = True) -> tuple[Any, Any]:
    end = 10 * (len(items) + 1)
    pairs = [(10.0 * (i + 1), e) for i, e in enumerate(items)]
    messages = timed(*pairs, end=end if complete or error else None, error=error)
    return play(lambda s: assert_well_formed(), messages)


def violation(results: Any) -> StreamGrammarError:
    error = error_of(results)
    assert isinstance(error, StreamGrammarError), error
    return error


def test_well_formed_run_passes_unchanged() -> None:
    items = [ev(S, 0), ev(T, 1, "a"), ev(EventKind.RETRY, 2, "r"), ev(EventKind.USAGE, 3, usage=Usage()), ev(F, 4)]
    results, _ = check(*items)
    assert [e.kind for e in values(results)] == [e.kind for e in items]
    assert isinstance(results.messages[-1].value, OnCompleted)


def test_interleaved_runs_are_checked_separately() -> None:
    a, b = dict(run_id="x", agent="A"), dict(run_id="y", agent="B")
    results, _ = check(ev(S, 0, **a), ev(S, 0, **b), ev(T, 1, "a", **a), ev(F, 1, **b), ev(F, 2, **a))
    assert isinstance(results.messages[-1].value, OnCompleted)


@pytest.mark.parametrize(
    ("items", "match"),
    [
        ([ev(T, 0, "a")], "missing start"),
        ([ev(S, 1)], "starts at seq 1"),
        ([ev(S, 0), ev(T, 2, "a")], "gap in seq"),
        ([ev(S, 0), ev(T, 1, "a"), ev(T, 1, "a")], "duplicate"),
        ([ev(S, 0), ev(S, 1)], "second start"),
        ([ev(S, 0), ev(F, 1), ev(T, 2, "a")], "after its terminal finish"),
        ([ev(S, 0), ev(F, 1), ev(F, 2)], "after its terminal finish"),
        ([ev(S, 0), ev(EventKind.USAGE, 1, usage=Usage()), ev(T, 2, "a")], "after usage"),
        ([ev(S, 0), ev(EventKind.ERROR, 1)], "carries no exception"),
    ],
)
def test_violations_are_caught(items: list[TokenEvent], match: str) -> None:
    results, source = check(*items)
    error = violation(results)
    assert match in str(error)
    assert error.event is not None and (error.event.kind, error.event.seq) == (items[-1].kind, items[-1].seq)
    assert source.subscriptions[0].unsubscribe == results.messages[-1].time


def test_time_going_backwards_is_caught() -> None:
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        ReactiveTest.on_next(10, ev(S, 0, time=5.0)), ReactiveTest.on_next(20, ev(T, 1, "a", time=4.0))
    )
    results = scheduler.start(lambda: source.pipe(assert_well_formed()))
    assert "backwards" in str(violation(results))


def test_completion_with_an_open_run_is_caught() -> None:
    results, _ = check(ev(S, 0), ev(T, 1, "a"))
    assert "no finish" in str(violation(results))
    assert violation(results).partial_text == "a"


def test_on_error_without_error_event_is_caught_with_the_cause() -> None:
    boom = ValueError("x")
    results, _ = check(ev(S, 0), error=boom)
    error = violation(results)
    assert "no error event" in str(error) and error.__cause__ is boom


def test_on_error_after_error_event_passes_unchanged() -> None:
    boom = ValueError("x")
    results, _ = check(ev(S, 0), ev(EventKind.ERROR, 1, error=boom), error=boom)
    assert error_of(results) is boom


def test_on_error_right_after_one_runs_error_event_passes_with_other_runs_open() -> None:
    boom = ValueError("x")
    a, b = dict(run_id="x", agent="A"), dict(run_id="y", agent="B")
    results, _ = check(ev(S, 0, **a), ev(S, 0, **b), ev(EventKind.ERROR, 1, error=boom, **b), error=boom)
    assert error_of(results) is boom


def test_on_error_before_any_event_passes_unchanged() -> None:
    boom = ValueError("x")
    results, _ = check(error=boom)
    assert error_of(results) is boom


def test_non_event_items_are_caught() -> None:
    scheduler = TestScheduler()
    source: Observable[Any] = scheduler.create_cold_observable(ReactiveTest.on_next(10, "text"))
    results = scheduler.start(lambda: source.pipe(assert_well_formed()))
    assert "not a TokenEvent" in str(violation(results))


# --- laws ---------------------------------------------------------------------------------------------------

_TIMEOUT_FIRES = {
    Law.COMPLETION: "by design a timeout turns a slow input into a StreamTimeout before it completes",
    Law.ERROR_TRANSPARENCY: "by design a timeout may fail the stream before the upstream's own error",
}
_BUDGET_CROSSED = {
    Law.COMPLETION: "by design an input over budget ends with BudgetExceeded instead of completing",
    Law.ERROR_TRANSPARENCY: "by design BudgetExceeded may end the stream before the upstream's own error",
}


def test_first_token_timeout_that_never_fires_obeys_all_laws() -> None:
    report = check_operator_laws(lambda s: first_token_timeout(1e9, scheduler=s))
    assert len(report.checked) == len(Law)


def test_first_token_timeout_that_fires_obeys_the_other_laws() -> None:
    report = check_operator_laws(lambda s: first_token_timeout(0.5, scheduler=s), not_applicable=_TIMEOUT_FIRES)
    assert Law.CLEANUP in report.checked


def test_gap_timeout_that_never_fires_obeys_all_laws() -> None:
    report = check_operator_laws(lambda s: gap_timeout(1e9, scheduler=s))
    assert len(report.checked) == len(Law)


def test_gap_timeout_that_fires_obeys_the_other_laws() -> None:
    report = check_operator_laws(lambda s: gap_timeout(0.5, scheduler=s), not_applicable=_TIMEOUT_FIRES)
    assert Law.CONSERVATION in report.checked


def test_usage_meter_obeys_the_laws() -> None:
    meter = UsageMeter()
    report = check_operator_laws(lambda s: usage_meter(meter))
    assert len(report.checked) == len(Law) and meter.totals.runs > 0


def test_generous_budget_obeys_all_laws() -> None:
    report = check_operator_laws(lambda s: budget(max_tokens=10**9))
    assert len(report.checked) == len(Law)


def test_tight_budget_obeys_the_other_laws() -> None:
    report = check_operator_laws(lambda s: budget(max_tokens=3), not_applicable=_BUDGET_CROSSED)
    assert Law.CANCELLATION in report.checked


def test_assert_well_formed_obeys_the_laws() -> None:
    report = check_operator_laws(lambda s: assert_well_formed())
    assert len(report.checked) == len(Law)
