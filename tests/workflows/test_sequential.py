"""SequentialWorkflow: the concat of agent runs with hand-off, in virtual time and over HTTP; run/arun, callbacks."""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any

import pytest
from reactivex.testing import TestScheduler

from rxagents import Agent, ConfigurationError, EventKind, OfflineModel, TokenEvent
from rxagents.models import ModelRequest
from rxagents.models._offline import Step
from rxagents.testing._faults import Reply, words
from rxagents.testing._server import LocalModelServer
from rxagents.workflows import HANDOFF_TEMPLATE, SequentialWorkflow, WorkflowError, WorkflowResult, handoff_prompt

_names = itertools.count()


def _offline(name: str, text: str, **kw: Any) -> Agent:
    return Agent(agent_name=name, llm=OfflineModel(text=text, **kw), print_on=False)


def _served(server: LocalModelServer, name: str, *replies: Reply, **kw: Any) -> tuple[Agent, str]:
    model = f"sequential-{next(_names)}"
    for reply in replies:
        server.enqueue(reply, model=model)
    kw.setdefault("print_on", False)
    return Agent(agent_name=name, model_name=model, api_base=server.url, api_key="sk-test", **kw), model


def _prompts(server: LocalModelServer, model: str) -> list[str]:
    return [r["messages"][-1]["content"] for r in server.requests if r["model"] == model]


def _events(messages: list[Any]) -> list[TokenEvent]:
    return [m.value.value for m in messages if m.value.kind == "N"]


# --- the concat, in virtual time --------------------------------------------------------------------------------
def test_concat_runs_agents_strictly_one_after_another() -> None:
    scheduler = TestScheduler()
    workflow = SequentialWorkflow(agents=[_offline("R", "r1 r2", pace=2.0), _offline("W", "w1 w2 w3", pace=1.0)])
    results = scheduler.start(lambda: workflow.stream("task", scheduler=scheduler))
    trace = [(m.time, m.value.value.agent, m.value.value.kind.value, m.value.value.text) for m in results.messages[:-1]]
    assert trace == [
        (200, "R", "start", ""), (202, "R", "token", "r1"), (204, "R", "token", " r2"),
        (204, "R", "usage", ""), (204, "R", "finish", ""),
        (204, "W", "start", ""), (205, "W", "token", "w1"), (206, "W", "token", " w2"), (207, "W", "token", " w3"),
        (207, "W", "usage", ""), (207, "W", "finish", ""),
    ]
    assert results.messages[-1].value.kind == "C" and results.messages[-1].time == 207


class _Spy(OfflineModel):
    """The offline model, remembering the last user message of each request."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        self.prompts: list[str] = []

    def script(self, request: ModelRequest) -> list[Step]:
        self.prompts.append(request.messages[-1]["content"])
        return super().script(request)


def test_the_next_agent_is_asked_with_the_previous_answer() -> None:
    scheduler = TestScheduler()
    writer = _Spy(pace=1.0, text="done")
    workflow = SequentialWorkflow(agents=[_offline("R", "solar is cheap", pace=1.0),
                                          Agent(agent_name="W", llm=writer, print_on=False)])
    scheduler.start(lambda: workflow.stream("Write a post", scheduler=scheduler))
    assert writer.prompts == ["Write a post\n\nPrevious agent (R) output:\nsolar is cheap"]
    assert writer.prompts == [handoff_prompt("Write a post", [("R", "solar is cheap")])]


def test_max_loops_repeats_the_chain() -> None:
    scheduler = TestScheduler()
    workflow = SequentialWorkflow(agents=[_offline("R", "r", pace=1.0), _offline("W", "w", pace=1.0)], max_loops=2)
    events = _events(scheduler.start(lambda: workflow.stream("task", scheduler=scheduler)).messages)
    starts = [(e.agent, e.time) for e in events if e.kind is EventKind.START]
    assert starts == [("R", 200), ("W", 201), ("R", 202), ("W", 203)]
    assert len({e.run_id for e in events}) == 4


def test_a_failure_stops_the_chain_with_partial_text() -> None:
    scheduler = TestScheduler()
    writer = OfflineModel(pace=1.0, text="never")
    workflow = SequentialWorkflow(name="chain", agents=[_offline("R", "r1 r2 r3", pace=1.0, fail_after=2),
                                                        Agent(agent_name="W", llm=writer, print_on=False)])
    results = scheduler.start(lambda: workflow.stream("task", scheduler=scheduler))
    end = results.messages[-1]
    assert end.value.kind == "E" and end.time == 203
    assert _events(results.messages)[-1].kind is EventKind.ERROR
    error = end.value.exception
    assert isinstance(error, WorkflowError)
    assert error.partial_text == "r1 r2"
    assert error.result.outputs["W"].status == "skipped"
    assert writer.requests == 0
    assert "agent 'R' failed" in str(error) and "did not run" in str(error)


def test_disposing_stops_the_chain_in_progress() -> None:
    scheduler = TestScheduler()
    writer = OfflineModel(pace=1.0, text="w")
    workflow = SequentialWorkflow(agents=[_offline("R", "r1 r2 r3", pace=2.0), Agent(agent_name="W", llm=writer)])
    results = scheduler.start(lambda: workflow.stream("task", scheduler=scheduler), disposed=203)
    assert [e.text for e in _events(results.messages)] == ["", "r1"]
    assert writer.requests == 0


def test_each_subscription_runs_the_chain_anew() -> None:
    scheduler = TestScheduler()
    stream = SequentialWorkflow(agents=[_offline("R", "a b", pace=1.0), _offline("W", "c", pace=1.0)]).stream(
        "task", scheduler=scheduler
    )
    first: list[TokenEvent] = []
    second: list[TokenEvent] = []
    stream.subscribe(first.append)
    stream.subscribe(second.append)
    scheduler.start()
    assert [(e.agent, e.seq, e.text) for e in first] == [(e.agent, e.seq, e.text) for e in second]
    assert {e.run_id for e in first}.isdisjoint({e.run_id for e in second})


# --- run / arun ---------------------------------------------------------------------------------------------------
def test_run_returns_the_last_agents_answer() -> None:
    workflow = SequentialWorkflow(agents=[_offline("R", "research"), _offline("W", "the post")])
    assert workflow.run("task") == "the post"


def test_run_result_keeps_every_step_in_order() -> None:
    workflow = SequentialWorkflow(agents=[_offline("R", "research"), _offline("W", "the post")], max_loops=2)
    result = workflow.run_result("task")
    assert isinstance(result, WorkflowResult)
    assert [(s.agent, s.text) for s in result.steps] == [("R", "research"), ("W", "the post")] * 2
    assert dict(result) == {"R": "research", "W": "the post"} and result.final == "the post"


def test_run_raises_a_workflow_error_with_what_was_done() -> None:
    workflow = SequentialWorkflow(agents=[_offline("R", "research"), _offline("W", "one two three", fail_after=1)])
    with pytest.raises(WorkflowError) as info:
        workflow.run("task")
    assert info.value.partial_text == "one"
    assert info.value.result["R"] == "research"


def test_workflow_callback_gets_each_agent_in_turn() -> None:
    seen: list[str] = []
    threads: set[int] = set()

    def callback(token: str) -> None:
        seen.append(token)
        threads.add(threading.get_ident())

    workflow = SequentialWorkflow(agents=[_offline("R", "r1 r2"), _offline("W", "w1 w2")], streaming_callback=callback)
    assert workflow.run("task") == "w1 w2"
    assert seen == ["r1", " r2", "w1", " w2"]
    assert threads == {threading.get_ident()}


def test_run_callback_overrides_the_workflows_and_the_agents() -> None:
    agent_saw: list[str] = []
    workflow_saw: list[str] = []
    run_saw: list[str] = []
    agent = Agent(agent_name="R", llm=OfflineModel(text="r"), print_on=False, streaming_callback=agent_saw.append)
    workflow = SequentialWorkflow(agents=[agent], streaming_callback=workflow_saw.append)
    workflow.run("task", run_saw.append)
    assert (agent_saw, workflow_saw, run_saw) == ([], [], ["r"])
    SequentialWorkflow(agents=[agent]).run("task")
    assert agent_saw == ["r"]


def test_detailed_mode_dicts_carry_agent_and_content() -> None:
    dicts: list[dict[str, Any]] = []
    workflow = SequentialWorkflow(agents=[_offline("R", "r"), _offline("W", "w")], stream=True)
    workflow.run("task", dicts.append)
    assert [(d["agent"], d["type"]) for d in dicts if d["type"] in ("start", "finish")] == [
        ("R", "start"), ("R", "finish"), ("W", "start"), ("W", "finish")
    ]
    assert "".join(d["content"] for d in dicts if "content" in d) == "rw"
    assert all(("content" in d) == (d["type"] == "token") for d in dicts)


def test_streaming_agents_print_live_one_after_another(capsys: pytest.CaptureFixture[str]) -> None:
    agents = [Agent(agent_name=n, llm=OfflineModel(text=f"{n} text"), streaming_on=True) for n in ("Research", "Write")]
    SequentialWorkflow(agents=agents).run("task")
    out = capsys.readouterr().out
    assert out.index("🤖 Agent: Research | Loops: 1\n━") < out.index("Research text") < out.index(
        "🤖 Agent: Write | Loops: 1\n━") < out.index("Write text")


def test_silent_agents_print_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    SequentialWorkflow(agents=[_offline("R", "r"), _offline("W", "w")]).run("task")
    assert capsys.readouterr().out == ""


def _on_loop_thread(threads: set[int]) -> Any:
    """A plain callback that records its thread and needs a running loop there (``create_task`` does)."""

    def callback(token: str) -> None:
        asyncio.get_running_loop()  # RuntimeError off the loop's thread
        threads.add(threading.get_ident())

    return callback


def test_arun_calls_callbacks_on_the_loop_thread() -> None:
    threads: set[int] = set()

    async def main() -> tuple[str, int]:
        workflow = SequentialWorkflow(agents=[_offline("R", "r"), _offline("W", "w")])
        text = await workflow.arun("task", _on_loop_thread(threads))
        return text, threading.get_ident()

    text, loop_thread = asyncio.run(main())
    assert text == "w"
    assert threads == {loop_thread}  # the loop's own thread, as every asyncio callback


def test_arun_awaits_an_async_callback_in_order_across_the_chain() -> None:
    got: list[str] = []

    async def callback(token: str) -> None:
        await asyncio.sleep(0)
        got.append(token)

    workflow = SequentialWorkflow(agents=[_offline("R", "r1 r2"), _offline("W", "w1 w2 w3")])
    assert asyncio.run(workflow.arun("task", callback)) == "w1 w2 w3"
    assert got == ["r1", " r2", "w1", " w2", " w3"]


# --- over HTTP: the hand-off is in the next request ---------------------------------------------------------------
def test_handoff_text_is_in_the_next_agents_request(model_server: LocalModelServer) -> None:
    researcher, r_model = _served(model_server, "Researcher", Reply(tokens=words("Solar costs fell 90%.")))
    writer, w_model = _served(model_server, "Writer", Reply(tokens=words("A bright post.")))
    assert SequentialWorkflow(agents=[researcher, writer]).run("Renewables") == "A bright post."
    assert _prompts(model_server, r_model) == ["Renewables"]
    assert _prompts(model_server, w_model) == [
        "Renewables\n\n" + HANDOFF_TEMPLATE.format(agent="Researcher", text="Solar costs fell 90%.")
    ]


def test_second_pass_starts_from_the_last_agents_answer(model_server: LocalModelServer) -> None:
    first, f_model = _served(model_server, "First", Reply(tokens=words("f one")), Reply(tokens=words("f two")))
    last, _ = _served(model_server, "Last", Reply(tokens=words("l one")), Reply(tokens=words("l two")))
    assert SequentialWorkflow(agents=[first, last], max_loops=2).run("Go") == "l two"
    assert _prompts(model_server, f_model) == ["Go", handoff_prompt("Go", [("Last", "l one")])]


def test_served_chain_is_sequential_on_the_server(model_server: LocalModelServer) -> None:
    a, a_model = _served(model_server, "A", Reply(tokens=words("a b c")))
    b, b_model = _served(model_server, "B", Reply(tokens=words("d e f")))
    got: list[TokenEvent] = []
    done = threading.Event()
    SequentialWorkflow(agents=[a, b]).stream("task").subscribe(got.append, on_completed=done.set)
    assert done.wait(30)
    agents = [e.agent for e in got]
    assert agents == ["A"] * agents.count("A") + ["B"] * agents.count("B")  # no overlap
    assert got[agents.index("B") - 1].kind is EventKind.FINISH
    asked = [r["model"] for r in model_server.requests if r["model"] in (a_model, b_model)]
    assert asked == [a_model, b_model]


# --- configuration errors -----------------------------------------------------------------------------------------
def test_an_agent_may_appear_twice_in_the_chain() -> None:
    writer = _Spy(text="draft")
    chain = [Agent(agent_name="W", llm=writer, print_on=False), _offline("C", "critique")]
    result = SequentialWorkflow(agents=[*chain, chain[0]]).run_result("Write")
    assert [s.agent for s in result.steps] == ["W", "C", "W"]
    assert list(result) == ["W", "C"]
    assert writer.prompts[-1] == handoff_prompt("Write", [("C", "critique")])


@pytest.mark.parametrize("loops", [0, -1, 1.5, True])
def test_bad_max_loops_is_rejected(loops: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_loops must be an int >= 1"):
        SequentialWorkflow(agents=[_offline("A", "x")], max_loops=loops)


def test_non_callable_callback_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="streaming_callback must be callable"):
        SequentialWorkflow(agents=[_offline("A", "x")]).run("task", streaming_callback="print")  # type: ignore[arg-type]


def test_repr_names_the_agents() -> None:
    workflow = SequentialWorkflow(agents=[_offline("A", "x"), _offline("B", "y")], name="chain")
    assert repr(workflow) == "SequentialWorkflow(name='chain', agents=['A', 'B'], max_loops=1)"
