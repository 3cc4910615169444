"""LoopThread: an event loop on a daemon thread, started, used from other threads and stopped cleanly."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from rxagents._loop_thread import LoopThread


@pytest.fixture
def worker() -> Iterator[LoopThread]:
    worker = LoopThread("rxagents-test-loop").start()
    yield worker
    worker.stop()


def test_start_returns_once_the_loop_runs_on_a_named_daemon_thread(worker: LoopThread) -> None:
    assert worker.loop.is_running() and worker.running

    async def where() -> tuple[str, bool]:
        return threading.current_thread().name, threading.current_thread().daemon

    assert worker.run(where(), timeout=5) == ("rxagents-test-loop", True)


def test_start_runs_the_setup_on_the_loop_first() -> None:
    seen: list[str] = []

    async def setup() -> None:
        seen.append(threading.current_thread().name)

    worker = LoopThread("rxagents-test-loop").start(setup(), timeout=5)
    try:
        assert seen == ["rxagents-test-loop"]
    finally:
        worker.stop()


def test_a_failing_setup_stops_the_loop_thread_and_is_raised() -> None:
    async def setup() -> None:
        raise OSError("port taken")

    worker = LoopThread("rxagents-test-loop")
    with pytest.raises(OSError, match="port taken"):
        worker.start(setup(), timeout=5)
    assert worker.loop.is_closed() and not worker.running
    assert "rxagents-test-loop" not in {thread.name for thread in threading.enumerate()}


def test_run_returns_the_result_and_raises_the_exception(worker: LoopThread) -> None:
    async def double(x: int) -> int:
        await asyncio.sleep(0)
        return 2 * x

    async def fail() -> None:
        raise KeyError("boom")

    assert worker.run(double(21)) == 42
    with pytest.raises(KeyError, match="boom"):
        worker.run(fail())
    assert worker.submit(double(4)).result(5) == 8


def test_run_timing_out_cancels_the_coroutine(worker: LoopThread) -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError):
        worker.run(forever(), timeout=0.05)
    assert cancelled.wait(5)


def test_run_on_its_own_thread_is_refused(worker: LoopThread) -> None:
    async def inner() -> int:
        return 1

    async def outer() -> None:
        worker.run(inner())

    with pytest.raises(RuntimeError, match="await the coroutine instead"):
        worker.run(outer(), timeout=5)


def test_stop_runs_the_hook_then_cancels_tasks_closes_generators_and_the_loop() -> None:
    worker = LoopThread("rxagents-test-loop").start()
    order: list[str] = []
    generators: list[AsyncIterator[int]] = []  # kept alive, not finished

    async def agen() -> AsyncIterator[int]:
        try:
            yield 1
            await asyncio.Event().wait()
        finally:
            order.append("generator closed")

    async def setup() -> None:
        async def pending() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                order.append("task cancelled")
                raise

        worker.loop.create_task(pending())
        generator = agen()
        await anext(generator)
        generators.append(generator)

    async def hook() -> None:
        order.append("hook")

    worker.run(setup(), timeout=5)
    thread = next(t for t in threading.enumerate() if t.name == "rxagents-test-loop")
    worker.stop(hook, timeout=5)
    assert order == ["hook", "task cancelled", "generator closed"]
    assert not thread.is_alive() and worker.loop.is_closed() and not worker.running
    worker.stop()  # idempotent


def test_a_failing_hook_is_raised_after_the_loop_stopped() -> None:
    worker = LoopThread("rxagents-test-loop").start()

    async def hook() -> None:
        raise OSError("cleanup failed")

    with pytest.raises(OSError, match="cleanup failed"):
        worker.stop(hook, timeout=5)
    assert worker.loop.is_closed() and not worker.running


def test_stop_of_a_loop_thread_never_started_closes_its_loop() -> None:
    worker = LoopThread("rxagents-test-loop")
    worker.stop()
    assert worker.loop.is_closed()


def test_stop_on_its_own_thread_is_refused(worker: LoopThread) -> None:
    async def stop_here() -> None:
        worker.stop()

    with pytest.raises(RuntimeError, match="call it from another thread"):
        worker.run(stop_here(), timeout=5)
    assert worker.running
