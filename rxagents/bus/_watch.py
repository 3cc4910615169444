"""``watch`` / ``awatch``: the events of every live run on a bus, merged, for a dashboard in any process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import reactivex
from reactivex import Observable, abc

from rxagents import _runtime
from rxagents.bus._attach import aattach
from rxagents.bus._base import Bus, check_bus
from rxagents.bus._errors import BusError, RemoteRunError
from rxagents.errors import ConfigurationError
from rxagents.events import TokenEvent
from rxagents.operators import from_async_iter

__all__ = ["awatch", "watch"]

log = logging.getLogger("rxagents.bus")


def _check(bus: object, poll: object, exit_when_idle: object, on_ready: object) -> None:
    check_bus(bus)
    if on_ready is not None and not callable(on_ready):
        raise ConfigurationError(f"on_ready must be a function of no arguments or None, got {on_ready!r}")
    if isinstance(poll, bool) or not isinstance(poll, int | float) or not poll > 0:
        raise ConfigurationError(f"poll must be a number of seconds > 0, got {poll!r}")
    if exit_when_idle is not None and (
        isinstance(exit_when_idle, bool) or not isinstance(exit_when_idle, int | float) or not exit_when_idle > 0
    ):
        raise ConfigurationError(f"exit_when_idle must be a number of seconds > 0 or None (watch forever), "
                                 f"got {exit_when_idle!r}")  # fmt: skip


def awatch(
    bus: Bus, *, poll: float = 1.0, exit_when_idle: float | None = None, on_ready: Callable[[], None] | None = None
) -> AsyncIterator[TokenEvent]:
    """The async twin of :func:`watch` (same arguments); iterate it on the loop the bus connected on."""
    _check(bus, poll, exit_when_idle, on_ready)
    return _watch(bus, poll, exit_when_idle, on_ready)


def watch(
    bus: Bus, *, poll: float = 1.0, exit_when_idle: float | None = None, on_ready: Callable[[], None] | None = None
) -> Observable[TokenEvent]:
    """The events of every run that is live on ``bus``, merged: a cold Observable for a dashboard anywhere.

    Every ``poll`` seconds it lists the bus's runs (:meth:`Bus.runs`) and attaches to each run it does not
    follow yet, from its first event: at the first listing the runs that are ``"running"``, afterwards every new
    run, even one that already ended between two listings (none is missed, however short). Each run's events keep
    their order (their ``run_id`` and ``seq`` tell runs apart). A run's failure shows as its ``error`` event and
    does not end the stream. ``on_ready`` is called (on the bus's loop) once the first listing is done: every run
    started from then on will be followed.
    The stream goes on forever, or, with ``exit_when_idle``, completes once it followed at least one run, every
    run it follows has ended and none started for that many seconds. Events are delivered on the bus's loop.

    .. code-block:: text

        runs():   {r1}     {r1, r2}      {}
        output:   -s1-a1-----s2-b2-f1-f2---------|     (exit_when_idle passed)

    Example::

        await watch(bus, exit_when_idle=5).pipe(dashboard("runs on the bus", []))
    """
    _check(bus, poll, exit_when_idle, on_ready)

    def subscribe(
        observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        loop = bus.loop

        def events() -> AsyncIterator[TokenEvent]:
            return _watch(bus, poll, exit_when_idle, on_ready)

        return from_async_iter(events, scheduler=_runtime.loop_scheduler(loop)).subscribe(observer, scheduler=scheduler)

    return reactivex.create(subscribe)


async def _watch(
    bus: Bus, poll: float, exit_when_idle: float | None, on_ready: Callable[[], None] | None
) -> AsyncIterator[TokenEvent]:
    loop = asyncio.get_running_loop()
    arrived: asyncio.Queue[TokenEvent] = asyncio.Queue()
    followers: dict[str, asyncio.Task[None]] = {}
    history: set[str] | None = None  # the runs that had ended before the first listing: not followed
    last_activity = loop.time()

    async def follow(run_id: str) -> None:
        try:
            async for event in aattach(bus, run_id):
                arrived.put_nowait(event)
        except RemoteRunError:
            pass  # the run failed: its error event went by
        except BusError as error:
            log.warning("watching run %s: %s", run_id, error)

    async def discover() -> None:
        nonlocal last_activity, history
        try:
            runs = await bus.runs()
        except BusError as error:
            log.warning("watching %s: listing runs failed: %s", bus.url, error)
            return
        first = history is None
        if history is None:
            history = {run.run_id for run in runs if run.status != "running"}
        for run in runs:
            if run.run_id not in followers and run.run_id not in history:
                followers[run.run_id] = loop.create_task(follow(run.run_id))
                last_activity = loop.time()
        if first and on_ready is not None:
            on_ready()

    try:
        next_poll = loop.time()
        while True:
            now = loop.time()
            if now >= next_poll:
                await discover()
                next_poll = loop.time() + poll
            got: list[TokenEvent] = []
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(max(0.0, next_poll - loop.time())):
                    got.append(await arrived.get())
            if got:  # yielded outside the timeout: the consumer's time is its own
                last_activity = loop.time()
                yield got[0]
                while not arrived.empty():
                    yield arrived.get_nowait()
                continue
            busy = any(not task.done() for task in followers.values()) or not arrived.empty()
            if exit_when_idle is not None and followers and not busy and loop.time() - last_activity >= exit_when_idle:
                return
    finally:
        for task in followers.values():
            task.cancel()
        if followers:
            await asyncio.wait(list(followers.values()))
