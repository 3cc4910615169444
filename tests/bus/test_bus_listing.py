"""What ``bus.runs()`` and ``bus.last_message`` report is the run's highest seq (its status, token count, last
event), even when messages were stored out of seq order or published again."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from rxagents.bus import Bus, NatsBus, aattach, apublish, decode_message
from rxagents.bus._base import Outgoing, Transient
from tests.bus.brokers import collect, fresh_run_id, run_events

pytestmark = pytest.mark.asyncio


async def listed(bus: Bus, run_id: str) -> tuple[str, int, int]:
    [info] = [run for run in await bus.runs() if run.run_id == run_id]
    return info.status, info.last_seq, info.tokens


async def test_events_published_again_below_the_head_do_not_become_the_runs_state(bus: Bus) -> None:
    events = run_events(fresh_run_id("again"), 6)  # start, 6 tokens, finish: seqs 0..7
    await apublish(bus, events, coalesce=False)
    assert await apublish(bus, events[2:5]) == 3  # again, coalesced differently (other de-duplication ids)
    last = await bus.last_message(events[0].run_id)
    assert last is not None and last.last == 7 and last.events[-1] == events[-1]
    assert await listed(bus, events[0].run_id) == ("finished", 7, 6)
    got, error = await asyncio.wait_for(collect(aattach(bus, events[0].run_id)), 10)
    assert error is None and got == events


async def test_a_continued_run_counts_the_tokens_stored_before(bus: Bus) -> None:
    events = run_events(fresh_run_id("count"), 6)
    await apublish(bus, events[:4])  # start, 3 tokens
    await apublish(bus, events[4:])  # another publisher: 3 tokens, finish
    assert await listed(bus, events[0].run_id) == ("finished", 7, 6)


@pytest.mark.parametrize("broker", ["nats"], indirect=True)  # Redis refuses a write that would leave a gap
async def test_a_batch_stored_out_of_order_after_a_lost_connection_lists_its_highest_seq(bus: Bus) -> None:
    assert isinstance(bus, NatsBus)
    events = run_events(fresh_run_id("lossy"), 10)
    real = bus._send
    calls = 0

    async def lossy(messages: Sequence[Outgoing]) -> None:
        """The first batch: its first half is lost on a dropped connection, its second half (buffered by the
        client) reaches the broker after the reconnect; the publisher hears no acknowledgement."""
        nonlocal calls
        calls += 1
        if calls == 1 and len(messages) > 1:
            await real(messages[len(messages) // 2 :])
            raise Transient("connection lost")
        await real(messages)

    bus._send = lossy  # type: ignore[method-assign]
    try:
        assert await apublish(bus, events, coalesce=False) == len(events)
    finally:
        del bus._send
    assert calls == 2
    last = await bus.last_message(events[0].run_id)
    assert last is not None and last.last == 11 and last.events[-1].kind == events[-1].kind
    assert await listed(bus, events[0].run_id) == ("finished", 11, 10)
    got, error = await asyncio.wait_for(collect(aattach(bus, events[0].run_id)), 10)
    assert error is None and got == events


async def test_pipelined_batches_are_stored_in_seq_order(bus: Bus) -> None:
    events = run_events(fresh_run_id("window"), 3000)  # several batches of max_in_flight messages, in flight at once
    assert await apublish(bus, events, coalesce=False, max_in_flight=256) == len(events)
    stored: list[int] = []
    reader = bus._read(events[0].run_id, 0, None)
    async for item in reader:
        if item is None:
            continue
        message = decode_message(item[0])
        stored.append(message.first)
        if message.events[-1].is_terminal:
            break
    await reader.aclose()  # type: ignore[attr-defined]
    assert stored == list(range(len(events)))
