"""The work queue of every adapter: tasks queued once per run id, one taker at a time, redelivered when their
taker stops keeping them, removed when acknowledged; cancel requests stored and announced."""

from __future__ import annotations

import asyncio

import pytest

from rxagents.bus import Bus, apublish
from rxagents.bus._queue import Taken
from tests.bus.brokers import fresh_group, fresh_run_id, make_bus, queue_names, run_events

pytestmark = pytest.mark.asyncio


async def test_a_task_submitted_twice_is_queued_once_and_taken_once(broker: tuple[str, str]) -> None:
    kind, url = broker
    group, run_id = fresh_group(), fresh_run_id()
    async with make_bus(kind, url, **queue_names(kind, group)) as bus:
        assert await bus.queue.put(run_id, b"task-1") is True
        assert await bus.queue.put(run_id, b"task-1 again") is False
        await bus.queue.join(group, "w1", 30.0)
        taken = await bus.queue.take(10, 1.0)
        assert [t.payload for t in taken] == [b"task-1"]
        await bus.queue.ack(taken[0])
        assert await bus.queue.take(10, 0.3) == []


async def test_an_unkept_task_is_redelivered_to_another_worker_a_kept_one_is_not(broker: tuple[str, str]) -> None:
    kind, url = broker
    group = fresh_group()
    names = queue_names(kind, group)
    async with make_bus(kind, url, **names) as first, make_bus(kind, url, **names) as second:
        kept, dropped = fresh_run_id(), fresh_run_id()
        await first.queue.put(kept, b"kept")
        await first.queue.put(dropped, b"dropped")
        await first.queue.join(group, "w1", 1.0)
        await second.queue.join(group, "w2", 1.0)
        taken = {t.payload: t for t in await _take_all_taken(first, 2)}
        assert set(taken) == {b"kept", b"dropped"}
        redelivered: list[Taken] = []
        for _ in range(12):  # 3 s: three times redeliver_after; each worker keeps what it holds
            await first.queue.touch(taken[b"kept"])
            for held in redelivered:
                await second.queue.touch(held)
            redelivered += await second.queue.take(5, 0.25)
        assert [t.payload for t in redelivered] == [b"dropped"]
        assert redelivered[0].deliveries == 2
        await first.queue.ack(taken[b"kept"])
        await second.queue.ack(redelivered[0])


async def _take_all_taken(bus: Bus, count: int) -> list[Taken]:
    got: list[Taken] = []
    for _ in range(20):
        got += await bus.queue.take(count - len(got), 0.2)
        if len(got) == count:
            break
    return got


async def test_cancel_requests_are_stored_and_announced(broker: tuple[str, str]) -> None:
    kind, url = broker
    group = fresh_group()
    async with make_bus(kind, url, **queue_names(kind, group)) as bus:
        run_id, other = fresh_run_id("team.a/run 1"), fresh_run_id()
        assert await bus.queue.cancel_reason(run_id) is None
        requests = bus.queue.cancel_requests()
        assert await anext(requests) is None  # subscribed
        await bus.queue.request_cancel(run_id, "stop it")
        assert await asyncio.wait_for(anext(requests), 5) == (run_id, "stop it")
        await requests.aclose()  # type: ignore[attr-defined]
        assert await bus.queue.cancel_reason(run_id) == "stop it"
        assert await bus.queue.cancel_reason(other) is None


async def test_last_message_is_the_runs_last_stored_message(bus: Bus) -> None:
    events = run_events(fresh_run_id(), 6)
    assert await bus.last_message(events[0].run_id) is None
    await apublish(bus, events[:4])
    last = await bus.last_message(events[0].run_id)
    assert last is not None and last.last == 3 and last.events[-1] == events[3]
