"""Agent: the Observable in virtual time, the swarms-style run/arun/astream, and real HTTP runs."""

from __future__ import annotations

import asyncio
import itertools
import threading
from typing import Any

import pytest
from reactivex import operators as ops
from reactivex.testing import ReactiveTest, TestScheduler

from rxagents import Agent, ConfigurationError, EventKind, OfflineModel, RunError, TokenEvent, _drive
from rxagents.testing._faults import Reply, StallAfter, words
from rxagents.testing._server import LocalModelServer

_names = itertools.count()


def _offline(text: str = "Hello world, streams!", **kw: Any) -> Agent:
    return Agent(agent_name="A", llm=OfflineModel(text=text, **kw), print_on=False)


def _served(server: LocalModelServer, reply: Reply | None = None, **kw: Any) -> Agent:
    name = f"agent-{next(_names)}"
    if reply is not None:
        server.enqueue(reply, model=name)
    return Agent(agent_name="Served", model_name=name, api_base=server.url, api_key="sk-test-key-1234", **kw)


# --- the Observable, in virtual time ----------------------------------------------------------------------
def test_offline_run_is_a_marble_in_virtual_time() -> None:
    scheduler = TestScheduler()
    agent = _offline(pace=5.0)
    results = scheduler.start(lambda: agent.stream("task", scheduler=scheduler))
    times = [m.time for m in results.messages]
    events: list[TokenEvent] = [m.value.value for m in results.messages[:-1]]
    assert times == [200, 205, 210, 215, 220, 225, 230, 230, 230, 230]
    assert [e.kind for e in events] == [EventKind.START] + [EventKind.TOKEN] * 6 + [EventKind.USAGE, EventKind.FINISH]
    assert "".join(e.text for e in events) == "Hello world, streams!"
    assert [e.seq for e in events] == list(range(9))
    assert [e.time for e in events[:3]] == [200.0, 205.0, 210.0]
    assert results.messages[-1].value.kind == "C"


def test_disposing_stops_the_run_in_virtual_time() -> None:
    scheduler = TestScheduler()
    agent = _offline(pace=5.0)
    results = scheduler.start(lambda: agent.stream("task", scheduler=scheduler), disposed=212)
    assert [m.time for m in results.messages] == [200, 205, 210]


def test_after_dispose_nothing_more_is_scheduled() -> None:
    scheduler = TestScheduler()
    got: list[TokenEvent] = []
    subscription = _offline(pace=5.0).stream("task", scheduler=scheduler).subscribe(got.append)
    scheduler.advance_to(7.0)
    subscription.dispose()
    subscription.dispose()  # idempotent
    scheduler.advance_by(100.0)
    assert [e.seq for e in got] == [0, 1]


def test_the_observable_is_cold_each_subscription_a_new_run() -> None:
    scheduler = TestScheduler()
    stream = _offline(pace=1.0).stream("task", scheduler=scheduler)
    first: list[TokenEvent] = []
    second: list[TokenEvent] = []
    stream.subscribe(first.append)
    scheduler.advance_by(2.5)
    stream.subscribe(second.append)
    scheduler.start()
    assert [e.text for e in first] == [e.text for e in second]
    assert first[0].run_id != second[0].run_id
    assert second[0].time == first[0].time + 2.5


def test_stream_with_run_id_names_every_event_in_virtual_time_and_on_a_loop() -> None:
    scheduler = TestScheduler()
    virtual: list[TokenEvent] = []
    _offline(pace=1.0).stream("task", scheduler=scheduler, run_id="run-chosen").subscribe(virtual.append)
    scheduler.start()

    async def on_loop() -> list[TokenEvent]:
        got: list[TokenEvent] = []
        done = asyncio.get_running_loop().create_future()
        _offline().stream("task", run_id="run-chosen").subscribe(got.append, done.set_exception,
                                                                  lambda: done.set_result(None))
        await done
        return got

    looped = asyncio.run(on_loop())
    for events in (virtual, looped):
        assert events[-1].kind is EventKind.FINISH
        assert {e.run_id for e in events} == {"run-chosen"}
        assert [e.seq for e in events] == list(range(len(events)))


@pytest.mark.parametrize("run_id", ["", "  ", 7])
def test_stream_refuses_a_bad_run_id(run_id: object) -> None:
    with pytest.raises(ConfigurationError, match="run_id must be a non-empty string"):
        _offline().stream("task", run_id=run_id)  # type: ignore[arg-type]


def test_a_failing_run_ends_with_an_error_event_then_on_error() -> None:
    scheduler = TestScheduler()
    results = scheduler.start(lambda: _offline(pace=1.0, fail_after=2).stream("task", scheduler=scheduler))
    *events, error = results.messages
    assert [m.value.value.kind for m in events] == [EventKind.START, EventKind.TOKEN, EventKind.TOKEN, EventKind.ERROR]
    assert error.value.kind == "E"
    assert error.value.exception.partial_text == "Hello world"


def test_max_loops_runs_each_loop_on_the_conversation_so_far() -> None:
    scheduler = TestScheduler()
    agent = Agent(agent_name="L", llm=OfflineModel(length=8), max_loops=3, print_on=False)
    results = scheduler.start(lambda: agent.stream("Explain streams", scheduler=scheduler))
    events = [m.value.value for m in results.messages if m.value.kind == "N"]
    assert sorted({e.loop for e in events if e.kind is EventKind.TOKEN}) == [1, 2, 3]
    assert [e.kind for e in events].count(EventKind.FINISH) == 1
    loop2 = "".join(e.text for e in events if e.loop == 2 and e.kind is EventKind.TOKEN)
    assert "loop 2" in loop2


def test_pipeline_operators_compose_on_the_agent_stream() -> None:
    scheduler = TestScheduler()
    stream = _offline(pace=1.0).stream("task", scheduler=scheduler).pipe(
        ops.filter(lambda e: e.kind is EventKind.TOKEN), ops.map(lambda e: e.text), ops.take(2)
    )
    results = scheduler.start(lambda: stream)
    assert results.messages == [ReactiveTest.on_next(201, "Hello"), ReactiveTest.on_next(202, " world"),
                                ReactiveTest.on_completed(202)]


# --- run / arun / astream ---------------------------------------------------------------------------------
def test_run_returns_the_answer_and_prints_header_rule_and_text(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(agent_name="Streaming-Agent", llm=OfflineModel(text="Neural networks learn."), streaming_on=True)
    assert agent.run("Explain neural networks") == "Neural networks learn."
    out = capsys.readouterr().out
    assert out.startswith("🤖 Agent: Streaming-Agent | Loops: 1\n━")
    assert "Neural networks learn." in out


def test_print_on_false_prints_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    agent = Agent(llm=OfflineModel(), streaming_on=True, print_on=False)
    assert "offline model" in agent.run("Generate a report")
    assert capsys.readouterr().out == ""


def test_streaming_callback_gets_each_text_delta_on_the_calling_thread() -> None:
    seen: list[str] = []
    threads: set[int] = set()

    def callback(token: str) -> None:
        seen.append(token)
        threads.add(threading.get_ident())

    answer = _offline().run("task", streaming_callback=callback)
    assert seen == ["Hello", " world", ",", " str", "eams", "!"]
    assert "".join(seen) == answer
    assert threads == {threading.get_ident()}


def test_detailed_mode_gives_dicts_with_content_usage_finish_reason() -> None:
    dicts: list[dict[str, Any]] = []
    agent = Agent(llm=OfflineModel(text="Hi there"), stream=True, print_on=False)
    agent.run("task", streaming_callback=dicts.append)
    assert all({"type", "agent", "run_id", "seq", "loop", "time", "model"} <= d.keys() for d in dicts)
    # each key only where the event has it: the spec's `'usage' in info` is true once, at the end
    assert [d["type"] for d in dicts if "content" in d] == ["token"] * (len(dicts) - 3)
    assert "".join(d["content"] for d in dicts if "content" in d) == "Hi there"
    assert [d["type"] for d in dicts if "usage" in d] == ["usage"]
    assert dicts[-2]["usage"]["total_tokens"] > 0
    assert [d["type"] for d in dicts if "finish_reason" in d] == ["finish"]
    assert dicts[-1]["finish_reason"] == "stop"


def test_failed_run_raises_run_error_with_partial_text_and_events() -> None:
    with pytest.raises(RunError) as info:
        _offline(fail_after=3).run("task")
    assert info.value.partial_text == "Hello world,"
    assert [e.kind for e in info.value.events][-1] is EventKind.ERROR


def test_callback_error_policy_raise_stops_the_run_with_partial_text() -> None:
    def callback(token: str) -> None:
        if token == ",":
            raise ValueError("bad token")

    agent = Agent(llm=OfflineModel(text="Hello world, streams!"), print_on=False, on_callback_error="raise")
    with pytest.raises(RunError) as info:
        agent.run("task", streaming_callback=callback)
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.partial_text == "Hello world,"


def test_run_works_inside_a_running_event_loop() -> None:
    async def notebook_cell() -> str:
        return _offline().run("task")  # a sync call from inside a loop, as in Jupyter

    assert asyncio.run(notebook_cell()) == "Hello world, streams!"


def _on_loop_thread(threads: set[int]) -> Any:
    """A plain callback that records its thread and needs a running loop there (``create_task`` does)."""

    def callback(token: str) -> None:
        asyncio.get_running_loop()  # RuntimeError off the loop's thread
        threads.add(threading.get_ident())

    return callback


def test_arun_calls_callbacks_on_the_loop_thread() -> None:
    threads: set[int] = set()

    async def main() -> tuple[str, int]:
        text = await _offline().arun("task", streaming_callback=_on_loop_thread(threads))
        return text, threading.get_ident()

    text, loop_thread = asyncio.run(main())
    assert text == "Hello world, streams!"
    assert threads == {loop_thread}  # the loop's own thread, as every asyncio callback


def test_astream_yields_events_and_raises_on_failure() -> None:
    async def main() -> list[TokenEvent]:
        got: list[TokenEvent] = []
        with pytest.raises(RunError.__mro__[1]):  # RxAgentsError
            async for event in _offline(fail_after=1).astream("task"):
                got.append(event)
        return got

    kinds = [e.kind for e in asyncio.run(main())]
    assert kinds == [EventKind.START, EventKind.TOKEN, EventKind.ERROR]


# --- bad input fails fast -------------------------------------------------------------------------------------
@pytest.mark.parametrize("task", ["", "   ", None, 42])
def test_bad_task_is_rejected(task: Any) -> None:
    with pytest.raises(ConfigurationError, match="task must be a non-empty string"):
        _offline().run(task)


@pytest.mark.parametrize("loops", [0, -1, 1.5, True])
def test_bad_max_loops_is_rejected(loops: Any) -> None:
    with pytest.raises(ConfigurationError, match="max_loops must be an int >= 1"):
        Agent(llm=OfflineModel(), max_loops=loops)


def test_non_callable_callback_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="streaming_callback must be callable"):
        _offline().run("task", streaming_callback="print")  # type: ignore[arg-type]


def test_unknown_model_lists_how_to_configure() -> None:
    with pytest.raises(ConfigurationError, match="offline"):
        Agent(model_name="definitely-not-a-model")


def test_unknown_keyword_is_a_type_error_naming_it() -> None:
    with pytest.raises(TypeError, match="streaming_onn"):
        Agent(llm=OfflineModel(), streaming_onn=True)


def test_spec_model_without_key_runs_on_the_offline_model() -> None:
    agent = Agent(agent_name="Streaming-Agent", model_name="gpt-4o-mini", print_on=False)
    assert "offline model" in agent.run("Write a detailed explanation of how neural networks work")


# --- real HTTP through litellm to the local server -------------------------------------------------------
def test_served_run_delivers_text_usage_and_finish(model_server: LocalModelServer) -> None:
    dicts: list[dict[str, Any]] = []
    agent = _served(model_server, Reply(tokens=words("Tokens arrive in order.")), stream=True, print_on=False)
    assert agent.run("task", streaming_callback=dicts.append) == "Tokens arrive in order."
    assert [d["type"] for d in dicts][-2:] == ["usage", "finish"]
    assert dicts[-1]["finish_reason"] == "stop"


def test_openai_base_url_is_honoured(model_server: LocalModelServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", model_server.url)
    model_server.enqueue(Reply(tokens=words("From the env endpoint.")), model="env-model")
    agent = Agent(model_name="env-model", print_on=False)
    assert agent.run("task") == "From the env endpoint."


def test_raising_callback_neither_stops_nor_duplicates(model_server: LocalModelServer) -> None:
    seqs: list[int] = []

    def flaky(info: dict[str, Any]) -> None:
        seqs.append(info["seq"])
        if info["seq"] % 3 == 0:
            raise RuntimeError("callback bug")

    agent = _served(model_server, Reply(tokens=words("one two three four five six seven")), stream=True,
                    print_on=False)
    assert agent.run("task", streaming_callback=flaky) == "one two three four five six seven"
    assert seqs == list(range(len(seqs)))  # every event once, in order, no restart
    assert len(seqs) == 1 + 7 + 2  # start, 7 tokens, usage, finish


def test_disposing_mid_stream_closes_the_server_connection(model_server: LocalModelServer) -> None:
    agent = _served(model_server, Reply(tokens=words("a b c d e f g h"), fault=StallAfter(3)), print_on=False)
    got: list[TokenEvent] = []
    three = threading.Event()

    def on_next(event: TokenEvent) -> None:
        got.append(event)
        if event.kind is EventKind.TOKEN and event.text.strip() == "c":
            three.set()

    baseline = model_server.active_streams
    subscription = agent.stream("task").subscribe(on_next)
    assert three.wait(10)
    assert model_server.wait_until(lambda: model_server.active_streams == baseline + 1, 5)
    subscription.dispose()
    assert model_server.wait_until(lambda: model_server.active_streams == baseline, 5)
    assert model_server.closed_streams[-1].outcome == "client_disconnected"
    assert "".join(e.text for e in got) == "a b c"


@pytest.mark.asyncio
async def test_leaving_async_for_early_closes_the_server_connection(model_server: LocalModelServer) -> None:
    agent = _served(model_server, Reply(tokens=words("a b c d e f g h"), fault=StallAfter(4)), print_on=False)
    baseline = model_server.active_streams
    tokens = []
    async for event in agent.astream("task"):
        if event.kind is EventKind.TOKEN:
            tokens.append(event.text)
            if len(tokens) == 3:
                break
    assert await model_server.await_until(lambda: model_server.active_streams == baseline, 5)
    assert model_server.closed_streams[-1].outcome == "client_disconnected"
    assert "".join(tokens) == "a b c"


def test_swarms_retry_attempts_maps_to_retries() -> None:
    assert Agent(llm=OfflineModel(), retry_attempts=3).retry_policy.retries == 2
    with pytest.raises(ConfigurationError, match="retry_attempts"):
        Agent(llm=OfflineModel(), retry_attempts=0)


# --- swarms' run parameters: accepted unused, anything else refused before the run --------------------------
_SWARMS_UNUSED = {"img": None, "imgs": None, "correct_answer": None, "n": 1}


def test_run_and_arun_accept_swarms_run_parameters_at_their_unused_values() -> None:
    agent = _offline()
    assert agent.run("task", None, **_SWARMS_UNUSED) == "Hello world, streams!"
    assert asyncio.run(agent.arun("task", None, **_SWARMS_UNUSED)) == "Hello world, streams!"


@pytest.mark.parametrize("method", ["run", "arun"])
@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [((), {"img": "cat.png"}, "img must be None"), ((), {"n": 3}, "n must be 1"),
     ((), {"correct_answer": "42"}, "correct_answer must be None"), ((), {"temprature": 0.2}, "'temprature'"),
     (("extra",), {}, "got 1 more positional argument")],
)
def test_run_and_arun_refuse_what_they_do_not_understand_before_running(
    method: str, args: tuple[Any, ...], kwargs: dict[str, Any], named: str, capsys: pytest.CaptureFixture[str]
) -> None:
    requests: list[object] = []

    class Counting(OfflineModel):
        async def stream(self, request: Any) -> Any:
            requests.append(request)
            async for delta in super().stream(request):
                yield delta

    agent = Agent(llm=Counting(text="hi"), streaming_on=True)  # prints, were it to run
    with pytest.raises(ConfigurationError, match=named):
        if method == "run":
            agent.run("task", None, *args, **kwargs)
        else:
            asyncio.run(agent.arun("task", None, *args, **kwargs))
    assert requests == [] and capsys.readouterr().out == ""


def test_backend_chooses_litellm_or_direct_for_the_same_endpoint() -> None:
    base = "http://127.0.0.1:9/v1"
    assert Agent(model_name="m", api_base=base, print_on=False).llm.name == "direct"
    assert Agent(model_name="m", api_base=base, backend="litellm", print_on=False).llm.name == "litellm"
    assert Agent(model_name="m", api_base=base, backend="direct", print_on=False).backend == "direct"


@pytest.mark.parametrize("options", [{"backend": "httpx"}, {"backend": "direct", "llm": OfflineModel()}])
def test_a_bad_backend_choice_names_the_parameter(options: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError, match="backend"):
        Agent(print_on=False, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize("asynchronous", [False, True])
def test_run_keeps_its_events_once_in_the_list_its_run_records_them_in(
    asynchronous: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The run machine keeps the run's events (a failure's partial text is made of them); the dispatcher reads that
    list instead of keeping a second one."""
    seen: list[tuple[_drive.Delivery, Any]] = []
    run, arun = _drive.Delivery.run, _drive.Delivery.arun

    def spy_run(self: _drive.Delivery, source: _drive.Source) -> Any:
        dispatcher = run(self, source)
        seen.append((self, dispatcher))
        return dispatcher

    async def spy_arun(self: _drive.Delivery, source: _drive.Source) -> Any:
        dispatcher = await arun(self, source)
        seen.append((self, dispatcher))
        return dispatcher

    monkeypatch.setattr(_drive.Delivery, "run", spy_run)
    monkeypatch.setattr(_drive.Delivery, "arun", spy_arun)
    agent = _offline("one two three")
    answer = asyncio.run(agent.arun("task")) if asynchronous else agent.run("task")
    ((delivery, dispatcher),) = seen
    assert answer == "one two three"
    assert delivery.record is not None and dispatcher.events is delivery.record  # one list
    assert [e.seq for e in delivery.record] == list(range(dispatcher.delivered))  # each event once
