"""Brokers that restart, stop or refuse: nothing acknowledged is lost, nothing is duplicated, nothing is dropped
silently, and no credential shows. Each test runs its own broker (it stops it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import pytest
import reactivex

from rxagents.bus import (
    BusUnavailable,
    LocalNatsServer,
    LocalRedisServer,
    aattach,
    apublish,
    connect_bus,
    publish,
)
from rxagents.events import TokenEvent
from rxagents.operators import to_async_iter
from tests.bus.brokers import BROKERS, collect, fresh_run_id, make_bus, need, run_events, server_for

pytestmark = pytest.mark.asyncio


@pytest.fixture(params=BROKERS)
def own_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, LocalNatsServer | LocalRedisServer]]:
    """A broker of each kind for this test alone."""
    kind: str = request.param
    server = server_for(kind)
    with server:
        yield kind, server


async def _paced(events: list[TokenEvent], restart_at: int, restart: asyncio.Event) -> AsyncIterator[TokenEvent]:
    for i, event in enumerate(events):
        if i == restart_at:
            restart.set()
        await asyncio.sleep(0.002)
        yield event


async def test_a_broker_restart_mid_run_loses_and_duplicates_nothing(
    own_server: tuple[str, LocalNatsServer | LocalRedisServer],
) -> None:
    kind, server = own_server
    events = run_events(fresh_run_id(), 300)
    run_id = events[0].run_id
    async with make_bus(kind, server.url) as publisher_bus, make_bus(kind, server.url) as reader_bus:
        follower = asyncio.create_task(collect(aattach(reader_bus, run_id, reconnect_timeout=20)))
        restart = asyncio.Event()
        publishing = asyncio.create_task(apublish(publisher_bus, _paced(events, 120, restart), unavailable_timeout=20))
        await restart.wait()
        await asyncio.to_thread(server.restart)  # SIGTERM, then start again on the same port and data
        assert await publishing == len(events)
        got, error = await asyncio.wait_for(follower, 30)
        assert error is None
        assert [e.seq for e in got] == list(range(len(events)))
        assert got == events
        # and what the broker stored is the run, exactly
        assert await collect(aattach(reader_bus, run_id)) == (events, None)


async def test_an_attached_reader_reattaches_from_its_last_seq_after_a_restart(
    own_server: tuple[str, LocalNatsServer | LocalRedisServer],
) -> None:
    kind, server = own_server
    events = run_events(fresh_run_id(), 20)
    run_id = events[0].run_id
    async with make_bus(kind, server.url) as bus:
        await apublish(bus, events[:10])
        got: list[TokenEvent] = []

        async def follow() -> BaseException | None:
            try:
                async for event in aattach(bus, run_id, reconnect_timeout=20):
                    got.append(event)
            except Exception as error:
                return error
            return None

        follower = asyncio.create_task(follow())
        for _ in range(200):
            if len(got) == 10:
                break
            await asyncio.sleep(0.01)
        assert got == events[:10]
        await asyncio.to_thread(server.restart)
        assert await apublish(bus, events[10:], unavailable_timeout=20) == len(events) - 10
        assert await asyncio.wait_for(follower, 30) is None
        assert got == events


async def test_publishing_to_a_stopped_broker_fails_with_every_unpublished_event(
    own_server: tuple[str, LocalNatsServer | LocalRedisServer],
) -> None:
    kind, server = own_server
    events = run_events(fresh_run_id(), 10)
    async with make_bus(kind, server.url) as bus:
        await apublish(bus, events[:3])
        await asyncio.to_thread(server.stop)
        with pytest.raises(BusUnavailable) as failure:
            await apublish(bus, events[3:], unavailable_timeout=0.5)
        assert failure.value.unpublished == tuple(events[3:])
        assert "unavailable_timeout=0.5" in str(failure.value)


async def test_an_attachment_gives_up_after_reconnect_timeout(
    own_server: tuple[str, LocalNatsServer | LocalRedisServer],
) -> None:
    kind, server = own_server
    events = run_events(fresh_run_id(), 4, ending="none")
    async with make_bus(kind, server.url) as bus:
        await apublish(bus, events)
        got: list[TokenEvent] = []

        async def follow() -> BaseException | None:
            try:
                async for event in aattach(bus, events[0].run_id, reconnect_timeout=0.5):
                    got.append(event)
            except Exception as error:
                return error
            return None

        follower = asyncio.create_task(follow())
        for _ in range(200):
            if len(got) == len(events):
                break
            await asyncio.sleep(0.01)
        await asyncio.to_thread(server.stop)
        error = await asyncio.wait_for(follower, 30)
        assert got == events
        assert isinstance(error, BusUnavailable)
        assert f"from_seq={len(events)}" in str(error)


@pytest.mark.parametrize("kind", BROKERS)
async def test_a_full_buffer_fails_the_publish_operator_with_the_unpublished_events(
    kind: str, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue(f"{kind}_server")
    events = run_events(fresh_run_id(), 20)
    passed: list[TokenEvent] = []
    # a synchronous source of 22 events cannot be paused: the 6th finds the buffer of 5 full
    source = reactivex.from_iterable(events)
    async with make_bus(kind, server.url) as bus, to_async_iter(source.pipe(publish(bus, max_buffer=5))) as stream:
        with pytest.raises(BusUnavailable) as failure:
            async for event in stream:
                passed.append(event)
    assert passed == events[:5]
    assert failure.value.unpublished == tuple(events[:6])
    assert "max_buffer=5" in str(failure.value)


# --- credentials


@pytest.mark.parametrize(
    "url",
    ["nats://alice:s3cr3t-pass@127.0.0.1:{port}", "nats://s3cr3t-pass@127.0.0.1:{port}",
     "redis://:s3cr3t-pass@127.0.0.1:{port}/0", "redis://bob:s3cr3t-pass@127.0.0.1:{port}/0"],
)
async def test_credentials_never_show_in_reprs_or_errors(url: str) -> None:
    from rxagents.bus._local import _free_port

    bus = connect_bus(url.format(port=_free_port()), connect_timeout=0.5)
    assert "s3cr3t" not in repr(bus) and "s3cr3t" not in bus.url
    with pytest.raises(BusUnavailable) as failure:
        await bus.connect()
    shown = (str(failure.value), repr(failure.value), repr(failure.value.__cause__), repr(failure.value.__context__))
    assert not [text for text in shown if "s3cr3t" in text]


async def test_nats_user_password_and_token_authentication() -> None:
    need("nats")
    with LocalNatsServer(args=("--user", "alice", "--pass", "s3cr3t-pass")) as server:
        port = server.port
        async with connect_bus(f"nats://alice:s3cr3t-pass@127.0.0.1:{port}") as bus:
            events = run_events(fresh_run_id(), 3)
            await apublish(bus, events)
            assert await collect(aattach(bus, events[0].run_id)) == (events, None)
        with pytest.raises(BusUnavailable) as failure:
            await connect_bus(f"nats://alice:wrong-pass-1@127.0.0.1:{port}", connect_timeout=1.0).connect()
        assert "wrong-pass" not in str(failure.value)
    with LocalNatsServer(args=("--auth", "t0ken-s3cr3t")) as server:
        async with connect_bus(server.url, token="t0ken-s3cr3t") as bus:
            assert await bus.runs() == []


async def test_redis_password_authentication() -> None:
    need("redis")
    with LocalRedisServer(args=("--requirepass", "s3cr3t-pass")) as server:
        async with connect_bus(f"redis://:s3cr3t-pass@127.0.0.1:{server.port}/0") as bus:
            events = run_events(fresh_run_id(), 3)
            await apublish(bus, events)
            assert await collect(aattach(bus, events[0].run_id)) == (events, None)
        with pytest.raises(BusUnavailable) as failure:
            await connect_bus(server.url, password="wrong-pass-1").connect()
        assert "wrong-pass" not in str(failure.value)
