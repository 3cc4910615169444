"""submit -> Worker -> attach in one process, on every adapter: the exact text, one well-formed run under the
submitted id, workflows as one run, strict specs, cancel before and during a run, the end of a run that cannot run."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rxagents import Agent, OfflineModel
from rxagents.bus import Bus, RemoteRunError, Worker, aattach, cancel, submit
from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, TokenEvent
from rxagents.operators import collect_text, to_async_iter
from tests.bus.brokers import collect

pytestmark = pytest.mark.asyncio
TASK = "Explain why streams compose."


async def local_text(task: str = TASK, **offline: Any) -> str:
    """What the offline model answers ``task`` in this process: the text a worker must deliver."""
    agent = Agent(agent_name="writer", llm=OfflineModel(**offline), print_on=False)
    async with to_async_iter(agent.stream(task).pipe(collect_text())) as texts:
        return await anext(texts)


def check_run(events: list[TokenEvent], run_id: str) -> None:
    """One well-formed run: seqs 0.. without gap, one start first, one terminal last, all of ``run_id``."""
    assert [e.seq for e in events] == list(range(len(events)))
    assert {e.run_id for e in events} == {run_id}
    assert events[0].kind is EventKind.START and events[-1].is_terminal
    assert sum(e.kind is EventKind.START for e in events) == 1
    assert sum(e.is_terminal for e in events) == 1


async def test_submit_then_a_worker_runs_it_and_attach_gets_the_exact_text(queue_bus: tuple[Bus, str]) -> None:
    bus, group = queue_bus
    worker = Worker(bus, concurrency=4, group=group, redeliver_after=3.0)
    working = asyncio.create_task(worker.run())
    spec = {"agent": {"agent_name": "writer", "model_name": "offline", "offline": {"length": 40}}}
    run_ids = [await submit(bus, f"{TASK} ({i})", spec) for i in range(3)]
    for i, run_id in enumerate(run_ids):
        events, error = await asyncio.wait_for(collect(aattach(bus, run_id)), 20)
        assert error is None
        check_run(events, run_id)
        assert "".join(e.text for e in events if e.kind is EventKind.TOKEN) == await local_text(
            f"{TASK} ({i})", length=40
        )
        assert events[-1].kind is EventKind.FINISH and events[0].agent == "writer"
    worker.stop()
    await asyncio.wait_for(working, 10)
    assert (worker.stats.taken, worker.stats.finished) == (3, 3)


async def test_a_workflow_task_is_one_run_with_every_agents_text(queue_bus: tuple[Bus, str]) -> None:
    bus, group = queue_bus
    worker = Worker(bus, group=group, redeliver_after=3.0)
    working = asyncio.create_task(worker.run())
    agents = [{"agent_name": name, "model_name": "offline", "offline": {"length": 20}} for name in ("A", "B")]
    run_id = await submit(bus, TASK, {"workflow": {"kind": "concurrent", "name": "pair", "agents": agents}})
    events, error = await asyncio.wait_for(collect(aattach(bus, run_id)), 20)
    assert error is None
    check_run(events, run_id)
    assert events[0].agent == "pair"
    for name in ("A", "B"):
        text = "".join(e.text for e in events if e.kind is EventKind.TOKEN and e.agent == name)
        assert text == await local_text(length=20)
    usage = [e for e in events if e.kind is EventKind.USAGE]
    assert len(usage) == 1 and usage[0].usage is not None and usage[0].usage.completion_tokens > 0
    worker.stop()
    await working


async def test_a_bad_spec_is_refused_at_submit_and_keys_never_travel(queue_bus: tuple[Bus, str]) -> None:
    bus, _ = queue_bus
    with pytest.raises(ConfigurationError, match=r"spec\.agent\.api_key: provider keys never travel") as caught:
        await submit(bus, TASK, {"agent": {"agent_name": "w", "api_key": "sk-secret-value"}})
    assert "sk-secret-value" not in str(caught.value)
    with pytest.raises(ConfigurationError, match=r"spec\.agent\.max_loops must be an int >= 1"):
        await submit(bus, TASK, {"agent": {"max_loops": 0}})
    with pytest.raises(ConfigurationError, match=r"spec\.agent\.modle_name is not a field"):
        await submit(bus, TASK, {"agent": {"modle_name": "offline"}})
    with pytest.raises(ConfigurationError, match=r"spec\.workflow\.kind must be 'concurrent' or 'sequential'"):
        await submit(bus, TASK, {"workflow": {"kind": "race", "agents": [{}]}})
    with pytest.raises(ConfigurationError, match=r"exactly one of"):
        await submit(bus, TASK, {"agent": {}, "workflow": {}})


async def test_an_api_base_the_worker_does_not_allow_fails_the_run(queue_bus: tuple[Bus, str]) -> None:
    bus, group = queue_bus
    worker = Worker(bus, group=group, redeliver_after=3.0, api_bases=["http://127.0.0.1:9/v1"])
    working = asyncio.create_task(worker.run())
    run_id = await submit(bus, TASK, {"agent": {"agent_name": "w", "api_base": "http://evil.example/v1"}})
    events, error = await asyncio.wait_for(collect(aattach(bus, run_id)), 20)
    check_run(events, run_id)
    assert isinstance(error, RemoteRunError) and error.type == "ConfigurationError"
    assert "allow-api-base" in error.message
    worker.stop()
    await working
    assert worker.stats.rejected == 1


async def test_a_run_cancelled_before_a_worker_takes_it_never_runs(queue_bus: tuple[Bus, str]) -> None:
    bus, group = queue_bus
    spec = {"agent": {"agent_name": "w", "offline": {"pace": 0.5}}}
    run_id = await submit(bus, TASK, spec)
    await cancel(bus, run_id, "not needed any more")
    worker = Worker(bus, group=group, redeliver_after=3.0)
    working = asyncio.create_task(worker.run())
    events, error = await asyncio.wait_for(collect(aattach(bus, run_id)), 20)
    assert [e.kind for e in events] == [EventKind.START, EventKind.ERROR]
    assert isinstance(error, RemoteRunError) and error.type == "RunCancelled"
    assert "not needed any more" in error.message
    assert {run.run_id: run.status for run in await bus.runs()}[run_id] == "cancelled"
    worker.stop()
    await working


async def test_cancel_stops_a_running_run_with_a_terminal_cancelled_event(queue_bus: tuple[Bus, str]) -> None:
    bus, group = queue_bus
    worker = Worker(bus, group=group, redeliver_after=3.0)
    working = asyncio.create_task(worker.run())
    run_id = await submit(bus, TASK, {"agent": {"agent_name": "w", "offline": {"pace": 0.05, "length": 400}}})
    seen: list[TokenEvent] = []
    async for event in aattach(bus, run_id):
        seen.append(event)
        if len(seen) == 5:
            break
    await cancel(bus, run_id)
    events, error = await asyncio.wait_for(collect(aattach(bus, run_id)), 20)
    check_run(events, run_id)
    assert isinstance(error, RemoteRunError) and error.type == "RunCancelled"
    assert sum(e.kind is EventKind.TOKEN for e in events) < 300  # stopped well before the end of 400 tokens
    worker.stop()
    await working
    assert worker.stats.cancelled == 1


async def test_a_model_the_worker_has_no_key_for_fails_the_run_naming_the_variable(
    queue_bus: tuple[Bus, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    bus, group = queue_bus
    worker = Worker(bus, group=group, redeliver_after=3.0)
    working = asyncio.create_task(worker.run())
    run_id = await submit(bus, TASK, {"agent": {"agent_name": "w", "model_name": "anthropic/claude-3-5-haiku"}})
    events, error = await asyncio.wait_for(collect(aattach(bus, run_id)), 20)
    worker.stop()
    await working
    check_run(events, run_id)
    assert isinstance(error, RemoteRunError) and error.type == "ConfigurationError"
    assert "ANTHROPIC_API_KEY" in error.message
    assert worker.stats.rejected == 1
