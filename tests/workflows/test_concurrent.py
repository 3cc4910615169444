"""ConcurrentWorkflow: the merge of agent runs, in virtual time and over HTTP; run/arun, callbacks, failures."""

from __future__ import annotations

import asyncio
import importlib.util
import itertools
import re
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reactivex.testing import TestScheduler

from rxagents import Agent, ConfigurationError, EventKind, ModelError, OfflineModel, TokenEvent, _runtime
from rxagents.models import Delta, ModelRequest
from rxagents.testing._faults import Reply, StallAfter, words
from rxagents.testing._server import LocalModelServer
from rxagents.workflows import AgentOutput, ConcurrentWorkflow, WorkflowError, WorkflowResult, handoff_prompt

_names = itertools.count()


def _offline(name: str, text: str, **kw: Any) -> Agent:
    return Agent(agent_name=name, llm=OfflineModel(text=text, **kw), print_on=False)


def _served(server: LocalModelServer, name: str, *replies: Reply, **kw: Any) -> Agent:
    model = f"concurrent-{next(_names)}"
    for reply in replies:
        server.enqueue(reply, model=model)
    kw.setdefault("print_on", False)
    return Agent(agent_name=name, model_name=model, api_base=server.url, api_key="sk-test", **kw)


def _events(messages: list[Any]) -> list[TokenEvent]:
    return [m.value.value for m in messages if m.value.kind == "N"]


def _by_run(events: list[TokenEvent]) -> dict[str, list[TokenEvent]]:
    runs: dict[str, list[TokenEvent]] = defaultdict(list)
    for event in events:
        runs[event.run_id].append(event)
    return runs


# --- the merge, in virtual time -------------------------------------------------------------------------------
def test_merge_interleaves_runs_as_their_tokens_arrive() -> None:
    scheduler = TestScheduler()
    workflow = ConcurrentWorkflow(
        name="w", agents=[_offline("A", "a1 a2 a3", pace=2.0), _offline("B", "b1 b2", pace=3.0)]
    )
    results = scheduler.start(lambda: workflow.stream("task", scheduler=scheduler))
    trace = [(m.time, m.value.value.agent, m.value.value.kind.value, m.value.value.text) for m in results.messages[:-1]]
    assert trace == [
        (200, "A", "start", ""), (200, "B", "start", ""),
        (202, "A", "token", "a1"), (203, "B", "token", "b1"), (204, "A", "token", " a2"),
        (206, "B", "token", " b2"), (206, "A", "token", " a3"),
        (206, "B", "usage", ""), (206, "B", "finish", ""), (206, "A", "usage", ""), (206, "A", "finish", ""),
    ]
    assert results.messages[-1].value.kind == "C"
    assert results.messages[-1].time == 206


@given(st.lists(st.tuples(st.integers(1, 5), st.integers(1, 12)), min_size=1, max_size=6))
def test_merge_keeps_each_runs_order_and_loses_nothing(specs: list[tuple[int, int]]) -> None:
    scheduler = TestScheduler()
    texts = {f"agent-{i}": " ".join(f"t{i}.{j}" for j in range(n)) for i, (_, n) in enumerate(specs)}
    agents = [_offline(f"agent-{i}", texts[f"agent-{i}"], pace=float(p)) for i, (p, _) in enumerate(specs)]
    results = scheduler.start(lambda: ConcurrentWorkflow(agents=agents).stream("task", scheduler=scheduler))
    runs = _by_run(_events(results.messages))
    assert len(runs) == len(agents)
    for run in runs.values():
        assert [e.seq for e in run] == list(range(len(run)))  # in order, no gap, no duplicate
        assert run[-1].kind is EventKind.FINISH
        assert "".join(e.text for e in run if e.kind is EventKind.TOKEN) == texts[run[0].agent]
    assert results.messages[-1].value.kind == "C"


def test_max_concurrency_bounds_the_runs_in_flight() -> None:
    scheduler = TestScheduler()
    agents = [_offline(f"A{i}", "x y z", pace=float(i + 1)) for i in range(4)]
    workflow = ConcurrentWorkflow(agents=agents, max_concurrency=2)
    events = _events(scheduler.start(lambda: workflow.stream("task", scheduler=scheduler)).messages)
    active = peak = 0
    for event in events:
        active += event.kind is EventKind.START
        active -= event.is_terminal
        peak = max(peak, active)
    starts = {e.agent: e.time for e in events if e.kind is EventKind.START}
    finishes = {e.agent: e.time for e in events if e.kind is EventKind.FINISH}
    assert peak == 2
    assert starts["A2"] == finishes["A0"]  # the third agent waits for a slot
    assert len(finishes) == 4


def test_each_subscription_is_a_new_set_of_runs() -> None:
    scheduler = TestScheduler()
    stream = ConcurrentWorkflow(agents=[_offline("A", "a b", pace=1.0), _offline("B", "c", pace=1.0)]).stream(
        "task", scheduler=scheduler
    )
    first: list[TokenEvent] = []
    second: list[TokenEvent] = []
    stream.subscribe(first.append)
    stream.subscribe(second.append)
    scheduler.start()
    assert [(e.agent, e.seq, e.text) for e in first] == [(e.agent, e.seq, e.text) for e in second]
    assert {e.run_id for e in first}.isdisjoint({e.run_id for e in second})


def test_disposing_the_merge_stops_every_run() -> None:
    scheduler = TestScheduler()
    workflow = ConcurrentWorkflow(agents=[_offline("A", "a b c d", pace=2.0), _offline("B", "e f g h", pace=3.0)])
    results = scheduler.start(lambda: workflow.stream("task", scheduler=scheduler), disposed=205)
    assert max(m.time for m in results.messages) <= 204
    assert [e.text for e in _events(results.messages) if e.kind is EventKind.TOKEN] == ["a", "e", " b"]


def test_one_failure_is_reported_after_the_others_finish() -> None:
    scheduler = TestScheduler()
    agents = [_offline("A", "a1 a2 a3 a4", pace=2.0), _offline("B", "b1 b2 b3", pace=1.0, fail_after=2)]
    results = scheduler.start(lambda: ConcurrentWorkflow(name="w", agents=agents).stream("task", scheduler=scheduler))
    events = _events(results.messages)
    assert [e.kind for e in events if e.agent == "B"][-1] is EventKind.ERROR
    assert [e.kind for e in events if e.agent == "A"][-1] is EventKind.FINISH
    end = results.messages[-1]
    assert end.value.kind == "E" and end.time == 208  # after A's last token, not at B's failure (203)
    error = end.value.exception
    assert isinstance(error, WorkflowError)
    assert error.partial_text == "b1 b2"
    assert error.result["A"] == "a1 a2 a3 a4" and error.result.outputs["A"].ok
    assert error.result.outputs["B"].status == "error"
    assert "agent 'B' failed" in str(error)


def test_fail_fast_cancels_the_others_at_the_first_failure() -> None:
    scheduler = TestScheduler()
    agents = [_offline("A", "a1 a2 a3 a4", pace=2.0), _offline("B", "b1 b2 b3", pace=1.0, fail_after=2)]
    workflow = ConcurrentWorkflow(agents=agents, fail_fast=True)
    results = scheduler.start(lambda: workflow.stream("task", scheduler=scheduler))
    end = results.messages[-1]
    assert end.value.kind == "E" and end.time == 203
    assert max(m.time for m in results.messages) == 203  # nothing from A after the failure
    result = end.value.exception.result
    assert result.outputs["A"].status == "cancelled"
    assert result.outputs["A"].partial_text == "a1"
    assert result.outputs["B"].partial_text == "b1 b2"


def test_fail_fast_skips_agents_still_waiting_for_a_slot() -> None:
    scheduler = TestScheduler()
    agents = [_offline("A", "a b", pace=1.0, fail_after=1), _offline("B", "c d", pace=1.0)]
    workflow = ConcurrentWorkflow(agents=agents, fail_fast=True, max_concurrency=1)
    end = scheduler.start(lambda: workflow.stream("task", scheduler=scheduler)).messages[-1]
    assert end.value.exception.result.outputs["B"].status == "skipped"


def test_rounds_run_one_after_another() -> None:
    scheduler = TestScheduler()
    a = OfflineModel(pace=1.0, text="a b")
    agents = [Agent(agent_name="A", llm=a, print_on=False), _offline("B", "c d e", pace=1.0)]
    events = _events(scheduler.start(
        lambda: ConcurrentWorkflow(agents=agents, max_loops=2).stream("task", scheduler=scheduler)
    ).messages)
    runs = list(_by_run(events).values())
    assert [(run[0].agent, run[0].time, run[-1].time) for run in runs] == [
        ("A", 200, 202), ("B", 200, 203), ("A", 203, 205), ("B", 203, 206)  # round 2 waits for all of round 1
    ]
    assert a.requests == 2


# --- run / arun, results and callbacks --------------------------------------------------------------------------
def test_run_returns_a_result_mapping_agent_names_to_answers() -> None:
    workflow = ConcurrentWorkflow(name="analysis", agents=[_offline("A", "alpha beta"), _offline("B", "gamma")])
    result = workflow.run("task")
    assert isinstance(result, WorkflowResult)
    assert dict(result) == {"A": "alpha beta", "B": "gamma"}
    assert result.ok and result.errors == {}
    assert result.outputs["A"].usage is not None and result.outputs["A"].finish_reason == "stop"


def test_printing_the_result_shows_each_agent_with_status_and_text() -> None:
    result = ConcurrentWorkflow(name="analysis", agents=[_offline("A", "alpha beta"), _offline("B", "gamma")]).run("t")
    report = str(result)
    assert report.startswith("Workflow analysis: 2/2 agents done")
    assert report.index("━━ A (done, 2 tokens)") < report.index("alpha beta") < report.index("━━ B (done, 1 tokens)")
    assert repr(result) == "WorkflowResult(name='analysis', agents={'A': 'done', 'B': 'done'})"


def test_result_can_be_rebuilt_from_the_stream() -> None:
    workflow = ConcurrentWorkflow(name="w", agents=[_offline("A", "a b"), _offline("B", "c")])
    scheduler = TestScheduler()
    events = _events(scheduler.start(lambda: workflow.stream("task", scheduler=scheduler)).messages)
    result = WorkflowResult.from_events(workflow.name, workflow.agent_names, events)
    assert dict(result) == dict(workflow.run("task"))


def test_run_raises_a_workflow_error_with_partial_text_and_the_others_answers() -> None:
    agents = [_offline("A", "alpha beta gamma"), _offline("B", "one two three", fail_after=2)]
    with pytest.raises(WorkflowError) as info:
        ConcurrentWorkflow(name="w", agents=agents).run("task")
    error = info.value
    assert error.partial_text == "one two"
    assert error.result["A"] == "alpha beta gamma"
    assert set(error.errors) == {"B"}
    assert "(error: ModelError" in str(error.result)


def test_workflow_callback_gets_every_agents_tokens_on_the_calling_thread() -> None:
    seen: list[str] = []
    threads: set[int] = set()

    def callback(token: str) -> None:
        seen.append(token)
        threads.add(threading.get_ident())

    result = ConcurrentWorkflow(agents=[_offline("A", "a1 a2 a3"), _offline("B", "b1 b2")]).run("task", callback)
    assert [t for t in seen if "a" in t] == ["a1", " a2", " a3"]
    assert [t for t in seen if "b" in t] == ["b1", " b2"]
    assert dict(result) == {"A": "a1 a2 a3", "B": "b1 b2"}
    assert threads == {threading.get_ident()}


def test_detailed_callback_dicts_name_their_agent() -> None:
    dicts: list[dict[str, Any]] = []
    workflow = ConcurrentWorkflow(agents=[_offline("A", "a1"), _offline("B", "b1")], stream=True,
                                  streaming_callback=dicts.append)
    workflow.run("task")
    assert {d["agent"] for d in dicts} == {"A", "B"}
    assert "".join(d["content"] for d in dicts if d["agent"] == "B" and "content" in d) == "b1"
    assert all(("content" in d) == (d["type"] == "token") for d in dicts)
    assert sum(d["type"] == "finish" for d in dicts) == 2


def test_agents_own_callbacks_get_their_own_tokens_unless_the_workflow_has_one() -> None:
    mine: dict[str, list[str]] = {"A": [], "B": []}
    agents = [
        Agent(agent_name=n, llm=OfflineModel(text=f"{n}1 {n}2"), print_on=False, streaming_callback=mine[n].append)
        for n in ("A", "B")
    ]
    ConcurrentWorkflow(agents=agents).run("task")
    assert mine == {"A": ["A1", " A2"], "B": ["B1", " B2"]}
    overriding: list[str] = []
    ConcurrentWorkflow(agents=agents).run("task", streaming_callback=overriding.append)
    assert sorted(overriding) == sorted(["A1", " A2", "B1", " B2"])
    assert mine == {"A": ["A1", " A2"], "B": ["B1", " B2"]}  # not called again


def test_printing_agents_print_whole_blocks_that_never_interleave(capsys: pytest.CaptureFixture[str]) -> None:
    agents = [Agent(agent_name=n, llm=OfflineModel(text=f"{n}1 {n}2 {n}3", pace=0.001), streaming_on=True)
              for n in ("A", "B")]
    ConcurrentWorkflow(agents=agents).run("task")
    blocks = capsys.readouterr().out.split("🤖 Agent: ")[1:]
    assert sorted(block.split(" |")[0] for block in blocks) == ["A", "B"]
    for block in blocks:
        name = block[0]
        assert block.rstrip().endswith(f"{name}1 {name}2 {name}3")  # its whole text, nobody else's


def test_a_raising_callback_neither_stops_nor_duplicates() -> None:
    seqs: dict[str, list[int]] = defaultdict(list)

    def flaky(info: dict[str, Any]) -> None:
        seqs[info["agent"]].append(info["seq"])
        if info["seq"] == 1:
            raise RuntimeError("callback bug")

    workflow = ConcurrentWorkflow(agents=[_offline("A", "a b c"), _offline("B", "d e")], stream=True)
    assert dict(workflow.run("task", flaky)) == {"A": "a b c", "B": "d e"}
    assert seqs == {"A": list(range(6)), "B": list(range(5))}


def test_callback_error_policy_raise_stops_the_workflow() -> None:
    def callback(token: str) -> None:
        raise ValueError("bad token")

    workflow = ConcurrentWorkflow(agents=[_offline("A", "a b c")], on_callback_error="raise")
    with pytest.raises(Exception, match="bad token") as info:
        workflow.run("task", callback)
    assert isinstance(info.value.__cause__, ValueError)


def _on_loop_thread(threads: set[int]) -> Any:
    """A plain callback that records its thread and needs a running loop there (``create_task`` does)."""

    def callback(token: str) -> None:
        asyncio.get_running_loop()  # RuntimeError off the loop's thread
        threads.add(threading.get_ident())

    return callback


def test_arun_calls_callbacks_on_the_loop_thread() -> None:
    threads: set[int] = set()

    async def main() -> tuple[WorkflowResult, int]:
        workflow = ConcurrentWorkflow(agents=[_offline("A", "a b"), _offline("B", "c")])
        result = await workflow.arun("task", _on_loop_thread(threads))
        return result, threading.get_ident()

    result, loop_thread = asyncio.run(main())
    assert dict(result) == {"A": "a b", "B": "c"}
    assert threads == {loop_thread}  # the loop's own thread, as every asyncio callback


def test_astream_yields_the_merged_events_on_the_current_loop() -> None:
    async def main() -> list[TokenEvent]:
        workflow = ConcurrentWorkflow(agents=[_offline("A", "a b"), _offline("B", "c")])
        return [event async for event in workflow.astream("task")]

    events = asyncio.run(main())
    assert {e.agent for e in events} == {"A", "B"}
    assert sum(e.kind is EventKind.FINISH for e in events) == 2


def test_run_works_inside_a_running_event_loop() -> None:
    async def notebook_cell() -> WorkflowResult:
        return ConcurrentWorkflow(agents=[_offline("A", "a b")]).run("task")

    assert asyncio.run(notebook_cell())["A"] == "a b"


@pytest.mark.skipif(importlib.util.find_spec("rxagents.sinks._dashboard") is None, reason="dashboard sink not built")
def test_show_dashboard_draws_lanes_and_silences_agent_printing(capsys: pytest.CaptureFixture[str]) -> None:
    agents = [Agent(agent_name=n, llm=OfflineModel(text=f"{n} text"), streaming_on=True) for n in ("Alpha", "Beta")]
    result = ConcurrentWorkflow(name="dash", agents=agents, show_dashboard=True).run("task")
    out = capsys.readouterr().out
    assert dict(result) == {"Alpha": "Alpha text", "Beta": "Beta text"}
    assert "Alpha" in out and "Beta" in out
    assert "🤖 Agent:" not in out  # the dashboard replaces the agents' own printing


# --- over HTTP, against the local server ------------------------------------------------------------------------
class _Gated:
    """A model backend that waits for :meth:`release`, then answers ``text`` (or fails with ``fail=True``)."""

    name = "gated"

    def __init__(self, text: str = "", *, fail: bool = False) -> None:
        self.text, self.fail = text, fail
        self.event = asyncio.Event()  # bound to the runtime loop when first awaited there

    def release(self) -> None:
        _runtime.runtime_loop().call_soon_threadsafe(self.event.set)

    async def stream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        await self.event.wait()
        if self.fail:
            raise ModelError("gated model: failing on purpose")
        for token in words(self.text):
            yield Delta(EventKind.TOKEN, text=token)
        yield Delta(EventKind.FINISH, finish_reason="stop")


def test_served_agents_merge_without_loss(model_server: LocalModelServer) -> None:
    texts = {f"S{i}": f"agent {i} says " + " ".join(f"w{i}.{j}" for j in range(8)) for i in range(5)}
    agents = [_served(model_server, name, Reply(tokens=words(text))) for name, text in texts.items()]
    got: list[TokenEvent] = []
    done = threading.Event()
    ConcurrentWorkflow(agents=agents).stream("task").subscribe(got.append, on_completed=done.set)
    assert done.wait(30)
    runs = _by_run(got)
    assert len(runs) == 5
    for run in runs.values():
        assert [e.seq for e in run] == list(range(len(run)))
        assert "".join(e.text for e in run if e.kind is EventKind.TOKEN) == texts[run[0].agent]


def test_rounds_hand_off_all_answers_in_the_documented_prompt(model_server: LocalModelServer) -> None:
    a = _served(model_server, "A", Reply(tokens=words("alpha one")), Reply(tokens=words("alpha again")))
    b = _served(model_server, "B", Reply(tokens=words("beta two")), Reply(tokens=words("beta again")))
    result = ConcurrentWorkflow(agents=[a, b], max_loops=2).run("Compare")
    assert dict(result) == {"A": "alpha again", "B": "beta again"}
    model = a.model_name.removeprefix("openai/")  # litellm is sent "openai/<name>", the direct backend "<name>"
    prompts = [r["messages"][-1]["content"] for r in model_server.requests if r["model"] == model]
    assert prompts == ["Compare", handoff_prompt("Compare", [("A", "alpha one"), ("B", "beta two")])]


def test_one_failure_leaves_the_others_streaming_over_http(model_server: LocalModelServer) -> None:
    gate = _Gated(fail=True)
    served = _served(model_server, "Served", Reply(tokens=words("still here after the failure")))
    failing = Agent(agent_name="Failing", llm=gate, print_on=False)
    gate.release()
    with pytest.raises(WorkflowError) as info:
        ConcurrentWorkflow(agents=[failing, served]).run("task")
    assert info.value.result["Served"] == "still here after the failure"
    assert info.value.result.outputs["Failing"].status == "error"


def test_fail_fast_closes_the_other_agents_http_streams(model_server: LocalModelServer) -> None:
    stalled = _served(model_server, "Stalled", Reply(tokens=words("a b c d"), fault=StallAfter(2)))
    gate = _Gated(fail=True)
    workflow = ConcurrentWorkflow(agents=[stalled, Agent(agent_name="Failing", llm=gate, print_on=False)],
                                  fail_fast=True)
    baseline = model_server.active_streams
    ended, streaming = threading.Event(), threading.Event()
    errors: list[Exception] = []

    def on_next(event: TokenEvent) -> None:
        if event.agent == "Stalled" and event.text == " b":
            streaming.set()

    def on_error(error: Exception) -> None:
        errors.append(error)
        ended.set()

    subscription = workflow.stream("task").subscribe(on_next, on_error, ended.set)
    assert streaming.wait(30)  # Stalled has sent "a b" and now holds its stream open
    assert model_server.active_streams == baseline + 1
    gate.release()  # now Failing fails
    assert ended.wait(30)
    assert model_server.wait_until(lambda: model_server.active_streams == baseline, 5)
    assert model_server.closed_streams[-1].outcome == "client_disconnected"
    assert isinstance(errors[0], WorkflowError)
    assert errors[0].result.outputs["Stalled"].status == "cancelled"
    assert errors[0].result.outputs["Stalled"].partial_text == "a b"
    subscription.dispose()


# --- configuration errors ---------------------------------------------------------------------------------------
def test_agent_names_must_be_unique() -> None:
    with pytest.raises(ConfigurationError, match=r"unique.*\['A'\]"):
        ConcurrentWorkflow(agents=[_offline("A", "x"), _offline("A", "y")])


@pytest.mark.parametrize("agents", [[], None, "agent", [object()]])
def test_agents_must_be_a_non_empty_list_of_agents(agents: Any) -> None:
    with pytest.raises(ConfigurationError, match="agents must"):
        ConcurrentWorkflow(agents=agents)


@pytest.mark.parametrize(("option", "value"), [("max_concurrency", 0), ("max_loops", 0), ("max_loops", True)])
def test_counts_must_be_positive_ints(option: str, value: Any) -> None:
    with pytest.raises(ConfigurationError, match=f"{option} must be an int >= 1"):
        ConcurrentWorkflow(agents=[_offline("A", "x")], **{option: value})


def test_unknown_keyword_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="show_dashbord"):
        ConcurrentWorkflow(agents=[_offline("A", "x")], show_dashbord=True)


def test_async_callback_is_awaited_by_arun_and_rejected_by_run_naming_arun() -> None:
    seen: list[str] = []

    async def callback(token: str) -> None:
        await asyncio.sleep(0)
        seen.append(token)

    workflow = ConcurrentWorkflow(agents=[_offline("A", "a b"), _offline("B", "c")], streaming_callback=callback)
    with pytest.raises(ConfigurationError, match=r"async function.*await workflow\.arun"):
        workflow.run("task")
    assert dict(asyncio.run(workflow.arun("task"))) == {"A": "a b", "B": "c"}
    assert sorted(seen) == sorted(["a", " b", "c"])


def test_an_agents_own_async_callback_gets_its_events_in_workflow_arun() -> None:
    seen: dict[str, list[str]] = defaultdict(list)

    def own(name: str) -> Any:
        async def callback(token: str) -> None:
            await asyncio.sleep(0)
            seen[name].append(token)

        return callback

    agents = [Agent(agent_name=n, llm=OfflineModel(text=t), streaming_callback=own(n), print_on=False)
              for n, t in (("A", "a b c"), ("B", "d e"))]
    workflow = ConcurrentWorkflow(agents=agents)
    assert dict(asyncio.run(workflow.arun("task"))) == {"A": "a b c", "B": "d e"}
    assert {n: "".join(ts) for n, ts in seen.items()} == {"A": "a b c", "B": "d e"}
    with pytest.raises(ConfigurationError, match=r"agent 'A' streaming_callback.*arun"):
        workflow.run("task")


def test_bad_task_is_rejected_before_anything_runs() -> None:
    with pytest.raises(ConfigurationError, match="task must be a non-empty string"):
        ConcurrentWorkflow(agents=[_offline("A", "x")]).stream("  ")


def test_agent_output_needs_events() -> None:
    message = "events must be the events of one run, at least one, got []"
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        AgentOutput.from_run([])
