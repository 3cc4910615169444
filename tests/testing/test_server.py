"""The local OpenAI-compatible test server, exercised through real HTTP with httpx and with litellm."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st

from rxagents.errors import ConfigurationError
from rxagents.events import Usage
from rxagents.testing._faults import (
    DropAfter,
    EmptyStream,
    Fault,
    HttpError,
    MalformedAfter,
    NoDone,
    OpenAIReply,
    Reply,
    SlowFirstByte,
    StallAfter,
    ToolCallSpec,
    distinct_text,
    words,
)

# The exported fixture, made available to this module (used by test_exported_fixture_serves).
from rxagents.testing._server import (
    LocalModelServer,
    local_model_server,  # noqa: F401
    serve_main,
)

# litellm 1.110.2 reads deprecated pydantic instance attributes (``model_fields``,
# ``model_computed_fields``) on every usage chunk; under ``-W error`` that DeprecationWarning becomes an
# exception that litellm reports as a MidStreamFallbackError. It is litellm's warning, not ours, so it is
# ignored here by exact message.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Accessing the 'model_(computed_)?fields' attribute on the instance is deprecated:DeprecationWarning"
)

TASK = "Explain reactive streams in one short paragraph"
SECRET = "sk-test-secret-0123456789"


@pytest.fixture(scope="module")
def litellm() -> Any:
    """litellm, imported the way rxagents does it: no cost-map fetch, no .env loading, quiet."""
    os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    os.environ["LITELLM_MODE"] = "PRODUCTION"
    import litellm as module

    module.suppress_debug_info = True
    return module


@pytest.fixture
def server() -> Iterator[LocalModelServer]:
    with LocalModelServer() as started:
        yield started


@pytest_asyncio.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5.0, headers={"Authorization": f"Bearer {SECRET}"}) as http:
        yield http


def body(model: str = "test-model", *, stream: bool = True, usage: bool = True, task: str = TASK) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": task}],
        "stream": stream,
    }
    if stream and usage:
        payload["stream_options"] = {"include_usage": True}
    return payload


async def sse(client: httpx.AsyncClient, server: LocalModelServer, payload: dict[str, Any]) -> list[str]:
    """All ``data:`` payloads of one streamed response."""
    async with client.stream("POST", f"{server.url}/chat/completions", json=payload) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return [line[len("data: ") :] async for line in response.aiter_lines() if line.startswith("data: ")]


async def litellm_stream(litellm: Any, server: LocalModelServer, model: str = "test-model", **kwargs: Any) -> Any:
    return await litellm.acompletion(
        model=f"openai/{model}",
        api_base=server.url,
        api_key=SECRET,
        messages=[{"role": "user", "content": TASK}],
        stream=True,
        stream_options={"include_usage": True},
        max_retries=0,
        timeout=5,
        **kwargs,
    )


async def collect(stream: Any) -> list[Any]:
    return [chunk async for chunk in stream]


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


# --- happy paths


@pytest.mark.asyncio
async def test_default_reply_streams_text_finish_and_usage_through_litellm(
    server: LocalModelServer, litellm: Any
) -> None:
    chunks = await collect(await litellm_stream(litellm, server))

    text_chunks = [c for c in chunks if c.choices and c.choices[0].delta.content]
    assert len(text_chunks) == 20
    assert text_of(chunks).startswith(f"Local test model reply to: {TASK}.")
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    usage = next(c.usage for c in chunks if getattr(c, "usage", None))
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (7, 20, 27)
    assert server.requests[0]["stream_options"] == {"include_usage": True}


@pytest.mark.asyncio
async def test_stream_is_openai_chunk_shaped(server: LocalModelServer, client: httpx.AsyncClient) -> None:
    data = await sse(client, server, body("shape-model"))

    assert data[-1] == "[DONE]"
    chunks = [json.loads(d) for d in data[:-1]]
    for chunk in chunks:
        assert set(chunk) >= {"id", "object", "created", "model"}
        assert chunk["object"] == "chat.completion.chunk"
        assert chunk["model"] == "shape-model"
        assert chunk["id"] == chunks[0]["id"]
    *content, finish, usage = chunks
    assert [set(c["choices"][0]) >= {"index", "delta", "finish_reason"} for c in content] == [True] * 20
    assert content[0]["choices"][0]["delta"] == {"role": "assistant", "content": "Local"}
    assert content[1]["choices"][0]["delta"] == {"content": " test"}
    assert finish["choices"][0]["finish_reason"] == "stop"
    assert usage["choices"] == [] and usage["usage"]["completion_tokens"] == 20

    without_usage = await sse(client, server, body(usage=False))
    assert len(without_usage) == len(data) - 1
    assert all("usage" not in json.loads(d) for d in without_usage[:-1])


@pytest.mark.asyncio
async def test_default_text_is_deterministic_per_task(server: LocalModelServer, client: httpx.AsyncClient) -> None:
    def text(data: list[str]) -> str:
        return "".join(json.loads(d)["choices"][0]["delta"].get("content", "") for d in data[:-2])

    first = text(await sse(client, server, body()))
    again = text(await sse(client, server, body()))
    other = text(await sse(client, server, body(task="Something else entirely")))
    assert first == again
    assert first != other
    assert other.startswith("Local test model reply to: Something else entirely.")


@given(
    tokens=st.none() | st.lists(st.text(), max_size=4).map(tuple),
    reasoning=st.lists(st.text(max_size=5), max_size=2).map(tuple),
    calls=st.lists(st.builds(ToolCallSpec, st.text(min_size=1, max_size=5).filter(str.strip)), max_size=2).map(tuple),
    usage=st.booleans(),
)
def test_encoded_events_are_the_events_as_compact_json(
    tokens: tuple[str, ...] | None, reasoning: tuple[str, ...], calls: tuple[ToolCallSpec, ...], usage: bool
) -> None:
    render = OpenAIReply(body(), Reply(tokens=tokens, reasoning=reasoning, tool_calls=calls), n=1, default_tokens=3)
    events = render.events(include_usage=usage)
    assert render.encoded_events(include_usage=usage) == [json.dumps(e, separators=(",", ":")).encode() for e in events]


@pytest.mark.asyncio
async def test_distinct_tokens_belong_to_one_model_and_task(client: httpx.AsyncClient) -> None:
    def tokens(data: list[str]) -> list[str]:
        return [json.loads(d)["choices"][0]["delta"]["content"] for d in data[:-3]]  # finish, usage, [DONE]

    with LocalModelServer(default_tokens=5, distinct_tokens=True) as server:
        first = tokens(await sse(client, server, body("model-a", task="task 1")))
        again = tokens(await sse(client, server, body("model-a", task="task 1")))
        other_task = tokens(await sse(client, server, body("model-a", task="task 2")))
        other_model = tokens(await sse(client, server, body("model-b", task="task 1")))
        server.enqueue(Reply(tokens=("scripted",)))
        scripted = tokens(await sse(client, server, body("model-a", task="task 1")))
    assert first == again == list(distinct_text("model-a", "task 1", 5))
    assert other_task == list(distinct_text("model-a", "task 2", 5))
    assert other_model == list(distinct_text("model-b", "task 1", 5))
    assert len(set(first + other_task + other_model)) == 15  # no token in two runs' replies
    assert scripted == ["scripted"]  # a scripted reply is still sent as scripted


@pytest.mark.asyncio
@pytest.mark.parametrize("per_write", [1, 4])
async def test_events_per_write_coalesce_the_stream_into_fewer_writes(
    client: httpx.AsyncClient, per_write: int
) -> None:
    """8 tokens, finish and usage: 10 events. With 0.25 s between writes, each network read ends where a write
    ended (a slow read may take two writes, never part of one): after a multiple of ``per_write`` events."""
    with LocalModelServer(default_tokens=8, token_delay=0.25, events_per_write=per_write) as server:
        bodies: list[bytes] = []
        async with client.stream("POST", f"{server.url}/chat/completions", json=body()) as response:
            async for piece in response.aiter_raw():
                bodies.append(piece)
        whole = await sse(client, server, body())
        records = server.closed_streams
    raw = [line[6:] for line in b"".join(bodies).decode().split("\n\n") if line.startswith("data: ")]

    def content(data: list[str]) -> list[Any]:
        return [json.loads(d).get("choices") for d in data[:-1]] + data[-1:]

    assert content(raw) == content(whole)  # whole events, the same stream as a reader of lines sees it
    counts = [piece.count(b"data: ") for piece in bodies]
    ends = [sum(counts[: i + 1]) for i in range(len(counts))]
    assert ends[-1] == 11  # 10 events and [DONE]
    assert all(end % per_write == 0 for end in ends[:-1]), counts
    if per_write == 4:
        assert max(counts) >= 4  # coalesced: four events arrived in one read
    assert [r.events_sent for r in records] == [10, 10] and {r.outcome for r in records} == {"completed"}


@pytest.mark.asyncio
async def test_faults_still_happen_after_their_event_count_when_coalescing(client: httpx.AsyncClient) -> None:
    with LocalModelServer(events_per_write=4) as server:
        server.enqueue(Reply(tokens=words("a b c d e f"), fault=DropAfter(3)))
        received: list[str] = []
        with pytest.raises(httpx.RemoteProtocolError):
            async with client.stream("POST", f"{server.url}/chat/completions", json=body()) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data: "):
                        received.append(line)
        server.enqueue(Reply(tokens=words("a b c d e f"), fault=MalformedAfter(5)))
        data = await sse(client, server, body())
        records = server.closed_streams
    assert len(received) == 3 and records[0].outcome == "fault" and records[0].events_sent == 3
    assert len(data) == 6 + 2 + 1 + 1  # the bad event after five, then the rest, [DONE]
    with pytest.raises(json.JSONDecodeError):
        json.loads(data[5])
    assert records[1].events_sent == 8 and records[1].outcome == "completed"


@pytest.mark.asyncio
async def test_scripted_tokens_and_reasoning_through_litellm(server: LocalModelServer, litellm: Any) -> None:
    server.enqueue(Reply(tokens=words("Hello big world"), reasoning=("Let me", " think.")))

    chunks = await collect(await litellm_stream(litellm, server))

    deltas = [c.choices[0].delta for c in chunks if c.choices]
    reasoning = [d.reasoning_content for d in deltas if getattr(d, "reasoning_content", None)]
    content = [d.content for d in deltas if d.content]
    assert reasoning == ["Let me", " think."]
    assert content == ["Hello", " big", " world"]
    first_content = next(i for i, d in enumerate(deltas) if d.content)
    last_reasoning = max(i for i, d in enumerate(deltas) if getattr(d, "reasoning_content", None))
    assert last_reasoning < first_content


@pytest.mark.asyncio
async def test_tool_call_deltas_reassemble_through_litellm(server: LocalModelServer, litellm: Any) -> None:
    weather = ToolCallSpec("get_weather", json.dumps({"city": "Paris", "unit": "celsius"}), id="call_w")
    search = ToolCallSpec("search", json.dumps({"query": "reactive streams", "limit": 3}), pieces=5)
    server.enqueue(Reply(tool_calls=(weather, search)))

    chunks = await collect(await litellm_stream(litellm, server))

    calls: dict[int, dict[str, Any]] = {}
    pieces: dict[int, int] = {}
    for chunk in chunks:
        for delta in (chunk.choices[0].delta.tool_calls or []) if chunk.choices else []:
            call = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
            call["id"] = call["id"] or delta.id
            call["name"] = call["name"] or delta.function.name
            call["arguments"] += delta.function.arguments or ""
            pieces[delta.index] = pieces.get(delta.index, 0) + bool(delta.function.arguments)
    assert calls[0] == {"id": "call_w", "name": "get_weather", "arguments": weather.arguments}
    assert calls[1]["id"] == "call_1" and calls[1]["name"] == "search"
    assert json.loads(calls[1]["arguments"]) == {"query": "reactive streams", "limit": 3}
    assert pieces == {0: 3, 1: 5}
    assert text_of(chunks) == ""
    finishes = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishes == ["tool_calls"]


@pytest.mark.asyncio
async def test_non_streaming_completion(server: LocalModelServer, client: httpx.AsyncClient) -> None:
    server.enqueue(Reply(tokens=("Hi", " there"), usage=Usage(11, 2, 13)))

    response = await client.post(f"{server.url}/chat/completions", json=body(stream=False))

    completion = response.json()
    assert completion["object"] == "chat.completion"
    assert completion["choices"][0]["message"] == {"role": "assistant", "content": "Hi there"}
    assert completion["choices"][0]["finish_reason"] == "stop"
    assert completion["usage"] == {"prompt_tokens": 11, "completion_tokens": 2, "total_tokens": 13}


@pytest.mark.asyncio
async def test_models_and_health(server: LocalModelServer, client: httpx.AsyncClient) -> None:
    assert (await client.get(f"{server.url}/models")).json()["data"][0]["id"] == "test-model"
    assert (await client.get(server.url.removesuffix("/v1") + "/health")).json() == {"status": "ok"}
    missing = await client.get(f"{server.url}/nope")
    assert missing.status_code == 404 and "error" in missing.json()
    assert server.requests == []  # only chat completions are recorded


# --- faults


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "kind"),
    [
        (HttpError(429, retry_after=7), "rate_limit_exceeded"),
        (HttpError(500), "server_error"),
        (HttpError(503, message="overloaded", retry_after="2"), "server_error"),
    ],
)
async def test_http_errors_are_openai_shaped(
    server: LocalModelServer, client: httpx.AsyncClient, fault: HttpError, kind: str
) -> None:
    server.enqueue(Reply(fault=fault))

    response = await client.post(f"{server.url}/chat/completions", json=body())

    assert response.status_code == fault.status
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["code"] == kind
    assert response.headers.get("retry-after") == (None if fault.retry_after is None else str(fault.retry_after))
    assert server.closed_streams[0].outcome == "fault"


@pytest.mark.asyncio
async def test_litellm_surfaces_429_with_retry_after(server: LocalModelServer, litellm: Any) -> None:
    server.enqueue(Reply(fault=HttpError(429, retry_after=7)))

    with pytest.raises(litellm.RateLimitError) as caught:
        await litellm_stream(litellm, server)

    assert caught.value.response.headers["retry-after"] == "7"


@pytest.mark.asyncio
async def test_drop_after_n_chunks(server: LocalModelServer, client: httpx.AsyncClient, litellm: Any) -> None:
    server.enqueue(Reply(fault=DropAfter(3)))
    received: list[str] = []
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("POST", f"{server.url}/chat/completions", json=body()) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    received.append(line)
    assert len(received) == 3

    server.enqueue(Reply(fault=DropAfter(2)))
    stream = await litellm_stream(litellm, server)
    got: list[Any] = []
    # litellm wraps a mid-stream transport failure as MidStreamFallbackError(APIConnectionError).
    with pytest.raises(litellm.exceptions.MidStreamFallbackError, match="Connection error") as caught:
        async for chunk in stream:
            got.append(chunk)
    assert text_of(got) == "Local test"
    assert isinstance(caught.value.original_exception, litellm.APIConnectionError)
    assert [r.outcome for r in server.closed_streams] == ["fault", "fault"]


@pytest.mark.asyncio
async def test_malformed_chunk(server: LocalModelServer, client: httpx.AsyncClient, litellm: Any) -> None:
    server.enqueue(Reply(tokens=("a", " b", " c"), fault=MalformedAfter(1)))
    data = await sse(client, server, body())

    parsed: list[Any] = []
    for item in data[:-1]:
        try:
            parsed.append(json.loads(item))
        except json.JSONDecodeError:
            parsed.append("BAD")
    assert parsed.index("BAD") == 1 and parsed.count("BAD") == 1
    assert data[-1] == "[DONE]"

    server.enqueue(Reply(tokens=("a", " b", " c"), fault=MalformedAfter(1)))
    stream = await litellm_stream(litellm, server)
    with pytest.raises(litellm.exceptions.MidStreamFallbackError, match="Unterminated string") as caught:
        await collect(stream)
    assert isinstance(caught.value.original_exception, litellm.APIConnectionError)


@pytest.mark.asyncio
async def test_malformed_chunk_with_invalid_utf8(server: LocalModelServer, client: httpx.AsyncClient) -> None:
    """``MalformedAfter(invalid_utf8=True)``: one complete JSON event whose text holds bytes that are not UTF-8."""
    server.enqueue(Reply(tokens=("a", " b", " c"), fault=MalformedAfter(1, invalid_utf8=True)))
    async with client.stream("POST", f"{server.url}/chat/completions", json=body()) as response:
        raw = b"".join([part async for part in response.aiter_raw()])
    events = [line[len(b"data: ") :] for line in raw.split(b"\n\n") if line.startswith(b"data: ")]
    bad = [n for n, event in enumerate(events) if b"\xff\xfe" in event]
    assert bad == [1]
    with pytest.raises(UnicodeDecodeError):
        events[1].decode("utf-8")
    spoiled = json.loads(events[1].decode("latin-1"))  # otherwise well-formed JSON
    assert spoiled["choices"][0]["delta"]["content"] == "\xff\xfex"
    assert [json.loads(e)["choices"][0]["delta"].get("content") for e in events[2:4]] == [" b", " c"]
    assert events[-1] == b"[DONE]"

    server.enqueue(Reply(tokens=("a", " b"), fault=MalformedAfter(invalid_utf8=True)))
    plain = await client.post(f"{server.url}/chat/completions", json=body(stream=False))
    assert plain.status_code == 200 and b"\xff\xfe" in plain.content


@pytest.mark.asyncio
async def test_faults_on_non_streaming_requests(server: LocalModelServer, client: httpx.AsyncClient) -> None:
    url = f"{server.url}/chat/completions"
    server.enqueue(Reply(fault=DropAfter()))
    with pytest.raises(httpx.RemoteProtocolError):
        await client.post(url, json=body(stream=False))

    server.enqueue(Reply(fault=MalformedAfter()))
    malformed = await client.post(url, json=body(stream=False))
    assert malformed.status_code == 200
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed.text)

    server.enqueue(Reply(fault=EmptyStream()))
    empty = (await client.post(url, json=body(stream=False))).json()
    assert empty["choices"][0]["message"]["content"] == "" and empty["usage"]["completion_tokens"] == 0

    server.enqueue(Reply(fault=StallAfter()))
    with pytest.raises(httpx.ReadTimeout):
        await client.post(url, json=body(stream=False), timeout=0.2)
    assert await server.await_until(lambda: server.active_streams == 0, 2.0)
    outcomes = [(r.fault, r.outcome) for r in server.closed_streams]
    assert outcomes == [
        ("DropAfter", "fault"),
        ("MalformedAfter", "completed"),
        ("EmptyStream", "completed"),
        ("StallAfter", "client_disconnected"),
    ]


@pytest.mark.asyncio
async def test_stall_then_client_cancel_is_seen_by_server(server: LocalModelServer, client: httpx.AsyncClient) -> None:
    server.enqueue(Reply(fault=StallAfter(2)))
    async with client.stream("POST", f"{server.url}/chat/completions", json=body()) as response:
        lines = response.aiter_lines()
        data = [await next_data(lines) for _ in range(2)]
        assert [json.loads(d)["choices"][0]["delta"]["content"] for d in data] == ["Local", " test"]
        reader = asyncio.create_task(next_data(lines))
        done, _ = await asyncio.wait({reader}, timeout=0.2)
        assert not done  # stalled: nothing more arrives...
        assert server.active_streams == 1 and server.open_connections == 1  # ...on a live connection
        closed_at = time.monotonic()
        reader.cancel()  # the consumer gives up, as a disposed subscription would
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await response.aclose()

    assert await server.await_until(lambda: server.active_streams == 0 and server.open_connections == 0, 2.0)
    record = server.closed_streams[0]
    assert record.outcome == "client_disconnected" and record.fault == "StallAfter"
    assert record.events_sent == 2
    assert record.disconnected_at is not None and record.disconnected_at - closed_at < 1.0
    assert record.notice_delay is not None and record.notice_delay < 0.5


async def next_data(lines: AsyncIterator[str]) -> str:
    """The next ``data:`` payload from an httpx ``aiter_lines()`` iterator."""
    async for line in lines:
        if line.startswith("data: "):
            return line[len("data: ") :]
    raise AssertionError("stream ended")


@pytest.mark.asyncio
async def test_slow_first_byte(server: LocalModelServer, client: httpx.AsyncClient) -> None:
    server.enqueue(Reply(tokens=("ok",), fault=SlowFirstByte(0.3)))
    started = time.monotonic()
    data = await sse(client, server, body())
    assert time.monotonic() - started >= 0.3
    assert json.loads(data[0])["choices"][0]["delta"]["content"] == "ok"

    # A client that gives up during the wait is noticed at once, not after the delay.
    server.enqueue(Reply(fault=SlowFirstByte(30)))
    with pytest.raises(httpx.ReadTimeout):
        await client.post(f"{server.url}/chat/completions", json=body(), timeout=0.2)
    assert await server.await_until(lambda: server.active_streams == 0, 2.0)
    assert server.closed_streams[-1].outcome == "client_disconnected"


@pytest.mark.asyncio
async def test_missing_done(server: LocalModelServer, client: httpx.AsyncClient, litellm: Any) -> None:
    server.enqueue(Reply(tokens=("x", " y"), fault=NoDone()))
    data = await sse(client, server, body())
    assert "[DONE]" not in data
    assert json.loads(data[-2])["choices"][0]["finish_reason"] == "stop"

    # litellm treats the end of the HTTP body as the end of the stream: no error.
    server.enqueue(Reply(tokens=("x", " y"), fault=NoDone()))
    assert text_of(await collect(await litellm_stream(litellm, server))) == "x y"


@pytest.mark.asyncio
async def test_empty_streams(server: LocalModelServer, client: httpx.AsyncClient, litellm: Any) -> None:
    server.enqueue(Reply(fault=EmptyStream()))
    assert await sse(client, server, body()) == ["[DONE]"]

    server.enqueue(Reply(fault=EmptyStream(finish=True)))
    finish, usage, done = await sse(client, server, body())
    assert json.loads(finish)["choices"][0] == {
        "index": 0,
        "delta": {},
        "logprobs": None,
        "finish_reason": "stop",
    }
    assert json.loads(usage)["usage"]["completion_tokens"] == 0 and done == "[DONE]"

    # litellm papers over a bare [DONE]: it synthesises a "stop" finish, with no text.
    server.enqueue(Reply(fault=EmptyStream()))
    chunks = await collect(await litellm_stream(litellm, server))
    assert text_of(chunks) == ""


@pytest.mark.asyncio
async def test_per_model_queues_do_not_interfere(server: LocalModelServer, client: httpx.AsyncClient) -> None:
    server.enqueue(Reply(tokens=("A",)), model="model-a")
    server.enqueue(Reply(tokens=("B",)), model="model-b")
    server.enqueue(Reply(tokens=("shared",)))
    server.set_default(Reply(tokens=("default",)))

    async def first_text(model: str) -> str:
        data = await sse(client, server, body(model))
        return str(json.loads(data[0])["choices"][0]["delta"]["content"])

    assert await first_text("model-b") == "B"
    assert await first_text("model-c") == "shared"
    assert await first_text("model-a") == "A"
    assert await first_text("model-a") == "default"
    server.set_default(None)
    assert await first_text("model-a") == "Local"


# --- cancellation: the server sees the client go


@pytest.mark.asyncio
async def test_httpx_client_reading_three_chunks_then_closing(client: httpx.AsyncClient) -> None:
    with LocalModelServer(default_tokens=500, token_delay=0.005) as server:
        async with client.stream("POST", f"{server.url}/chat/completions", json=body()) as response:
            lines = response.aiter_lines()
            assert [await next_data(lines) for _ in range(3)][-1].startswith("{")
            assert server.active_streams == 1
            await response.aclose()

        assert await server.await_until(lambda: server.open_connections == 0 and server.active_streams == 0, 2.0)
        record = server.closed_streams[0]
        assert record.outcome == "client_disconnected"
        assert 3 <= record.events_sent < 500


@pytest.mark.asyncio
async def test_litellm_stream_aclose_closes_the_server_connection(litellm: Any) -> None:
    with LocalModelServer(default_tokens=500, token_delay=0.005) as server:
        stream = await litellm_stream(litellm, server)
        got = [await anext(stream) for _ in range(3)]
        assert text_of(got) == "Local test model"
        assert server.active_streams == 1 and server.open_connections == 1

        await stream.aclose()

        assert await server.await_until(lambda: server.open_connections == 0 and server.active_streams == 0, 2.0)
        assert server.closed_streams[0].outcome == "client_disconnected"


@pytest.mark.asyncio
async def test_stop_releases_a_stalled_stream(client: httpx.AsyncClient) -> None:
    server = LocalModelServer().start()
    server.enqueue(Reply(fault=StallAfter(1)))
    with pytest.raises(httpx.RemoteProtocolError):
        async with client.stream("POST", f"{server.url}/chat/completions", json=body()) as response:
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    server.stop()
    assert server.closed_streams[0].outcome == "server_stopped"
    assert server.open_connections == 0


# --- secrets, sync use, CLI


@pytest.mark.asyncio
async def test_api_key_is_never_stored(server: LocalModelServer, client: httpx.AsyncClient, litellm: Any) -> None:
    await collect(await litellm_stream(litellm, server))
    await sse(client, server, {**body(), "api_key": SECRET})

    records = server.request_records
    assert [r.api_key_present for r in records] == [True, True]
    assert SECRET not in repr(records) and SECRET not in repr(server.requests)
    assert records[1].body["api_key"] == "<redacted>"


def test_sync_use_with_context_manager_and_wait_until() -> None:
    with LocalModelServer(default_tokens=3) as server, httpx.Client(timeout=5.0) as http:
        assert server.url == f"http://127.0.0.1:{server.port}/v1"
        response = http.post(f"{server.url}/chat/completions", json=body(stream=False))
        assert response.json()["choices"][0]["message"]["content"] == "Local test model"
        assert server.wait_until(lambda: len(server.closed_streams) == 1, 2.0)
        assert not server.wait_until(lambda: len(server.closed_streams) == 2, 0.05)
        port = server.port
    with pytest.raises(httpx.ConnectError), httpx.Client() as http:
        http.get(f"http://127.0.0.1:{port}/health")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 99999}, "port must be an int >= 0 and <= 65535, got 99999"),
        ({"port": -1}, "port must be an int >= 0 and <= 65535, got -1"),
        ({"port": "8080"}, "port must be an int >= 0 and <= 65535, got '8080'; pass 8080 without quotes"),
        ({"port": True}, "port must be an int >= 0 and <= 65535, got True"),
        ({"default_tokens": 0}, "default_tokens must be an int >= 1, got 0"),
        ({"default_tokens": 2.5}, "default_tokens must be an int >= 1, got 2.5"),
        ({"token_delay": -0.1}, "token_delay must be a finite number of seconds >= 0, got -0.1"),
        ({"token_delay": float("nan")}, "token_delay must be a finite number of seconds >= 0, got nan"),
        ({"token_delay": "0.1"}, "token_delay must be a finite number of seconds >= 0, got '0.1'"),
        ({"host": ""}, "host must be a non-empty string, got ''"),
        ({"events_per_write": 0}, "events_per_write must be an int >= 1, got 0; 1 writes each event alone"),
        ({"distinct_tokens": "yes"}, "distinct_tokens must be True or False, got 'yes'"),
    ],
)
def test_bad_arguments_are_refused_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        LocalModelServer(**kwargs)
    assert str(caught.value).startswith(message)


def test_good_arguments_are_kept() -> None:
    server = LocalModelServer("127.0.0.1", 0, default_tokens=1, token_delay=0)
    assert (server.host, server.default_tokens, server.token_delay) == ("127.0.0.1", 1, 0.0)
    assert isinstance(server.token_delay, float)


def test_fault_alias_covers_every_kind() -> None:
    kinds = [
        HttpError(),
        DropAfter(),
        MalformedAfter(),
        StallAfter(),
        SlowFirstByte(),
        NoDone(),
        EmptyStream(),
    ]
    assert all(isinstance(kind, Fault) for kind in kinds)
    assert not isinstance(Reply(), Fault)


def test_serve_main_prints_url_and_serves_until_interrupted() -> None:
    root = Path(__file__).resolve().parents[2]
    code = "import sys; from rxagents.testing._server import serve_main; sys.exit(serve_main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": str(root)}
    with subprocess.Popen(
        [sys.executable, "-c", code, "--port", "0", "--tokens", "2", "--first-byte-delay", "0.3"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    ) as process:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        url = line.rsplit(" ", 1)[-1]
        assert line.startswith("Local OpenAI-compatible test model at http://127.0.0.1:")
        started = time.monotonic()
        reply = httpx.post(f"{url}/chat/completions", json=body(stream=False), timeout=5.0)
        assert time.monotonic() - started >= 0.3  # --first-byte-delay: the reply waited before it began
        assert reply.json()["choices"][0]["message"]["content"] == "Local test"
        process.send_signal(2)  # SIGINT, i.e. Ctrl-C
        assert process.wait(timeout=5) == 0


def test_serve_main_reports_a_busy_port(capsys: pytest.CaptureFixture[str]) -> None:
    with LocalModelServer() as server:
        assert serve_main(["--port", str(server.port)]) == 1
    assert "cannot listen" in capsys.readouterr().err


def test_exported_fixture_serves(request: pytest.FixtureRequest) -> None:
    exported = request.getfixturevalue("local_model_server")
    assert isinstance(exported, LocalModelServer)
    assert httpx.get(exported.url.removesuffix("/v1") + "/health", timeout=5.0).json() == {"status": "ok"}
