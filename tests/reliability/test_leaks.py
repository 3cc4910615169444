"""Nothing survives a run: no asyncio task, thread, file descriptor, connection or memory - on both backends (the
direct OpenAI-compatible backend, and litellm) wherever a run goes through the local server.

Counts are measured after a warm-up, because some things stay on purpose: a pooled keep-alive connection
(two fds here: the client's socket and the in-process server's) and the workers of each loop's default executor (a
bounded pool: litellm runs part of every request's set-up on one; ``arun`` holds none). While a run
finishes, litellm also runs an AnyIO worker thread that stops when the run's task ends. So each check waits (on the
condition, with a deadline) until the count is back at or below its baseline, and checks that no executor worker is
inside a callback dispatcher (``arun`` calls callbacks on its loop; only ``run`` has a callback thread: its caller).

Memory: ``tracemalloc`` snapshots at run 100 and at the last run. Bounds (docs/reliability.md, "Cancellation and
leaks"): offline, under :data:`OFFLINE_GROWTH` for 900 runs (measured 15-41 KiB: caches filling once; the next 2,000
runs add about 1 KiB); through the local server, under :data:`SERVED_GROWTH_PER_RUN` per run for the whole process
(measured 125-345 B per run: litellm 1.110.2's openai/httpx/aiohttp stack retains about 360 B per request, bare
``litellm.acompletion`` too) and under :data:`RXAGENTS_GROWTH` in all for memory allocated by rxagents' own modules
(a leaked run would be kilobytes each: its events).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import re
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rxagents import Agent, EventKind, OfflineModel, RunError, TokenEvent, _runtime
from rxagents.testing._faults import Reply, StallAfter, words
from rxagents.testing._server import LocalModelServer
from rxagents.workflows import ConcurrentWorkflow

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts file descriptors in /proc")

REPO = Path(__file__).resolve().parents[2]
TEXT = words("a b c d e f g h")
STALLED = Reply(tokens=TEXT, fault=StallAfter(3))
WAIT = 30.0
CYCLES = 10  # cancels of each kind per leak test
OFFLINE_GROWTH = 128 * 1024  # bytes, runs 100 -> 1000 of the offline model
SERVED_GROWTH_PER_RUN = 1024  # bytes per run, everything in the process (third-party retention included)
RXAGENTS_GROWTH = 16 * 1024  # bytes, all runs together, allocated by rxagents' own modules

_names = itertools.count()


def _name(prefix: str) -> str:
    return f"{prefix}-{os.getpid()}-{next(_names)}"


# --- what we count --------------------------------------------------------------------------------------------
def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


_POOL = re.compile(r"asyncio_\d+")  # a loop's default executor: litellm's request set-up
_POOL_CAP = min(32, (os.cpu_count() or 1) + 4)  # ThreadPoolExecutor's default max_workers, per loop


def _threads() -> int:
    """Live threads, not counting default-executor workers: a reused, bounded pool, checked by :func:`_pools`."""
    return sum(1 for thread in threading.enumerate() if not _POOL.fullmatch(thread.name))


def _pools_ok() -> bool:
    """Default-executor workers: within the pools' caps (two loops here), and none still running a callback
    dispatcher (``Dispatcher.drain`` belongs on the thread that called ``run``, never on an executor worker)."""
    workers = [t for t in threading.enumerate() if _POOL.fullmatch(t.name)]
    frames = sys._current_frames()
    for thread in workers:
        frame = frames.get(thread.ident or -1)
        while frame is not None:
            if frame.f_code.co_name == "drain" and frame.f_code.co_filename.endswith("_dispatch.py"):
                return False
            frame = frame.f_back
    return len(workers) <= 2 * _POOL_CAP


def _runtime_tasks() -> int:
    """Tasks on the rxagents runtime loop (where sync ``run``/``stream`` subscriptions execute)."""

    async def count() -> int:
        return len(asyncio.all_tasks()) - 1  # not this one

    return asyncio.run_coroutine_threadsafe(count(), _runtime.runtime_loop()).result(WAIT)


def _loop_tasks() -> int:
    """Tasks on the running loop, the caller excluded."""
    return len(asyncio.all_tasks()) - 1


def _eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``predicate`` until true or the deadline (a condition wait, for state with no change notification)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.005)
    return True


def _names_of_threads() -> str:
    return ", ".join(thread.name for thread in threading.enumerate())


async def _aeventually(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(0.005)  # lets the loop finish closing what was cancelled
    return True


class _Counts:
    """fds, threads and runtime-loop tasks now; :meth:`settled` waits until none is above this baseline."""

    def __init__(self) -> None:
        self.fds, self.threads, self.tasks = _fds(), _threads(), _runtime_tasks()

    def __repr__(self) -> str:
        return f"fds={self.fds} threads={self.threads} runtime_tasks={self.tasks}"

    def settled(self) -> None:
        assert _eventually(lambda: _runtime_tasks() <= self.tasks), f"tasks survive: {_Counts()} vs {self}"
        assert _eventually(lambda: _threads() <= self.threads), f"threads survive: {_names_of_threads()}"
        assert _eventually(_pools_ok), f"executor workers busy or too many: {_names_of_threads()}"
        assert _eventually(lambda: _fds() <= self.fds), f"fds survive: {_Counts()} vs {self}"


# --- helpers for runs -----------------------------------------------------------------------------------------
#: The backends the served tests run on, and the model-name prefix that chooses each.
BACKENDS = {"direct": "", "litellm": "litellm/"}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _served(
    server: LocalModelServer, model: str, backend: str, reply: Reply = STALLED, agent_name: str = "Agent"
) -> Agent:
    server.enqueue(reply, model=model)
    agent = Agent(agent_name=agent_name, model_name=BACKENDS[backend] + model, api_base=server.url, api_key="sk-test",
                  print_on=False)  # fmt: skip
    assert agent.llm.name == backend
    return agent


def _closed(server: LocalModelServer, *models: str) -> None:
    def done() -> bool:
        ended = {r.model for r in server.closed_streams}
        return all(m in ended for m in models)

    assert server.wait_until(done, WAIT), f"still streaming: {models}"


def _dispose_after_three(server: LocalModelServer, backend: str) -> None:
    model = _name("leak-dispose")
    three = threading.Event()
    tokens: list[TokenEvent] = []

    def on_next(event: TokenEvent) -> None:
        if event.kind is EventKind.TOKEN:
            tokens.append(event)
            if len(tokens) == 3:
                three.set()

    subscription = _served(server, model, backend).stream("task").subscribe(on_next)
    assert three.wait(WAIT)
    subscription.dispose()
    _closed(server, model)


def _workflow_dispose(server: LocalModelServer, backend: str) -> None:
    models = [_name("leak-workflow") for _ in range(3)]
    agents = [_served(server, m, backend, agent_name=f"lane-{i}") for i, m in enumerate(models)]
    nine = threading.Event()
    tokens: list[TokenEvent] = []

    def on_next(event: TokenEvent) -> None:
        if event.kind is EventKind.TOKEN:
            tokens.append(event)
            if len(tokens) == 9:
                nine.set()

    subscription = ConcurrentWorkflow(name="leaks", agents=agents).stream("task").subscribe(on_next)
    assert nine.wait(WAIT)
    subscription.dispose()
    _closed(server, *models)


def _interrupted_run(server: LocalModelServer, backend: str) -> None:
    """``run()`` left by KeyboardInterrupt from its own thread (as Ctrl-C does: raised in the thread in ``run``)."""
    model = _name("leak-interrupt")
    count = itertools.count(1)

    def callback(_: str) -> None:
        if next(count) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _served(server, model, backend).run("task", streaming_callback=callback)
    _closed(server, model)


def _completed_run(server: LocalModelServer, backend: str) -> None:
    model = _name("leak-complete")
    assert _served(server, model, backend, Reply(tokens=TEXT)).run("task") == "".join(TEXT)


# --- cancels --------------------------------------------------------------------------------------------------
def test_cancelled_sync_runs_leave_no_task_thread_fd_or_connection(
    model_server: LocalModelServer, backend: str
) -> None:
    cancels = (_dispose_after_three, _workflow_dispose, _interrupted_run)
    for cancel in (*cancels, _completed_run):  # warm-up: the HTTP clients, pools and worker threads exist
        cancel(model_server, backend)
    baseline, connections = _Counts(), model_server.open_connections
    for _ in range(CYCLES):
        for cancel in cancels:
            cancel(model_server, backend)
    assert model_server.active_streams == 0
    baseline.settled()
    assert model_server.wait_until(lambda: model_server.open_connections <= connections, WAIT)
    _completed_run(model_server, backend)  # and the next run works, reusing the same pools
    baseline.settled()


@pytest.mark.asyncio
async def test_cancelled_async_runs_leave_no_task_thread_fd_or_connection(
    model_server: LocalModelServer, backend: str
) -> None:
    async def leave_async_for() -> None:
        model = _name("leak-astream")
        count = 0
        async for event in _served(model_server, model, backend).astream("task"):
            count += event.kind is EventKind.TOKEN
            if count == 3:
                break
        assert await model_server.await_until(lambda: any(r.model == model for r in model_server.closed_streams))

    async def cancel_arun() -> None:
        model = _name("leak-arun")
        three = threading.Event()
        count = itertools.count(1)

        def callback(_: str) -> None:
            if next(count) == 3:
                three.set()

        task = asyncio.ensure_future(_served(model_server, model, backend).arun("task", streaming_callback=callback))
        assert await model_server.await_until(three.is_set, WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await model_server.await_until(lambda: any(r.model == model for r in model_server.closed_streams))

    async def dispose_on_loop() -> None:
        model = _name("leak-loop")
        tokens: list[TokenEvent] = []
        subscription = (
            _served(model_server, model, backend)
            .stream("task")
            .subscribe(lambda e: tokens.append(e) if e.kind is EventKind.TOKEN else None)
        )
        assert await model_server.await_until(lambda: len(tokens) == 3, WAIT)
        subscription.dispose()
        assert await model_server.await_until(lambda: any(r.model == model for r in model_server.closed_streams))

    async def cancel_workflow_arun() -> None:
        models = [_name("leak-wf-arun") for _ in range(3)]
        agents = [_served(model_server, m, backend, agent_name=f"lane-{i}") for i, m in enumerate(models)]
        count = itertools.count(1)
        nine = threading.Event()
        workflow = ConcurrentWorkflow(name="leaks", agents=agents)

        def callback(_: str) -> None:
            if next(count) == 9:
                nine.set()

        task = asyncio.ensure_future(workflow.arun("task", streaming_callback=callback))
        assert await model_server.await_until(nine.is_set, WAIT)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        ended = lambda: {r.model for r in model_server.closed_streams} >= set(models)  # noqa: E731
        assert await model_server.await_until(ended, WAIT)

    async def complete() -> None:
        model = _name("leak-acomplete")
        assert await _served(model_server, model, backend, Reply(tokens=TEXT)).arun("task") == "".join(TEXT)

    cancels = (leave_async_for, cancel_arun, dispose_on_loop, cancel_workflow_arun)
    for cancel in (*cancels, complete):
        await cancel()
    assert await _aeventually(lambda: _loop_tasks() == 0)
    fds, threads, connections = _fds(), _threads(), model_server.open_connections
    for _ in range(CYCLES):
        for cancel in cancels:
            await cancel()
    assert await _aeventually(lambda: _loop_tasks() == 0), asyncio.all_tasks()
    assert await _aeventually(lambda: _threads() <= threads), _names_of_threads()
    assert await _aeventually(_pools_ok), _names_of_threads()
    assert await _aeventually(lambda: _fds() <= fds), (_fds(), fds)
    assert await _aeventually(lambda: model_server.open_connections <= connections)
    assert model_server.active_streams == 0


# --- 1,000 consecutive runs -----------------------------------------------------------------------------------
@contextmanager
def _traced() -> Iterator[Callable[[], tracemalloc.Snapshot]]:
    """tracemalloc on (1 frame: the allocating line) for the block; yields a snapshot taker (after a full GC)."""
    gc.collect()
    tracemalloc.start(1)

    def snapshot() -> tracemalloc.Snapshot:
        gc.collect()
        return tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])

    try:
        yield snapshot
    finally:
        tracemalloc.stop()


def _growth(before: tracemalloc.Snapshot, after: tracemalloc.Snapshot, only: str | None = None) -> tuple[int, str]:
    if only is not None:
        keep = [tracemalloc.Filter(True, only)]
        before, after = before.filter_traces(keep), after.filter_traces(keep)
    diff = after.compare_to(before, "lineno")
    top = "\n".join(str(stat) for stat in diff[:8])
    return sum(stat.size_diff for stat in diff), top


@pytest.mark.slow
def test_a_thousand_offline_runs_leave_counts_and_memory_where_they_were() -> None:
    agent = Agent(agent_name="Offline", llm=OfflineModel(length=20), print_on=False)
    expected = agent.run("task")
    for _ in range(99):
        agent.run("task")
    with _traced() as snapshot:
        baseline, at_100 = _Counts(), snapshot()
        for _ in range(900):
            assert agent.run("task") == expected
        at_1000 = snapshot()
        baseline.settled()
    grown, top = _growth(at_100, at_1000)
    print(f"offline runs 100 -> 1000: memory {grown:+d} B ({grown / 900:+.1f} B/run); counts {baseline}")
    assert grown < OFFLINE_GROWTH, f"memory grew {grown} B over 900 runs:\n{top}"


@pytest.mark.slow
@pytest.mark.asyncio
async def test_a_thousand_offline_astreams_and_cancels_leave_no_task() -> None:
    agent = Agent(agent_name="Offline", llm=OfflineModel(length=20), print_on=False)

    async def one(index: int) -> None:
        if index % 2:  # every other run is left after its first token
            async for event in agent.astream("task"):
                if event.kind is EventKind.TOKEN:
                    break
        else:
            events = [e async for e in agent.astream("task")]
            assert [e.seq for e in events] == list(range(len(events)))
            assert events[-1].kind is EventKind.FINISH

    for index in range(100):
        await one(index)
    assert await _aeventually(lambda: _loop_tasks() == 0)
    fds, threads = _fds(), _threads()
    for index in range(900):
        await one(index)
    assert await _aeventually(lambda: _loop_tasks() == 0), asyncio.all_tasks()
    assert await _aeventually(lambda: _threads() <= threads), _names_of_threads()
    assert await _aeventually(_pools_ok), _names_of_threads()
    assert await _aeventually(lambda: _fds() <= fds), (_fds(), fds)


def test_a_failed_run_leaves_nothing_either(model_server: LocalModelServer, backend: str) -> None:
    """A run that fails mid-stream (its error raised by ``run``) releases the same things a completed one does."""
    _completed_run(model_server, backend)
    baseline = _Counts()
    for _ in range(CYCLES):
        model = _name("leak-failed")
        agent = Agent(model_name=BACKENDS[backend] + model, api_base=model_server.url, api_key="sk-test",
                      print_on=False, stall_timeout=0.05)  # fmt: skip
        model_server.enqueue(STALLED, model=model)
        with pytest.raises(RunError):
            agent.run("task")
        _closed(model_server, model)
    baseline.settled()


# --- through the local server, out of process -------------------------------------------------------------------
SERVER = (
    "import signal, sys\n"
    "signal.signal(signal.SIGTERM, signal.default_int_handler)\n"
    "from rxagents.testing._server import serve_main\n"
    "sys.exit(serve_main(['--port', '0', '--tokens', '20']))\n"
)


@contextmanager
def _server_process() -> Iterator[str]:
    """A LocalModelServer in a child process: its own bookkeeping (it records every request) and CPU stay out of
    the process whose memory is measured. Yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)}
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert " at http://127.0.0.1:" in line, line
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        process.terminate()
        process.wait(WAIT)
        if process.stdout is not None:
            process.stdout.close()


SERVED_RUNS = 250  # 100 to warm up, then 150 measured (tracemalloc makes litellm about 5x slower)


@pytest.mark.slow
def test_consecutive_served_runs_leave_counts_and_memory_where_they_were(backend: str) -> None:
    with _server_process() as url:
        agent = Agent(model_name=BACKENDS[backend] + _name("leak-served"), api_base=url, api_key="sk-test",
                      print_on=False)  # fmt: skip
        expected = agent.run("task")
        assert len(expected.split()) >= 10
        for _ in range(99):
            agent.run("task")
        with _traced() as snapshot:
            baseline, at_100 = _Counts(), snapshot()
            for _ in range(SERVED_RUNS - 100):
                assert agent.run("task") == expected
            at_end = snapshot()
            baseline.settled()
    runs = SERVED_RUNS - 100
    grown, top = _growth(at_100, at_end)
    ours, our_top = _growth(at_100, at_end, only=str(REPO / "rxagents" / "*"))
    print(f"served runs 100 -> {SERVED_RUNS} ({backend}): memory {grown:+d} B ({grown / runs:+.1f} B/run), "
          f"by rxagents {ours:+d} B")  # fmt: skip
    assert ours < RXAGENTS_GROWTH, f"rxagents' own allocations grew {ours} B over {runs} runs:\n{our_top}"
    assert grown < SERVED_GROWTH_PER_RUN * runs, f"memory grew {grown} B over {runs} runs:\n{top}"
