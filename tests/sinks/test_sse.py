"""serve_sse: runs as Server-Sent Events — ids, Last-Event-ID resume, shared runs, cancellation, guards."""

from __future__ import annotations

import asyncio
import io
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import httpx
import pytest
import reactivex

from rxagents import Agent, ConcurrentWorkflow
from rxagents.errors import ConfigurationError
from rxagents.events import TokenEvent
from rxagents.models import OfflineModel
from rxagents.models._offline import tokenize
from rxagents.sinks._sse import MAX_TASK_CHARS, SSEServer, serve_sse
from rxagents.testing._faults import Reply, StallAfter, words
from rxagents.testing._server import LocalModelServer

TEXTS = {
    "Alpha": "Streams are values: you can map, merge and buffer them before anyone subscribes.",
    "Beta": "Cold observables start one run per subscription, so tests replay them exactly.",
}


def workflow(pace: float = 0.01, **model: Any) -> ConcurrentWorkflow:
    agents = [
        Agent(agent_name=name, llm=OfflineModel(text=text, pace=pace, **model), print_on=False)
        for name, text in TEXTS.items()
    ]
    return ConcurrentWorkflow(name="sse-test", agents=agents)


@dataclass(frozen=True)
class Message:
    id: int | None
    event: str
    data: dict[str, Any]


async def messages(response: aiohttp.ClientResponse) -> AsyncIterator[Message]:
    """Parse an SSE body (one ``data:`` line per message, as the server writes)."""
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if "data" in fields:
                ident = fields.get("id")
                yield Message(int(ident) if ident else None, fields.get("event", "message"), json.loads(fields["data"]))
            fields = {}
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            fields[name] = value.removeprefix(" ")


async def start_run(http: aiohttp.ClientSession, server: SSEServer, task: str = "Explain streams") -> str:
    async with http.post(f"{server.url}/runs", json={"task": task}) as response:
        assert response.status == 201, await response.text()
        run_id: str = (await response.json())["run_id"]
        return run_id


async def read_all(http: aiohttp.ClientSession, server: SSEServer, run_id: str, **headers: str) -> list[Message]:
    async with http.get(f"{server.url}/runs/{run_id}/events", headers=headers) as response:
        assert response.status == 200
        return [message async for message in messages(response)]


async def eventually(predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)
    return True


def texts_of(received: list[Message]) -> dict[str, str]:
    out: dict[str, str] = defaultdict(str)
    for message in received:
        if message.event == "token":
            out[message.data["agent"]] += message.data["content"]
    return dict(out)


def assert_runs_complete_and_unique(received: list[Message]) -> None:
    """Every run's seqs are 0..n with no gap and no duplicate; SSE ids are 1..N in order."""
    ids = [m.id for m in received if m.id is not None]
    assert ids == list(range(1, len(ids) + 1))
    seqs: dict[str, list[int]] = defaultdict(list)
    for message in received:
        if message.event != "complete":
            seqs[message.data["run_id"]].append(message.data["seq"])
    assert seqs and all(s == list(range(len(s))) for s in seqs.values())


# --- streaming ---------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_binds_loopback_by_default() -> None:
    async with serve_sse(workflow()) as server:
        assert server.address[0] == "127.0.0.1"
        assert server.url.startswith("http://127.0.0.1:")


@pytest.mark.asyncio
async def test_events_arrive_while_the_run_is_still_going_with_increasing_ids() -> None:
    async with serve_sse(workflow(pace=0.02)) as server, aiohttp.ClientSession() as http:
        run_id = await start_run(http, server)
        received: list[Message] = []
        status_at_first_token = None
        async with http.get(f"{server.url}/runs/{run_id}/events") as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            async for message in messages(response):
                if message.event == "token" and status_at_first_token is None:
                    status_at_first_token = server.run_info(run_id).status
                received.append(message)

    assert status_at_first_token == "running"
    assert_runs_complete_and_unique(received)
    assert [m.event for m in received if m.id is not None][-1] == "complete"
    assert received[-1].data == {
        "type": "complete", "run_id": run_id, "status": "completed", "reason": None, "events": len(received) - 1,
    }  # fmt: skip
    assert all(m.event == m.data["type"] for m in received)
    assert texts_of(received) == TEXTS


@pytest.mark.asyncio
async def test_a_run_starts_when_its_first_client_connects(model_server: LocalModelServer) -> None:
    agent = Agent(agent_name="Lazy", model_name="sse-lazy", api_base=model_server.url, api_key="sk-x", print_on=False)
    model_server.enqueue(Reply(tokens=words("started on demand")), model="sse-lazy")
    async with serve_sse(agent) as server, aiohttp.ClientSession() as http:
        run_id = await start_run(http, server)
        pending = server.run_info(run_id)
        requests_before = [r["model"] for r in model_server.requests].count("sse-lazy")
        received = await read_all(http, server, run_id)

    assert (pending.status, pending.events, requests_before) == ("pending", 0, 0)
    assert texts_of(received) == {"Lazy": "started on demand"}
    assert [r["model"] for r in model_server.requests].count("sse-lazy") == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("how", ["header", "query"])
async def test_last_event_id_resumes_with_exactly_the_remainder(how: str) -> None:
    async with serve_sse(workflow(pace=0.01)) as server, aiohttp.ClientSession() as http:
        run_id = await start_run(http, server)
        first: list[Message] = []
        async with http.get(f"{server.url}/runs/{run_id}/events") as response:
            async for message in messages(response):
                first.append(message)
                if len(first) == 12:
                    break  # disconnect mid-run
        assert server.run_info(run_id).status == "running"
        last = first[-1].id
        assert last is not None
        url = f"{server.url}/runs/{run_id}/events"
        headers = {"Last-Event-ID": str(last)} if how == "header" else {}
        params = {"lastEventId": str(last)} if how == "query" else {}
        async with http.get(url, headers=headers, params=params) as response:
            rest = [message async for message in messages(response)]
        runs = server.runs()

    assert rest[0].id == last + 1
    assert_runs_complete_and_unique(first + rest)
    assert texts_of(first + rest) == TEXTS
    assert [(r.run_id, r.resumes) for r in runs] == [(run_id, (last,))]  # one run, resumed once


@pytest.mark.asyncio
async def test_a_finished_run_replays_after_the_given_id_then_says_204_when_all_seen() -> None:
    async with serve_sse(workflow(pace=0)) as server, aiohttp.ClientSession() as http:
        run_id = await start_run(http, server)
        everything = await read_all(http, server, run_id)
        later = await read_all(http, server, run_id, **{"Last-Event-ID": "5"})
        seen_all = {"Last-Event-ID": str(everything[-1].id)}
        async with http.get(f"{server.url}/runs/{run_id}/events", headers=seen_all) as response:
            status = response.status

    assert later == everything[5:]
    assert status == 204  # EventSource stops reconnecting on 204


@pytest.mark.asyncio
async def test_a_resume_older_than_the_replay_buffer_gets_a_gap_event_then_the_rest() -> None:
    async with serve_sse(workflow(pace=0), replay=5) as server, aiohttp.ClientSession() as http:
        run_id = await start_run(http, server)
        await read_all(http, server, run_id)  # runs it to the end
        info = server.run_info(run_id)
        received = await read_all(http, server, run_id, **{"Last-Event-ID": "1"})

    assert received[0] == Message(None, "gap", {"type": "gap", "missing_from": 2, "missing_to": info.events - 5})
    assert [m.id for m in received[1:]] == list(range(info.events - 4, info.events + 1))
    assert received[-1].event == "complete"


@pytest.mark.asyncio
async def test_subscribers_of_one_run_share_it_and_it_goes_on_while_one_remains() -> None:
    async with serve_sse(workflow(pace=0.01), idle_grace=0) as server, aiohttp.ClientSession() as http:
        run_id = await start_run(http, server)
        url = f"{server.url}/runs/{run_id}/events"
        async with http.get(url) as a, http.get(url) as b:
            b_messages = messages(b)
            async for message in messages(a):
                if message.event == "token":
                    break  # A leaves; B stays
            rest = [message async for message in b_messages]
        runs = server.runs()

    assert [(r.run_id, r.status) for r in runs] == [(run_id, "completed")]
    assert_runs_complete_and_unique(rest)
    assert texts_of(rest) == TEXTS


@pytest.mark.asyncio
async def test_when_every_client_leaves_the_run_is_cancelled_and_its_model_stream_closed(
    model_server: LocalModelServer,
) -> None:
    model_server.enqueue(Reply(tokens=words("one two three four five"), fault=StallAfter(3)), model="sse-stall")
    agent = Agent(
        agent_name="Stalled", model_name="sse-stall", api_base=model_server.url, api_key="sk-test", print_on=False
    )
    baseline = model_server.active_streams
    async with serve_sse(agent, idle_grace=0) as server, aiohttp.ClientSession() as http:
        run_id = await start_run(http, server)
        tokens = 0
        async with http.get(f"{server.url}/runs/{run_id}/events") as response:
            async for message in messages(response):
                tokens += message.event == "token"
                if tokens == 3:
                    break
            assert model_server.active_streams == baseline + 1, (  # the model is stalled mid-stream
                model_server.closed_streams[-3:],
                model_server.request_records[-3:],
                server.runs(),
            )
        assert await model_server.await_until(lambda: model_server.active_streams == baseline)
        assert await eventually(lambda: server.run_info(run_id).status == "cancelled")
        info = server.run_info(run_id)

    assert info.reason == "no subscribers for 0 s"
    assert model_server.closed_streams[-1].outcome == "client_disconnected"


@pytest.mark.asyncio
async def test_closing_the_server_cancels_running_runs_and_tells_subscribers() -> None:
    agent = Agent(agent_name="Slow", llm=OfflineModel(stall_after=2), print_on=False)
    server = await serve_sse(agent).astart()
    async with aiohttp.ClientSession() as http:
        run_id = await start_run(http, server)
        async with http.get(f"{server.url}/runs/{run_id}/events") as response:
            received: list[Message] = []
            async for message in messages(response):
                received.append(message)
                if message.event == "token" and message.data["seq"] == 2:
                    await server.aclose()

    assert received[-1].event == "complete"
    assert received[-1].data["status"] == "cancelled" and received[-1].data["reason"] == "server closed"


@pytest.mark.asyncio
async def test_a_failed_run_completes_with_status_failed_after_its_error_event() -> None:
    agent = Agent(agent_name="Flaky", llm=OfflineModel(fail_after=2), print_on=False)
    async with serve_sse(agent) as server, aiohttp.ClientSession() as http:
        received = await read_all(http, server, await start_run(http, server))

    assert [m.event for m in received][-2:] == ["error", "complete"]
    assert received[-1].data["status"] == "failed"
    assert "injected failure" in received[-1].data["reason"]


@pytest.mark.asyncio
async def test_a_quiet_stream_gets_keep_alive_comments() -> None:
    agent = Agent(agent_name="Quiet", llm=OfflineModel(stall_after=0), print_on=False)
    async with serve_sse(agent, heartbeat=0.05) as server, aiohttp.ClientSession() as http:
        run_id = await start_run(http, server)
        async with http.get(f"{server.url}/runs/{run_id}/events") as response:
            lines = []
            async for raw in response.content:
                lines.append(raw.decode())
                if raw.startswith(b":"):
                    break

    assert lines[-1] == ": keep-alive\n"
    assert "event: start\n" in lines  # the start came first; then nothing until the comment


@pytest.mark.asyncio
async def test_a_finished_run_is_forgotten_after_keep_finished() -> None:
    async with serve_sse(workflow(pace=0), keep_finished=0) as server, aiohttp.ClientSession() as http:
        run_id = await start_run(http, server)
        await read_all(http, server, run_id)
        assert await eventually(lambda: server.runs() == [])
        async with http.get(f"{server.url}/runs/{run_id}/events") as response:
            assert response.status == 404


# --- the page and the requests it may make -----------------------------------------------------------------


@pytest.mark.asyncio
async def test_the_page_is_self_contained_and_escapes_its_title() -> None:
    async with (
        serve_sse(workflow(), title="<b>Team</b>") as server,
        aiohttp.ClientSession() as http,
        http.get(f"{server.url}/") as response,
    ):
        page, headers = await response.text(), response.headers

    assert "EventSource" in page and 'data-agents="[&quot;Alpha&quot;, &quot;Beta&quot;]"' in page
    assert "&lt;b&gt;Team&lt;/b&gt;" in page and "<b>Team</b>" not in page
    assert "src=" not in page and "http://" not in page and "https://" not in page  # no external assets
    assert "default-src 'none'" in headers["Content-Security-Policy"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("kwargs", "status"),
    [
        ({"data": "task=x", "headers": {"Content-Type": "application/x-www-form-urlencoded"}}, 415),
        ({"json": {"task": "x"}, "headers": {"Origin": "http://evil.example"}}, 403),
        ({"json": {"task": "x" * (MAX_TASK_CHARS + 1)}}, 413),
        ({"json": {"task": 42}}, 400),
        ({"json": {"task": "x"}, "headers": {"Host": "evil.example"}}, 403),
    ],
    ids=["form-body", "cross-origin", "task-too-long", "task-not-text", "dns-rebinding-host"],
)
async def test_run_requests_that_are_refused(kwargs: dict[str, Any], status: int) -> None:
    async with serve_sse(workflow()) as server, aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/runs", **kwargs) as response:
            assert response.status == status
            assert "error" in await response.json()
        assert server.runs() == []


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("body", "field", "says"),
    [
        ({"task": ""}, "task", "non-empty"),
        ({"task": " \n\t "}, "task", "non-empty"),
        ({"task": None}, "task", "got null"),
        ({"task": ["a"]}, "task", "got array"),
        ({"task": "x", "agents": 3}, "agents", "unknown field"),
        ({"tsak": "typo"}, "tsak", "unknown field"),
        (["task"], None, "JSON object"),
        ("Explain streams", None, "JSON object"),
        (None, None, "JSON object"),
    ],
    ids=["empty", "whitespace", "null", "array", "extra-field", "misspelt-field", "list-body", "string-body",
         "null-body"],
)  # fmt: skip
async def test_bad_run_bodies_are_400_naming_the_field(body: Any, field: str | None, says: str) -> None:
    headers = {"Content-Type": "application/json"}
    async with serve_sse(workflow()) as server, aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/runs", data=json.dumps(body), headers=headers) as response:
            assert response.status == 400
            answer = await response.json()
        assert server.runs() == []  # no run was created, so nothing runs the default task
    assert says in answer["error"]
    assert answer.get("field") == field
    if field is not None:
        assert answer["error"].startswith((f"{field} must be", f"unknown field {field!r}"))


@pytest.mark.asyncio
@pytest.mark.parametrize("body", [{}, {"task": "Explain SSE"}], ids=["default-task", "given-task"])
async def test_a_run_body_may_omit_the_task(body: dict[str, str]) -> None:
    async with (
        serve_sse(workflow(), task="The default task") as server,
        aiohttp.ClientSession() as http,
        http.post(f"{server.url}/runs", json=body) as response,
    ):
        assert response.status == 201
        assert (await response.json())["task"] == body.get("task", "The default task")


@pytest.mark.asyncio
async def test_a_body_too_large_for_the_server_is_a_json_413() -> None:
    async with serve_sse(workflow()) as server, aiohttp.ClientSession() as http:
        body = io.BytesIO(json.dumps({"task": "x" * (3 * 1024 * 1024)}).encode())
        headers = {"Content-Type": "application/json"}
        async with http.post(f"{server.url}/runs", data=body, headers=headers) as response:
            assert response.status == 413
            assert "limit" in (await response.json())["error"]
        assert server.runs() == []


@pytest.mark.asyncio
async def test_a_source_refusing_the_task_is_a_400_with_its_message() -> None:
    def factory(task: str) -> reactivex.Observable[TokenEvent]:
        raise ConfigurationError(f"task {task!r} is not allowed here")

    async with (
        serve_sse(factory) as server,
        aiohttp.ClientSession() as http,
        http.post(f"{server.url}/runs", json={"task": "forbidden"}) as response,
    ):
        assert response.status == 400
        assert "not allowed" in (await response.json())["error"]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("path", "headers", "status"),
    [("/runs/nope", {}, 404), ("/runs/nope/events", {}, 404), ("/runs/{run}/events", {"Last-Event-ID": "x"}, 400),
     ("/runs/{run}/events", {"Last-Event-ID": "999999"}, 400)],
    ids=["unknown-run", "unknown-run-events", "bad-last-event-id", "last-event-id-ahead"],
)  # fmt: skip
async def test_bad_event_requests(path: str, headers: dict[str, str], status: int) -> None:
    async with serve_sse(workflow(pace=0.01)) as server, aiohttp.ClientSession() as http:
        run_id = await start_run(http, server)
        async with http.get(server.url + path.format(run=run_id), headers=headers) as response:
            assert response.status == status


@pytest.mark.asyncio
async def test_runs_beyond_max_runs_are_refused_while_all_are_running() -> None:
    agent = Agent(agent_name="Slow", llm=OfflineModel(stall_after=1), print_on=False)
    async with serve_sse(agent, max_runs=1) as server, aiohttp.ClientSession() as http:
        await start_run(http, server)
        async with http.post(f"{server.url}/runs", json={"task": "another"}) as response:
            assert response.status == 503


# --- construction, threads, CLI ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"port": 70000}, "port"), ({"replay": 0}, "replay"), ({"idle_grace": -1}, "idle_grace"),
     ({"max_runs": 0}, "max_runs"), ({"heartbeat": 0}, "heartbeat"), ({"task": " "}, "task")],
)  # fmt: skip
def test_bad_arguments_are_refused_at_construction(kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ValueError, match=f"^{name} must be"):
        serve_sse(workflow(), **kwargs)


def test_a_source_without_stream_is_refused() -> None:
    with pytest.raises(TypeError, match="source must be an Agent or a workflow"):
        serve_sse(42)


def test_serves_from_its_own_thread_for_sync_code() -> None:
    agent = Agent(agent_name="Solo", llm=OfflineModel(text="Hello from a thread.", pace=0), print_on=False)
    with serve_sse(lambda task: agent.stream(task)) as server:
        run_id = httpx.post(f"{server.url}/runs", json={"task": "hi"}).json()["run_id"]
        with httpx.stream("GET", f"{server.url}/runs/{run_id}/events") as response:
            lines = [line for line in response.iter_lines() if line.startswith("data: ")]
        info = server.run_info(run_id)
    tokens = [json.loads(line[6:]) for line in lines]
    assert "".join(t["content"] for t in tokens if t["type"] == "token") == "Hello from a thread."
    assert info.status == "completed" and server._thread is None


def test_offline_texts_are_split_into_several_tokens() -> None:  # the tests above rely on it
    assert all(len(tokenize(text)) > 10 for text in TEXTS.values())
