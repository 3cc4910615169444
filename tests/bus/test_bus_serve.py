"""Two SSE servers on one bus serve the same runs: a client that leaves one and resumes on the other with
Last-Event-ID gets exactly the rest of the run (ids are seq + 1): no gap, no duplicate."""

from __future__ import annotations

import asyncio

import aiohttp
import pytest

from rxagents.bus import Bus, BusRuns, Worker
from rxagents.sinks import serve_sse
from tests.bus.brokers import make_bus, queue_names
from tests.bus.test_bus_worker import local_text
from tests.sinks.test_sse import Message, messages

pytestmark = pytest.mark.asyncio


async def _read(url: str, last: int | None = None, stop_after: int | None = None) -> list[Message]:
    headers = {"Last-Event-ID": str(last)} if last is not None else {}
    got: list[Message] = []
    async with aiohttp.ClientSession() as session, session.get(url, headers=headers) as response:
        assert response.status == 200
        async for message in messages(response):
            got.append(message)
            if message.event == "complete" or (stop_after is not None and len(got) == stop_after):
                break
    return got


async def test_a_client_resumes_on_another_server_with_no_gap_and_no_duplicate(
    queue_bus: tuple[Bus, str], broker: tuple[str, str]
) -> None:
    bus, group = queue_bus
    kind, url = broker
    spec = {"agent": {"agent_name": "writer", "offline": {"pace": 0.01, "length": 60}}}
    worker = Worker(bus, group=group, redeliver_after=3.0)
    working = asyncio.create_task(worker.run())
    async with (
        make_bus(kind, url, **queue_names(kind, group)) as other_bus,  # the other server's own connection
        serve_sse(BusRuns(bus, spec)) as first,
        serve_sse(BusRuns(other_bus, spec)) as second,
        aiohttp.ClientSession() as session,
    ):
        async with session.post(f"{first.url}/runs", json={"task": "Explain streams"}) as response:
            assert response.status == 201
            created = await response.json()
        run_id = created["run_id"]
        head = await _read(f"{first.url}{created['events_url']}", stop_after=10)
        tail = await _read(f"{second.url}/runs/{run_id}/events", last=head[-1].id)
        whole = await _read(f"{second.url}/runs/{run_id}/events")
        async with session.get(f"{second.url}/runs/{run_id}") as response:
            status = await response.json()
        async with session.get(f"{second.url}/runs/{run_id}/events", headers={"Last-Event-ID": str(whole[-1].id)}
                               ) as response:  # fmt: skip
            assert response.status == 204  # the complete was seen: nothing more to send
    worker.stop()
    await working
    resumed = head + tail
    assert [m.id for m in resumed] == list(range(1, len(resumed) + 1))
    assert [(m.id, m.event, m.data) for m in resumed] == [(m.id, m.event, m.data) for m in whole]
    assert [m.data["seq"] + 1 for m in whole[:-1]] == [m.id for m in whole[:-1]]
    assert whole[-1].event == "complete" and whole[-1].data["status"] == "completed"
    text = "".join(m.data.get("content", "") for m in whole if m.event == "token")
    assert text == await local_text("Explain streams", pace=0.01, length=60)
    assert status["status"] == "completed" and status["events_url"] == f"/runs/{run_id}/events"
