"""The litellm backend through real HTTP to the local OpenAI-compatible server."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest

from rxagents import _runtime
from rxagents.errors import ModelError
from rxagents.events import EventKind
from rxagents.models import Delta, LiteLLMModel, ModelRequest
from rxagents.testing._faults import DropAfter, HttpError, Reply, ToolCallSpec, words
from rxagents.testing._server import LocalModelServer

_names = itertools.count()
_T = TypeVar("_T")


def run(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run on the persistent rxagents runtime loop (litellm's HTTP clients are cached per loop)."""
    return asyncio.run_coroutine_threadsafe(coro, _runtime.runtime_loop()).result(timeout=30)
SECRET = "sk-rxagents-test-SECRET-4242"


def _setup(server: LocalModelServer, reply: Reply) -> ModelRequest:
    name = f"lite-{next(_names)}"
    server.enqueue(reply, model=name)
    return ModelRequest(
        model=f"openai/{name}",
        messages=[{"role": "user", "content": "Say hello"}],
        api_base=server.url,
        api_key=SECRET,
    )


async def _collect(request: ModelRequest) -> list[Delta]:
    return [d async for d in LiteLLMModel().stream(request)]


def test_text_arrives_in_order_then_usage_and_finish(model_server: LocalModelServer) -> None:
    request = _setup(model_server, Reply(tokens=words("Hello streaming world, in order.")))
    deltas = run(_collect(request))
    tokens = [d.text for d in deltas if d.kind is EventKind.TOKEN]
    assert tokens == list(words("Hello streaming world, in order."))
    assert [d.kind for d in deltas[-2:]] == [EventKind.USAGE, EventKind.FINISH]
    usage = deltas[-2].usage
    assert usage is not None and usage.completion_tokens == len(tokens) and usage.total_tokens > 0
    assert deltas[-1].finish_reason == "stop"


def test_usage_is_requested_and_litellm_retries_are_off(model_server: LocalModelServer) -> None:
    request = _setup(model_server, Reply(tokens=("ok",)))
    run(_collect(request))
    body = next(b for b in reversed(model_server.requests) if b["model"] == request.model.split("/", 1)[1])
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_reasoning_deltas_are_mapped(model_server: LocalModelServer) -> None:
    request = _setup(model_server, Reply(tokens=("Answer.",), reasoning=("Think", "ing...")))
    deltas = run(_collect(request))
    assert "".join(d.text for d in deltas if d.kind is EventKind.REASONING) == "Thinking..."
    assert deltas.index(next(d for d in deltas if d.kind is EventKind.TOKEN)) > 0


def test_tool_call_deltas_reassemble(model_server: LocalModelServer) -> None:
    args = json.dumps({"city": "Paris", "unit": "celsius"})
    request = _setup(model_server, Reply(tokens=(), tool_calls=(ToolCallSpec("get_weather", args, pieces=4),)))
    deltas = run(_collect(request))
    calls = [d.tool_call for d in deltas if d.tool_call is not None]
    assert len(calls) >= 4
    assert next(c.name for c in calls if c.name) == "get_weather"
    assert json.loads("".join(c.arguments for c in calls)) == {"city": "Paris", "unit": "celsius"}
    assert deltas[-1].finish_reason == "tool_calls"


def test_rate_limit_becomes_model_error_with_retry_after(model_server: LocalModelServer) -> None:
    request = _setup(model_server, Reply(fault=HttpError(429, retry_after=3)))
    with pytest.raises(ModelError) as info:
        run(_collect(request))
    assert info.value.status_code == 429
    assert info.value.retry_after == 3.0
    assert SECRET not in str(info.value)


def test_dropped_connection_is_an_error_not_a_short_answer(model_server: LocalModelServer) -> None:
    request = _setup(model_server, Reply(tokens=words("one two three four five"), fault=DropAfter(2)))
    got: list[str] = []

    async def consume() -> None:
        async for d in LiteLLMModel().stream(request):
            got.append(d.text)

    with pytest.raises(ModelError):
        run(consume())
    assert "".join(got) in ("", "one", "one two")


def test_the_api_key_is_sent_but_never_recorded(model_server: LocalModelServer) -> None:
    request = _setup(model_server, Reply(tokens=("ok",)))
    run(_collect(request))
    record = model_server.request_records[-1]
    assert SECRET not in repr(record)
    assert SECRET not in repr(request)


def test_first_litellm_import_happens_off_the_event_loop() -> None:
    import threading

    from rxagents.models import _litellm

    seen: list[str] = []
    real = _litellm.import_litellm

    def spy() -> Any:
        seen.append(threading.current_thread().name)
        return real()

    saved, _litellm._litellm = _litellm._litellm, None
    _litellm.import_litellm = spy  # type: ignore[assignment]
    try:
        run(LiteLLMModel().aprepare())
    finally:
        _litellm.import_litellm = real  # type: ignore[assignment]
        _litellm._litellm = saved or real()
    assert seen and seen[0] != "rxagents-runtime"  # a worker thread, not the loop's thread


# --- reading litellm's chunk objects: _field is getattr(obj, name, None), without pydantic's slow path -------------
_CHUNK_FIELDS = ("usage", "choices", "delta", "content", "reasoning_content", "tool_calls", "finish_reason",
                 "total_tokens", "prompt_tokens", "completion_tokens", "role", "index", "nonexistent")  # fmt: skip


def _objects_in(chunk: Any) -> list[Any]:
    """The chunk and the objects the backend reads in it: its choices, their deltas, its usage."""
    found = [chunk]
    usage = getattr(chunk, "usage", None)
    if usage is not None:
        found.append(usage)
    for choice in getattr(chunk, "choices", None) or ():
        found.append(choice)
        if getattr(choice, "delta", None) is not None:
            found.append(choice.delta)
    return found


def test_field_reads_what_getattr_reads_on_every_object_of_a_real_stream(model_server: LocalModelServer) -> None:
    from rxagents.models._litellm import _field, import_litellm

    litellm = import_litellm()
    request = _setup(model_server, Reply(tokens=("Answer",), reasoning=("Think",)))
    tools = _setup(model_server, Reply(tokens=(), tool_calls=(ToolCallSpec("f", '{"a": 1}', pieces=2),)))

    async def chunks(req: ModelRequest) -> list[Any]:
        response = await litellm.acompletion(
            model=req.model, messages=req.messages, api_base=req.api_base, api_key=req.api_key,
            stream=True, stream_options={"include_usage": True}, max_retries=0,
        )  # fmt: skip
        return [chunk async for chunk in response]

    objects = [obj for req in (request, tools) for chunk in run(chunks(req)) for obj in _objects_in(chunk)]
    kinds = {type(obj).__name__ for obj in objects}
    assert {"ModelResponseStream", "StreamingChoices", "Delta", "Usage"} <= kinds
    for name in ("usage", "content", "reasoning_content", "tool_calls", "finish_reason"):  # each is set somewhere
        assert any(getattr(obj, name, None) for obj in objects), name
    for obj in objects:
        for name in _CHUNK_FIELDS:
            assert _field(obj, name) == getattr(obj, name, None), (type(obj).__name__, name)


def test_field_defers_to_getattr_for_class_attributes_and_plain_objects() -> None:
    import types

    import pydantic

    from rxagents.models._litellm import _field

    class Model(pydantic.BaseModel, extra="allow"):
        kept: int = 1

        @property
        def shown(self) -> str:
            return "from the property"

    model = Model(extra_one=2)
    assert (_field(model, "kept"), _field(model, "extra_one"), _field(model, "shown")) == (1, 2, "from the property")
    assert _field(model, "missing") is None
    del model.kept  # what litellm does with a field a chunk lacks
    assert _field(model, "kept") is None and getattr(model, "kept", None) is None
    plain = types.SimpleNamespace(content="text")
    assert (_field(plain, "content"), _field(plain, "missing")) == ("text", None)
