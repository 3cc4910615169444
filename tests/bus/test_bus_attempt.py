"""The operators of a worker's attempt, in virtual time: continuing a run after a dead attempt (a retry event, seqs
moved past it), stopping a run from outside (upstream disposed, a terminal RunCancelled event), and a workflow's
merged stream as one run."""

from __future__ import annotations

from reactivex import Observable
from reactivex.testing import ReactiveTest, TestScheduler

from rxagents import Agent, ConcurrentWorkflow, OfflineModel
from rxagents.bus import RunCancelled
from rxagents.bus._attempt import Stop, continue_run, ending
from rxagents.bus._runner import as_one_run
from rxagents.bus._wire import Message
from rxagents.events import EventKind, TokenEvent
from rxagents.workflows import WorkflowError
from tests.bus.brokers import run_events


def _values(scheduler: TestScheduler, source: Observable[TokenEvent]) -> tuple[list[TokenEvent], object]:
    results = scheduler.start(lambda: source, created=0, subscribed=0, disposed=10_000)
    values = [m.value.value for m in results.messages if m.value.kind == "N"]
    ends = [m.value for m in results.messages if m.value.kind != "N"]
    return values, ends[0] if ends else None


def test_continue_run_announces_a_retry_then_moves_the_new_attempt_past_it() -> None:
    stored = run_events("run-1", 3, ending="none")  # start, 3 tokens: seqs 0..3
    last = Message("run-1", 0, 3, 3, tuple(stored))
    attempt = run_events("run-1", 2)  # start, 2 tokens, finish
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(
        *[ReactiveTest.on_next(10 * (i + 1), e) for i, e in enumerate(attempt)], ReactiveTest.on_completed(100)
    )
    values, end = _values(scheduler, source.pipe(continue_run(last, "started over", lambda: 7.0)))
    assert [(e.kind, e.seq) for e in values] == [
        (EventKind.RETRY, 4), (EventKind.TOKEN, 5), (EventKind.TOKEN, 6), (EventKind.FINISH, 7)
    ]  # fmt: skip
    assert values[0].text == "started over" and values[0].agent == "A" and values[0].time == 7.0
    assert getattr(end, "kind", None) == "C"
    assert continue_run(None, "x", lambda: 0.0)(source) is source  # nothing stored: the run as it is


def test_stop_disposes_the_source_and_ends_the_run_with_a_cancelled_event() -> None:
    events = run_events("run-2", 10)
    scheduler = TestScheduler()
    source = scheduler.create_hot_observable(*[ReactiveTest.on_next(300 + 10 * i, e) for i, e in enumerate(events)])
    stop = Stop("run-2")
    scheduler.schedule_absolute(335, lambda *_: stop("cancelled on request"))
    values, end = _values(scheduler, source.pipe(stop.operator))
    assert [e.seq for e in values] == [0, 1, 2, 3, 4]
    assert values[-1].kind is EventKind.ERROR and isinstance(values[-1].error, RunCancelled)
    assert isinstance(getattr(end, "exception", None), RunCancelled)
    assert source.subscriptions[0].unsubscribe == 335  # the model's stream closes at the stop
    stop("again")  # once only
    assert stop.reason == "cancelled on request"


def test_a_stop_before_subscription_ends_at_once_and_ending_starts_a_run_that_never_did() -> None:
    stop = Stop("run-3")
    stop("not needed")
    scheduler = TestScheduler()
    never_started = scheduler.create_cold_observable(ReactiveTest.on_completed(50))
    values, end = _values(scheduler, never_started.pipe(stop.operator))
    assert values == [] and isinstance(getattr(end, "exception", None), RunCancelled)
    start, error = ending("run-3", RunCancelled("run-3", "not needed"), None, "writer", "offline", 1.0)
    assert [(start.kind, start.seq), (error.kind, error.seq)] == [(EventKind.START, 0), (EventKind.ERROR, 1)]
    stored = run_events("run-3", 2, ending="none")
    (after,) = ending("run-3", ValueError("x"), Message("run-3", 0, 2, 2, tuple(stored)), "w", "m", 1.0)
    assert (after.kind, after.seq, after.agent) == (EventKind.ERROR, 3, "A")


def _pair(**options: object) -> ConcurrentWorkflow:
    agents = [Agent(agent_name=name, llm=OfflineModel(pace=1.0, length=5, **options), print_on=False)  # type: ignore[arg-type]
              for name in ("A", "B")]  # fmt: skip
    return ConcurrentWorkflow(name="pair", agents=agents)


def test_a_workflow_is_one_run_with_each_agents_text() -> None:
    scheduler = TestScheduler()
    workflow = _pair()
    values, end = _values(scheduler, workflow.stream("t", scheduler=scheduler).pipe(as_one_run("run-w", "pair")))
    assert getattr(end, "kind", None) == "C"
    assert [e.seq for e in values] == list(range(len(values)))
    assert {e.run_id for e in values} == {"run-w"}
    assert values[0].kind is EventKind.START and values[-1].kind is EventKind.FINISH
    assert [e.kind for e in values[-2:]] == [EventKind.USAGE, EventKind.FINISH]
    assert sum(e.kind is EventKind.START for e in values) == 1
    for name in ("A", "B"):
        assert sum(e.kind is EventKind.TOKEN and e.agent == name for e in values) >= 5


def test_a_failed_workflow_run_ends_with_its_error_event() -> None:
    scheduler = TestScheduler()
    stream = _pair(fail_after=2, fail_times=None).stream("t", scheduler=scheduler)
    values, end = _values(scheduler, stream.pipe(as_one_run("run-f", "pair")))
    assert values[-1].kind is EventKind.ERROR and isinstance(values[-1].error, WorkflowError)
    assert isinstance(getattr(end, "exception", None), WorkflowError)
    assert sum(e.is_terminal for e in values) == 1
