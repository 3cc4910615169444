"""One conformance suite, run against every adapter (the ``bus`` fixture is parametrized by broker)."""

from __future__ import annotations

import asyncio

import pytest
import reactivex
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rxagents.bus import (
    Bus,
    BusGapError,
    RemoteRunError,
    RunNotFound,
    aattach,
    apublish,
    attach,
    publish,
)
from rxagents.events import EventKind, TokenEvent
from rxagents.operators import collect_text, to_async_iter
from tests.bus.brokers import collect, fresh_run_id, make_bus, run_events
from tests.strategies import token_runs

pytestmark = pytest.mark.asyncio


async def test_replay_from_zero_equals_what_was_published(bus: Bus) -> None:
    events = run_events(fresh_run_id(), 50)
    assert await apublish(bus, events) == len(events)
    got, error = await collect(aattach(bus, events[0].run_id))
    assert error is None
    assert got == events


@pytest.mark.parametrize("coalesce", [True, False])
async def test_replay_from_any_seq_is_the_tail_of_the_run(bus: Bus, coalesce: bool) -> None:
    events = run_events(fresh_run_id(), 30)
    await apublish(bus, events, coalesce=coalesce, max_batch=7)
    for from_seq in (0, 1, 6, 7, 8, 20, len(events) - 1):
        got, error = await collect(aattach(bus, events[0].run_id, from_seq))
        assert (got, error) == (events[from_seq:], None), from_seq


async def test_attach_before_publish_sees_the_live_stream_and_two_attaches_agree(bus: Bus) -> None:
    events = run_events(fresh_run_id(), 40)
    run_id = events[0].run_id
    first = asyncio.create_task(collect(aattach(bus, run_id)))
    second = asyncio.create_task(collect(aattach(bus, run_id)))
    await asyncio.sleep(0.2)  # both are waiting for a run that has not started
    for event in events:  # one at a time, as a model streams
        await apublish(bus, [event])
    assert await first == (events, None)
    assert await second == (events, None)


async def test_a_hundred_and_fifty_readers_of_one_bus_wait_at_once(bus: Bus) -> None:
    """Each blocked reader holds a connection on Redis: more than redis-py's default pool (100) must work."""
    events = run_events(fresh_run_id(), 3)
    await apublish(bus, events[:2])  # the run is live: every reader waits for the rest
    readers = [asyncio.create_task(collect(aattach(bus, events[0].run_id))) for _ in range(150)]
    await asyncio.sleep(1.0)  # every reader is waiting
    await apublish(bus, events[2:])
    assert await asyncio.wait_for(asyncio.gather(*readers), 30) == [(events, None)] * 150


async def test_republished_and_overlapping_events_are_delivered_once(bus: Bus) -> None:
    events = run_events(fresh_run_id(), 40)
    await apublish(bus, events[:25], max_batch=4)
    await apublish(bus, events[:25], coalesce=False)  # a publisher retrying everything
    await apublish(bus, events[10:30], max_batch=6)  # overlapping, with other message boundaries
    await apublish(bus, events[28:], max_batch=3)
    got, error = await collect(aattach(bus, events[0].run_id))
    assert error is None
    assert [e.seq for e in got] == list(range(len(events)))
    assert got == events


async def test_a_late_attach_after_finish_replays_the_whole_run(bus: Bus) -> None:
    events = run_events(fresh_run_id(), 10)
    await apublish(bus, events)
    await asyncio.sleep(0.1)
    text = await attach(bus, events[0].run_id).pipe(collect_text())
    assert text == "".join(e.text for e in events)


async def test_an_error_event_is_emitted_then_raised_as_remote_run_error(bus: Bus) -> None:
    events = run_events(fresh_run_id(), 3, ending="error")
    await apublish(bus, events)
    got, error = await collect(aattach(bus, events[0].run_id))
    assert got == events
    assert isinstance(got[-1].error, RemoteRunError)
    assert isinstance(error, RemoteRunError)
    assert (error.type, error.message, error.partial_text) == ("ValueError", "boom", "t0 t1 t2 ")


async def test_attach_past_the_end_of_a_finished_run_completes_empty(bus: Bus) -> None:
    events = run_events(fresh_run_id(), 3)
    await apublish(bus, events)
    assert await collect(aattach(bus, events[0].run_id, len(events))) == ([], None)
    assert await collect(aattach(bus, events[0].run_id, len(events) + 10)) == ([], None)


async def test_attach_to_an_unknown_run_fails_after_start_timeout(bus: Bus) -> None:
    got, error = await collect(aattach(bus, fresh_run_id("nobody"), start_timeout=0.6))
    assert got == []
    assert isinstance(error, RunNotFound)
    assert "start_timeout=0.6" in str(error)


async def test_attach_waits_for_a_run_that_starts_within_start_timeout(bus: Bus) -> None:
    events = run_events(fresh_run_id(), 3)
    waiting = asyncio.create_task(collect(aattach(bus, events[0].run_id, start_timeout=10)))
    await asyncio.sleep(0.5)
    await apublish(bus, events)
    assert await waiting == (events, None)


async def test_run_ids_of_any_characters_get_their_own_log(bus: Bus) -> None:
    odd = [f"team.a/{fresh_run_id()} ünïcode*>", f"team.a/{fresh_run_id()}"]
    runs = [run_events(run_id, 3) for run_id in odd]
    await apublish(bus, [event for pair in zip(*runs, strict=True) for event in pair])  # interleaved
    for events in runs:
        assert await collect(aattach(bus, events[0].run_id)) == (events, None)


async def test_runs_lists_live_finished_and_failed_runs(bus: Bus) -> None:
    live, done, failed = (fresh_run_id(label) for label in ("live", "done", "failed"))
    await apublish(bus, run_events(live, 4, ending="none"))
    await apublish(bus, run_events(done, 6))
    await apublish(bus, run_events(failed, 2, ending="error"))
    runs = {run.run_id: run for run in await bus.runs()}
    assert (runs[live].status, runs[live].tokens, runs[live].last_seq) == ("running", 4, 4)
    assert (runs[done].status, runs[done].tokens, runs[done].last_seq) == ("finished", 6, 7)
    assert (runs[failed].status, runs[failed].tokens, runs[failed].last_seq) == ("failed", 2, 3)
    assert runs[done].agent == "A" and runs[done].model == "m"


async def test_the_publish_operator_passes_events_through_and_completes_once_stored(bus: Bus) -> None:
    events = run_events(fresh_run_id(), 20)
    passed: list[TokenEvent] = []
    async with to_async_iter(reactivex.from_iterable(events).pipe(publish(bus))) as stream:
        async for event in stream:
            passed.append(event)
    assert passed == events
    assert await collect(aattach(bus, events[0].run_id)) == (events, None)


async def test_an_agent_run_published_and_attached_elsewhere_gives_the_same_text(bus: Bus) -> None:
    from rxagents import Agent, OfflineModel

    agent = Agent(agent_name="writer", llm=OfflineModel(text="Streams cross processes."), print_on=False)
    published: list[TokenEvent] = []
    async with to_async_iter(agent.stream("write").pipe(publish(bus))) as stream:
        async for event in stream:
            published.append(event)
    run_id = published[0].run_id
    got, error = await collect(aattach(bus, run_id))
    assert error is None and got == published
    assert await attach(bus, run_id).pipe(collect_text()) == "Streams cross processes."


async def test_disposing_an_attachment_stops_it(bus: Bus) -> None:
    events = run_events(fresh_run_id(), 5, ending="none")
    await apublish(bus, events)
    got: list[TokenEvent] = []
    subscription = attach(bus, events[0].run_id).subscribe(got.append)
    for _ in range(100):
        if len(got) == len(events):
            break
        await asyncio.sleep(0.02)
    subscription.dispose()
    await apublish(bus, run_events(events[0].run_id, 8)[len(events) :])
    await asyncio.sleep(0.3)
    assert got == events


# one connected bus serves every example: each example publishes a run of its own
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(run=token_runs(ending="any", max_tokens=20), data=st.data())
async def test_attach_yields_exactly_the_events_from_from_seq(
    bus: Bus, run: list[TokenEvent], data: st.DataObject
) -> None:
    run_id = fresh_run_id("prop")
    events = [TokenEvent(**{**_fields(e), "run_id": run_id}) for e in run]
    from_seq = data.draw(st.integers(0, len(events)), label="from_seq")
    coalesce = data.draw(st.booleans(), label="coalesce")
    await apublish(bus, events, coalesce=coalesce, max_batch=data.draw(st.integers(1, 8), label="max_batch"))
    got, error = await collect(aattach(bus, run_id, from_seq))
    assert got == events[from_seq:]
    assert [_error(e) for e in got] == [_error(e) for e in events[from_seq:]]
    if events[-1].kind is EventKind.ERROR and from_seq < len(events):
        assert isinstance(error, RemoteRunError) and error.type == type(events[-1].error).__name__
    else:
        assert error is None


def _fields(event: TokenEvent) -> dict[str, object]:
    return {name: getattr(event, name) for name in TokenEvent.__slots__}  # type: ignore[attr-defined]


def _error(event: TokenEvent) -> tuple[str, str] | None:
    error = event.error
    if error is None:
        return None
    if isinstance(error, RemoteRunError):
        return error.type, error.message
    return type(error).__name__, str(error)


# --- retention


async def test_max_msgs_per_run_keeps_the_newest_messages(broker: tuple[str, str]) -> None:
    kind, url = broker
    options = {"stream": "RXAGENTS_RETAIN", "subject_prefix": "retain.run"}
    if kind == "redis":
        options = {"prefix": "rxagents-retain"}
    async with make_bus(kind, url, max_msgs_per_run=5, **options) as bus:
        events = run_events(fresh_run_id(), 10)  # 12 events, one message each
        await apublish(bus, events, coalesce=False)
        assert await collect(aattach(bus, events[0].run_id, 7)) == (events[7:], None)
        got, error = await collect(aattach(bus, events[0].run_id, 0, gap_timeout=0.3))
        assert got == []
        assert isinstance(error, BusGapError) and error.missing == range(0, 7)
        [info] = [run for run in await bus.runs() if run.run_id == events[0].run_id]
        assert (info.status, info.last_seq) == ("finished", 11)


async def test_max_age_expires_runs(broker: tuple[str, str]) -> None:
    kind, url = broker
    options = {"stream": "RXAGENTS_AGE", "subject_prefix": "age.run"}
    if kind == "redis":
        options = {"prefix": "rxagents-age"}
    async with make_bus(kind, url, max_age=1.0, **options) as bus:
        events = run_events(fresh_run_id(), 3)
        await apublish(bus, events)
        assert events[0].run_id in {run.run_id for run in await bus.runs()}
        for _ in range(60):  # the broker removes expired messages on its own schedule
            await asyncio.sleep(0.1)
            if events[0].run_id not in {run.run_id for run in await bus.runs()}:
                break
        assert events[0].run_id not in {run.run_id for run in await bus.runs()}
        got, error = await collect(aattach(bus, events[0].run_id, start_timeout=0.5))
        assert got == [] and isinstance(error, RunNotFound)


async def test_publish_takes_events_from_another_thread_in_order(bus: Bus) -> None:
    from reactivex.scheduler import NewThreadScheduler

    events = run_events(fresh_run_id(), 200)
    source = reactivex.from_iterable(events, scheduler=NewThreadScheduler())
    async with to_async_iter(source.pipe(publish(bus))) as stream:
        passed = [event async for event in stream]
    assert passed == events
    assert await collect(aattach(bus, events[0].run_id)) == (events, None)


async def test_publish_passes_the_source_error_on_after_storing_the_events(bus: Bus) -> None:
    events = run_events(fresh_run_id(), 4, ending="error")
    failure = ValueError("boom")
    source = reactivex.concat(reactivex.from_iterable(events), reactivex.throw(failure))
    got: list[TokenEvent] = []
    with pytest.raises(ValueError, match="boom"):
        async with to_async_iter(source.pipe(publish(bus))) as stream:
            async for event in stream:
                got.append(event)
    assert got == events
    stored, error = await collect(aattach(bus, events[0].run_id))
    assert stored == events and isinstance(error, RemoteRunError)


async def test_disposing_attachments_deletes_their_jetstream_consumers(nats_server: object) -> None:
    from rxagents.bus import NatsBus

    async with make_bus("nats", nats_server.url) as bus:  # type: ignore[attr-defined]
        assert isinstance(bus, NatsBus)
        events = run_events(fresh_run_id(), 3, ending="none")
        await apublish(bus, events)
        jsm = bus._nc.jsm()  # type: ignore[union-attr]
        before = (await jsm.stream_info(bus.stream)).state.consumer_count
        got: list[TokenEvent] = []
        subscriptions = [attach(bus, events[0].run_id).subscribe(got.append) for _ in range(3)]
        for _ in range(200):
            if len(got) == 3 * len(events):
                break
            await asyncio.sleep(0.01)
        assert (await jsm.stream_info(bus.stream)).state.consumer_count == before + 3
        for subscription in subscriptions:
            subscription.dispose()
        for _ in range(100):
            if (await jsm.stream_info(bus.stream)).state.consumer_count == before:
                break
            await asyncio.sleep(0.02)
        assert (await jsm.stream_info(bus.stream)).state.consumer_count == before
