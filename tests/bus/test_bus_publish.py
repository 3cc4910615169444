"""``publish`` ends what it leaves open: a run whose publishing subscription is disposed mid-run gets a terminal
``error`` event of RunCancelled on the broker, so it never stays "running" and attached readers see it end."""

from __future__ import annotations

import asyncio
import functools

import pytest
from reactivex import Subject

from rxagents.bus import Bus, RemoteRunError, aattach, publish
from rxagents.events import EventKind, TokenEvent
from tests.bus.brokers import collect, fresh_run_id, run_events

pytestmark = pytest.mark.asyncio


async def _status(bus: Bus, run_id: str, wanted: str) -> str:
    status = ""
    for _ in range(200):
        status = {run.run_id: run.status for run in await bus.runs()}.get(run_id, "")
        if status == wanted:
            break
        await asyncio.sleep(0.02)
    return status


async def test_disposing_mid_run_publishes_a_cancelled_terminal_event(bus: Bus) -> None:
    events = run_events(fresh_run_id(), 4, ending="none")
    run_id = events[0].run_id
    source: Subject[TokenEvent] = Subject()
    subscription = source.pipe(publish(bus)).subscribe(lambda _: None, lambda _: None)
    for event in events:
        source.on_next(event)
    subscription.dispose()
    subscription.dispose()  # idempotent: one terminal event
    got, error = await asyncio.wait_for(collect(aattach(bus, run_id)), 10)
    assert got[:-1] == events
    last = got[-1]
    assert (last.kind, last.seq, last.agent, last.model) == (EventKind.ERROR, len(events), "A", "m")
    assert isinstance(error, RemoteRunError) and error.type == "RunCancelled"
    assert error.partial_text == "".join(e.text for e in events)
    assert await _status(bus, run_id, "cancelled") == "cancelled"


async def test_disposing_after_the_run_ended_adds_nothing(bus: Bus) -> None:
    finished = run_events(fresh_run_id(), 3)
    unterminated = run_events(fresh_run_id(), 3, ending="none")  # a source may end without a terminal event
    for events in (finished, unterminated):
        done = asyncio.get_running_loop().create_future()
        source: Subject[TokenEvent] = Subject()
        subscription = source.pipe(publish(bus)).subscribe(
            lambda _: None, done.set_exception, functools.partial(done.set_result, None)
        )
        for event in events:
            source.on_next(event)
        source.on_completed()
        await done
        subscription.dispose()
    got, error = await collect(aattach(bus, finished[0].run_id))
    assert (got, error) == (finished, None)
    await asyncio.sleep(0.2)
    info = {run.run_id: run for run in await bus.runs()}[unterminated[0].run_id]
    assert (info.status, info.last_seq) == ("running", unterminated[-1].seq)
