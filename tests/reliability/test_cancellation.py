"""Cancelling a run closes its HTTP stream at once, whichever way it is cancelled.

Each test streams from the local server (real HTTP, on both backends: the direct OpenAI-compatible backend and
litellm) a reply that stalls after three tokens
(``StallAfter(3)``), waits until the consumer has the three tokens, then cancels: by disposing the Observable (from a
plain thread and on a running loop, and from inside ``on_next`` via ``take``), by leaving ``async for`` over
``astream``, by cancelling the task awaiting ``arun``, by Ctrl-C (SIGINT) during ``run()`` in a child process, and by
cancelling a ``ConcurrentWorkflow`` (dispose, ``arun`` task, Ctrl-C).

The latency is measured by the server, not guessed: ``StreamRecord.disconnected_at`` (``time.monotonic()`` when the
server's transport saw the client go) minus ``t_cancel`` (``time.monotonic()`` just before the cancel). Each mode is
tried :data:`TRIES` times; the issue's bound is 50 ms. On a busy 2-core machine a single sample can be delayed by the
OS scheduler, so the assertion is on the median (:data:`MEDIAN_BOUND`), with a looser cap on every sample
(:data:`SAMPLE_BOUND`); docs/reliability.md ("Cancellation and leaks") has the measured distribution.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import queue
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncGenerator, Iterator
from pathlib import Path
from typing import IO, Any, cast

import pytest
from reactivex import operators as ops

from rxagents import Agent, EventKind, TokenEvent
from rxagents.testing._faults import Reply, StallAfter, words
from rxagents.testing._server import LocalModelServer, StreamRecord
from rxagents.workflows import ConcurrentWorkflow

REPO = Path(__file__).resolve().parents[2]
TEXT = words("a b c d e f g h")
STALLED = Reply(tokens=TEXT, fault=StallAfter(3))  # "a", " b", " c", then silence until the client goes
THREE = "a b c"
TRIES = 5
MEDIAN_BOUND = 0.050  # the 50 ms, on the median of TRIES cancels
SAMPLE_BOUND = 0.500  # every single cancel: a busy machine may delay one wake-up, never by this much
WAIT = 30.0  # generous limit for conditions (litellm's first request in a process imports and connects)

_names = itertools.count()


def _name(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_names)}"


#: The backends every test runs on, and the model-name prefix that chooses each.
BACKENDS = {"direct": "", "litellm": "litellm/"}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _agent(server: LocalModelServer, model: str, backend: str, agent_name: str = "Agent") -> Agent:
    server.enqueue(STALLED, model=model)
    agent = Agent(agent_name=agent_name, model_name=BACKENDS[backend] + model, api_base=server.url, api_key="sk-test",
                  print_on=False)  # fmt: skip
    assert agent.llm.name == backend
    return agent


def _record(server: LocalModelServer, model: str) -> StreamRecord | None:
    return next((r for r in reversed(server.closed_streams) if r.model == model), None)


def _closed(server: LocalModelServer, model: str, t_cancel: float) -> float:
    """Wait for the server to record ``model``'s stream as ended by the client; the cancel latency in seconds."""
    assert server.wait_until(lambda: _record(server, model) is not None, WAIT), f"{model}: stream never closed"
    return _latency(server, model, t_cancel)


async def _aclosed(server: LocalModelServer, model: str, t_cancel: float) -> float:
    assert await server.await_until(lambda: _record(server, model) is not None, WAIT), f"{model}: never closed"
    return _latency(server, model, t_cancel)


def _latency(server: LocalModelServer, model: str, t_cancel: float) -> float:
    record = _record(server, model)
    assert record is not None
    assert record.outcome == "client_disconnected", record
    assert record.events_sent == 3, record
    assert record.disconnected_at is not None, "the connection was not closed (returned to a pool?)"
    return record.disconnected_at - t_cancel


def _check(mode: str, latencies: list[float]) -> None:
    shown = ", ".join(f"{1000 * s:.2f}" for s in sorted(latencies))
    print(f"cancel->close, {mode}: median {1000 * statistics.median(latencies):.2f} ms; all (ms): {shown}")
    median = statistics.median(latencies)
    assert median <= MEDIAN_BOUND, f"{mode}: median cancel->close {1000 * median:.1f} ms > 50 ms (ms: {shown})"
    assert max(latencies) <= SAMPLE_BOUND, f"{mode}: a cancel took {1000 * max(latencies):.1f} ms (ms: {shown})"
    assert min(latencies) >= 0, f"{mode}: closed before the cancel? (ms: {shown})"


class _Tokens:
    """An observer collecting events; ``ready`` is set once ``want`` tokens arrived. Thread-safe."""

    def __init__(self, want: int = 3) -> None:
        self.want = want
        self.events: list[TokenEvent] = []
        self.ready = threading.Event()
        self.terminated = False
        self._lock = threading.Lock()

    def on_next(self, event: TokenEvent) -> None:
        with self._lock:
            self.events.append(event)
            if sum(e.kind is EventKind.TOKEN for e in self.events) >= self.want:
                self.ready.set()

    def on_end(self, *_: Any) -> None:
        self.terminated = True

    def text(self) -> str:
        with self._lock:
            return "".join(e.text for e in self.events if e.kind is EventKind.TOKEN)


# --- disposing the Observable ---------------------------------------------------------------------------------
def test_dispose_from_a_plain_thread_closes_the_connection(model_server: LocalModelServer, backend: str) -> None:
    latencies = []
    for _ in range(TRIES):
        model = _name("dispose-thread")
        seen = _Tokens()
        subscription = (
            _agent(model_server, model, backend).stream("task").subscribe(seen.on_next, seen.on_end, seen.on_end)
        )
        assert seen.ready.wait(WAIT)
        t_cancel = time.monotonic()
        subscription.dispose()
        latencies.append(_closed(model_server, model, t_cancel))
        subscription.dispose()  # idempotent
        assert seen.text() == THREE
        assert not seen.terminated  # disposing is not completion: no terminal notification after it
    _check(f"dispose (runtime loop) ({backend})", latencies)


@pytest.mark.asyncio
async def test_dispose_on_the_running_loop_closes_the_connection(model_server: LocalModelServer, backend: str) -> None:
    latencies = []
    for _ in range(TRIES):
        model = _name("dispose-loop")
        seen = _Tokens()
        subscription = (
            _agent(model_server, model, backend).stream("task").subscribe(seen.on_next, seen.on_end, seen.on_end)
        )
        assert await model_server.await_until(seen.ready.is_set, WAIT)
        t_cancel = time.monotonic()
        subscription.dispose()
        latencies.append(await _aclosed(model_server, model, t_cancel))
        assert seen.text() == THREE
        assert not seen.terminated
    _check(f"dispose (running loop) ({backend})", latencies)


def test_dispose_from_inside_on_next_closes_the_connection(model_server: LocalModelServer, backend: str) -> None:
    """``take(3)`` disposes its upstream from inside the run's own ``on_next`` (on the runtime loop)."""
    model = _name("dispose-take")
    done = threading.Event()
    got: list[TokenEvent] = []
    stamps: list[float] = []

    def stamp(event: TokenEvent) -> None:  # runs just before take(3) disposes upstream on its 3rd token
        if sum(e.kind is EventKind.TOKEN for e in got) == 2 and event.kind is EventKind.TOKEN:
            stamps.append(time.monotonic())

    def is_token(event: TokenEvent) -> bool:
        return event.kind is EventKind.TOKEN

    _agent(model_server, model, backend).stream("task").pipe(
        ops.do_action(stamp), ops.filter(is_token), ops.take(3)
    ).subscribe(got.append, lambda _: done.set(), done.set)
    assert done.wait(WAIT)
    assert "".join(e.text for e in got) == THREE
    latency = _closed(model_server, model, stamps[0])
    assert latency <= SAMPLE_BOUND, f"take(3): {1000 * latency:.1f} ms"


# --- leaving async for / cancelling the task ------------------------------------------------------------------
@pytest.mark.asyncio
async def test_leaving_async_for_over_astream_closes_the_connection(
    model_server: LocalModelServer, backend: str
) -> None:
    latencies = []
    for _ in range(TRIES):
        model = _name("astream-break")
        tokens: list[str] = []
        t_cancel = 0.0
        async for event in _agent(model_server, model, backend).astream("task"):
            if event.kind is EventKind.TOKEN:
                tokens.append(event.text)
                if len(tokens) == 3:
                    t_cancel = time.monotonic()
                    break  # the generator is dropped here; the loop closes it (asyncgen finalizer)
        latencies.append(await _aclosed(model_server, model, t_cancel))
        assert "".join(tokens) == THREE
    _check(f"leaving async for (astream) ({backend})", latencies)


@pytest.mark.asyncio
async def test_aclose_of_astream_closes_the_connection_before_it_returns(
    model_server: LocalModelServer, backend: str
) -> None:
    """The deterministic form (``contextlib.aclosing``): when ``aclose()`` returns, the server saw the close."""
    model = _name("astream-aclose")
    stream = cast(AsyncGenerator[TokenEvent, None], _agent(model_server, model, backend).astream("task"))
    async with contextlib.aclosing(stream) as events:
        tokens = []
        async for event in events:
            if event.kind is EventKind.TOKEN:
                tokens.append(event.text)
                if len(tokens) == 3:
                    t_cancel = time.monotonic()
                    break
    closed = time.monotonic()
    latency = await _aclosed(model_server, model, t_cancel)
    record = _record(model_server, model)
    assert record is not None and record.disconnected_at is not None
    assert record.disconnected_at <= closed + 0.050, "aclose() returned long before the connection closed"
    assert latency <= SAMPLE_BOUND


@pytest.mark.asyncio
async def test_cancelling_the_task_awaiting_arun_closes_the_connection(
    model_server: LocalModelServer, backend: str
) -> None:
    latencies = []
    for _ in range(TRIES):
        model = _name("arun-cancel")
        seen: list[str] = []
        three = threading.Event()

        def callback(token: str, seen: list[str] = seen, three: threading.Event = three) -> None:
            seen.append(token)
            if len(seen) == 3:
                three.set()

        task = asyncio.ensure_future(_agent(model_server, model, backend).arun("task", streaming_callback=callback))
        assert await model_server.await_until(three.is_set, WAIT)
        t_cancel = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        latencies.append(await _aclosed(model_server, model, t_cancel))
        assert "".join(seen) == THREE
    _check(f"cancelling the arun task ({backend})", latencies)


@pytest.mark.asyncio
async def test_cancelling_a_task_iterating_astream_closes_the_connection(
    model_server: LocalModelServer, backend: str
) -> None:
    model = _name("astream-task")
    three = asyncio.Event()

    async def consume() -> None:
        count = 0
        async for event in _agent(model_server, model, backend).astream("task"):
            count += event.kind is EventKind.TOKEN
            if count == 3:
                three.set()

    task = asyncio.ensure_future(consume())
    await asyncio.wait_for(three.wait(), WAIT)
    t_cancel = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await _aclosed(model_server, model, t_cancel) <= SAMPLE_BOUND


# --- workflows ------------------------------------------------------------------------------------------------
def _workflow(
    server: LocalModelServer, prefix: str, backend: str, lanes: int = 3
) -> tuple[ConcurrentWorkflow, list[str]]:
    models = [_name(prefix) for _ in range(lanes)]
    agents = [_agent(server, model, backend, agent_name=f"lane-{i}") for i, model in enumerate(models)]
    return ConcurrentWorkflow(name=prefix, agents=agents), models


def _all_closed(server: LocalModelServer, models: list[str], t_cancel: float) -> float:
    return max(_closed(server, model, t_cancel) for model in models)


def test_disposing_a_concurrent_workflow_closes_every_lane(model_server: LocalModelServer, backend: str) -> None:
    latencies = []
    for _ in range(TRIES):
        workflow, models = _workflow(model_server, "workflow-dispose", backend)
        seen = _Tokens(want=3 * len(models))  # every lane has its three tokens: all three streams are stalled
        subscription = workflow.stream("task").subscribe(seen.on_next, seen.on_end, seen.on_end)
        assert seen.ready.wait(WAIT)
        t_cancel = time.monotonic()
        subscription.dispose()
        latencies.append(_all_closed(model_server, models, t_cancel))  # the slowest lane counts
        assert not seen.terminated
        assert sorted(e.agent for e in seen.events if e.kind is EventKind.TOKEN) == sorted(
            f"lane-{i}" for i in range(len(models)) for _ in range(3)
        )
    _check(f"disposing a ConcurrentWorkflow (slowest of 3 lanes) ({backend})", latencies)


@pytest.mark.asyncio
async def test_cancelling_the_task_awaiting_workflow_arun_closes_every_lane(
    model_server: LocalModelServer, backend: str
) -> None:
    workflow, models = _workflow(model_server, "workflow-arun", backend)
    tokens: list[str] = []
    nine = threading.Event()

    def callback(token: str) -> None:
        tokens.append(token)
        if len(tokens) == 9:
            nine.set()

    task = asyncio.ensure_future(workflow.arun("task", streaming_callback=callback))
    assert await model_server.await_until(nine.is_set, WAIT)
    t_cancel = time.monotonic()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    latency = max([await _aclosed(model_server, model, t_cancel) for model in models])
    assert latency <= SAMPLE_BOUND, f"workflow arun cancel: {1000 * latency:.1f} ms"


# --- Ctrl-C during run() --------------------------------------------------------------------------------------
CHILD = r"""
import os, signal, sys, time
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, even if our parent ignores SIGINT
from rxagents import Agent
from rxagents.models._litellm import import_litellm
from rxagents.workflows import ConcurrentWorkflow

import_litellm()
url, kind, prefix = sys.argv[1], sys.argv[2], sys.argv[3]
print("ready", flush=True)
for line in sys.stdin:
    command, *models = line.split()
    if command == "exit":
        break
    def token(text):
        print("token", flush=True)
    agents = [Agent(agent_name=f"lane-{i}", model_name=prefix + m, api_base=url, api_key="sk-test", print_on=False)
              for i, m in enumerate(models)]
    try:
        if kind == "agent":
            agents[0].run("task", streaming_callback=token)
        else:
            ConcurrentWorkflow(name="ctrl-c", agents=agents).run("task", streaming_callback=token)
    except KeyboardInterrupt as interrupt:
        caught = interrupt
        print("interrupted", time.monotonic(), flush=True)  # stay alive: the close must come from the cancel
    else:
        print("finished", flush=True)
raise caught  # leave as an uncaught KeyboardInterrupt does
"""


class _Child:
    """A child process running ``Agent.run`` / ``ConcurrentWorkflow.run`` in its main thread, line protocol."""

    def __init__(self, server: LocalModelServer, kind: str, backend: str, stderr: IO[str]) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO), "LITELLM_LOCAL_MODEL_COST_MAP": "True",
               "LITELLM_MODE": "PRODUCTION"}  # fmt: skip
        self.stderr = stderr  # a file, not a pipe: a chatty child can never block on it
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, server.url, kind, BACKENDS[backend]],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr, text=True, env=env, cwd=REPO,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.put(line.strip())
        self.lines.put("<eof>")

    def expect(self, word: str, timeout: float = WAIT) -> str:
        line = self.lines.get(timeout=timeout)
        assert line.split()[0] == word, f"child said {line!r}, expected {word!r}; stderr: {self.stderr_text()}"
        return line

    def send(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()

    def stderr_text(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read()[-2000:]

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=WAIT)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                stream.close()


@contextlib.contextmanager
def _child(server: LocalModelServer, kind: str, backend: str) -> Iterator[_Child]:
    with tempfile.TemporaryFile(mode="w+") as stderr:
        child = _Child(server, kind, backend, stderr)
        try:
            child.expect("ready", timeout=120)  # importing litellm takes seconds on a busy machine
            yield child
        finally:
            child.close()


def _interrupt(child: _Child, server: LocalModelServer, models: list[str]) -> tuple[float, float]:
    """Start a run in the child, Ctrl-C it once every stream stalled; (close latency, time to KeyboardInterrupt)."""
    for model in models:
        server.enqueue(STALLED, model=model)
    child.send("run " + " ".join(models))
    for _ in range(3 * len(models)):
        child.expect("token")
    t_cancel = time.monotonic()
    child.process.send_signal(signal.SIGINT)
    caught_at = float(child.expect("interrupted").split()[1])
    latency = max(_closed(server, model, t_cancel) for model in models)
    assert child.process.poll() is None, "the child exited: the connection close was not the cancel's doing"
    return latency, caught_at - t_cancel


@pytest.mark.parametrize(("kind", "lanes"), [("agent", 1), ("workflow", 3)])
def test_ctrl_c_during_run_cancels_and_closes_the_connection(
    model_server: LocalModelServer, backend: str, kind: str, lanes: int
) -> None:
    latencies, interrupts = [], []
    with _child(model_server, kind, backend) as child:
        for _ in range(TRIES):
            latency, interrupted = _interrupt(child, model_server, [_name(f"ctrl-c-{kind}") for _ in range(lanes)])
            latencies.append(latency)
            interrupts.append(interrupted)
        child.send("exit")
        t_exit = time.monotonic()
        returncode = child.process.wait(timeout=WAIT)
        exit_after = time.monotonic() - t_exit
        stderr = child.stderr_text()
    assert returncode == -signal.SIGINT, stderr  # how Python ends on an uncaught KeyboardInterrupt
    assert "KeyboardInterrupt" in stderr
    assert exit_after < 10.0, f"the child took {exit_after:.1f} s to exit after KeyboardInterrupt"
    assert statistics.median(interrupts) <= 0.5, f"SIGINT -> KeyboardInterrupt took {interrupts} s"
    shown = [round(1000 * i, 2) for i in interrupts]
    print(f"Ctrl-C during {kind} run() ({backend}): SIGINT -> KeyboardInterrupt (ms): {shown}")
    _check(f"Ctrl-C during {kind} run() ({backend})", latencies)


# --- after the cancels ------------------------------------------------------------------------------------------
def test_a_cancelled_run_does_not_disturb_the_next_one(model_server: LocalModelServer, backend: str) -> None:
    model = _name("after-cancel")
    agent = _agent(model_server, model, backend)
    seen = _Tokens()
    subscription = agent.stream("task").subscribe(seen.on_next)
    assert seen.ready.wait(WAIT)
    subscription.dispose()
    _closed(model_server, model, time.monotonic())
    model_server.enqueue(Reply(tokens=TEXT), model=model)
    assert agent.run("task") == "".join(TEXT)
