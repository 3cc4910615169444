"""The direct backend through real HTTP to the local OpenAI-compatible server (and, for parity, litellm)."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxagents import _runtime
from rxagents.errors import (
    ConfigurationError,
    EmptyStreamError,
    MalformedStreamError,
    ModelError,
    ProviderUnavailable,
    RateLimitError,
    StreamCutError,
)
from rxagents.events import EventKind, Usage
from rxagents.models import Delta, LiteLLMModel, ModelBackend, ModelRequest, OpenAICompatibleModel
from rxagents.models._http_pool import proxy_for
from rxagents.models._openai_compat import _loads
from rxagents.models._openai_compat_errors import MAX_SHOWN
from rxagents.testing._faults import HttpError, RawBody, Reply, StallAfter, ToolCallSpec, words
from rxagents.testing._server import LocalModelServer
from tests.leak_search import secret_paths

# litellm 1.110.2 touches deprecated pydantic instance attributes on usage chunks (not ours to fix).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Accessing the 'model_(computed_)?fields' attribute on the instance is deprecated:DeprecationWarning"
)

_names = itertools.count()
_T = TypeVar("_T")
SECRET = "sk-direct-test-SECRET-4242"


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run on the persistent rxagents runtime loop (its pooled session serves every test)."""
    return asyncio.run_coroutine_threadsafe(coro, _runtime.runtime_loop()).result(timeout=30)


def _setup(server: LocalModelServer, reply: Reply, **options: Any) -> ModelRequest:
    name = f"direct-{next(_names)}"
    server.enqueue(reply, model=name)
    return ModelRequest(model=name, messages=[{"role": "user", "content": "Say hello"}], api_base=server.url,
                        api_key=SECRET, **options)  # fmt: skip


async def _collect(request: ModelRequest, model: ModelBackend | None = None) -> list[Delta]:
    return [d async for d in (model or OpenAICompatibleModel()).stream(request)]


def _fail(request: ModelRequest) -> ModelError:
    with pytest.raises(ModelError) as info:
        run(_collect(request))
    return info.value


def _raw(server: LocalModelServer, *chunks: bytes) -> ModelRequest:
    return _setup(server, Reply(fault=RawBody(chunks)))


def _chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return b"data: " + json.dumps({"object": "chat.completion.chunk", "choices": [choice]}).encode() + b"\n\n"


STOP = _chunk({}, "stop")


# --- what comes out ------------------------------------------------------------------------------------------


def test_text_arrives_in_order_then_usage_and_finish(model_server: LocalModelServer) -> None:
    deltas = run(_collect(_setup(model_server, Reply(tokens=words("Hello streaming world, in order.")))))
    tokens = [d.text for d in deltas if d.kind is EventKind.TOKEN]
    assert tokens == list(words("Hello streaming world, in order."))
    assert [d.kind for d in deltas[-2:]] == [EventKind.USAGE, EventKind.FINISH]
    usage = deltas[-2].usage
    assert usage is not None and usage.completion_tokens == len(tokens) and usage.total_tokens > 0
    assert deltas[-1].finish_reason == "stop"


REPLIES = {
    "text": Reply(tokens=words("one two three")),
    "reasoning": Reply(tokens=("Answer.",), reasoning=("Think", "ing...")),
    "tool-calls": Reply(
        tokens=(), tool_calls=(ToolCallSpec("get_weather", '{"city": "Paris"}', pieces=4), ToolCallSpec("get_time"))
    ),
    "length": Reply(tokens=words("cut short"), finish_reason="length"),
    "usage": Reply(tokens=("x",), usage=Usage(11, 22, 33)),
}


@pytest.mark.parametrize("reply", list(REPLIES))
def test_the_same_deltas_as_the_litellm_backend(model_server: LocalModelServer, reply: str) -> None:
    direct = run(_collect(_setup(model_server, REPLIES[reply])))
    request = _setup(model_server, REPLIES[reply])
    lite = run(_collect(ModelRequest(**{**_fields(request), "model": f"openai/{request.model}"}), LiteLLMModel()))
    assert direct == lite


def _fields(request: ModelRequest) -> dict[str, Any]:
    return {name: getattr(request, name) for name in ModelRequest.__dataclass_fields__}


def test_reasoning_under_either_field_name(model_server: LocalModelServer) -> None:
    request = _raw(model_server, _chunk({"reasoning": "why"}), _chunk({"reasoning_content": " so"}),
                   _chunk({"reasoning": "dup", "reasoning_content": " x"}), STOP, b"data: [DONE]\n\n")  # fmt: skip
    deltas = run(_collect(request))
    assert [d.text for d in deltas if d.kind is EventKind.REASONING] == ["why", " so", " x"]


def test_the_last_usage_counts(model_server: LocalModelServer) -> None:
    usage = b'data: {"choices": [], "usage": {"prompt_tokens": %d, "completion_tokens": 1, "total_tokens": %d}}\n\n'
    request = _raw(model_server, _chunk({"content": "a"}), usage % (1, 2), STOP, usage % (5, 6),
                   b'data: {"choices": [], "usage": {"prompt_tokens": 9}}\n\n', b"data: [DONE]\n\n")  # fmt: skip
    deltas = run(_collect(request))
    assert deltas[-2].usage == Usage(5, 1, 6)


# --- how a stream ends ---------------------------------------------------------------------------------------


def test_anything_after_done_is_ignored(model_server: LocalModelServer) -> None:
    request = _raw(model_server, _chunk({"content": "kept"}), STOP, b"data: [DONE]\n\n", _chunk({"content": "NO"}),
                   b"\xff garbage\n\n")  # fmt: skip
    assert [d.text for d in run(_collect(request)) if d.kind is EventKind.TOKEN] == ["kept"]


def test_done_without_a_finish_reason_is_a_stop(model_server: LocalModelServer) -> None:
    deltas = run(_collect(_raw(model_server, _chunk({"content": "a"}), b"data: [DONE]\n\n")))
    assert deltas[-1].finish_reason == "stop"


def test_a_finish_without_done_is_complete(model_server: LocalModelServer) -> None:
    deltas = run(_collect(_raw(model_server, _chunk({"content": "a"}), STOP)))
    assert [d.kind for d in deltas] == [EventKind.TOKEN, EventKind.FINISH]


def test_an_end_without_finish_or_done_is_a_cut(model_server: LocalModelServer) -> None:
    error = _fail(_raw(model_server, _chunk({"content": "a"})))
    assert type(error) is StreamCutError


def test_only_done_is_an_empty_stream(model_server: LocalModelServer) -> None:
    assert type(_fail(_raw(model_server, b": ping\n\n", b"data: [DONE]\n\n"))) is EmptyStreamError


@pytest.mark.parametrize(
    ("event", "what"),
    [
        (b"data: [1, 2]\n\n", "a JSON list"),
        (b'data: {"choices": 7}\n\n', "'choices' is not a list"),
        (b'data: {"choices": [null]}\n\n', "a choice is not an object"),
        (b'data: {"choices": [{"delta": "x"}]}\n\n', "'delta' is not an object"),
        (b'data: {"choices": [{"delta": {"content": 5}}]}\n\n', "'content' that is not a string"),
        (b'data: {"choices": [{"delta": {"tool_calls": [{"index": "0"}]}}]}\n\n', "wrong type"),
        (b'data: {"choices": [], "usage": {"total_tokens": "9"}}\n\n', "not integers"),
        (b"data: {\n\n", "invalid JSON"),
        (b'data: {"choices": []}\xff\n\n', "invalid UTF-8"),
    ],
)
def test_a_bad_chunk_is_malformed_after_the_text_before_it(
    model_server: LocalModelServer, event: bytes, what: str
) -> None:
    got: list[str] = []

    async def consume(request: ModelRequest) -> None:
        async for delta in OpenAICompatibleModel().stream(request):
            got.append(delta.text)

    with pytest.raises(MalformedStreamError, match=what):
        run(consume(_raw(model_server, _chunk({"content": "before"}) + event + _chunk({"content": "after"}))))
    assert got == ["before"]  # the same network chunk: what came before the bad event was handed on first


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)
_SPACE = st.sampled_from(["", " ", "\t", "\r\n", "\ufeff"])


@given(
    text=st.one_of(
        st.builds(lambda value, before, after: before + json.dumps(value) + after, _JSON, _SPACE, _SPACE),
        st.builds(lambda value, junk: json.dumps(value) + junk, _JSON, st.text(max_size=4)),
        st.builds(lambda value, cut: json.dumps(value)[:cut], _JSON, st.integers(0, 40)),
        st.text(max_size=20),
    )
)
def test_chunks_parse_as_json_loads_parses_them(text: str) -> None:
    """The shortcut past json.loads' wrapper gives its value, or its error, for any text."""
    try:
        expected: Any = json.loads(text)
    except ValueError as error:
        with pytest.raises(type(error)) as raised:
            _loads(text)
        assert str(raised.value) == str(error)
    else:
        assert _loads(text) == expected


def test_a_json_document_instead_of_a_stream_is_malformed(model_server: LocalModelServer) -> None:
    request = _setup(model_server, Reply(tokens=("x",)))
    model = OpenAICompatibleModel()  # as if the server ignored stream=true: it answers one JSON document
    model._body = lambda request, host: json.dumps(  # type: ignore[method-assign]
        {"model": request.model, "messages": list(request.messages), "stream": False}
    ).encode()
    with pytest.raises(MalformedStreamError, match="ignored stream=true"):
        run(_collect(request, model))


# --- errors --------------------------------------------------------------------------------------------------


def test_an_error_event_mid_stream_keeps_its_status(model_server: LocalModelServer) -> None:
    error = b'data: {"error": {"message": "Upstream overloaded", "code": 503}}\n\n'
    failure = _fail(_raw(model_server, _chunk({"content": "a"}), error))
    assert type(failure) is ProviderUnavailable and failure.status_code == 503
    assert "Upstream overloaded" in str(failure) and "mid-stream" in str(failure)
    limited = _fail(_raw(model_server, b'data: {"error": {"message": "slow down", "code": "429"}}\n\n'))
    assert type(limited) is RateLimitError and limited.status_code == 429
    flat = _fail(_raw(model_server, b'data: {"error": "flat"}\n\n'))
    assert type(flat) is ModelError and flat.status_code is None and "flat" in str(flat)


def test_an_http_error_names_the_providers_message_scrubbed_and_short(model_server: LocalModelServer) -> None:
    message = f"Incorrect API key provided: {SECRET}. " + "blah " * 400
    failure = _fail(_setup(model_server, Reply(fault=HttpError(401, message))))
    assert type(failure) is ModelError and failure.status_code == 401
    assert "Incorrect API key provided: ***" in str(failure) and SECRET not in str(failure)
    assert len(str(failure)) < MAX_SHOWN + 100 and str(failure).endswith("…")
    cause = failure.__cause__
    assert cause is not None and type(cause).__module__.startswith("aiohttp") and "401" in str(cause)
    assert secret_paths(failure, SECRET) == []


def test_retry_after_as_an_http_date_is_read_against_the_servers_date(model_server: LocalModelServer) -> None:
    from email.utils import formatdate
    from time import time

    failure = _fail(_setup(model_server, Reply(fault=HttpError(429, retry_after=formatdate(time() + 30, usegmt=True)))))
    assert type(failure) is RateLimitError and failure.retry_after is not None
    assert 28 <= failure.retry_after <= 31  # whole seconds on both sides of the subtraction


def test_a_redirect_is_not_followed(model_server: LocalModelServer) -> None:
    """A 307 keeps the POST (and would carry the key to wherever it points): it is reported, not followed."""
    from aiohttp import web

    request = _setup(model_server, Reply(tokens=("x",)))
    target = f"{model_server.url}/chat/completions"

    async def redirect(_: web.BaseRequest) -> web.StreamResponse:
        return web.Response(status=307, headers={"Location": target})

    async def through_redirect() -> ModelError:
        runner = web.ServerRunner(web.Server(redirect))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            moved = ModelRequest(**{**_fields(request), "api_base": f"http://127.0.0.1:{port}/v1"})
            with pytest.raises(ModelError) as info:
                await _collect(moved)
            return info.value
        finally:
            await runner.cleanup()

    before = len(model_server.request_records)
    failure = run(through_redirect())
    assert failure.status_code == 307 and "redirects to" in str(failure) and target in str(failure)
    assert len(model_server.request_records) == before  # nothing reached the target


# --- connections ---------------------------------------------------------------------------------------------


def test_the_key_goes_in_the_header_only(model_server: LocalModelServer) -> None:
    request = _setup(model_server, Reply(tokens=("ok",)), temperature=0.5, max_tokens=7)
    run(_collect(request))
    record = next(r for r in reversed(model_server.request_records) if r.body["model"] == request.model)
    assert record.api_key_present and SECRET not in repr(record.body)
    assert record.body["stream"] is True and record.body["stream_options"] == {"include_usage": True}
    assert (record.body["temperature"], record.body["max_tokens"]) == (0.5, 7)
    assert SECRET not in repr(OpenAICompatibleModel()) and SECRET not in repr(request)


def test_a_query_in_api_base_stays_at_the_end_of_the_url(model_server: LocalModelServer) -> None:
    request = _setup(model_server, Reply(tokens=("ok",)))
    queried = ModelRequest(**{**_fields(request), "api_base": model_server.url + "/?api-version=2024-10-21"})
    assert [d.text for d in run(_collect(queried)) if d.kind is EventKind.TOKEN] == ["ok"]


def test_openais_own_api_gets_max_completion_tokens() -> None:
    request = ModelRequest(model="gpt-4o", messages=[], max_tokens=9)
    assert json.loads(OpenAICompatibleModel()._body(request, "api.openai.com"))["max_completion_tokens"] == 9
    assert json.loads(OpenAICompatibleModel()._body(request, "127.0.0.1"))["max_tokens"] == 9


def test_one_pooled_connection_serves_consecutive_requests() -> None:
    with LocalModelServer() as server:  # a server of its own: its connections are this test's only

        async def three() -> list[int]:
            counts = []
            for _ in range(3):
                await _collect(_setup(server, Reply(tokens=("a", "b"))))
                counts.append(server.open_connections)
            return counts

        assert run(three()) == [1, 1, 1]  # kept alive and reused, not one per request


def test_closing_the_iterator_closes_the_connection_at_once(model_server: LocalModelServer) -> None:
    request = _setup(model_server, Reply(tokens=words("a b c d"), fault=StallAfter(2)))

    async def two_then_close() -> None:
        stream = OpenAICompatibleModel().stream(request)
        assert [(await anext(stream)).text for _ in range(2)] == ["a", " b"]
        await stream.aclose()  # type: ignore[attr-defined]

    run(two_then_close())

    def disconnected() -> bool:
        return any(s.model == request.model and s.outcome == "client_disconnected" for s in model_server.closed_streams)

    assert model_server.wait_until(disconnected)


def test_a_loop_that_ends_closes_its_pooled_connections(model_server: LocalModelServer) -> None:
    before = model_server.open_connections
    asyncio.run(_collect(_setup(model_server, Reply(tokens=("a",)))))
    assert model_server.wait_until(lambda: model_server.open_connections <= before, 5)


def test_a_loop_that_takes_no_cleanup_gets_a_session_per_request(
    model_server: LocalModelServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """uvloop's loops take no attributes, so no pooled session could be closed at their shutdown: each request
    then opens a session of its own and closes it with its stream (nothing left open, no ResourceWarning)."""
    import gc

    from rxagents.models import _http_pool

    async def refused(name: str, cleanup: Any) -> bool:
        return False

    monkeypatch.setattr(_http_pool, "at_loop_shutdown", refused)
    before = model_server.open_connections

    async def two() -> list[list[Delta]]:
        return [await _collect(_setup(model_server, Reply(tokens=("a",)))) for _ in range(2)]

    results = asyncio.run(two())
    gc.collect()  # an unclosed session or connector would warn here (warnings are errors in this suite)
    assert [[d.text for d in r if d.kind is EventKind.TOKEN] for r in results] == [["a"], ["a"]]
    assert model_server.wait_until(lambda: model_server.open_connections <= before, 5)


@pytest.mark.parametrize(
    ("env", "url", "proxy"),
    [
        ({}, "https://api.openai.com/v1/chat/completions", None),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "https://api.openai.com/v1/chat/completions", "http://proxy:3128"),
        ({"HTTPS_PROXY": "http://proxy:3128"}, "http://127.0.0.1:8000/v1/chat/completions", None),
        ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1"}, "http://127.0.0.1:8000/v1/chat/completions", None),
        ({"ALL_PROXY": "http://p:2"}, "http://host.test/v1/chat/completions", "http://p:2"),
    ],
)
def test_proxies_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], url: str, proxy: str | None
) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "NO_PROXY", "https_proxy", "http_proxy", "all_proxy",
                 "no_proxy"):  # fmt: skip
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    from urllib.parse import urlsplit

    assert proxy_for(url, urlsplit(url).hostname or "") == proxy


@pytest.mark.parametrize(
    ("options", "match"),
    [({"connect_timeout": 0}, "connect_timeout must be"), ({"max_connections": 0}, "max_connections must be"),
     ({"connect_timeout": "10"}, "connect_timeout must be")],
)  # fmt: skip
def test_bad_options_are_refused(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        OpenAICompatibleModel(**options)


def test_repr_shows_only_what_differs_from_the_defaults() -> None:
    assert repr(OpenAICompatibleModel()) == "OpenAICompatibleModel()"
    assert repr(OpenAICompatibleModel(connect_timeout=2, max_connections=10)) == (
        "OpenAICompatibleModel(connect_timeout=2, max_connections=10)"
    )
    assert OpenAICompatibleModel().name == "direct"
