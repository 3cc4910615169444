"""``publish`` (an operator) and ``apublish`` (a coroutine): put a run's events on the bus."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterable, Callable, Iterable

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SingleAssignmentDisposable

from rxagents import _runtime
from rxagents.bus._base import Bus, Fence, check_bus
from rxagents.bus._errors import BusError, RunCancelled
from rxagents.bus._publisher import Publisher, check_options
from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, TokenEvent

__all__ = ["apublish", "publish"]

log = logging.getLogger("rxagents.bus")
_background: set[asyncio.Task[None]] = set()  # publishers finishing after their subscription was disposed


def publish(
    bus: Bus,
    *,
    coalesce: bool = True,
    max_batch: int = 256,
    max_in_flight: int = 1024,
    max_buffer: int = 100_000,
    unavailable_timeout: float = 30.0,
    fence: Fence | None = None,
) -> Callable[[Observable[TokenEvent]], Observable[TokenEvent]]:
    """Publish every event of the stream to ``bus``; the events pass through unchanged.

    Each event is handed to the bus's publisher, then passed downstream. The publisher sends in the background,
    in order (see :mod:`rxagents.bus._publisher`): consecutive events of one run share a broker message when
    ``coalesce`` is on and the broker is behind; at most ``max_in_flight`` messages wait for acknowledgements.
    The stream completes (or passes on the source's error) only once the broker acknowledged every event, so
    when it ends, every attached process can read the whole run.

    Buffer policy: at most ``max_buffer`` events wait for acknowledgement. When the broker is unreachable for
    ``unavailable_timeout`` seconds, or the buffer is full (a source cannot be paused), the stream fails with
    :class:`~rxagents.bus.BusUnavailable` whose ``unpublished`` holds, in order, every event not acknowledged,
    and the source is disposed. Nothing is dropped silently. (:func:`apublish` waits for room instead.)

    Several runs may share one stream (a workflow's merged events): each goes to its own log. Events from
    another thread are handed to the bus's loop in order. Disposing the subscription stops the source; what was
    handed over is still sent, in the background, and every run whose terminal event had not come gets one: an
    ``error`` event of :class:`~rxagents.bus.RunCancelled` (seq: the run's next), so the run never stays
    ``"running"`` on the broker and every attached process sees it end.

    .. code-block:: text

        source:  -s-a-b-f-|
        output:  -s-a-b-f--|       completes when the broker acknowledged s a b f
        broker:   s a b f          (a and b may share a message)

        source:  -s-a-b-f-|        the broker is down for unavailable_timeout
        output:  -s-a-b-f---#      BusUnavailable, .unpublished == (s, a, b, f)

        source:  -s-a-b-           disposed after b
        broker:   s a b e          e: an error event of RunCancelled, seq 3

    Args:
        bus: a connected :class:`~rxagents.bus.Bus`.
        coalesce: let consecutive events of a run share a message (up to ``max_batch`` events).
        max_batch: events per message at most.
        max_in_flight: messages awaiting acknowledgement at most.
        max_buffer: events awaiting acknowledgement at most.
        unavailable_timeout: seconds of failed sending before the stream fails.
        fence: the attempt this is (:meth:`Bus.begin_attempt <rxagents.bus.Bus.begin_attempt>`), for a run
            that may be attempted again elsewhere (a worker's task): once a newer attempt began, the broker
            refuses this one's messages and the stream fails with :class:`~rxagents.bus.AttemptFenced` (the
            source is disposed). None: not fenced.

    Returns:
        An operator from TokenEvents to the same TokenEvents.

    Example::

        async with connect_bus("nats://127.0.0.1:4222") as bus:
            await agent.stream(task).pipe(publish(bus), collect_text())
    """
    check_bus(bus)
    check_options(coalesce, max_batch, max_in_flight, max_buffer, unavailable_timeout, fence)
    options = {
        "coalesce": coalesce,
        "max_batch": max_batch,
        "max_in_flight": max_in_flight,
        "max_buffer": max_buffer,
        "unavailable_timeout": unavailable_timeout,
        "fence": fence,
    }

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            loop = bus.loop  # raises BusError (to on_error) when the bus is not connected
            lock = threading.RLock()
            done = False
            ended = False  # the source terminated (on_completed / on_error)
            open_runs: dict[str, TokenEvent] = {}  # the last event of each run whose terminal event has not come
            publisher: Publisher | None = None
            upstream = SingleAssignmentDisposable()

            def on_loop() -> bool:
                return _runtime.running_loop() is loop

            def the_publisher() -> Publisher:
                nonlocal publisher
                if publisher is None:
                    publisher = Publisher(bus, **options, on_failure=fail)  # type: ignore[arg-type]
                return publisher

            def fail(error: Exception) -> None:
                nonlocal done
                with lock:
                    if done:
                        return
                    done = True
                upstream.dispose()
                observer.on_error(error)

            def hand(event: TokenEvent) -> None:
                try:
                    the_publisher().offer(event)
                except BusError as error:
                    fail(error)

            def on_next(event: TokenEvent) -> None:
                if done:
                    return
                if event.is_terminal:
                    open_runs.pop(event.run_id, None)
                else:
                    open_runs[event.run_id] = event
                if on_loop():
                    hand(event)
                else:
                    loop.call_soon_threadsafe(hand, event)
                with lock:
                    if not done:
                        observer.on_next(event)

            async def finish(error: Exception | None) -> None:
                nonlocal done
                try:
                    if publisher is not None:
                        publisher.close()
                        await publisher.flush()
                except BusError as failure:
                    if error is not None:
                        failure.__cause__ = error
                    fail(failure)
                    return
                with lock:
                    if done:
                        return
                    done = True
                if error is not None:
                    observer.on_error(error)
                else:
                    observer.on_completed()

            def end(error: Exception | None) -> None:
                nonlocal ended
                ended = True
                if done:
                    return
                if on_loop():
                    _keep(loop.create_task(finish(error)))
                else:
                    loop.call_soon_threadsafe(lambda: _keep(loop.create_task(finish(error))))

            def end_open_runs(endings: list[TokenEvent]) -> None:
                """On the loop: hand the terminal events of the runs left open, then let the publisher finish."""
                for event in endings:
                    try:
                        the_publisher().offer(event)
                    except BusError as error:
                        log.warning("run %s: could not publish its cancellation: %s", event.run_id, error)
                        break
                if publisher is not None:
                    publisher.close()
                    if endings:
                        _keep(loop.create_task(_drain(publisher)))

            def dispose() -> None:
                nonlocal done
                with lock:
                    over = done or ended  # failed, or the source ended: no run is left open by disposing
                    done = True
                    endings = [] if over else [_cancelled(last) for last in open_runs.values()]
                    open_runs.clear()
                if on_loop():
                    end_open_runs(endings)
                elif not loop.is_closed():
                    loop.call_soon_threadsafe(end_open_runs, endings)

            upstream.disposable = source.subscribe(on_next, end, lambda: end(None), scheduler=scheduler)
            return CompositeDisposable(upstream, Disposable(dispose))

        return reactivex.create(subscribe)

    return operator


def _cancelled(last: TokenEvent) -> TokenEvent:
    """The terminal event of a run whose publishing subscription was disposed after ``last``."""
    error = RunCancelled(last.run_id, "the subscription publishing it was disposed before the run ended")
    return TokenEvent(
        EventKind.ERROR, last.agent, last.run_id, last.seq + 1, loop=last.loop, error=error, time=last.time,
        model=last.model,
    )


async def _drain(publisher: Publisher) -> None:
    try:
        await publisher.flush()
    except BusError as error:
        log.warning("publishing the end of disposed runs failed: %s", error)


def _keep(task: asyncio.Task[None]) -> None:
    _background.add(task)
    task.add_done_callback(_background.discard)


async def apublish(
    bus: Bus,
    events: AsyncIterable[TokenEvent] | Iterable[TokenEvent],
    *,
    coalesce: bool = True,
    max_batch: int = 256,
    max_in_flight: int = 1024,
    max_buffer: int = 100_000,
    unavailable_timeout: float = 30.0,
    fence: Fence | None = None,
) -> int:
    """Publish ``events`` (an iterable or async iterable) to ``bus`` and return how many the broker acknowledged
    (all of them: otherwise it raises). The async twin of :func:`publish`, with the same options (``fence``
    too); when
    ``max_buffer`` events wait for acknowledgement it stops taking events until there is room.

    Raises:
        BusUnavailable: the broker was unreachable for ``unavailable_timeout`` seconds; ``.unpublished`` holds
            every event taken and not acknowledged (the events not taken yet are still in ``events``).

    Example::

        count = await apublish(bus, agent.astream(task))
    """
    check_bus(bus)
    check_options(coalesce, max_batch, max_in_flight, max_buffer, unavailable_timeout, fence)
    if asyncio.get_running_loop() is not bus.loop:
        raise BusError(f"{bus!r} belongs to another event loop: publish from the loop it connected on")
    publisher = Publisher(
        bus,
        coalesce=coalesce,
        max_batch=max_batch,
        max_in_flight=max_in_flight,
        max_buffer=max_buffer,
        unavailable_timeout=unavailable_timeout,
        fence=fence,
    )
    try:
        if isinstance(events, AsyncIterable):
            async for event in events:
                await publisher.put(_event(event))
        elif isinstance(events, Iterable):
            for event in events:
                await publisher.put(_event(event))
        else:
            raise ConfigurationError(
                f"events must be an iterable or async iterable of TokenEvent (for an Observable use "
                f"source.pipe(publish(bus))), got {type(events).__name__}"
            )
        publisher.close()
        await publisher.flush()
    finally:
        publisher.close()
    return publisher.published


def _event(item: object) -> TokenEvent:
    if not isinstance(item, TokenEvent):
        raise ConfigurationError(f"events must hold TokenEvent items, got {type(item).__name__}: {item!r}"[:200])
    return item
