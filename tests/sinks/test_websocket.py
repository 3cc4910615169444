"""serve_websocket: a real websockets client against the server on 127.0.0.1, agents on the local model server."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import json
import math
import re
import socket
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
import reactivex
from reactivex import abc
from reactivex.disposable import Disposable
from reactivex.scheduler import NewThreadScheduler
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from rxagents import Agent
from rxagents.errors import ConfigurationError, ModelError
from rxagents.events import EventKind, TokenEvent
from rxagents.models import OfflineModel
from rxagents.models._litellm import import_litellm
from rxagents.models._offline import tokenize
from rxagents.sinks._websocket import WebSocketServer, WebSocketStats, _Counters, serve_websocket
from rxagents.testing._faults import DropAfter, Reply, StallAfter, words
from rxagents.testing._server import LocalModelServer

_names = itertools.count(1)
TIMEOUT = 10.0


# --- helpers ------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module", autouse=True)
def _litellm_imported() -> None:
    """Import litellm first: otherwise its import (seconds) runs inside the first test's run, on the loop."""
    import_litellm()


def served_agent(model_server: LocalModelServer, reply: Reply) -> tuple[Agent, str]:
    """An agent on the local model server whose next request gets ``reply``; returns it and its model name."""
    name = f"ws-model-{next(_names)}"
    model_server.enqueue(reply, model=name)
    return Agent(agent_name="Streamer", model_name=name, api_base=model_server.url, api_key="sk-test",
                 print_on=False), name  # fmt: skip


def streaming(model_server: LocalModelServer, name: str) -> int:
    """How many responses for model ``name`` the model server is producing right now."""
    started = sum(1 for body in model_server.requests if body.get("model") == name)
    return started - sum(1 for record in model_server.closed_streams if record.model == name)


def agent_factory(agent: Agent) -> Callable[[dict[str, Any]], reactivex.Observable[TokenEvent]]:
    def factory(request: dict[str, Any]) -> reactivex.Observable[TokenEvent]:
        return agent.stream(request["task"])

    return factory


def never_called(request: dict[str, Any]) -> reactivex.Observable[TokenEvent]:
    raise AssertionError(f"the factory must not be called for {request!r}")


@contextlib.asynccontextmanager
async def client(server: WebSocketServer, **kwargs: Any) -> AsyncIterator[ClientConnection]:
    async with connect(server.url, proxy=None, open_timeout=TIMEOUT, **kwargs) as ws:
        yield ws


async def receive(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        message: dict[str, Any] = json.loads(await ws.recv())
        return message


async def receive_all(ws: ClientConnection, timeout: float = TIMEOUT) -> list[dict[str, Any]]:
    """Every message until the server closes (whatever the close code)."""
    out: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                out.append(json.loads(raw))
    return out


async def until(predicate: Callable[[], bool]) -> None:
    """Wait (polling the loop, no fixed sleeps) until ``predicate()`` holds; fail after TIMEOUT."""
    async with asyncio.timeout(TIMEOUT):
        while not predicate():
            await asyncio.sleep(0.005)


def token_text(messages: list[dict[str, Any]]) -> str:
    return "".join(m["content"] for m in messages if m["type"] == "token")


def event(
    kind: EventKind, seq: int, text: str = "", agent: str = "A", error: BaseException | None = None
) -> TokenEvent:
    return TokenEvent(kind, agent, f"run-{agent}", seq, text=text, error=error)


def script(*texts: str, agent: str = "A") -> list[TokenEvent]:
    """A well-formed run: start, one token per text, finish."""
    tokens = [event(EventKind.TOKEN, i + 1, t, agent) for i, t in enumerate(texts)]
    return [event(EventKind.START, 0, agent=agent), *tokens, event(EventKind.FINISH, len(texts) + 1, agent=agent)]


def slow_client_socket(port: int) -> socket.socket:
    """A connected client socket with a tiny receive buffer, so a client that does not read fills up fast."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    sock.setblocking(False)
    return sock


def one_per_loop_turn(
    events: list[TokenEvent], emitted: list[TokenEvent] | None = None
) -> reactivex.Observable[TokenEvent]:
    """The events, one per turn of the subscriber's loop (the send task runs in between); ``emitted`` records them."""

    def subscribe(observer: abc.ObserverBase[TokenEvent], _: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        loop = asyncio.get_running_loop()
        iterator = iter(events)
        stopped = False

        def step() -> None:
            if stopped:
                return
            event = next(iterator, None)
            if event is None:
                observer.on_completed()
                return
            if emitted is not None:
                emitted.append(event)
            observer.on_next(event)
            loop.call_soon(step)

        def stop() -> None:
            nonlocal stopped
            stopped = True

        loop.call_soon(step)
        return Disposable(stop)

    return reactivex.create(subscribe)


def assert_every_event_in_order(messages: list[dict[str, Any]]) -> None:
    """seq / last_seq account for every event, in order."""
    expected = 0
    for m in messages[:-1]:
        assert m["seq"] == expected
        expected = m.get("last_seq", m["seq"]) + 1


# --- streaming while the agent generates ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_tokens_reach_the_client_while_the_agent_is_still_generating(model_server: LocalModelServer) -> None:
    agent, name = served_agent(model_server, Reply(tokens=words("alpha beta gamma delta epsilon"),
                                                   fault=StallAfter(3)))  # fmt: skip
    async with serve_websocket(agent_factory(agent)) as server, client(server) as ws:
        await ws.send(json.dumps({"task": "stream please"}))
        got = [await receive(ws) for _ in range(4)]
        # The model server has sent three tokens and is stalled: the agent cannot have finished...
        assert streaming(model_server, name) == 1
        # ...yet the client already holds them.
        assert [m["type"] for m in got] == ["start", "token", "token", "token"]
        assert token_text(got) == "alpha beta gamma"
        assert [m["seq"] for m in got] == [0, 1, 2, 3]
        assert got[1]["agent"] == "Streamer"


@pytest.mark.asyncio
async def test_client_disconnect_cancels_the_run_and_closes_the_upstream_stream(
    model_server: LocalModelServer,
) -> None:
    agent, name = served_agent(model_server, Reply(tokens=words("one two three four five"), fault=StallAfter(2)))
    async with serve_websocket(agent_factory(agent)) as server:
        async with client(server) as ws:
            await ws.send(json.dumps({"task": "then hang up"}))
            assert [(await receive(ws))["type"] for _ in range(3)] == ["start", "token", "token"]
            assert streaming(model_server, name) == 1
        await until(lambda: streaming(model_server, name) == 0)
        closed = [record for record in model_server.closed_streams if record.model == name]
        assert [record.outcome for record in closed] == ["client_disconnected"]
        await until(lambda: server.stats.active == 0)
        assert server.stats.runs_cancelled == 1
        assert server.stats.runs_completed == 0


@pytest.mark.asyncio
async def test_stopping_the_server_closes_connections_with_1001_and_cancels_their_runs(
    model_server: LocalModelServer,
) -> None:
    agent, name = served_agent(model_server, Reply(tokens=words("never to be finished"), fault=StallAfter(1)))
    async with client(server := await serve_websocket(agent_factory(agent)).start()) as ws:
        await ws.send(json.dumps({"task": "x"}))
        assert [(await receive(ws))["type"] for _ in range(2)] == ["start", "token"]
        await server.aclose()
        await receive_all(ws)
        assert ws.close_code == 1001
    await until(lambda: streaming(model_server, name) == 0)
    assert [r.outcome for r in model_server.closed_streams if r.model == name] == ["client_disconnected"]
    assert server.stats.runs_cancelled == 1


@pytest.mark.asyncio
async def test_complete_message_follows_every_event_with_the_full_text(model_server: LocalModelServer) -> None:
    text = "Streams are values you can compose."
    agent, _ = served_agent(model_server, Reply(tokens=words(text)))
    async with serve_websocket(agent_factory(agent)) as server, client(server) as ws:
        await ws.send(json.dumps({"task": "explain"}))
        messages = await receive_all(ws)
        assert ws.close_code == 1000
    kinds = [m["type"] for m in messages]
    assert kinds == ["start", *["token"] * len(words(text)), "usage", "finish", "complete"]
    assert [m["seq"] for m in messages[:-1]] == list(range(len(messages) - 1))
    assert token_text(messages) == text
    assert messages[-1] == {"type": "complete", "content": text}
    assert messages[-3]["usage"]["completion_tokens"] > 0
    assert server.stats.runs_completed == 1


@pytest.mark.asyncio
async def test_an_agent_can_be_served_directly() -> None:
    agent = Agent(agent_name="Offline", model_name="offline", llm=OfflineModel(pace=0.0, text="Served as is."),
                  print_on=False)  # fmt: skip
    async with serve_websocket(agent) as server, client(server) as ws:
        await ws.send(json.dumps({"task": "x"}))
        messages = await receive_all(ws)
    assert messages[-1] == {"type": "complete", "content": "Served as is."}
    assert {m["agent"] for m in messages[:-1]} == {"Offline"}


@pytest.mark.asyncio
async def test_each_connection_is_its_own_run() -> None:
    agent = Agent(agent_name="Offline", model_name="offline", llm=OfflineModel(pace=0.001, text="One run each."),
                  print_on=False)  # fmt: skip

    async def one_client(server: WebSocketServer) -> list[dict[str, Any]]:
        async with client(server) as ws:
            await ws.send(json.dumps({"task": "x"}))
            return await receive_all(ws)

    async with serve_websocket(agent) as server:
        first, second = await asyncio.gather(one_client(server), one_client(server))
    assert first[-1] == second[-1] == {"type": "complete", "content": "One run each."}
    assert first[0]["run_id"] != second[0]["run_id"]
    assert server.stats.runs_completed == 2


@pytest.mark.asyncio
async def test_events_from_another_thread_arrive_in_order() -> None:
    events = script(*(f" t{i}" for i in range(50)))
    source = reactivex.from_iterable(events, scheduler=NewThreadScheduler())
    async with serve_websocket(lambda _: source) as server, client(server) as ws:
        await ws.send(json.dumps({"task": "x"}))
        messages = await receive_all(ws)
    assert [m["seq"] for m in messages[:-1]] == list(range(len(events)))
    assert messages[-1]["content"] == "".join(f" t{i}" for i in range(50))


@pytest.mark.asyncio
async def test_several_agents_complete_with_each_agents_text() -> None:
    source = reactivex.concat(reactivex.from_iterable(script("a1", "a2", agent="A")),
                              reactivex.from_iterable(script("b1", agent="B")))  # fmt: skip
    async with serve_websocket(lambda _: source) as server, client(server) as ws:
        await ws.send(json.dumps({"task": "x"}))
        final = (await receive_all(ws))[-1]
    assert final == {"type": "complete", "content": "a1a2\n\nb1", "texts": {"A": "a1a2", "B": "b1"}}


# --- failures ------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_failed_run_ends_with_an_error_message_carrying_the_partial_text(
    model_server: LocalModelServer,
) -> None:
    agent, _ = served_agent(model_server, Reply(tokens=words("partial answer then gone"), fault=DropAfter(2)))
    async with serve_websocket(agent_factory(agent)) as server, client(server) as ws:
        await ws.send(json.dumps({"task": "fail midway"}))
        messages = await receive_all(ws)
        assert ws.close_code == 1011
    final = messages[-1]
    assert final["type"] == "error"
    assert final["code"] == "stream_failed"
    assert final["error"] == "StreamCutError"  # the connection to the model dropped
    assert final["partial_text"] == "partial answer" == token_text(messages)
    assert final["agent"] == "Streamer"
    assert [m["type"] for m in messages].count("error") == 1  # the run's error event is folded into it
    assert server.stats.runs_failed == 1


@pytest.mark.asyncio
async def test_an_agent_error_inside_a_continuing_stream_is_an_agent_error_message() -> None:
    failed = [event(EventKind.START, 0, agent="Loser"), event(EventKind.ERROR, 1, agent="Loser",
                                                                error=ModelError("boom"))]  # fmt: skip
    source = reactivex.from_iterable([*failed, *script("won", agent="Winner")])
    async with serve_websocket(lambda _: source) as server, client(server) as ws:
        await ws.send(json.dumps({"task": "race"}))
        messages = await receive_all(ws)
        assert ws.close_code == 1000
    assert [m["type"] for m in messages] == ["start", "agent_error", "start", "token", "finish", "complete"]
    assert messages[1]["agent"] == "Loser"
    assert messages[1]["message"] == "boom"
    assert messages[-1]["content"] == "won"


@pytest.mark.asyncio
async def test_a_stream_whose_subscribe_raises_ends_with_an_error_message() -> None:
    def subscribe(observer: abc.ObserverBase[TokenEvent], _: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        raise RuntimeError("cannot start")

    async with serve_websocket(lambda _: reactivex.create(subscribe)) as server, client(server) as ws:
        await ws.send(json.dumps({"task": "x"}))
        messages = await receive_all(ws)
        assert ws.close_code == 1011
    assert messages == [{"type": "error", "code": "stream_failed", "error": "RuntimeError", "message": "cannot start",
                         "partial_text": ""}]  # fmt: skip
    assert server.stats.runs_failed == 1


@pytest.mark.asyncio
async def test_a_stream_of_something_else_than_token_events_fails_and_is_disposed() -> None:
    disposed = asyncio.Event()

    def subscribe(observer: abc.ObserverBase[Any], _: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        observer.on_next(event(EventKind.START, 0))
        observer.on_next("not an event")
        return Disposable(disposed.set)

    async with serve_websocket(lambda _: reactivex.create(subscribe)) as server, client(server) as ws:
        await ws.send(json.dumps({"task": "x"}))
        messages = await receive_all(ws)
        assert ws.close_code == 1011
    assert [m["type"] for m in messages] == ["start", "error"]
    assert messages[-1]["message"] == "the stream must emit TokenEvent items, got str"
    assert disposed.is_set() and server.stats.runs_failed == 1


# --- bad requests ----------------------------------------------------------------------------------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("payload", "code", "says"),
    [
        ("not json", 1008, "not valid JSON"),
        ('["task"]', 1008, "JSON object"),
        ('{"prompt": "hi"}', 1008, "'task'"),
        ('{"task": "   "}', 1008, "'task'"),
        (b'{"task": "hi"}', 1003, "text message"),
    ],
    ids=["not-json", "not-object", "missing-task", "empty-task", "binary"],
)
async def test_a_bad_request_gets_an_error_message_and_a_clear_close_code(
    payload: str | bytes, code: int, says: str
) -> None:
    async with serve_websocket(never_called) as server, client(server) as ws:
        await ws.send(payload)
        messages = await receive_all(ws)
        assert ws.close_code == code
    assert len(messages) == 1
    assert messages[0]["type"] == "error"
    assert messages[0]["code"] == "bad_request"
    assert says in messages[0]["message"]
    await until(lambda: server.stats.bad_requests == 1)


@pytest.mark.asyncio
async def test_a_request_over_the_size_limit_is_closed_with_1009() -> None:
    async with serve_websocket(never_called, max_message_size=1024) as server, client(server) as ws:
        await ws.send(json.dumps({"task": "x" * 2000}))
        assert await receive_all(ws) == []
        assert ws.close_code == 1009
    await until(lambda: server.stats.bad_requests == 1)


@pytest.mark.asyncio
async def test_a_request_the_factory_refuses_is_a_bad_request() -> None:
    def factory(request: dict[str, Any]) -> reactivex.Observable[TokenEvent]:
        raise ValueError(f"unknown agent {request['task']!r}; choose one of 'writer', 'critic'")

    async with serve_websocket(factory) as server, client(server) as ws:
        await ws.send(json.dumps({"task": "poet"}))
        messages = await receive_all(ws)
        assert ws.close_code == 1008
    assert messages[0]["message"] == "bad request: unknown agent 'poet'; choose one of 'writer', 'critic'"


@pytest.mark.asyncio
async def test_no_request_within_the_timeout_is_closed_with_1008() -> None:
    async with serve_websocket(never_called, request_timeout=0.05) as server, client(server) as ws:
        messages = await receive_all(ws)  # the client says nothing
        assert ws.close_code == 1008
    assert "no request within 0.05 s" in messages[0]["message"]


# --- slow clients ----------------------------------------------------------------------------------------------

# 400 tokens of 100 characters: ~110 kB of messages, far more than the client's and kernel's buffers hold.
SLOW_TEXT = " ".join(f"w{i:03d}".ljust(99, "-") for i in range(400))
SLOW_LIMITS: dict[str, Any] = {"max_buffer": 8, "max_buffer_bytes": 64 * 1024, "write_limit": 1024,
                               "socket_send_buffer": 4096}  # fmt: skip


@contextlib.asynccontextmanager
async def slow_client(server: WebSocketServer) -> AsyncIterator[ClientConnection]:
    """A client that holds at most one message and has a 4 kB socket receive buffer."""
    async with client(server, sock=slow_client_socket(server.port), max_queue=1, compression=None) as ws:
        yield ws


@pytest.mark.asyncio
async def test_slow_client_with_coalesce_gets_every_token_in_fewer_messages_within_the_bound(
    model_server: LocalModelServer,
) -> None:
    agent, name = served_agent(model_server, Reply(tokens=words(SLOW_TEXT), token_delay=0))
    async with (
        serve_websocket(agent_factory(agent), on_slow="coalesce", **SLOW_LIMITS) as server,
        slow_client(server) as ws,
    ):
        await ws.send(json.dumps({"task": "a long answer"}))
        # Don't read until the whole answer was produced: the client is as slow as can be.
        await until(lambda: any(r.model == name and r.outcome == "completed" for r in model_server.closed_streams))
        messages = await receive_all(ws)
        assert ws.close_code == 1000
    tokens = [m for m in messages if m["type"] == "token"]
    assert token_text(messages) == SLOW_TEXT == messages[-1]["content"]  # nothing lost
    assert len(tokens) < len(words(SLOW_TEXT))  # fewer messages
    assert any(m.get("coalesced", 1) > 1 for m in tokens)
    expected = 0  # seq / last_seq account for every event, in order
    for m in messages[:-1]:
        assert m["seq"] == expected
        expected = m.get("last_seq", m["seq"]) + 1
    stats = server.stats
    assert stats.coalesced == len(words(SLOW_TEXT)) - len(tokens) > 0
    assert stats.peak_buffered_bytes <= SLOW_LIMITS["max_buffer_bytes"]  # the memory bound held
    assert stats.slow_disconnects == 0


@pytest.mark.asyncio
async def test_slow_client_with_disconnect_is_closed_with_1013_and_the_run_cancelled(
    model_server: LocalModelServer,
) -> None:
    # Paced tokens, and a stall near the end: the run is still going when the client turns out too slow.
    reply = Reply(tokens=words(SLOW_TEXT), token_delay=0.001, fault=StallAfter(390))
    agent, name = served_agent(model_server, reply)
    async with (
        serve_websocket(agent_factory(agent), on_slow="disconnect", **SLOW_LIMITS) as server,
        slow_client(server) as ws,
    ):
        await ws.send(json.dumps({"task": "a long answer"}))
        await until(lambda: server.stats.slow_disconnects == 1)
        await until(lambda: any(r.model == name for r in model_server.closed_streams))
        messages = await receive_all(ws)
        assert ws.close_code == 1013
        assert (ws.close_reason or "").startswith("too slow")
    closed = [r for r in model_server.closed_streams if r.model == name]
    assert [r.outcome for r in closed] == ["client_disconnected"]  # the run was cancelled, not finished
    assert SLOW_TEXT.startswith(token_text(messages))  # what arrived is a prefix, in order
    assert len(token_text(messages)) < len(SLOW_TEXT)
    assert server.stats.peak_buffered_bytes <= SLOW_LIMITS["max_buffer_bytes"]
    assert server.stats.runs_cancelled == 1


@pytest.mark.asyncio
async def test_slow_client_past_max_buffer_bytes_is_disconnected_even_when_coalescing() -> None:
    """One event per loop turn, so the client falls behind while the stream goes on. (Whatever the stream produces
    in one go before the send task can run is a burst, not held against the client: a burst of the whole answer
    would be merged and sent, however large.)"""
    source = one_per_loop_turn(script(*words(SLOW_TEXT)))
    limits = {**SLOW_LIMITS, "max_buffer_bytes": 2048}
    async with serve_websocket(lambda _: source, on_slow="coalesce", **limits) as server, slow_client(server) as ws:
        await ws.send(json.dumps({"task": "a long answer"}))
        await until(lambda: server.stats.slow_disconnects == 1)
        await receive_all(ws)
        assert ws.close_code == 1013
        assert "max_buffer_bytes=2048" in (ws.close_reason or "")
    assert server.stats.peak_buffered_bytes <= 2048


@pytest.mark.asyncio
@pytest.mark.parametrize("delivery", ["one-burst", "one-per-loop-turn"])
async def test_a_token_larger_than_max_buffer_bytes_reaches_a_reading_client_intact(delivery: str) -> None:
    big = "".join(chr(ord("a") + i % 26) for i in range(2 * 1024 * 1024))  # 2 MiB, twice max_buffer_bytes
    events = script("before ", big, " after")
    source = reactivex.from_iterable(events) if delivery == "one-burst" else one_per_loop_turn(events)
    async with serve_websocket(lambda _: source) as server, client(server, max_size=None) as ws:
        assert server.max_buffer_bytes == 1024 * 1024
        await ws.send(json.dumps({"task": "x"}))
        messages = await receive_all(ws)
        assert ws.close_code == 1000
    assert token_text(messages) == "before " + big + " after" == messages[-1]["content"]
    assert_every_event_in_order(messages)
    assert server.stats.slow_disconnects == 0


BURST_TOKENS = 300_000
BURST_TEXT = " ".join(f"t{i:x}" for i in range(BURST_TOKENS))  # one token per word: 300,000 tokens, 2 MB


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_300k_token_burst_at_pace_0_reaches_a_reading_client_exactly() -> None:
    """At pace=0 the offline model produces the whole answer without yielding to the loop: the send task cannot
    run until it is all queued. That is a burst, not a slow client: it is merged and sent, not refused."""
    llm = OfflineModel(pace=0.0, text=BURST_TEXT)
    agent = Agent(agent_name="Burst", model_name="offline", llm=llm, print_on=False)
    async with serve_websocket(agent) as server, client(server, max_size=None) as ws:
        await ws.send(json.dumps({"task": "everything at once"}))
        messages = await receive_all(ws, timeout=180)  # the agent alone takes 3-10 s for 300k tokens here
        assert ws.close_code == 1000
    tokens = [m for m in messages if m["type"] == "token"]
    assert len(tokenize(BURST_TEXT)) == BURST_TOKENS
    assert token_text(messages) == BURST_TEXT == messages[-1]["content"]  # exact: nothing lost or repeated
    assert sum(m.get("coalesced", 1) for m in tokens) == BURST_TOKENS
    assert len(tokens) < 1_000  # merged into few messages
    assert_every_event_in_order(messages)
    assert (server.stats.slow_disconnects, server.stats.runs_completed) == (0, 1)


@pytest.mark.asyncio
async def test_a_client_that_never_reads_is_disconnected_once_its_backlog_passes_max_buffer_bytes() -> None:
    """The default limits, tokens arriving one per loop turn: the client falls behind, then past 1 MiB is cut."""
    events = script(*(f"{i:07d}".ljust(1024, "-") for i in range(8 * 1024)))  # 8 MiB of text
    emitted: list[TokenEvent] = []
    limits = {"write_limit": 1024, "socket_send_buffer": 4096}
    async with (
        serve_websocket(lambda _: one_per_loop_turn(events, emitted), **limits) as server,
        slow_client(server) as ws,
    ):
        await ws.send(json.dumps({"task": "x"}))
        await until(lambda: server.stats.slow_disconnects == 1)
        messages = await receive_all(ws)
        assert ws.close_code == 1013
        assert "max_buffer_bytes=1048576" in (ws.close_reason or "")
    assert server.stats.peak_buffered_bytes <= 1024 * 1024  # the bound held
    assert server.stats.runs_cancelled == 1
    assert len(emitted) < len(events)  # the stream was disposed: it stopped producing
    assert "".join(e.text for e in events).startswith(token_text(messages))  # a prefix, in order


# --- access --------------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_bearer_token_is_required_and_never_echoed() -> None:
    secret = "s3cret-token-value"
    source = reactivex.from_iterable(script("ok"))
    async with serve_websocket(lambda _: source, token=secret) as server:
        for headers in ({"Authorization": "Bearer wrong-token-value"}, {}, {"Authorization": f"Basic {secret}"}):
            with pytest.raises(InvalidStatus) as rejected:
                async with client(server, additional_headers=headers):
                    pass
            response = rejected.value.response
            assert response.status_code == 401
            assert response.headers["WWW-Authenticate"].startswith("Bearer")
            assert secret.encode() not in (response.body or b"")
            assert b"wrong-token-value" not in (response.body or b"")
        async with client(server, additional_headers={"Authorization": f"Bearer {secret}"}) as ws:
            await ws.send(json.dumps({"task": "x"}))
            assert (await receive_all(ws))[-1] == {"type": "complete", "content": "ok"}
        assert server.stats.auth_rejected == 3
        assert secret not in repr(server)


class CountingFactory:
    """A factory serving a short scripted answer, counting its calls."""

    def __init__(self, *texts: str) -> None:
        self.texts = texts or ("ok",)
        self.calls = 0

    def __call__(self, request: dict[str, Any]) -> reactivex.Observable[TokenEvent]:
        self.calls += 1
        return reactivex.from_iterable(script(*self.texts))


async def refused(server: WebSocketServer, **kwargs: Any) -> tuple[int, str]:
    """Open a handshake that must be refused: the HTTP status and body."""
    with pytest.raises(InvalidStatus) as rejected:
        async with client(server, **kwargs):
            pass
    response = rejected.value.response
    return response.status_code, (response.body or b"").decode()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "origin",
    ["http://evil.example", "https://evil.example", "http://127.0.0.1:1", "http://localhost:{port}", "null"],
    ids=["other-site", "other-site-https", "other-port", "other-host-name", "file-page"],
)
async def test_a_page_of_another_origin_is_refused_before_the_upgrade(origin: str) -> None:
    factory = CountingFactory()
    async with serve_websocket(factory) as server:
        status, body = await refused(server, origin=origin.format(port=server.port))
        assert status == 403
        assert "cross-origin" in body and "allowed_origins" in body
        stats = server.stats
    assert (stats.forbidden, stats.connections, factory.calls) == (1, 0, 0)  # no connection, no run


@pytest.mark.asyncio
async def test_the_servers_own_origin_configured_origins_and_non_browser_clients_are_served() -> None:
    factory = CountingFactory("served")
    async with serve_websocket(factory, allowed_origins=["http://localhost:5173", "null"]) as server:
        for origin in (f"http://127.0.0.1:{server.port}", "http://LOCALHOST:5173", "null", None):
            async with client(server, origin=origin) as ws:
                await ws.send(json.dumps({"task": "x"}))
                assert (await receive_all(ws))[-1] == {"type": "complete", "content": "served"}
        assert "allowed_origins=['http://localhost:5173', 'null']" in repr(server)
    assert (server.stats.forbidden, server.stats.runs_completed, factory.calls) == (0, 4, 4)


@pytest.mark.asyncio
async def test_a_foreign_host_header_is_refused_on_a_loopback_bind() -> None:
    """DNS rebinding: a page at http://evil.example:PORT whose name now resolves to 127.0.0.1 is same-origin with
    itself, so only its Host header gives it away."""
    factory = CountingFactory()
    async with serve_websocket(factory) as server:
        sock = socket.create_connection(("127.0.0.1", server.port))
        with pytest.raises(InvalidStatus) as rejected:
            async with connect(f"ws://evil.example:{server.port}", sock=sock, origin=f"http://evil.example:{server.port}",
                               proxy=None, open_timeout=TIMEOUT):  # fmt: skip
                pass
        assert rejected.value.response.status_code == 403
        assert b"loopback" in (rejected.value.response.body or b"")
        for name in ("localhost", "[::1]"):  # loopback names are fine (the socket still goes to 127.0.0.1)
            sock = socket.create_connection(("127.0.0.1", server.port))
            async with connect(f"ws://{name}:{server.port}", sock=sock, proxy=None, open_timeout=TIMEOUT) as ws:
                await ws.send(json.dumps({"task": "x"}))
                assert (await receive_all(ws))[-1]["type"] == "complete"
    assert (server.stats.forbidden, factory.calls) == (1, 2)


@pytest.mark.asyncio
async def test_origin_is_checked_before_the_token() -> None:
    async with serve_websocket(CountingFactory(), token="t0ken-value") as server:
        status, _ = await refused(server, origin="http://evil.example",
                                  additional_headers={"Authorization": "Bearer t0ken-value"})  # fmt: skip
        assert status == 403
        assert (server.stats.forbidden, server.stats.auth_rejected) == (1, 0)


@pytest.mark.asyncio
async def test_binds_127_0_0_1_by_default() -> None:
    async with serve_websocket(never_called) as server:
        assert server.host == "127.0.0.1"
        assert server.url == f"ws://127.0.0.1:{server.port}"
        assert server._server is not None
        assert {sock.getsockname()[0] for sock in server._server.sockets} == {"127.0.0.1"}


# --- construction ---------------------------------------------------------------------------------------------


def test_building_a_server_has_no_side_effects() -> None:
    server = serve_websocket(never_called)
    with pytest.raises(RuntimeError, match="not started"):
        _ = server.port
    assert "not started" in repr(server)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_slow": "drop"}, "on_slow must be 'coalesce' or 'disconnect', got 'drop'"),
        ({"max_buffer": 0}, "max_buffer must be an int >= 1, got 0"),
        ({"max_message_size": -1}, "max_message_size must be an int >= 1, got -1"),
        ({"port": 70000}, "port must be an int >= 0 and <= 65535, got 70000; 0 = any free port"),
        ({"port": "8765"}, "port must be an int >= 0 and <= 65535, got '8765'; pass 8765 without quotes"),
        ({"host": ""}, "host must be a non-empty string, got ''; e.g. '127.0.0.1'"),
        ({"token": ""}, "token must be None or a non-empty string without surrounding spaces, got a value of type str"),
        ({"token": " secret"}, "token must be None or a non-empty string without surrounding spaces, got a value of"),
        ({"socket_send_buffer": 0}, "socket_send_buffer must be an int >= 1, or None (the OS default), got 0"),
        ({"request_timeout": 0}, "request_timeout must be a finite number of seconds > 0, or None (no limit), got 0"),
        ({"request_timeout": math.nan}, "request_timeout must be a finite number of seconds > 0, or None (no limit)"),
        ({"required_fields": "task"}, "required_fields must be a sequence of key names, got 'task'; e.g. ('task',)"),
        ({"required_fields": 5}, "required_fields must be a sequence of key names, got 5"),
        ({"required_fields": ("task", "")}, "required_fields must be a sequence of key names, got ('task', '')"),
        ({"allowed_origins": 5}, "allowed_origins must be a list of origins, got 5"),
        ({"allowed_origins": [5]}, "allowed_origins entries must be strings such as 'http://localhost:5173', got 5"),
        ({"allowed_origins": "http://localhost:5173"}, "allowed_origins must be a list of origins"),
        ({"allowed_origins": ["http://localhost:5173/app"]}, "allowed_origins entries must be origins"),
        ({"allowed_origins": ["localhost:5173"]}, "allowed_origins entries must be origins"),
    ],
)
def test_bad_arguments_are_refused_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        serve_websocket(never_called, **kwargs)


def test_the_factory_must_be_callable() -> None:
    with pytest.raises(TypeError, match="factory must be a callable"):
        serve_websocket("agent")  # type: ignore[arg-type]


def test_the_live_counters_have_exactly_the_fields_of_the_stats() -> None:
    live = [(f.name, f.type, f.default) for f in dataclasses.fields(_Counters)]
    assert live == [(f.name, f.type, f.default) for f in dataclasses.fields(WebSocketStats)]
