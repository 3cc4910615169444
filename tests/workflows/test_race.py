"""race (first to answer wins, losers cancelled) and switch (a new task cancels the run in progress)."""

from __future__ import annotations

import asyncio
import itertools
import re
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
from reactivex import Observable
from reactivex import operators as ops
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler

from rxagents import Agent, ConfigurationError, EventKind, ModelError, OfflineModel, TokenEvent, _runtime
from rxagents.models import Delta, ModelRequest
from rxagents.testing._faults import Reply, StallAfter, words
from rxagents.testing._server import LocalModelServer
from rxagents.workflows import SequentialWorkflow, WorkflowError, race, switch

_names = itertools.count()


def _offline(name: str, text: str, **kw: Any) -> Agent:
    return Agent(agent_name=name, llm=OfflineModel(text=text, **kw), print_on=False)


def _served(server: LocalModelServer, name: str, *replies: Reply) -> Agent:
    model = f"race-{next(_names)}"
    for reply in replies:
        server.enqueue(reply, model=model)
    return Agent(agent_name=name, model_name=model, api_base=server.url, api_key="sk-test", print_on=False)


def _events(messages: list[Any]) -> list[TokenEvent]:
    return [m.value.value for m in messages if m.value.kind == "N"]


class _Gated:
    """A model backend that answers ``text`` only after :meth:`release` (called from any thread)."""

    name = "gated"

    def __init__(self, text: str) -> None:
        self.text = text
        self.event = asyncio.Event()  # bound to the runtime loop when first awaited there

    def release(self) -> None:
        _runtime.runtime_loop().call_soon_threadsafe(self.event.set)

    async def stream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        await self.event.wait()
        for token in words(self.text):
            yield Delta(EventKind.TOKEN, text=token)
        yield Delta(EventKind.FINISH, finish_reason="stop")


# --- race, in virtual time ------------------------------------------------------------------------------------------
def test_first_agent_to_produce_a_token_wins_and_its_run_is_the_output() -> None:
    scheduler = TestScheduler()
    slow, fast = _offline("Slow", "s1 s2", pace=5.0), _offline("Fast", "f1 f2 f3", pace=2.0)
    results = scheduler.start(lambda: race([slow, fast], "task", scheduler=scheduler))
    events = _events(results.messages)
    assert {e.agent for e in events} == {"Fast"}
    assert [e.seq for e in events] == list(range(len(events)))  # the whole run, start included
    assert [(m.time, e.kind.value, e.text) for m, e in zip(results.messages, events, strict=False)][:3] == [
        (202, "start", ""), (202, "token", "f1"), (204, "token", " f2")
    ]
    assert results.messages[-1].value.kind == "C" and results.messages[-1].time == 206


class _Watched:
    """A contender that records the events it produced and when its subscription ended."""

    def __init__(self, agent: Agent, scheduler: TestScheduler) -> None:
        self.agent, self.scheduler = agent, scheduler
        self.seen: list[TokenEvent] = []
        self.ended_at: list[float] = []

    def stream(self, task: str, *, scheduler: Any = None) -> Observable[TokenEvent]:
        def ended() -> None:
            self.ended_at.append(self.scheduler.clock)

        return self.agent.stream(task, scheduler=scheduler).pipe(ops.do_action(self.seen.append),
                                                                 ops.finally_action(ended))


def test_losers_are_disposed_when_the_winner_answers() -> None:
    scheduler = TestScheduler()
    loser = _Watched(_offline("Loser", "l1 l2 l3 l4 l5", pace=1.0, first_token_delay=10.0), scheduler)
    winner = _Watched(_offline("Winner", "w1 w2", pace=1.0), scheduler)
    results = scheduler.start(lambda: race([loser, winner], "task", scheduler=scheduler))
    assert loser.ended_at == [201.0]  # disposed when the winner's first token arrived
    assert [e.kind for e in loser.seen] == [EventKind.START]
    assert {e.agent for e in _events(results.messages)} == {"Winner"}


def test_a_contender_failing_before_answering_drops_out() -> None:
    scheduler = TestScheduler()
    agents = [_offline("Broken", "x", pace=1.0, fail_after=0), _offline("Working", "w1 w2", pace=3.0)]
    results = scheduler.start(lambda: race(agents, "task", scheduler=scheduler))
    assert {e.agent for e in _events(results.messages)} == {"Working"}
    assert results.messages[-1].value.kind == "C"


def test_when_every_contender_fails_the_race_fails_naming_each() -> None:
    scheduler = TestScheduler()
    agents = [_offline("A", "x", pace=1.0, fail_after=0), _offline("B", "y", pace=2.0, fail_after=0)]
    results = scheduler.start(lambda: race(agents, "task", scheduler=scheduler))
    assert len(results.messages) == 1
    error = results.messages[0].value.exception
    assert isinstance(error, WorkflowError)
    assert set(error.errors) == {"A", "B"}
    assert "every contender failed" in str(error)


def test_the_winners_failure_after_winning_passes_through() -> None:
    scheduler = TestScheduler()
    agents = [_offline("A", "a1 a2 a3", pace=1.0, fail_after=2), _offline("B", "b", pace=5.0)]
    results = scheduler.start(lambda: race(agents, "task", scheduler=scheduler))
    assert isinstance(results.messages[-1].value.exception, ModelError)
    assert _events(results.messages)[-1].kind is EventKind.ERROR


def test_disposing_the_race_disposes_every_contender() -> None:
    scheduler = TestScheduler()
    contenders = [_Watched(_offline(n, n, pace=10.0), scheduler) for n in ("A", "B")]
    results = scheduler.start(lambda: race(contenders, "task", scheduler=scheduler), disposed=205)
    assert results.messages == []
    assert [c.ended_at for c in contenders] == [[205.0], [205.0]]


def test_a_workflow_can_race_as_one_contender() -> None:
    scheduler = TestScheduler()
    chain = SequentialWorkflow(agents=[_offline("R", "r", pace=1.0), _offline("W", "w", pace=1.0)])
    results = scheduler.start(lambda: race([chain, _offline("Slow", "s", pace=9.0)], "task", scheduler=scheduler))
    assert [e.agent for e in _events(results.messages) if e.kind is EventKind.START] == ["R", "W"]


# --- race over HTTP: the loser's stream is closed -------------------------------------------------------------------
def test_race_closes_the_losers_http_stream(model_server: LocalModelServer) -> None:
    loser = _served(model_server, "Loser", Reply(tokens=words("never mind"), fault=StallAfter(0)))
    gate = _Gated("the winner speaks")
    winner = Agent(agent_name="Winner", llm=gate, print_on=False)
    baseline = model_server.active_streams
    got: list[TokenEvent] = []
    done = threading.Event()
    subscription = race([loser, winner], "task").subscribe(got.append, on_completed=done.set)
    assert model_server.wait_until(lambda: model_server.active_streams == baseline + 1, 30)  # the loser streams
    gate.release()
    assert done.wait(30)
    assert model_server.wait_until(lambda: model_server.active_streams == baseline, 5)
    assert model_server.closed_streams[-1].outcome == "client_disconnected"
    assert "".join(e.text for e in got if e.kind is EventKind.TOKEN) == "the winner speaks"
    subscription.dispose()


# --- switch ----------------------------------------------------------------------------------------------------------
def test_a_new_task_cancels_the_run_in_progress() -> None:
    scheduler = TestScheduler()
    tasks = scheduler.create_hot_observable(
        ReactiveTest.on_next(210, "first"), ReactiveTest.on_next(215, "second"), ReactiveTest.on_completed(220)
    )
    agent = _offline("Chat", "a b c d", pace=2.0)
    results = scheduler.start(lambda: switch(agent, tasks, scheduler=scheduler))
    events = _events(results.messages)
    trace = [(m.time, e.run_id == events[0].run_id, e.text) for m, e in zip(results.messages, events, strict=False)]
    assert trace[:4] == [(210, True, ""), (212, True, "a"), (214, True, " b"), (215, False, "")]
    assert all(not first for _, first, _ in trace[3:])  # nothing of the first run after the second began
    assert "".join(e.text for e in events[3:]) == "a b c d"
    assert results.messages[-1].value.kind == "C" and results.messages[-1].time == 223


def test_by_default_a_failed_run_ends_the_switch() -> None:
    scheduler = TestScheduler()
    tasks = scheduler.create_hot_observable(ReactiveTest.on_next(210, "one"), ReactiveTest.on_next(230, "two"))
    agent = _offline("Chat", "a b", pace=1.0, fail_after=1)
    results = scheduler.start(lambda: switch(agent, tasks, scheduler=scheduler))
    assert results.messages[-1].value.kind == "E" and results.messages[-1].time == 212


def test_continue_on_error_keeps_the_session_going() -> None:
    scheduler = TestScheduler()
    tasks = scheduler.create_hot_observable(
        ReactiveTest.on_next(210, "one"), ReactiveTest.on_next(230, "two"), ReactiveTest.on_completed(240)
    )
    agent = _offline("Chat", "a b", pace=1.0, fail_after=1, fail_times=1)
    results = scheduler.start(lambda: switch(agent, tasks, continue_on_error=True, scheduler=scheduler))
    kinds = [e.kind for e in _events(results.messages)]
    assert kinds.count(EventKind.ERROR) == 1 and kinds.count(EventKind.FINISH) == 1
    assert results.messages[-1].value.kind == "C"


def test_switch_closes_the_cancelled_runs_http_stream(model_server: LocalModelServer) -> None:
    agent = _served(model_server, "Chat", Reply(tokens=words("a b c d"), fault=StallAfter(2)),
                    Reply(tokens=words("the second answer")))
    baseline = model_server.active_streams
    questions: Subject[str] = Subject()
    got: list[TokenEvent] = []
    two_tokens, done = threading.Event(), threading.Event()

    def on_next(event: TokenEvent) -> None:
        got.append(event)
        if event.text == " b":
            two_tokens.set()

    subscription = switch(agent, questions).subscribe(on_next, on_completed=done.set)
    questions.on_next("first question")
    assert two_tokens.wait(30)
    questions.on_next("second question")
    questions.on_completed()
    assert done.wait(30)
    assert model_server.wait_until(lambda: model_server.active_streams == baseline, 5)
    first = [s for s in model_server.closed_streams if s.outcome == "client_disconnected"]
    assert first and first[-1].events_sent == 2
    runs = list(dict.fromkeys(e.run_id for e in got))
    assert "".join(e.text for e in got if e.run_id == runs[1]) == "the second answer"
    subscription.dispose()


# --- configuration errors --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("agents", "message"),
    [
        ([], "agents must be a non-empty list of agents (the contenders of the race), got []"),
        ("agent", "agents must be a non-empty list of agents (the contenders of the race), got 'agent'"),
        (None, "agents must be a non-empty list of agents (the contenders of the race), got None"),
        ([1], "agents must be a list of Agents (or anything with a stream(task) method), got [1]; 1 has no stream"),
    ],
)
def test_race_needs_contenders_with_stream(agents: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        race(agents, "task")


def test_race_rejects_a_bad_task() -> None:
    with pytest.raises(ConfigurationError, match="task must be a non-empty string"):
        race([_offline("A", "a")], "")


def test_switch_needs_an_observable_of_tasks() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("tasks must be an Observable of str, got ['one', 'two']")):
        switch(_offline("A", "a"), ["one", "two"])  # type: ignore[arg-type]


def test_switch_needs_an_agent() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("agent must be an Agent (or anything with a stream(task)")):
        switch("A", Subject())  # type: ignore[arg-type]
