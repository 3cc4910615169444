"""Redis only: the consumers of dead workers leave the group once their tasks went to live workers; a consumer
that still holds tasks stays (removing it would drop them); a worker that stops removes its own consumer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rxagents.bus import LocalRedisServer, RedisBus
from tests.bus.brokers import fresh_group, fresh_run_id, make_bus, queue_names

pytestmark = pytest.mark.asyncio


async def consumers(bus: RedisBus, group: str) -> dict[str, int]:
    """``{consumer: pending tasks}`` of ``group``, as Redis has them."""
    client = bus._redis_client()
    rows: Any = await client.xinfo_consumers(f"{bus.prefix}:tasks", group)
    return {row["name"].decode() if isinstance(row["name"], bytes) else row["name"]: row["pending"] for row in rows}


async def test_a_dead_workers_consumer_is_removed_once_its_tasks_were_claimed(redis_server: LocalRedisServer) -> None:
    group = fresh_group()
    names = queue_names("redis", group)
    live = make_bus("redis", redis_server.url, **names)
    assert isinstance(live, RedisBus)
    async with live:
        dead_holding = await make_bus("redis", redis_server.url, **names)
        dead_idle = await make_bus("redis", redis_server.url, **names)
        await live.queue.put(fresh_run_id(), b"done")
        await dead_idle.queue.join(group, "dead-idle", 0.5)
        [done] = await dead_idle.queue.take(1, 1.0)
        await dead_idle.queue.ack(done)  # it finished its task, then died idle
        await live.queue.put(fresh_run_id(), b"task")
        await dead_holding.queue.join(group, "dead-holding", 0.5)
        assert len(await dead_holding.queue.take(1, 1.0)) == 1  # it died holding this one
        # both "die" (kill -9: nothing runs on their side any more); their connections just go away
        await dead_holding._redis_client().aclose()
        await dead_idle._redis_client().aclose()
        assert set(await consumers(live, group)) == {"dead-holding", "dead-idle"}

        await live.queue.join(group, "live", 0.5)
        await asyncio.sleep(0.7)  # longer than redeliver_after
        taken = await live.queue.take(1, 0.1)  # claims the dead worker's task first, then sweeps
        assert [t.payload for t in taken] == [b"task"]
        found = await consumers(live, group)
        assert "dead-idle" not in found and "dead-holding" not in found and found.get("live") == 1

        await live.queue.ack(taken[0])
        await live.queue.close()  # a worker that stops holding nothing removes itself
        assert await consumers(live, group) == {}
        dead_holding._client = dead_idle._client = None  # type: ignore[attr-defined]


async def test_a_consumer_holding_tasks_is_never_removed(redis_server: LocalRedisServer) -> None:
    group = fresh_group()
    names = queue_names("redis", group)
    async with make_bus("redis", redis_server.url, **names) as slow, make_bus(
        "redis", redis_server.url, **names
    ) as other:
        assert isinstance(slow, RedisBus) and isinstance(other, RedisBus)
        await slow.queue.put(fresh_run_id(), b"task")
        await slow.queue.join(group, "slow", 0.2)
        await other.queue.join(group, "other", 0.2)
        assert len(await slow.queue.take(1, 1.0)) == 1
        await asyncio.sleep(0.4)  # "slow" is idle longer than redeliver_after, but holds a task not claimed yet
        assert await other.queue.forget_dead() == 0
        assert (await consumers(other, group))["slow"] == 1
