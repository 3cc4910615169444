"""Bridges: Observable -> async iterator and async iterable -> cold Observable, cancellation both ways."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable
from reactivex.subject import Subject

from rxagents import Agent
from rxagents.events import EventKind, TokenEvent
from rxagents.models import OfflineModel
from rxagents.operators._bridge import from_async_iter, to_async_iter
from rxagents.operators._errors import SlowConsumerError


def tokens(*texts: str) -> list[TokenEvent]:
    return [TokenEvent(EventKind.TOKEN, "A", "r1", i, text=t) for i, t in enumerate(texts)]


class Tracked:
    """A hot source whose subscriptions and disposals are counted."""

    def __init__(self) -> None:
        self.subject: Subject[Any] = Subject()
        self.subscribed = 0
        self.disposed = 0

        def subscribe(observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None) -> Any:
            self.subscribed += 1
            inner = self.subject.subscribe(observer)

            def dispose() -> None:
                self.disposed += 1
                inner.dispose()

            return Disposable(dispose)

        self.observable: Observable[Any] = reactivex.create(subscribe)


# --- to_async_iter ------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_iterates_every_item_then_stops() -> None:
    items = [item async for item in to_async_iter(reactivex.from_iterable([1, 2, 3]))]
    assert items == [1, 2, 3]


@pytest.mark.asyncio
async def test_error_is_raised_after_the_items_before_it() -> None:
    boom = ValueError("boom")
    source = reactivex.concat(reactivex.from_iterable([1, 2]), reactivex.throw(boom))
    got: list[int] = []
    with pytest.raises(ValueError, match="boom") as info:
        async for item in to_async_iter(source):
            got.append(item)
    assert got == [1, 2] and info.value is boom


@pytest.mark.asyncio
async def test_subscribes_lazily_on_first_next() -> None:
    tracked = Tracked()
    iterator = to_async_iter(tracked.observable)
    assert tracked.subscribed == 0
    waiting = asyncio.ensure_future(anext(iterator))
    await asyncio.sleep(0)
    assert tracked.subscribed == 1
    tracked.subject.on_next("x")
    assert await waiting == "x"
    await iterator.aclose()


@pytest.mark.asyncio
async def test_break_disposes_the_subscription() -> None:
    tracked = Tracked()

    async def consume() -> list[str]:
        got: list[str] = []
        async for item in to_async_iter(tracked.observable):
            got.append(item)
            if item == "b":
                break
        return got

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0)
    for item in "abc":
        tracked.subject.on_next(item)
    assert await task == ["a", "b"]
    assert tracked.disposed == 1


@pytest.mark.asyncio
async def test_async_with_closes_and_disposes() -> None:
    tracked = Tracked()
    async with to_async_iter(tracked.observable) as events:
        waiting = asyncio.ensure_future(anext(events))
        await asyncio.sleep(0)
        tracked.subject.on_next(1)
        assert await waiting == 1
    assert tracked.disposed == 1
    with pytest.raises(StopAsyncIteration):
        await anext(events)


@pytest.mark.asyncio
async def test_cancelling_the_consumer_disposes_the_subscription() -> None:
    tracked = Tracked()

    async def consume() -> None:
        async for _ in to_async_iter(tracked.observable):
            pass

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0)
    assert tracked.subscribed == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert tracked.disposed == 1


@pytest.mark.asyncio
async def test_items_from_another_thread_arrive_in_order_on_the_loop() -> None:
    loop_thread = threading.get_ident()
    threads: list[int] = []

    def subscribe(observer: abc.ObserverBase[int], scheduler: abc.SchedulerBase | None = None) -> Any:
        def produce() -> None:
            for i in range(200):
                observer.on_next(i)
            observer.on_completed()

        threading.Thread(target=produce).start()
        return Disposable()

    got: list[int] = []
    async for item in to_async_iter(reactivex.create(subscribe)):
        threads.append(threading.get_ident())
        got.append(item)
    assert got == list(range(200))
    assert set(threads) == {loop_thread}


@pytest.mark.asyncio
async def test_slow_consumer_overflow_raises_after_the_held_items() -> None:
    tracked = Tracked()
    iterator = to_async_iter(tracked.observable, maxsize=2)
    first = asyncio.ensure_future(anext(iterator))
    await asyncio.sleep(0)
    for event in tokens("a", "b", "c", "d"):
        tracked.subject.on_next(event)  # the consumer has not run yet: a, b fill the queue; c overflows
    assert (await first).text == "a"
    assert (await anext(iterator)).text == "b"
    with pytest.raises(SlowConsumerError) as info:
        await anext(iterator)
    assert info.value.maxsize == 2 and info.value.partial_text == "ab"
    assert tracked.disposed == 1


@pytest.mark.asyncio
async def test_slow_consumer_partial_text_drops_what_a_retry_discarded() -> None:
    tracked = Tracked()
    iterator = to_async_iter(tracked.observable, maxsize=4)
    first = asyncio.ensure_future(anext(iterator))
    await asyncio.sleep(0)
    restart = TokenEvent(EventKind.RETRY, "A", "r1", 2, text="ModelError: cut")
    for event in [*tokens("Hel")[:1], restart, *tokens("Hello", "!", "?")]:
        tracked.subject.on_next(event)  # Hel, retry, Hello, ! fill the queue; ? overflows
    await first
    with pytest.raises(SlowConsumerError) as info:
        while True:
            await anext(iterator)
    assert info.value.partial_text == "Hello!"  # "Hel" was discarded by the retry event


@pytest.mark.asyncio
async def test_next_batch_takes_every_item_waiting_at_once_in_order() -> None:
    tracked = Tracked()
    iterator = to_async_iter(tracked.observable)
    first = asyncio.ensure_future(iterator.next_batch())  # subscribes, then waits: nothing waits yet
    await asyncio.sleep(0)
    assert not first.done() and tracked.subscribed == 1
    tracked.subject.on_next(1)
    tracked.subject.on_next(2)  # both before the consumer runs again
    assert await first == [1, 2]
    for item in (3, 4, 5):
        tracked.subject.on_next(item)
    assert await anext(iterator) == 3  # __anext__ and next_batch share the queue
    assert await iterator.next_batch() == [4, 5]
    tracked.subject.on_next(6)
    tracked.subject.on_completed()
    assert await iterator.next_batch() == [6]
    with pytest.raises(StopAsyncIteration):
        await iterator.next_batch()
    assert tracked.disposed == 1


@pytest.mark.asyncio
async def test_next_batch_raises_the_error_after_the_items_before_it() -> None:
    boom = ValueError("boom")
    iterator = to_async_iter(reactivex.concat(reactivex.from_iterable([1, 2]), reactivex.throw(boom)))
    assert await iterator.next_batch() == [1, 2]  # delivered while subscribing, in one batch
    with pytest.raises(ValueError, match="boom") as info:
        await iterator.next_batch()
    assert info.value is boom
    with pytest.raises(StopAsyncIteration):
        await iterator.next_batch()


@pytest.mark.asyncio
async def test_items_a_batch_took_no_longer_count_towards_maxsize() -> None:
    tracked = Tracked()
    iterator = to_async_iter(tracked.observable, maxsize=2)
    first = asyncio.ensure_future(iterator.next_batch())
    await asyncio.sleep(0)
    for event in tokens("a", "b"):
        tracked.subject.on_next(event)
    assert [e.text for e in await first] == ["a", "b"]
    for event in tokens("c", "d"):
        tracked.subject.on_next(event)  # room again: no overflow
    assert [e.text for e in await iterator.next_batch()] == ["c", "d"]
    assert tracked.disposed == 0
    await iterator.aclose()


@pytest.mark.asyncio
async def test_agent_stream_through_the_bridge() -> None:
    agent = Agent(agent_name="W", llm=OfflineModel(length=12), print_on=False)
    events = [e async for e in to_async_iter(agent.stream("Say hello"))]
    assert events[0].kind is EventKind.START and events[-1].kind is EventKind.FINISH
    assert [e.seq for e in events] == list(range(len(events)))


@pytest.mark.parametrize(("kwargs", "error"), [({"maxsize": -1}, ValueError), ({"maxsize": 1.5}, ValueError)])
def test_to_async_iter_bad_arguments(kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error, match="maxsize"):
        to_async_iter(reactivex.empty(), **kwargs)


def test_to_async_iter_needs_an_observable() -> None:
    with pytest.raises(TypeError, match="Observable"):
        to_async_iter([1, 2])  # type: ignore[arg-type]


# --- from_async_iter ----------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_from_async_iter_is_cold() -> None:
    calls: list[int] = []

    async def numbers() -> AsyncIterator[int]:
        calls.append(1)
        for i in range(3):
            yield i

    source = from_async_iter(numbers)
    assert calls == []
    first = [x async for x in to_async_iter(source)]
    second = [x async for x in to_async_iter(source)]
    assert first == second == [0, 1, 2] and calls == [1, 1]


@pytest.mark.asyncio
async def test_from_async_iter_error_goes_to_on_error() -> None:
    async def failing() -> AsyncIterator[int]:
        yield 1
        raise KeyError("gone")

    with pytest.raises(KeyError):
        async for _ in to_async_iter(from_async_iter(failing)):
            pass


@pytest.mark.asyncio
async def test_from_async_iter_dispose_cancels_and_closes_the_iterator() -> None:
    closed = asyncio.Event()
    waiting = asyncio.Event()

    async def endless() -> AsyncIterator[int]:
        try:
            yield 1
            waiting.set()
            await asyncio.Event().wait()
            yield 2
        finally:
            closed.set()

    got: list[int] = []
    sub = from_async_iter(endless).subscribe(got.append)
    await waiting.wait()
    sub.dispose()
    await closed.wait()
    assert got == [1]


@pytest.mark.asyncio
async def test_from_async_iter_dispose_inside_on_next_closes_without_cancelling_cleanup() -> None:
    cleaned = asyncio.Event()

    async def gen() -> AsyncIterator[int]:
        try:
            for i in range(10):
                yield i
        finally:
            await asyncio.sleep(0)  # async cleanup must still run
            cleaned.set()

    got: list[int] = []
    await asyncio.wait_for(_first_two(from_async_iter(gen), got), timeout=5)
    await cleaned.wait()
    assert got == [0, 1]


async def _first_two(source: Observable[int], got: list[int]) -> None:
    from reactivex import operators as ops

    done = asyncio.Event()
    source.pipe(ops.take(2)).subscribe(got.append, on_completed=done.set)
    await done.wait()


def test_from_async_iter_without_a_loop_runs_on_the_runtime_loop() -> None:
    done = threading.Event()
    threads: list[str] = []

    async def numbers() -> AsyncIterator[int]:
        for i in range(3):
            yield i

    from_async_iter(numbers).subscribe(lambda _: threads.append(threading.current_thread().name), on_completed=done.set)
    assert done.wait(5)
    assert threads == ["rxagents-runtime"] * 3


def test_from_async_iter_needs_a_factory() -> None:
    with pytest.raises(TypeError, match="factory"):
        from_async_iter([1, 2])  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_factory_returning_a_non_iterable_errors_the_stream() -> None:
    with pytest.raises(TypeError):
        async for _ in to_async_iter(from_async_iter(lambda: 42)):  # type: ignore[arg-type,return-value]
            pass


@pytest.mark.asyncio
async def test_round_trip() -> None:
    events = tokens("a", "b", "c")
    back = from_async_iter(lambda: to_async_iter(reactivex.from_iterable(events)))
    assert [e async for e in to_async_iter(back)] == events


# --- laws, by hand ------------------------------------------------------------------------------------------
# check_operator_laws drives operators in virtual time on a TestScheduler; the bridges need a running asyncio
# loop, so the laws that apply to them are tested here directly (9 cold repeatability and 12 pure factory:
# test_from_async_iter_is_cold, test_subscribes_lazily_on_first_next; 3 cancellation: the dispose tests).


@pytest.mark.asyncio
async def test_round_trip_passes_the_same_error_object() -> None:
    boom = ConnectionError("dropped")
    source = reactivex.concat(reactivex.from_iterable(tokens("a")), reactivex.throw(boom))
    back = from_async_iter(lambda: to_async_iter(source))
    with pytest.raises(ConnectionError) as info:
        async for _ in to_async_iter(back):
            pass
    assert info.value is boom


@pytest.mark.asyncio
async def test_from_async_iter_cleanup_runs_once_and_dispose_is_idempotent() -> None:
    finally_runs: list[int] = []
    closed = asyncio.Event()
    started = asyncio.Event()

    async def gen() -> AsyncIterator[int]:
        try:
            started.set()
            await asyncio.Event().wait()
            yield 0
        finally:
            finally_runs.append(1)
            closed.set()

    got: list[int] = []
    sub = from_async_iter(gen).subscribe(got.append)
    await started.wait()
    sub.dispose()
    sub.dispose()
    await closed.wait()
    await asyncio.sleep(0)
    assert finally_runs == [1] and got == []


@pytest.mark.asyncio
async def test_to_async_iter_nothing_after_aclose() -> None:
    tracked = Tracked()
    iterator = to_async_iter(tracked.observable)
    waiting = asyncio.ensure_future(anext(iterator))
    await asyncio.sleep(0)
    tracked.subject.on_next(1)
    assert await waiting == 1
    await iterator.aclose()
    await iterator.aclose()
    tracked.subject.on_next(2)  # no subscriber any more
    with pytest.raises(StopAsyncIteration):
        await anext(iterator)
    assert tracked.disposed == 1


def test_from_async_iter_runs_on_the_loop_of_the_given_scheduler() -> None:
    from rxagents import _runtime

    async def numbers() -> AsyncIterator[int]:
        for i in range(3):
            yield i

    async def main() -> tuple[list[int], set[str]]:
        threads: set[str] = set()
        done = asyncio.get_running_loop().create_future()
        got: list[int] = []

        def on_next(item: int) -> None:
            threads.add(threading.current_thread().name)
            got.append(item)

        loop = asyncio.get_running_loop()
        runtime = _runtime.loop_scheduler(_runtime.runtime_loop())  # not this test's loop
        from_async_iter(numbers, scheduler=runtime).subscribe(
            on_next, on_completed=lambda: loop.call_soon_threadsafe(done.set_result, None)
        )
        await asyncio.wait_for(done, 10)
        return got, threads

    got, threads = asyncio.run(main())
    assert got == [0, 1, 2]
    assert threads == {"rxagents-runtime"}
