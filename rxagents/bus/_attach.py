"""``attach`` / ``aattach``: follow a run on the bus, from any seq, from any process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import reactivex
from reactivex import Observable, abc

from rxagents import _runtime
from rxagents.bus._base import Bus, Transient, check_bus
from rxagents.bus._errors import BusError, BusGapError, BusUnavailable, RemoteRunError, RunNotFound
from rxagents.bus._wire import Message, decode_message
from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, TokenEvent
from rxagents.operators import from_async_iter

__all__ = ["aattach", "attach"]

#: Out-of-order messages an attachment holds while it waits for a missing one, at most.
MAX_HELD = 10_000


def _check(bus: object, run_id: object, from_seq: object, timeouts: dict[str, float | None]) -> None:
    check_bus(bus)
    if not isinstance(run_id, str) or not run_id:
        raise ConfigurationError(f"run_id must be a non-empty string, got {run_id!r}")
    if isinstance(from_seq, bool) or not isinstance(from_seq, int) or from_seq < 0:
        raise ConfigurationError(f"from_seq must be an int >= 0 (0 replays the whole run), got {from_seq!r}")
    for name, value in timeouts.items():
        if value is None and name == "start_timeout":
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
            extra = " or None (wait forever)" if name == "start_timeout" else ""
            raise ConfigurationError(f"{name} must be a number of seconds > 0{extra}, got {value!r}")


def aattach(
    bus: Bus,
    run_id: str,
    from_seq: int = 0,
    *,
    start_timeout: float | None = 30.0,
    gap_timeout: float = 30.0,
    reconnect_timeout: float = 30.0,
) -> AsyncIterator[TokenEvent]:
    """The events of run ``run_id`` from seq ``from_seq`` on, as an async iterator: the stored ones, then the
    live ones, until the run's terminal event. The async twin of :func:`attach` (which documents the
    behaviour); iterate it on the loop the bus connected on.

    Example::

        async for event in aattach(bus, run_id):
            print(event.text, end="")
    """
    _check(
        bus,
        run_id,
        from_seq,
        {"start_timeout": start_timeout, "gap_timeout": gap_timeout, "reconnect_timeout": reconnect_timeout},
    )
    return _follow(bus, run_id, from_seq, start_timeout, gap_timeout, reconnect_timeout)


def attach(
    bus: Bus,
    run_id: str,
    from_seq: int = 0,
    *,
    start_timeout: float | None = 30.0,
    gap_timeout: float = 30.0,
    reconnect_timeout: float = 30.0,
) -> Observable[TokenEvent]:
    """A cold Observable of run ``run_id``'s events from seq ``from_seq`` on, read from the bus: the stored events
    first (a run that already ended is replayed whole), then the live ones as the publisher stores them.

    Every subscription reads the broker afresh, so two subscribers see identical events. The stream:

    - holds exactly the run's events with ``seq >= from_seq``, in seq order, each once: a message stored twice
      (a publisher retrying) or overlapping what was delivered is dropped by seq, and messages stored out of order
      (a publisher re-sending after a reconnect) are put back in order;
    - completes after the run's ``finish`` event; after an ``error`` event it fails with that event's error, a
      :class:`~rxagents.bus.RemoteRunError` (the type and message of the publisher's exception, and the
      ``partial_text`` delivered). It completes at once, empty, if the run ended before ``from_seq``;
    - waits up to ``start_timeout`` seconds for a run of which the broker has nothing (it may not have started
      yet), then fails with :class:`~rxagents.bus.RunNotFound`;
    - survives a dropped connection or a broker restart: it reads again from the last message it saw, and fails
      with :class:`~rxagents.bus.BusUnavailable` only after ``reconnect_timeout`` seconds without success;
    - fails with :class:`~rxagents.bus.BusGapError` if a missing seq does not arrive within ``gap_timeout``
      seconds while later ones did (retention removed the start of the run, or its publisher died mid-retry).

    Events are delivered on the loop the bus connected on. Disposing the subscription stops reading and deletes
    the broker-side consumer. Every operator and sink works on it as on ``Agent.stream``.

    .. code-block:: text

        stored:   s a b           (then the publisher stores c f)
        attach:   -s-a-b-----c-f-|           attach(bus, run, from_seq=0)
        attach:   -b-----c-f-|               attach(bus, run, from_seq=2)

    Args:
        bus: a connected :class:`~rxagents.bus.Bus`.
        run_id: the run to follow.
        from_seq: the first seq wanted (0: the whole run). Resuming after a dropped client: the last seq it
            received + 1.
        start_timeout: seconds to wait for a run the broker knows nothing of; None waits forever.
        gap_timeout: seconds to wait for a missing seq while later ones arrived.
        reconnect_timeout: seconds of failed reconnecting before the stream fails.

    Returns:
        A cold Observable of :class:`~rxagents.events.TokenEvent`.

    Example::

        text = await attach(bus, run_id).pipe(collect_text())
    """
    timeouts = {"start_timeout": start_timeout, "gap_timeout": gap_timeout, "reconnect_timeout": reconnect_timeout}
    _check(bus, run_id, from_seq, timeouts)

    def subscribe(
        observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        loop = bus.loop  # raises BusError (to on_error) when the bus is not connected

        def events() -> AsyncIterator[TokenEvent]:
            return _follow(bus, run_id, from_seq, start_timeout, gap_timeout, reconnect_timeout)

        source = from_async_iter(events, scheduler=_runtime.loop_scheduler(loop))
        return source.subscribe(observer, scheduler=scheduler)

    return reactivex.create(subscribe)


class _Order:
    """Puts a run's messages back in seq order, each seq once."""

    def __init__(self, run_id: str, from_seq: int) -> None:
        self.run_id = run_id
        self.next_seq = from_seq
        self.held: dict[int, Message] = {}
        self.gap_since: float | None = None
        self.ended = False  # the run's terminal event is at a seq before from_seq

    def accept(self, message: Message, now: float) -> list[TokenEvent]:
        """The events that are now next in order, given ``message``."""
        if message.last < self.next_seq:
            if message.events[-1].is_terminal:
                self.ended = True
            return []
        if message.first > self.next_seq:
            self.held.setdefault(message.first, message)
            if self.gap_since is None:
                self.gap_since = now
            if len(self.held) > MAX_HELD:
                raise self.gap_error(f"more than {MAX_HELD} messages arrived after it")
            return []
        out = list(message.events[self.next_seq - message.first :])
        self.next_seq = message.last + 1
        while self.held:
            ready = [first for first in self.held if first <= self.next_seq]
            if not ready:
                break
            for first in sorted(ready):
                held = self.held.pop(first)
                if held.last >= self.next_seq:
                    out.extend(held.events[self.next_seq - held.first :])
                    self.next_seq = held.last + 1
        self.gap_since = now if self.held else None
        return out

    def gap_error(self, why: str) -> BusGapError:
        upto = min(self.held) if self.held else self.next_seq + 1
        missing = range(self.next_seq, upto)
        return BusGapError(
            f"run {self.run_id!r}: events {missing.start}..{missing.stop - 1} are missing on the broker and "
            f"{why}: they expired under the retention limits, or the publisher failed before storing them",
            run_id=self.run_id,
            missing=missing,
        )


async def _follow(
    bus: Bus,
    run_id: str,
    from_seq: int,
    start_timeout: float | None,
    gap_timeout: float,
    reconnect_timeout: float,
) -> AsyncIterator[TokenEvent]:
    loop = asyncio.get_running_loop()
    if loop is not bus.loop:
        raise BusError(f"{bus!r} belongs to another event loop: attach to it from the loop it connected on")
    order = _Order(run_id, from_seq)
    started = loop.time()
    seen = False
    cursor: object = None
    failing_since: float | None = None
    backoff = 0.05
    text: list[str] = []
    while True:
        try:
            async for item in bus._read(run_id, order.next_seq, cursor):
                failing_since, backoff = None, 0.05
                now = loop.time()
                if item is not None:
                    payload, cursor = item
                    message = decode_message(payload)
                    if message.run_id != run_id:
                        continue
                    seen = True
                    for event in order.accept(message, now):
                        if event.kind is EventKind.TOKEN:
                            text.append(event.text)
                        elif event.kind is EventKind.RETRY:
                            text.clear()
                        yield event
                        if event.kind is EventKind.FINISH:
                            return
                        if event.kind is EventKind.ERROR:
                            error = event.error
                            if not isinstance(error, RemoteRunError):
                                error = RemoteRunError("Error", "the run failed")
                            error.partial_text = "".join(text)
                            raise error
                    if order.ended:
                        return
                if order.gap_since is not None and now - order.gap_since > gap_timeout:
                    error = order.gap_error(f"did not arrive within gap_timeout={gap_timeout}s")
                    error.partial_text = "".join(text)
                    raise error
                if not seen and start_timeout is not None and now - started > start_timeout:
                    raise RunNotFound(
                        f"no event of run {run_id!r} on {bus.url} within start_timeout={start_timeout}s: the run id "
                        f"is wrong, the run has not started, or it expired (start_timeout=None waits forever)",
                        run_id=run_id,
                    )
            raise Transient("the broker ended the subscription")
        except Transient as error:
            now = loop.time()
            if failing_since is None:
                failing_since = now
            elif now - failing_since > reconnect_timeout:
                raise BusUnavailable(
                    f"lost the broker at {bus.url} while following run {run_id!r} and could not read again within "
                    f"reconnect_timeout={reconnect_timeout}s ({error}); resume with from_seq={order.next_seq}"
                ) from None
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, 1.0)
