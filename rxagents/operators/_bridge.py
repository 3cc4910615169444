"""Bridges between Observables and asyncio: ``to_async_iter`` and ``from_async_iter``."""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxagents import _runtime
from rxagents._core.partial import PartialText
from rxagents.events import TokenEvent
from rxagents.operators._errors import SlowConsumerError

__all__ = ["ObservableIterator", "from_async_iter", "iterate", "to_async_iter", "to_gated_iter"]

_T = TypeVar("_T")
log = logging.getLogger("rxagents")


class _Channel(Generic[_T]):
    """The observer side of an :class:`ObservableIterator`: the queue between the stream and the consumer.

    Kept apart from the iterator so the subscription (which references this) does not keep the iterator
    alive: dropping the iterator disposes the subscription.
    """

    def __init__(self, maxsize: int, gate: _runtime.Gate | None = None) -> None:
        self.maxsize = maxsize
        self.gate = gate  # counts each item queued as handed over to the consumer
        self.items: deque[_T] = deque()
        self.ended = False
        self.error: BaseException | None = None
        self.waiter: asyncio.Future[None] | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.thread: int | None = None
        self.subscription: abc.DisposableBase | None = None
        self.lock = threading.Lock()
        self.in_flight = 0  # items handed to call_soon_threadsafe, not yet queued
        #: of the items queued, for SlowConsumerError.partial_text (only a bounded channel raises it)
        self.text = PartialText() if maxsize else None

    # --- producer side (any thread) ---------------------------------------------------------------------------
    def on_next(self, item: _T) -> None:
        # On the consumer's thread with nothing in flight (the usual case): queue it now, no lock needed. Another
        # thread only ever adds to in_flight, and never during this call (on_next calls do not overlap).
        if self.in_flight == 0 and threading.get_ident() == self.thread:
            self.push(item)
        else:
            self.deliver(self.push, item)

    def on_error(self, error: Exception) -> None:
        self.deliver(self.finish, error)

    def on_completed(self) -> None:
        self.deliver(self.finish, None)

    def deliver(self, action: Callable[[Any], None], value: Any) -> None:
        loop = self.loop
        assert loop is not None
        with self.lock:
            direct = self.in_flight == 0 and threading.get_ident() == self.thread
            if not direct:
                self.in_flight += 1
        if direct:
            action(value)
            return
        try:
            loop.call_soon_threadsafe(self.deliver_later, action, value)
        except RuntimeError:  # the consumer's loop is closed: nobody is listening any more
            self.dispose()

    def deliver_later(self, action: Callable[[Any], None], value: Any) -> None:
        with self.lock:
            self.in_flight -= 1
        action(value)

    # --- on the consumer's loop -------------------------------------------------------------------------------
    def push(self, item: _T) -> None:
        if self.ended:
            return
        if self.maxsize and len(self.items) >= self.maxsize:
            self.dispose()
            self.finish(
                SlowConsumerError(
                    f"the consumer fell {self.maxsize} events behind the stream (maxsize={self.maxsize}); "
                    "the subscription was disposed — consume faster or raise maxsize (0 = unbounded)",
                    maxsize=self.maxsize,
                    partial_text=self.text.text if self.text is not None else "",
                )
            )
            return
        if self.text is not None and isinstance(item, TokenEvent):
            self.text.add(item)
        self.items.append(item)
        if self.gate is not None:
            self.gate.handed += 1
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def finish(self, error: BaseException | None) -> None:
        if self.ended:
            return
        self.ended = True
        self.error = error
        self.wake()

    def wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def dispose(self) -> None:
        subscription, self.subscription = self.subscription, None
        if subscription is not None:
            subscription.dispose()


class ObservableIterator(AsyncIterator[_T], Generic[_T]):
    """The async iterator :func:`to_async_iter` returns; also an async context manager.

    It subscribes on the first ``__anext__`` (in the consumer's task) and disposes the subscription when
    the stream ends, when :meth:`aclose` is called (``async with`` does), when the consuming task is
    cancelled while waiting, or when the iterator is dropped (``break`` out of ``async for``).
    """

    def __init__(self, observable: Observable[_T], maxsize: int, gate: _runtime.Gate | None = None) -> None:
        self._observable = observable
        self._channel: _Channel[_T] = _Channel(maxsize, gate)
        self._closed = False

    def __aiter__(self) -> ObservableIterator[_T]:
        return self

    async def __anext__(self) -> _T:
        items = self._channel.items
        if not items:
            await self._wait()
            items = self._channel.items
        return items.popleft()

    async def next_batch(self) -> list[_T]:
        """Every item waiting, in order, at once: for a consumer that handles items a batch at a time (one wake-up
        per batch, not per item). Waits for an item if none waits; at the end, raises ``StopAsyncIteration`` (or
        the stream's error) as ``__anext__`` does. The items it returns no longer count towards ``maxsize``.

        Example::

            async with to_async_iter(agent.stream(task)) as events:
                while True:
                    try:
                        batch = await events.next_batch()
                    except StopAsyncIteration:
                        break
                    print("".join(e.text for e in batch), end="", flush=True)
        """
        channel = self._channel
        if not channel.items:
            await self._wait()
        items = list(channel.items)
        channel.items.clear()
        return items

    async def _wait(self) -> None:
        """Return once an item waits; raise ``StopAsyncIteration`` or the stream's error at its end."""
        channel = self._channel
        if self._closed:
            raise StopAsyncIteration
        if channel.loop is None:
            channel.loop = asyncio.get_running_loop()
            channel.thread = threading.get_ident()
            subscription = self._observable.subscribe(channel.on_next, channel.on_error, channel.on_completed)
            if channel.ended:  # terminated (or overflowed) while subscribing
                subscription.dispose()
            else:
                channel.subscription = subscription
        while True:
            if channel.items:
                return
            if channel.ended:
                self._closed = True
                channel.dispose()
                error, channel.error = channel.error, None
                if error is not None:
                    raise error
                raise StopAsyncIteration
            channel.waiter = channel.loop.create_future()
            try:
                await channel.waiter
            except asyncio.CancelledError:
                await self.aclose()
                raise
            finally:
                channel.waiter = None

    async def aclose(self) -> None:
        """Dispose the subscription and drop undelivered items; idempotent."""
        self._closed = True
        self._channel.ended = True
        self._channel.items.clear()
        self._channel.dispose()

    async def __aenter__(self) -> ObservableIterator[_T]:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self._channel.dispose()


def to_async_iter(observable: Observable[_T], *, maxsize: int = 0) -> ObservableIterator[_T]:
    """Iterate an Observable with ``async for``: the bridge from a stream to asyncio code.

    Nothing happens until the first ``__anext__``, which subscribes from the consumer's task (so an
    ``Agent.stream`` run executes on the consumer's loop). Items delivered on another thread are handed to
    the consumer's loop with ``loop.call_soon_threadsafe``, in order. An ``on_error`` is raised in the
    consumer after the items before it. Leaving early disposes the subscription (cancelling the run and
    closing its HTTP stream): ``break`` out of ``async for`` (when the iterator is dropped), cancelling the
    consuming task, or ``aclose()`` / ``async with``, which is the deterministic way.

    .. code-block:: text

        source:   -s--a--b--f-|
        consumer:  async for e in to_async_iter(source): ...   -> s, a, b, f, then StopAsyncIteration

        source:   -s--a--#
        consumer:  s, a, then the exception # is raised

    Args:
        observable: the stream (usually cold: each iterator subscribes once).
        maxsize: the most undelivered items to hold; 0 (default) for no limit. When a slow consumer falls
            that far behind, the subscription is disposed and, after the held items, the iterator raises
            :class:`SlowConsumerError`. An Observable cannot be paused, so this bounds memory, not the
            producer.

    Returns:
        An :class:`ObservableIterator` (an async iterator and async context manager).

    Example::

        async with to_async_iter(agent.stream(task)) as events:
            async for event in events:
                print(event.text, end="", flush=True)
    """
    if not isinstance(observable, Observable):
        raise TypeError(f"observable must be a reactivex Observable, got {type(observable).__name__}")
    if isinstance(maxsize, bool) or not isinstance(maxsize, int) or maxsize < 0:
        raise ValueError(f"maxsize must be an int >= 0 (0 = unbounded), got {maxsize!r}")
    return ObservableIterator(observable, maxsize)


def to_gated_iter(observable: Observable[_T], gate: _runtime.Gate) -> ObservableIterator[_T]:
    """:func:`to_async_iter` (unbounded) whose items count as handed over to ``gate`` as they are queued for the
    consumer, who calls ``gate.take()`` as it takes each: the readers of runs started on a
    :class:`~rxagents._runtime.GatedScheduler` of ``gate`` wait while ``gate.size`` items wait (``arun``)."""
    return ObservableIterator(observable, 0, gate)


def from_async_iter(
    factory: Callable[[], AsyncIterable[_T]], *, scheduler: abc.SchedulerBase | None = None
) -> Observable[_T]:
    """A cold Observable of what ``factory()`` yields: the bridge from asyncio code to a stream.

    Each subscription calls ``factory()`` and iterates it in a new task on the loop of the asyncio
    ``scheduler`` given here or to ``subscribe`` (else the loop running in the subscribing thread, else the
    rxagents runtime loop; see :mod:`rxagents._runtime`). Items are
    delivered from that loop. The iterator ending completes the stream; an exception (from ``factory`` or
    the iteration) is passed to ``on_error``. Disposing the subscription cancels the task, and the
    iterator's ``aclose()`` runs (closing an async generator's ``finally`` blocks, or an HTTP stream).

    .. code-block:: text

        factory() yields:  a   b   c   (end)
        output:            -a--b--c--|         per subscription, a new factory() call

    Args:
        factory: a callable returning a new async iterable each time, e.g. an async generator function.
        scheduler: an asyncio scheduler choosing the loop the iteration runs on (and items are delivered on).

    Returns:
        A cold Observable.

    Example::

        async def ticks():
            for i in range(3):
                await asyncio.sleep(1)
                yield i

        from_async_iter(ticks).subscribe(print)
    """
    if not callable(factory):
        raise TypeError(
            f"factory must be a callable returning an async iterable (e.g. an async generator function, or "
            f"lambda: it), got {type(factory).__name__}"
        )

    def subscribe(
        observer: abc.ObserverBase[_T], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        return iterate(factory, observer, _runtime.loop_of(scheduler or subscribe_scheduler))

    return reactivex.create(subscribe)


def iterate(
    factory: Callable[[], AsyncIterable[_T]],
    observer: abc.ObserverBase[_T],
    loop: asyncio.AbstractEventLoop,
    gate: _runtime.Gate | None = None,
) -> abc.DisposableBase:
    """What a subscription to :func:`from_async_iter` does, for an observer already wrapped (by the
    ``reactivex.create`` of a caller that builds its own cold Observable on it): iterate ``factory()`` in a new
    task on ``loop``, delivering to ``observer``; the disposable cancels it. With a ``gate``, after delivering an
    item it waits while the gate is full before reading the next (the iterator stays suspended meanwhile)."""
    disposed = False
    delivering = False  # inside observer.on_next: a dispose there lets pump stop and close by itself

    async def pump() -> None:
        nonlocal delivering
        iterator: AsyncIterator[_T] | None = None
        try:
            iterator = aiter(factory())
            while not disposed:
                try:
                    item = await anext(iterator)
                except StopAsyncIteration:
                    if not disposed:
                        observer.on_completed()
                    return
                if disposed:
                    return
                delivering = True
                try:
                    observer.on_next(item)
                except Exception:
                    log.error("an observer of from_async_iter raised; the stream stopped", exc_info=True)
                    raise
                finally:
                    delivering = False
                if gate is not None and gate.full:
                    await gate.wait()
        except Exception as error:
            if not disposed:
                observer.on_error(error)
        finally:
            close = getattr(iterator, "aclose", None)
            if close is not None:
                await close()

    if _runtime.running_loop() is loop:
        task = loop.create_task(pump())

        def cancel() -> None:
            nonlocal disposed
            disposed = True
            if _runtime.running_loop() is loop:
                if not delivering:
                    task.cancel()
            elif not loop.is_closed():
                loop.call_soon_threadsafe(task.cancel)

        return Disposable(cancel)

    future: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(pump(), loop)

    def cancel_threadsafe() -> None:
        nonlocal disposed
        disposed = True
        future.cancel()

    return Disposable(cancel_threadsafe)
