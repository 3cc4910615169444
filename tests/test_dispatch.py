"""Callback delivery of the run drivers (rxagents/_dispatch.py): ``run`` on the calling thread; ``arun`` on the loop's
thread, awaiting ``async def`` callbacks in order behind a bounded buffer, isolating raising callbacks, and holding
no executor thread (so many gathered ``arun`` calls never starve litellm of the executor)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
import os
import queue
import threading
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any
from unittest import mock

import pytest
import reactivex
from hypothesis import given
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxagents import Agent, ConfigurationError, EventKind, OfflineModel, RunError, TokenEvent, _dispatch, _runtime
from rxagents.models import Delta, ModelRequest
from rxagents.testing._faults import Reply, StallAfter, words
from rxagents.testing._server import LocalModelServer, StreamRecord
from rxagents.workflows import ConcurrentWorkflow

WAIT = 30.0  # generous limit for conditions (litellm's first request in a process imports and connects)
TEXT = "Tokens reach the callback in order, each exactly once."
#: More than aiohttp's default pool (100 connections): the loop's pooled session must hold every stream at once.
GATHERED_AGENTS = 300
GATHERED_WORKFLOWS, WORKFLOW_AGENTS = 20, 5

_names = itertools.count()


def _model() -> str:
    return f"dispatch-{os.getpid()}-{next(_names)}"


def _served(server: LocalModelServer, reply: Reply, *, name: str = "Served", **kw: Any) -> Agent:
    model = _model()
    server.enqueue(reply, model=model)
    kw.setdefault("print_on", False)
    return Agent(agent_name=name, model_name=model, api_base=server.url, api_key="sk-test", **kw)


def _record(server: LocalModelServer, agent: Agent) -> StreamRecord | None:
    model = agent.model_name.split("/", 1)[-1]
    return next((r for r in reversed(server.closed_streams) if r.model == model), None)


class _Counted:
    """A model that counts the deltas its reader pulled, and says when it pulled the last one."""

    name = "counted"

    def __init__(self, tokens: tuple[str, ...]) -> None:
        self.tokens = tokens
        self.pulled = 0
        self.all_pulled = asyncio.Event()

    async def stream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        for token in self.tokens:
            self.pulled += 1
            if self.pulled == len(self.tokens):
                self.all_pulled.set()
            yield Delta(EventKind.TOKEN, text=token)
        yield Delta(EventKind.FINISH, finish_reason="stop")


# --- plain callbacks: on the loop's thread, in order -----------------------------------------------------------
def test_plain_callback_in_arun_runs_on_the_loop_thread_in_order() -> None:
    async def main() -> tuple[str, list[tuple[int, str]], int]:
        loop = asyncio.get_running_loop()
        seen: list[tuple[int, str]] = []

        def callback(token: str) -> None:
            assert asyncio.get_running_loop() is loop  # RuntimeError on any other thread
            seen.append((threading.get_ident(), token))

        agent = Agent(llm=OfflineModel(text=TEXT), print_on=False, on_callback_error="raise")
        return await agent.arun("task", streaming_callback=callback), seen, threading.get_ident()

    answer, seen, loop_thread = asyncio.run(main())
    assert answer == TEXT
    assert {thread for thread, _ in seen} == {loop_thread}
    assert "".join(token for _, token in seen) == TEXT


def test_spec_create_task_callback_works_and_arun_awaits_the_tasks_in_order() -> None:
    """The spec's ``lambda token: asyncio.create_task(send(token))``: before, ``no running event loop``."""

    async def main() -> tuple[str, list[str]]:
        sent: list[str] = []

        async def send(token: str) -> None:
            await asyncio.sleep(0)
            sent.append(token)

        agent = Agent(llm=OfflineModel(text=TEXT), print_on=False, on_callback_error="raise")
        answer = await agent.arun("task", streaming_callback=lambda token: asyncio.create_task(send(token)))
        return answer, list(sent)  # copied when arun returns: every send has finished by then

    answer, sent = asyncio.run(main())
    assert answer == TEXT
    assert "".join(sent) == TEXT


# --- async callbacks: awaited in order, behind a bounded buffer -----------------------------------------------
def test_async_callback_is_awaited_in_order_one_call_at_a_time(model_server: LocalModelServer) -> None:
    got: list[str] = []
    active = 0

    async def callback(token: str) -> None:
        nonlocal active
        active += 1
        assert active == 1, "a call started before the previous one finished"
        await asyncio.sleep(0.001)
        got.append(token)
        active -= 1

    agent = _served(model_server, Reply(tokens=words(TEXT)), on_callback_error="raise")
    assert asyncio.run(agent.arun("task", streaming_callback=callback)) == TEXT
    assert got == list(words(TEXT))


def test_a_slow_async_callback_does_not_hold_up_the_reader() -> None:
    """The first call waits until the reader has pulled the whole answer: it could not if the reader waited for it."""
    model = _Counted(words(TEXT))
    got: list[str] = []

    async def callback(token: str) -> None:
        if not got:
            await asyncio.wait_for(model.all_pulled.wait(), WAIT)
        got.append(token)

    agent = Agent(llm=model, print_on=False, on_callback_error="raise")
    assert asyncio.run(agent.arun("task", streaming_callback=callback)) == TEXT
    assert "".join(got) == TEXT


def test_a_full_buffer_makes_the_reader_wait_and_loses_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_dispatch, "CALLBACK_BUFFER", 4)
    tokens = tuple(f" t{k}" for k in range(40))
    model = _Counted(tokens)
    release = asyncio.Event()
    got: list[str] = []

    async def callback(token: str) -> None:
        if not got:
            await release.wait()
        got.append(token)

    async def main() -> tuple[str, int]:
        agent = Agent(llm=model, print_on=False, on_callback_error="raise")
        run = asyncio.ensure_future(agent.arun("task", streaming_callback=callback))
        for _ in range(500):  # far more loop turns than the reader needs to fill the buffer
            await asyncio.sleep(0)
        pulled_while_blocked = model.pulled
        release.set()
        return await run, pulled_while_blocked

    answer, pulled_while_blocked = asyncio.run(main())
    # the consumer holds token 1; the buffer 4 more events; the reader pulled the one it is holding: <= 6
    assert 4 <= pulled_while_blocked <= 4 + 2
    assert answer == "".join(tokens)
    assert got == list(tokens)
    assert model.pulled == len(tokens)


@given(
    count=st.integers(1, 40),
    buffer=st.integers(1, 8),
    pauses=st.lists(st.integers(0, 3), min_size=1, max_size=40),
    asynchronous=st.booleans(),
)
def test_every_token_reaches_the_callback_once_in_order_whatever_the_buffer_and_pace(
    count: int, buffer: int, pauses: list[int], asynchronous: bool
) -> None:
    """Nothing lost, nothing duplicated, order kept: for any buffer size and any pattern of slow callback calls."""
    tokens = tuple(f" t{k}" for k in range(count))
    got: list[str] = []

    async def slow(token: str) -> None:
        for _ in range(pauses[len(got) % len(pauses)]):
            await asyncio.sleep(0)
        got.append(token)

    callback = slow if asynchronous else got.append
    agent = Agent(llm=_Counted(tokens), print_on=False, on_callback_error="raise")
    with mock.patch.object(_dispatch, "CALLBACK_BUFFER", buffer):
        answer = asyncio.run(agent.arun("task", streaming_callback=callback))
    assert answer == "".join(tokens)
    assert got == list(tokens)


# --- isolation: a raising callback is counted and logged once, or fatal ------------------------------------------
def _raising(kind: str, fail_on: set[int], calls: list[str]) -> Any:
    def check(token: str) -> None:
        calls.append(token)
        if len(calls) in fail_on:
            raise ValueError(f"callback bug on call {len(calls)}")

    async def acheck(token: str) -> None:
        await asyncio.sleep(0)
        check(token)

    return check if kind == "sync" else acheck


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_raising_callback_is_isolated_and_logged_once_per_run(
    kind: str, model_server: LocalModelServer, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    agent = _served(model_server, Reply(tokens=words(TEXT)))
    with caplog.at_level(logging.WARNING, logger="rxagents"):
        answer = asyncio.run(agent.arun("task", streaming_callback=_raising(kind, {1, 3, 4}, calls)))
    assert answer == TEXT
    assert calls == list(words(TEXT))  # every token once, in order, no restart
    warnings = [r for r in caplog.records if r.name == "rxagents" and r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "raised 3 time(s)" in warnings[0].getMessage()


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_raise_policy_cancels_the_run_and_raises_with_the_partial_text(
    kind: str, model_server: LocalModelServer
) -> None:
    calls: list[str] = []
    tokens = words("one two three four five six seven eight")
    agent = _served(model_server, Reply(tokens=tokens, fault=StallAfter(5)), on_callback_error="raise")
    with pytest.raises(RunError) as info:
        asyncio.run(agent.arun("task", streaming_callback=_raising(kind, {3}, calls)))
    assert isinstance(info.value.__cause__, ValueError)
    assert info.value.partial_text == "one two three"
    assert calls == ["one", " two", " three"]
    # the model stalled after five tokens and never ended the stream: the run was cancelled, the stream closed
    assert model_server.wait_until(lambda: _record(model_server, agent) is not None, WAIT)
    record = _record(model_server, agent)
    assert record is not None and record.outcome == "client_disconnected"


def test_cancelling_arun_while_an_async_callback_waits_cancels_it_and_closes_the_stream(
    model_server: LocalModelServer,
) -> None:
    agent = _served(model_server, Reply(tokens=words("a b c d e f"), fault=StallAfter(3)))
    waiting = asyncio.Event()
    outcome: list[str] = []

    async def callback(token: str) -> None:
        waiting.set()
        try:
            await asyncio.Event().wait()  # forever
        except asyncio.CancelledError:
            outcome.append("cancelled")
            raise

    async def main() -> None:
        task = asyncio.ensure_future(agent.arun("task", streaming_callback=callback))
        await asyncio.wait_for(waiting.wait(), WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await model_server.await_until(lambda: _record(model_server, agent) is not None, WAIT)

    asyncio.run(main())
    assert outcome == ["cancelled"]
    record = _record(model_server, agent)
    assert record is not None and record.outcome == "client_disconnected"


# --- run(): callbacks on the calling thread, which cannot await -------------------------------------------------
def test_run_rejects_an_async_callback_naming_arun() -> None:
    async def callback(token: str) -> None: ...

    agent = Agent(llm=OfflineModel(text=TEXT), print_on=False)
    with pytest.raises(ConfigurationError, match=r"async function.*await agent\.arun"):
        agent.run("task", streaming_callback=callback)
    assert asyncio.run(agent.arun("task", streaming_callback=callback)) == TEXT


def test_run_closes_a_coroutine_a_callback_returns_and_reports_it(caplog: pytest.LogCaptureFixture) -> None:
    async def send(token: str) -> None: ...

    agent = Agent(llm=OfflineModel(text=TEXT), print_on=False)
    with caplog.at_level(logging.WARNING, logger="rxagents"):
        assert agent.run("task", streaming_callback=lambda token: send(token)) == TEXT
    (warning,) = [r for r in caplog.records if r.name == "rxagents" and r.levelno == logging.WARNING]
    assert warning.exc_info is not None and "arun" in str(warning.exc_info[1])


# --- no executor thread: gathered runs -----------------------------------------------------------------------
def test_gathered_aruns_complete_on_a_two_worker_default_executor(model_server: LocalModelServer) -> None:
    """Each arun used to hold an executor thread for its whole run; litellm's request set-up needs one too."""
    texts = [f"agent {i} answers in full" for i in range(8)]
    agents = [_served(model_server, Reply(tokens=words(text)), name=f"A{i}") for i, text in enumerate(texts)]

    async def main() -> list[str]:
        asyncio.get_running_loop().set_default_executor(concurrent.futures.ThreadPoolExecutor(max_workers=2))
        return await asyncio.wait_for(asyncio.gather(*(agent.arun("task") for agent in agents)), WAIT)

    assert asyncio.run(main()) == texts


def _tokens(prefix: str, count: int = 8) -> tuple[str, ...]:
    return tuple(f" {prefix}t{k}" for k in range(count))


def test_many_gathered_aruns_each_deliver_their_exact_text(model_server: LocalModelServer) -> None:
    replies = [_tokens(f"a{i}") for i in range(GATHERED_AGENTS)]
    seen: dict[int, list[str]] = defaultdict(list)

    def collect(i: int) -> Any:
        return lambda token: seen[i].append(token)

    # 50 ms between events: each response stays open about half a second, while the others start
    agents = [_served(model_server, Reply(tokens=reply, token_delay=0.05), name=f"A{i}") for i, reply in
              enumerate(replies)]  # fmt: skip

    async def main() -> list[str]:
        runs = (agent.arun("task", streaming_callback=collect(i)) for i, agent in enumerate(agents))
        return await asyncio.wait_for(asyncio.gather(*runs), 120)

    answers = asyncio.run(main())
    assert answers == ["".join(reply) for reply in replies]
    assert [seen[i] for i in range(GATHERED_AGENTS)] == [list(reply) for reply in replies]  # none lost or twice
    records = [_record(model_server, agent) for agent in agents]
    assert all(r is not None and r.outcome == "completed" for r in records)
    first_end = min(r.ended_at for r in records if r is not None)
    at_once = sum(r.started_at < first_end for r in records if r is not None)  # all open when the first ended
    assert at_once > 100, f"only {at_once} of {GATHERED_AGENTS} streams were served at once: a pool limit?"


def test_gathered_concurrent_workflow_aruns_each_deliver_their_exact_texts(model_server: LocalModelServer) -> None:
    replies = {(w, a): _tokens(f"w{w}a{a}") for w in range(GATHERED_WORKFLOWS) for a in range(WORKFLOW_AGENTS)}
    workflows = [
        ConcurrentWorkflow(
            name=f"W{w}",
            agents=[_served(model_server, Reply(tokens=replies[w, a]), name=f"A{a}") for a in range(WORKFLOW_AGENTS)],
        )
        for w in range(GATHERED_WORKFLOWS)
    ]
    seen: dict[int, list[str]] = defaultdict(list)

    def collect(w: int) -> Any:
        return lambda token: seen[w].append(token)

    async def main() -> list[Any]:
        runs = (workflow.arun("task", streaming_callback=collect(w)) for w, workflow in enumerate(workflows))
        return await asyncio.wait_for(asyncio.gather(*runs), 120)

    results = asyncio.run(main())
    for w, result in enumerate(results):
        assert dict(result) == {f"A{a}": "".join(replies[w, a]) for a in range(WORKFLOW_AGENTS)}
        for a in range(WORKFLOW_AGENTS):  # each agent's tokens once, in order, within the interleaving
            mine = [token for token in seen[w] if token.startswith(f" w{w}a{a}t")]
            assert mine == list(replies[w, a])
        assert len(seen[w]) == WORKFLOW_AGENTS * len(replies[w, 0])


# --- run(): the hand-off to the calling thread, a loop turn's events at a time -----------------------------------
class _CountingQueue(queue.SimpleQueue):  # type: ignore[type-arg]
    """The dispatcher's queue, noting what each hand-over carried (a batch's size, or "end")."""

    def __init__(self) -> None:
        self.handed: list[int | str] = []

    def put(self, item: Any, block: bool = True, timeout: float | None = None) -> None:
        self.handed.append(len(item) if isinstance(item, list) else "end")
        super().put(item, block, timeout)


def _turns(sizes: list[int], disposed: list[bool] | None = None) -> Observable[TokenEvent]:
    """Token events on the runtime loop: ``sizes[i]`` of them in loop turn i, then completion in a turn of its own."""

    def subscribe(observer: abc.ObserverBase[TokenEvent], _: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        loop = _runtime.runtime_loop()
        seq = itertools.count()

        def turn(i: int) -> None:
            if disposed:
                return
            if i == len(sizes):
                observer.on_completed()
                return
            for _ in range(sizes[i]):
                k = next(seq)
                observer.on_next(TokenEvent(EventKind.TOKEN, "A", "r1", k, text=f"t{k} "))
            loop.call_soon(turn, i + 1)

        loop.call_soon_threadsafe(turn, 0)
        return Disposable(lambda: disposed.append(True) if disposed is not None else None)

    return reactivex.create(subscribe)


def _dispatcher(handler: _dispatch.Handler, **kw: Any) -> tuple[_dispatch.Dispatcher, _CountingQueue]:
    dispatcher = _dispatch.Dispatcher([handler], agent="A", **kw)
    dispatcher._queue = spy = _CountingQueue()
    return dispatcher, spy


def _when_waiting(dispatcher: _dispatch.Dispatcher, sizes: list[int], then: Any = None) -> Observable[TokenEvent]:
    """Like :func:`_turns`, but each turn starts only once the calling thread waits idle for events; ``then(i, k)``
    (if given) runs on the loop right after event ``k`` of turn ``i`` was pushed."""

    def subscribe(observer: abc.ObserverBase[TokenEvent], _: abc.SchedulerBase | None = None) -> abc.DisposableBase:
        loop = _runtime.runtime_loop()
        seq = itertools.count()

        def turn(i: int) -> None:
            if i == len(sizes):
                observer.on_completed()
                return
            if not dispatcher._waiting:  # not yet: look again soon, letting the calling thread run meanwhile
                loop.call_later(0.001, turn, i)
                return
            for _ in range(sizes[i]):
                k = next(seq)
                observer.on_next(TokenEvent(EventKind.TOKEN, "A", "r1", k, text=f"t{k} "))
                if then is not None:
                    then(i, k)
            loop.call_soon(turn, i + 1)

        loop.call_soon_threadsafe(turn, 0)
        return Disposable()

    return reactivex.create(subscribe)


def test_run_hands_a_waiting_thread_the_first_event_at_once_and_the_rest_of_the_turn_together(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_dispatch, "YIELD_INTERVAL", 0.0)  # every turn starts after a pause
    seen: list[tuple[int, int]] = []
    pushed = [threading.Event() for _ in range(3)]  # turn i's events are all pushed
    firsts = {0: 0, 40: 1, 41: 2}  # the first event of each turn -> its turn

    def handler(event: TokenEvent) -> None:
        seen.append((threading.get_ident(), event.seq))
        if event.seq in firsts:  # busy until its turn is pushed: the rest of the turn finds this thread busy
            assert pushed[firsts[event.seq]].wait(WAIT)

    def then(i: int, k: int) -> None:
        if k in (39, 40, 65):
            pushed[i].set()

    dispatcher, spy = _dispatcher(handler)
    dispatcher.consume(_when_waiting(dispatcher, [40, 1, 25], then))
    assert spy.handed == [1, 39, 1, 1, 24, "end"]  # at most: the first at once, then one wake-up per loop turn
    assert seen == [(threading.get_ident(), k) for k in range(66)]  # all, once, in order, on this thread
    assert dispatcher.error is None and dispatcher.delivered == 66 and len(dispatcher.events) == 66


def test_run_calls_back_for_the_first_event_while_the_loop_turn_that_made_it_still_runs() -> None:
    """A turn parsing a burst takes milliseconds: its first event must not wait for the turn to end (TTFT)."""
    handled = threading.Event()
    during: list[bool] = []

    def then(i: int, k: int) -> None:
        if k == 0:  # still inside the turn: the calling thread gets the event meanwhile
            during.append(handled.wait(10.0))

    dispatcher, _ = _dispatcher(lambda e: handled.set())
    dispatcher.consume(_when_waiting(dispatcher, [5], then))
    assert during == [True] and dispatcher.delivered == 5


def test_run_yields_to_a_waiting_thread_until_it_took_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_dispatch, "YIELD_TIMEOUT", WAIT)  # however slow the machine: wait until it is taken
    monkeypatch.setattr(_dispatch, "YIELD_INTERVAL", 0.0)  # every time
    taken: list[tuple[int, bool]] = []
    dispatcher, spy = _dispatcher(lambda e: None)
    dispatcher.consume(_when_waiting(dispatcher, [1, 1], lambda i, k: taken.append((len(spy.handed), spy.empty()))))
    assert taken == [(1, True), (2, True)]  # when push returned, the event was handed over, and taken already
    assert dispatcher.yields == 2 and dispatcher.delivered == 2


def test_run_yields_at_most_once_per_yield_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_dispatch, "YIELD_INTERVAL", 3600.0)
    dispatcher, spy = _dispatcher(lambda e: None)
    dispatcher.consume(_when_waiting(dispatcher, [1, 1, 1]))
    assert dispatcher.yields == 1  # the first hand-off only; the others are handed over without waiting
    assert spy.handed == [1, 1, 1, "end"] and dispatcher.delivered == 3


def test_run_stops_inside_a_batch_when_a_callback_error_is_fatal() -> None:
    calls: list[int] = []
    disposed: list[bool] = []

    def handler(event: TokenEvent) -> None:
        calls.append(event.seq)
        if event.seq == 5:
            raise ValueError("callback bug")

    dispatcher, _ = _dispatcher(handler, on_callback_error="raise")
    dispatcher.consume(_turns([40, 40], disposed))
    assert calls == list(range(6)) and disposed == [True]
    assert isinstance(dispatcher.error, RunError) and isinstance(dispatcher.error.__cause__, ValueError)
    assert dispatcher.error.partial_text == "".join(f"t{k} " for k in range(6))
    assert [e.seq for e in dispatcher.error.events] == list(range(6))


def test_run_keeps_going_through_a_batch_past_isolated_callback_errors(caplog: pytest.LogCaptureFixture) -> None:
    calls: list[int] = []

    def handler(event: TokenEvent) -> None:
        calls.append(event.seq)
        if event.seq % 10 == 3:
            raise ValueError("callback bug")

    dispatcher, _ = _dispatcher(handler)
    with caplog.at_level(logging.WARNING, logger="rxagents"):
        dispatcher.consume(_turns([40, 40]))
    assert calls == list(range(80)) and dispatcher.error is None and dispatcher.callback_errors == 8
    assert ["raised 8 time(s)" in r.getMessage() for r in caplog.records if r.name == "rxagents"] == [True]


def test_an_interrupt_in_a_callback_mid_batch_disposes_the_run_and_propagates() -> None:
    disposed: list[bool] = []
    calls: list[int] = []

    def handler(event: TokenEvent) -> None:
        calls.append(event.seq)
        if event.seq == 3:
            raise KeyboardInterrupt

    dispatcher, _ = _dispatcher(handler)
    with pytest.raises(KeyboardInterrupt):
        dispatcher.consume(_turns([40, 40], disposed))
    assert calls == [0, 1, 2, 3] and disposed == [True]


def test_events_pushed_with_no_loop_running_are_handed_over_at_once() -> None:
    dispatcher, spy = _dispatcher(lambda e: None)
    dispatcher.consume(reactivex.from_iterable([TokenEvent(EventKind.TOKEN, "A", "r1", k) for k in range(3)]))
    assert spy.handed == [1, 1, 1, "end"] and dispatcher.delivered == 3


def test_events_a_source_gives_while_subscribing_on_a_loop_thread_are_handed_over_at_once() -> None:
    """``run()`` from a thread whose loop runs (Jupyter): that loop waits for the handlers, so it cannot flush."""
    seen: list[int] = []
    dispatcher, spy = _dispatcher(lambda e: seen.append(e.seq))
    first = TokenEvent(EventKind.START, "A", "r0", 0)

    async def main() -> None:
        dispatcher.consume(reactivex.concat(reactivex.of(first), _turns([3])))  # blocks this loop meanwhile

    asyncio.run(main())
    assert spy.handed[0] == 1 and spy.handed[-1] == "end"  # the first at once, on this thread, while subscribing
    assert sum(n for n in spy.handed if isinstance(n, int)) == 4 and seen == [0, 0, 1, 2]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="counts open descriptors in /proc")
def test_run_closes_the_descriptors_it_wakes_the_calling_thread_with() -> None:
    def interrupt(event: TokenEvent) -> None:
        raise KeyboardInterrupt

    before = len(os.listdir("/proc/self/fd"))
    for _ in range(10):
        dispatcher, _ = _dispatcher(lambda e: None)
        dispatcher.consume(_turns([3, 2]))
        assert dispatcher.delivered == 5
        interrupted, _ = _dispatcher(interrupt)
        with pytest.raises(KeyboardInterrupt):
            interrupted.consume(_turns([3]))
    assert len(os.listdir("/proc/self/fd")) == before


def test_run_delivers_everything_when_no_pipe_can_be_opened(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pipe() -> tuple[int, int]:
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(_dispatch.os, "pipe", no_pipe)
    seen: list[int] = []
    dispatcher, _ = _dispatcher(lambda e: seen.append(e.seq))
    dispatcher.consume(_turns([40, 1, 25]))
    assert seen == list(range(66)) and dispatcher.error is None
