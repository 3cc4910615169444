"""The publisher behind ``publish`` and ``apublish``: coalescing, bounded in-flight sends, bounded buffering.

Events are appended to a buffer; one sender task per publisher takes what is buffered, encodes it into messages
(consecutive events of one run share a message when ``coalesce`` is on) and hands batches of up to
``max_in_flight`` messages to the broker: ``bus._send_depth`` batches at once (NATS: two, so the next batch is on
the wire while the acknowledgements of the one before come in; Redis: one, its pipelines may take different
connections), each acknowledged in order before its events count as published. Nothing waits for
a timer: when the broker keeps up, every event goes out in its own message as soon as it arrives; when it falls
behind, the events that arrived meanwhile leave together. A batch whose acknowledgements do not all arrive is
sent again as it was (the broker drops what it already stored), until ``unavailable_timeout`` seconds pass
without success. A re-sent batch ends with a copy of each run's highest message under a fresh de-duplication id:
part of the batch may have been stored before the failure (NATS flushes what it buffered once it reconnects), so
the re-sent earlier messages land after later ones; the copy makes the run's last stored message its highest
seq again, which is what ``bus.runs()`` and ``bus.last_message`` read (readers drop the copy by seq).

A publisher given an attempt's :class:`~rxagents.bus._base.Fence` sends that run's messages with it: once a newer
attempt began, the broker refuses them and the publisher fails with :class:`~rxagents.bus.AttemptFenced`.

Buffer policy: the buffer holds the events given to the publisher and not yet acknowledged, at most
``max_buffer``. :meth:`Publisher.put` (``apublish``) waits for room; :meth:`Publisher.offer` (the ``publish``
operator, whose source cannot be paused) fails when it is full. Either way the publisher then fails with
:class:`~rxagents.bus.BusUnavailable` whose ``unpublished`` holds every event not acknowledged, in order.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections import deque
from collections.abc import Callable
from dataclasses import replace

from rxagents.bus._base import Bus, Fence, Outgoing, Transient
from rxagents.bus._errors import AttemptFenced, BusError, BusUnavailable
from rxagents.bus._wire import encode_message
from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, TokenEvent

__all__ = ["Publisher", "check_options"]

log = logging.getLogger("rxagents.bus")
#: Text characters a coalesced message holds at most (NATS refuses messages over 1 MiB by default).
_MAX_MESSAGE_TEXT = 128 * 1024


def check_options(coalesce: object, max_batch: object, max_in_flight: object, max_buffer: object,
                  unavailable_timeout: object, fence: object = None) -> None:
    """Raise ConfigurationError naming the first bad option."""
    if not isinstance(coalesce, bool):
        raise ConfigurationError(f"coalesce must be True or False, got {coalesce!r}")
    for name, value in (("max_batch", max_batch), ("max_in_flight", max_in_flight), ("max_buffer", max_buffer)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigurationError(f"{name} must be an int >= 1, got {value!r}")
    if isinstance(unavailable_timeout, bool) or not isinstance(unavailable_timeout, int | float) or not (
        unavailable_timeout > 0
    ):
        raise ConfigurationError(f"unavailable_timeout must be a number of seconds > 0, got {unavailable_timeout!r}")
    if fence is not None and not isinstance(fence, Fence):
        raise ConfigurationError(f"fence must be a Fence from await bus.begin_attempt(run_id) or None, got {fence!r}")


class Publisher:
    """Sends events to ``bus`` in order; see the module docs. Use it on the bus's loop only. ``on_failure`` is
    called (on the loop) with the publisher's error when it fails."""

    def __init__(
        self,
        bus: Bus,
        *,
        coalesce: bool = True,
        max_batch: int = 256,
        max_in_flight: int = 1024,
        max_buffer: int = 100_000,
        unavailable_timeout: float = 30.0,
        fence: Fence | None = None,
        on_failure: Callable[[BusError], None] | None = None,
    ) -> None:
        check_options(coalesce, max_batch, max_in_flight, max_buffer, unavailable_timeout, fence)
        self.bus = bus
        self.fence = fence
        self._on_failure = on_failure
        self.max_batch = max_batch if coalesce else 1
        self.max_in_flight = max_in_flight
        self.max_buffer = max_buffer
        self.unavailable_timeout = unavailable_timeout
        self.published = 0  # events acknowledged
        self.error: BusError | None = None
        self._pending: deque[TokenEvent] = deque()
        self._in_flight: list[Outgoing] = []
        self._in_flight_events = 0
        self._tokens: dict[str, int] = {}  # per run: its token events up to the last one encoded
        self._continuing: dict[str, TokenEvent] = {}  # runs whose first event here is not their start
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._room = asyncio.Event()
        self._room.set()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    @property
    def buffered(self) -> int:
        """Events given to the publisher and not acknowledged yet."""
        return len(self._pending) + self._in_flight_events

    def offer(self, event: TokenEvent) -> None:
        """Buffer ``event`` now. Raises the publisher's error (a BusError) if it failed, or fails it when the
        buffer is full."""
        if self.error is not None:
            raise self.error
        if len(self._pending) + self._in_flight_events >= self.max_buffer:
            self._fail(
                BusUnavailable(
                    f"publishing to {self.bus.url}: max_buffer={self.max_buffer} events are waiting for the broker's "
                    f"acknowledgement (it is unreachable, or slower than the stream); the unacknowledged events are "
                    f"in .unpublished",
                ),
                extra=event,
            )
            assert self.error is not None
            raise self.error
        self._append(event)

    async def put(self, event: TokenEvent) -> None:
        """Buffer ``event``, waiting for room in the buffer first. Raises the publisher's error if it failed."""
        while self.error is None and len(self._pending) + self._in_flight_events >= self.max_buffer:
            self._room.clear()
            await self._room.wait()
        if self.error is not None:
            raise self.error
        self._append(event)

    async def flush(self) -> None:
        """Return once every buffered event is acknowledged; raise the publisher's error if it failed."""
        await self._idle.wait()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        """Stop once what is buffered is sent (or the publisher fails)."""
        self._closing = True
        self._wake.set()

    # --- internals ----------------------------------------------------------------------------------------------

    def _append(self, event: TokenEvent) -> None:
        if event.seq > 0 and event.run_id not in self._tokens:
            self._continuing.setdefault(event.run_id, event)
        self._tokens.setdefault(event.run_id, 0)
        self._pending.append(event)
        self._idle.clear()
        self._wake.set()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    def _fail(self, error: BusError, extra: TokenEvent | None = None) -> None:
        unpublished = [event for message in self._in_flight for event in message.events]
        unpublished.extend(self._pending)
        if extra is not None:
            unpublished.append(extra)
        error.unpublished = error.events = tuple(unpublished)
        self.error = error
        self._pending.clear()
        self._in_flight = []
        self._in_flight_events = 0
        self._idle.set()
        self._room.set()
        self._wake.set()
        if self._on_failure is not None:
            self._on_failure(error)

    async def _run(self) -> None:
        window: deque[tuple[list[Outgoing], asyncio.Task[bool]]] = deque()
        try:
            while self.error is None:
                if self._pending and len(window) < self.bus._send_depth:
                    if self._continuing:
                        await self._count_stored()
                        continue
                    batch = self._take()
                    self._in_flight = self._in_flight + batch
                    self._in_flight_events += sum(len(message.events) for message in batch)
                    window.append((batch, asyncio.get_running_loop().create_task(self._send(batch))))
                    await asyncio.sleep(0)  # the batch goes on the wire before the next is taken
                    continue
                if window:
                    batch, sending = window[0]
                    if not await sending:
                        return
                    window.popleft()
                    done = sum(len(message.events) for message in batch)
                    self.published += done
                    self._in_flight = self._in_flight[len(batch) :]
                    self._in_flight_events -= done
                    self._room.set()
                    continue
                self._idle.set()
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
        except asyncio.CancelledError:
            for _, sending in window:
                sending.cancel()
            if self.error is None:
                self._fail(BusUnavailable(f"publishing to {self.bus.url} was cancelled"))
            raise
        except Exception as error:  # a bug: never leave waiters hanging
            for _, sending in window:
                sending.cancel()
            log.error("the bus publisher failed", exc_info=True)
            self._fail(BusError(f"publishing to {self.bus.url} failed: {type(error).__name__}: {error}"))
        finally:
            for _, sending in window:
                sending.cancel()

    async def _count_stored(self) -> None:
        """For runs whose first event here is not their start (a worker's next attempt, the end of a run, events
        published again): drop the events the broker holds already (up to its highest seq; it would drop
        them too) and start the run's token count from the broker's, so ``tokens`` counts the whole run."""
        continuing, self._continuing = self._continuing, {}
        for run_id in continuing:
            try:
                last = await self.bus.last_message(run_id)
            except BusError as error:
                log.warning("run %s: cannot read its token count (%s); counting from this publisher's", run_id, error)
                continue
            if last is None:
                continue
            stored = [event for event in self._pending if event.run_id == run_id and event.seq <= last.last]
            if stored:
                self._pending = deque(e for e in self._pending if e.run_id != run_id or e.seq > last.last)
                self.published += len(stored)
                self._room.set()
            if any(event.run_id == run_id for event in self._pending):
                self._tokens[run_id] = last.tokens
            else:
                self._tokens.pop(run_id, None)

    def _take(self) -> list[Outgoing]:
        """Encode buffered events into at most ``max_in_flight`` messages."""
        pending, messages = self._pending, list[Outgoing]()
        while pending and len(messages) < self.max_in_flight:
            group = [pending.popleft()]
            size = len(group[0].text)
            while pending and len(group) < self.max_batch and size < _MAX_MESSAGE_TEXT:
                event, last = pending[0], group[-1]
                if event.run_id != last.run_id or event.seq != last.seq + 1:
                    break
                group.append(pending.popleft())
                size += len(event.text)
            messages.append(self._encode(group))
        return messages

    def _encode(self, group: list[TokenEvent]) -> Outgoing:
        run_id = group[0].run_id
        tokens = self._tokens.get(run_id, 0) + sum(1 for event in group if event.kind is EventKind.TOKEN)
        if group[-1].is_terminal:
            self._tokens.pop(run_id, None)
        else:
            self._tokens[run_id] = tokens
        payload = encode_message(group, tokens)
        fence = self.fence if self.fence is not None and self.fence.run_id == run_id else None
        return Outgoing(run_id, group[0].seq, group[-1].seq, payload, tuple(group), fence)

    async def _send(self, messages: list[Outgoing]) -> bool:
        loop = asyncio.get_running_loop()
        failing_since: float | None = None
        backoff = 0.05
        sending = messages
        while self.error is None:
            try:
                await self.bus._send(sending)
                return True
            except Transient as error:
                sending = messages + _heads_again(self._in_flight)
                now = loop.time()
                if failing_since is None:
                    failing_since = now
                elif now - failing_since > self.unavailable_timeout:
                    self._fail(
                        BusUnavailable(
                            f"the broker at {self.bus.url} did not acknowledge within unavailable_timeout="
                            f"{self.unavailable_timeout}s ({error}); the unacknowledged events are in .unpublished"
                        )
                    )
                    return False
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            except AttemptFenced as error:
                self._fail(error)
                return False
            except BusError as error:
                self._fail(BusError(f"{error} (the unacknowledged events are in .unpublished)"))
                return False
        return False


def _heads_again(messages: list[Outgoing]) -> list[Outgoing]:
    """A copy of each run's highest message in ``messages``, under a de-duplication id of its own."""
    heads: dict[str, Outgoing] = {}
    for message in messages:
        if message.run_id not in heads or message.last > heads[message.run_id].last:
            heads[message.run_id] = message
    return [replace(message, again=secrets.randbits(31) | 1) for message in heads.values()]
