"""view_operator: the operator panel and dashboard share — a view per subscription, events passed on unchanged."""

from __future__ import annotations

import logging
import re
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.testing import ReactiveTest, TestScheduler

from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, TokenEvent
from rxagents.sinks._live_view import agent_names, check_dashboard, check_panel, token_rate, view_operator
from rxagents.testing._laws import check_operator_laws

RT: Any = ReactiveTest


class FakeView:
    """Records what the operator asks of it; ``on_event`` raises on the ``fail_on``-th event."""

    def __init__(self, calls: list[Any], fail_on: int | None = None) -> None:
        self.calls = calls
        self.fail_on = fail_on
        self.seen = 0

    def start(self, scheduler: abc.SchedulerBase) -> None:
        self.calls.append(("start", scheduler))

    def on_event(self, event: TokenEvent) -> None:
        self.seen += 1
        if self.seen == self.fail_on:
            raise RuntimeError("display bug")
        self.calls.append(("event", event.seq))

    def finish(self, error: BaseException | None = None, *, cancelled: bool = False) -> None:
        self.calls.append(("finish", error, cancelled))


def events(n: int) -> list[TokenEvent]:
    out = [TokenEvent(EventKind.START, "A", "r", 0)]
    out += [TokenEvent(EventKind.TOKEN, "A", "r", i, text=str(i)) for i in range(1, n + 1)]
    return [*out, TokenEvent(EventKind.FINISH, "A", "r", n + 1, finish_reason="stop")]


def source(ts: TestScheduler, evs: list[TokenEvent], error: Exception | None = None) -> Observable[TokenEvent]:
    msgs = [RT.on_next(1.0 + i, e) for i, e in enumerate(evs)]
    end = 1.0 + len(evs)
    msgs.append(RT.on_error(end, error) if error else RT.on_completed(end))
    return ts.create_cold_observable(msgs)


def test_a_view_per_subscription_started_on_the_given_scheduler_and_finished_before_completion() -> None:
    ts = TestScheduler()
    calls: list[Any] = []
    views: list[FakeView] = []

    def make() -> FakeView:
        views.append(FakeView(calls))
        return views[-1]

    seen_at_completion: list[Any] = []
    evs = events(2)
    op = view_operator(make, ts, "fake: failed")
    assert views == []  # nothing is made before a subscription
    results: list[Any] = []
    source(ts, evs).pipe(op).subscribe(
        results.append, on_completed=lambda: seen_at_completion.extend(calls), scheduler=ts
    )
    ts.start()
    assert len(views) == 1
    assert results == evs
    assert calls[0] == ("start", ts)
    assert [c[1] for c in calls if c[0] == "event"] == [e.seq for e in evs]
    assert seen_at_completion[-1] == ("finish", None, False)  # the final frame comes before the completion


def test_an_error_finishes_the_view_with_it_then_passes_it_on() -> None:
    ts = TestScheduler()
    calls: list[Any] = []
    boom = ConnectionError("reset")
    results = ts.start(lambda: source(ts, events(1), boom).pipe(view_operator(lambda: FakeView(calls), ts, "x")))
    assert isinstance(results.messages[-1].value, OnError) and results.messages[-1].value.exception is boom
    assert ("finish", boom, False) in calls


def test_dispose_finishes_the_view_as_cancelled() -> None:
    ts = TestScheduler()
    calls: list[Any] = []
    ts.start(lambda: source(ts, events(5)).pipe(view_operator(lambda: FakeView(calls), ts, "x")), disposed=203.0)
    assert calls[-1] == ("finish", None, True)
    assert [c[1] for c in calls if c[0] == "event"] == [0, 1]


def test_a_view_that_fails_to_record_an_event_is_logged_once_and_the_stream_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ts = TestScheduler()
    calls: list[Any] = []
    view = FakeView(calls, fail_on=2)
    evs = events(3)
    with caplog.at_level(logging.WARNING, logger="rxagents"):
        results = ts.start(lambda: source(ts, evs).pipe(view_operator(lambda: view, ts, "fake: recording failed")))
    assert [m.value.value for m in results.messages if isinstance(m.value, OnNext)] == evs
    assert isinstance(results.messages[-1].value, OnCompleted)
    assert view.seen == 2  # not fed again after it failed
    assert [r.getMessage() for r in caplog.records] == ["fake: recording failed"]
    assert caplog.records[0].exc_info is not None
    finishes = [c for c in calls if c[0] == "finish"]
    assert finishes[0] == ("finish", None, False)  # its final frame is still drawn (then the dispose's no-op call)


def test_a_source_that_fails_to_subscribe_finishes_the_view_as_cancelled() -> None:
    calls: list[Any] = []

    def refuse(observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None) -> Any:
        raise RuntimeError("cannot subscribe")

    bad: Observable[TokenEvent] = reactivex.create(refuse)
    errors: list[Exception] = []
    bad.pipe(view_operator(lambda: FakeView(calls), TestScheduler(), "x")).subscribe(on_error=errors.append)
    assert calls[-1] == ("finish", None, True)
    assert [str(e) for e in errors] == ["cannot subscribe"]


def test_view_operator_obeys_the_operator_laws() -> None:
    check_operator_laws(lambda s: view_operator(lambda: FakeView([]), s, "x"))


def test_view_operator_with_a_failing_view_obeys_the_operator_laws() -> None:
    check_operator_laws(lambda s: view_operator(lambda: FakeView([], fail_on=2), s, "x"))


def test_token_rate_needs_two_distinct_times() -> None:
    assert token_rate(5, None, 1.0) is None
    assert token_rate(5, 1.0, None) is None
    assert token_rate(5, 1.0, 1.0) is None
    assert token_rate(5, 1.0, 3.0) == 2.5


@pytest.mark.parametrize(
    ("check", "message"),
    [
        (lambda: check_panel(3, "blue", 8), "title must be a string, or None (default '🤖 AGENT'), got 3"),
        (lambda: check_dashboard(None, None, 2, 8), "title must be a string, got None"),
        (lambda: check_panel(None, "blue", 0), "refresh_per_second must be a number > 0 and <= 60, got 0"),
        (
            lambda: check_dashboard("t", None, 2, float("nan")),
            "refresh_per_second must be a number > 0 and <= 60, got nan; 8 is smooth; lower it to spend less CPU",
        ),
        (lambda: check_dashboard("t", "no", 2, 8), "compact must be True, False or None (choose by size), got 'no'"),
        (lambda: check_dashboard("t", None, 0, 8), "tail_lines must be an int >= 1, got 0"),
        (lambda: check_panel(None, None, 8), "border_style must be a rich style string such as 'blue', got None"),
        (lambda: agent_names("ab"), "agents must be a sequence of agent names (or Agents), got 'ab'; e.g. agents="),
        (
            lambda: agent_names(["a", ""]),
            "agents must be a sequence of non-empty names (or Agents with agent_name), got ['a', '']; '' is not one",
        ),
    ],
)
def test_the_shared_title_and_rate_checks_name_the_parameter_and_the_value(check: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        check()


def test_panel_accepts_no_title_and_dashboard_returns_the_rate() -> None:
    assert check_panel(None, "blue", 8) == 8.0
    assert check_dashboard("t", True, 1, 2) == 2.0
