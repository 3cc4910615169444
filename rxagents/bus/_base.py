"""The broker interface: :class:`Bus`, what an adapter implements, and :class:`RunInfo`.

A :class:`Bus` is a connection to a broker that stores the events of runs, one ordered log per run. The
operators and functions of :mod:`rxagents.bus` (``publish``, ``attach``...) are written against this class
only; an adapter (:class:`~rxagents.bus.NatsBus`, :class:`~rxagents.bus.RedisBus`) implements four things:

- ``_connect`` / ``_close``: open and close the broker connection (on the running loop);
- ``_send(messages)``: store encoded messages, in order, and return once the broker acknowledged all of
  them. A message the broker already holds (same run and seq range) must not be stored twice. Raises
  :class:`Transient` when the broker is unreachable or did not answer (the caller retries the same
  messages), :class:`~rxagents.bus.BusError` when retrying cannot help;
- ``_read(run_id, from_seq, cursor)``: an async iterator of ``(payload, cursor)`` pairs, the stored messages
  of the run in store order, then new ones as they arrive, none that ends before ``from_seq`` needed to be
  included. ``cursor`` is the position just after a message; reading again with it resumes after that
  message (``None``: from the start). It yields ``None`` at least every second while nothing arrives (so the
  caller can keep its timers), and raises :class:`Transient` when the connection drops;
- ``_fence(run_id)``: begin a new attempt at a run (:meth:`Bus.begin_attempt`): from then on the broker
  refuses messages carrying an earlier attempt's fence (``_send`` raises
  :class:`~rxagents.bus._errors.AttemptFenced`);
- ``runs()``: the runs the broker holds, and ``last_message(run_id)``: the last one stored of a run;
- ``queue``: the work queue of tasks and the cancel requests (a :class:`~rxagents.bus._queue.TaskQueue`).
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import AsyncIterator, Generator, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal, Self

from rxagents._urls import safe_url
from rxagents.bus._errors import BusError, BusUnavailable, RemoteRunError, RunCancelled
from rxagents.bus._queue import TaskQueue
from rxagents.bus._wire import Message
from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, TokenEvent

__all__ = [
    "Bus",
    "Fence",
    "Outgoing",
    "RunInfo",
    "RunStatus",
    "Transient",
    "check_bus",
    "is_cancellation",
    "run_info",
    "scrub",
]

RunStatus = Literal["running", "finished", "failed", "cancelled"]


class Transient(Exception):
    """The broker is unreachable or did not answer in time; the same operation may succeed later."""


@dataclass(frozen=True, slots=True)
class RunInfo:
    """What the broker knows about one run (:meth:`Bus.runs`).

    Attributes:
        run_id: the run.
        agent: the agent's name (of the run's last event).
        model: the model name.
        status: ``"running"`` until the run's terminal event is stored, then ``"finished"`` (a ``finish``
            event), ``"cancelled"`` (an ``error`` event of a :class:`~rxagents.bus.RunCancelled`) or
            ``"failed"`` (any other ``error`` event).
        tokens: the run's token events stored so far.
        last_seq: the seq of the run's last stored event.
        time: the ``time`` of that event (the producing process's scheduler clock).
    """

    run_id: str
    agent: str
    model: str
    status: RunStatus
    tokens: int
    last_seq: int
    time: float


def is_cancellation(error: BaseException | None) -> bool:
    """Whether ``error`` is a :class:`RunCancelled`, here or as it crossed a broker."""
    return isinstance(error, RunCancelled) or (isinstance(error, RemoteRunError) and error.type == "RunCancelled")


def run_info(last: Message) -> RunInfo:
    """What a run's last stored message says about the run."""
    event = last.events[-1]
    status: RunStatus = "running"
    if event.kind is EventKind.FINISH:
        status = "finished"
    elif event.kind is EventKind.ERROR:
        status = "cancelled" if is_cancellation(event.error) else "failed"
    return RunInfo(last.run_id, event.agent, event.model, status, last.tokens, last.last, event.time)


@dataclass(frozen=True, slots=True)
class Fence:
    """One attempt at run ``run_id`` (:meth:`Bus.begin_attempt`): messages published with it are refused once a
    later attempt began. ``token`` is the adapter's (NATS: the stream sequence of the attempt's fence message;
    Redis: the attempt number)."""

    run_id: str
    token: int


@dataclass(frozen=True, slots=True)
class Outgoing:
    """An encoded message waiting for the broker: events ``first..last`` of ``run_id``, of the attempt ``fence``
    (None: not fenced). ``again`` > 0 marks a copy of a message re-sent after a failure (its id differs, see
    :class:`~rxagents.bus._publisher.Publisher`)."""

    run_id: str
    first: int
    last: int
    payload: bytes
    events: tuple[TokenEvent, ...]
    fence: Fence | None = None
    again: int = 0

    @property
    def msg_id(self) -> str:
        """The de-duplication id: ``run_id:seq`` for one event, ``run_id:first-last`` for several."""
        span = str(self.first) if self.first == self.last else f"{self.first}-{self.last}"
        return f"{self.run_id}:{span}" if not self.again else f"{self.run_id}:{span}~{self.again}"


def scrub(text: str, secrets: Sequence[str | None]) -> str:
    """``text`` with every secret of 4 characters or more replaced by ``***``."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


class Bus(abc.ABC):
    """A connection to a broker holding the event logs of runs. Use :func:`~rxagents.bus.connect_bus`, or an
    adapter's constructor, then connect it, either way:

    .. code-block:: python

        async with connect_bus("nats://127.0.0.1:4222") as bus:   # connects; closes on exit
            ...
        bus = await connect_bus("redis://127.0.0.1:6379/0")       # connects; call await bus.close()

    A bus belongs to the asyncio loop it connected on: its methods, and the streams of ``publish`` and
    ``attach``, run there. ``url`` is the broker URL without credentials; ``repr`` and errors show only it.
    """

    #: How many ``_send`` calls a publisher may have waiting at once (their messages go out in call order).
    _send_depth = 1

    def __init__(self, url: str) -> None:
        self.url = safe_url(url)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._connecting: asyncio.Lock | None = None
        self._closed = False

    # --- lifecycle -------------------------------------------------------------------------------------------

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The loop the bus connected on.

        Raises:
            BusError: the bus is not connected.
        """
        if self._loop is None or self._closed:
            state = "closed" if self._closed else "not connected"
            raise BusError(f"{self!r} is {state}: use 'async with connect_bus(url) as bus' or 'await bus.connect()'")
        return self._loop

    @property
    def connected(self) -> bool:
        """Whether :meth:`connect` succeeded and :meth:`close` was not called."""
        return self._loop is not None and not self._closed

    async def connect(self) -> Self:
        """Connect (idempotent) and return the bus.

        Raises:
            BusUnavailable: the broker cannot be reached.
        """
        if self._closed:
            raise BusError(f"{self!r} was closed; make a new one")
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._loop is None:
                await self._connect()
                self._loop = asyncio.get_running_loop()
        return self

    async def close(self) -> None:
        """Close the connection (idempotent). Publishers that have not flushed lose nothing they were
        told about: they fail with :class:`~rxagents.bus.BusUnavailable` carrying what was not published."""
        if self._closed:
            return
        self._closed = True
        if self._loop is not None:
            await self._close()

    async def aclose(self) -> None:
        """The same as :meth:`close`."""
        await self.close()

    def __await__(self) -> Generator[Any, None, Self]:
        return self.connect().__await__()

    async def __aenter__(self) -> Self:
        return await self.connect()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"

    # --- what adapters implement -------------------------------------------------------------------------------

    @abc.abstractmethod
    async def _connect(self) -> None: ...

    @abc.abstractmethod
    async def _close(self) -> None: ...

    @abc.abstractmethod
    async def _send(self, messages: Sequence[Outgoing]) -> None: ...

    @abc.abstractmethod
    def _read(self, run_id: str, from_seq: int, cursor: Any) -> AsyncIterator[tuple[bytes, Any] | None]: ...

    @abc.abstractmethod
    async def _fence(self, run_id: str) -> int: ...

    async def begin_attempt(self, run_id: str) -> Fence:
        """Begin a new attempt at run ``run_id``: from now on the broker refuses the messages of every earlier
        attempt (published with its :class:`Fence`), whose publishers fail with
        :class:`~rxagents.bus.AttemptFenced`. Read the run (:meth:`last_message`) *after* this, then publish the
        attempt with ``publish(bus, fence=...)``: nothing an earlier attempt writes can land after that read.
        A worker does this for every task it takes.

        Raises:
            BusUnavailable: the broker cannot be reached.
        """
        try:
            return Fence(run_id, await self._fence(run_id))
        except Transient as error:
            raise BusUnavailable(f"cannot begin an attempt at run {run_id!r} on {self.url}: {error}") from None

    @property
    @abc.abstractmethod
    def queue(self) -> TaskQueue:
        """The bus's work queue and cancel requests (see :mod:`rxagents.bus._queue`); used by
        :func:`~rxagents.bus.submit`, :func:`~rxagents.bus.cancel` and :class:`~rxagents.bus.Worker`."""

    @abc.abstractmethod
    async def last_message(self, run_id: str) -> Message | None:
        """The last stored message of ``run_id`` (None: the broker has none).

        Raises:
            BusUnavailable: the broker cannot be reached.
        """

    @abc.abstractmethod
    async def runs(self) -> list[RunInfo]:
        """The runs the broker holds (live and recent, within the retention limits), oldest first.

        Raises:
            BusUnavailable: the broker cannot be reached.
        """


def check_bus(bus: object) -> Bus:
    """``bus``, which must be a :class:`Bus` (what publish, attach, watch, submit, workers and servers take)."""
    if not isinstance(bus, Bus):
        raise ConfigurationError(f"bus must be a Bus (e.g. connect_bus(url)), got {type(bus).__name__}")
    return bus
