"""Event-loop and scheduler plumbing.

Where things run:

* A run subscribed from a thread with a running asyncio loop runs on that loop, and its
  events are delivered there.
* A run subscribed from a thread with no running loop (a plain script calling
  ``agent.stream(task).subscribe(...)``) runs on the *rxagents runtime loop*: one daemon
  thread owned by this module, started on first use. Its events are delivered on that thread.
* Time-based operators default to the scheduler of the loop that will deliver their events
  (:func:`default_scheduler`), never to RxPY's thread-per-timer ``TimeoutScheduler``.
* Runs whose events go to one asyncio consumer (``arun``) execute on a :class:`GatedScheduler`:
  each run's reader waits on the consumer's :class:`Gate` before reading the next event.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from weakref import WeakKeyDictionary

from reactivex import abc
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler

from rxagents._loop_thread import LoopThread
from rxagents._validate import check_int

__all__ = [
    "Gate",
    "GatedScheduler",
    "clock",
    "default_scheduler",
    "loop_clock",
    "loop_of",
    "loop_scheduler",
    "runtime_loop",
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

_lock = threading.Lock()
_runtime: asyncio.AbstractEventLoop | None = None
_schedulers: WeakKeyDictionary[asyncio.AbstractEventLoop, abc.SchedulerBase] = WeakKeyDictionary()


def runtime_loop() -> asyncio.AbstractEventLoop:
    """The rxagents runtime loop: a daemon thread's event loop, started on first use."""
    global _runtime
    with _lock:
        if _runtime is None or _runtime.is_closed():
            worker = LoopThread("rxagents-runtime").start()
            _runtime = worker.loop
            _register_shutdown(worker)
        return _runtime


def _register_shutdown(worker: LoopThread) -> None:
    """Stop the runtime loop cleanly when the interpreter exits, before ``atexit`` handlers run.

    A daemon thread frozen mid-work at finalisation can hold the import lock that litellm's own
    exit cleanup then waits on forever. So, first: close litellm's cached HTTP clients on this
    loop, cancel what still runs, shut down async generators, stop the loop and join the thread.
    """

    async def close_litellm_clients() -> None:
        litellm_cleanup = sys.modules.get("litellm.llms.custom_httpx.async_client_cleanup")
        if litellm_cleanup is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(litellm_cleanup.close_litellm_async_clients(), 2.0)

    def shutdown() -> None:
        with contextlib.suppress(Exception):
            worker.stop(close_litellm_clients, timeout=5.0)

    # threading's exit hooks run before atexit's (where litellm registers its cleanup).
    register = getattr(threading, "_register_atexit", None)
    try:
        if register is None:
            raise RuntimeError
        register(shutdown)
    except RuntimeError:  # interpreter already shutting down, or no such hook: fall back to atexit
        atexit.register(shutdown)


def running_loop() -> asyncio.AbstractEventLoop | None:
    """The asyncio loop running in this thread, if any."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def loop_scheduler(loop: asyncio.AbstractEventLoop) -> abc.SchedulerBase:
    """A reactivex scheduler for ``loop`` (thread-safe for the runtime loop), cached per loop."""
    with _lock:
        sched = _schedulers.get(loop)
        if sched is None:
            sched = AsyncIOThreadSafeScheduler(loop) if loop is _runtime else AsyncIOScheduler(loop)
            _schedulers[loop] = sched
        return sched


def run_loop() -> asyncio.AbstractEventLoop:
    """The loop a run started from this thread executes on: the running loop, else the runtime loop."""
    return running_loop() or runtime_loop()


def loop_of(scheduler: abc.SchedulerBase | None) -> asyncio.AbstractEventLoop:
    """The loop an asyncio ``scheduler`` drives; for any other (or None), :func:`run_loop`."""
    if isinstance(scheduler, AsyncIOScheduler):  # AsyncIOThreadSafeScheduler included
        loop: asyncio.AbstractEventLoop = scheduler._loop
        return loop
    return run_loop()


def default_scheduler(scheduler: abc.SchedulerBase | None = None) -> abc.SchedulerBase:
    """``scheduler`` if given, else the scheduler of the loop runs started here execute on."""
    if scheduler is not None:
        return scheduler
    return loop_scheduler(run_loop())


class Gate:
    """Backpressure between stream readers and one consumer, all on one loop.

    The consumer's side counts each item as it is handed over (:meth:`handed_over`) and as it is taken
    (:meth:`take`). A reader calls :meth:`wait` (only when :attr:`full`) before reading its next item: it
    returns once fewer than ``size`` items wait for the consumer. Nothing is dropped; a reader that waits
    simply does not read its socket meanwhile. With several readers the buffer can exceed ``size`` by one
    item per reader (each hands over the item it holds before it checks).
    """

    __slots__ = ("_room", "handed", "size", "taken")

    def __init__(self, size: int) -> None:
        self.size = check_int("size", size)
        self.handed = 0
        self.taken = 0
        self._room: asyncio.Event | None = None

    @property
    def full(self) -> bool:
        """``size`` or more items wait for the consumer."""
        return self.handed - self.taken >= self.size

    def handed_over(self, _: object = None) -> None:
        """One more item waits for the consumer."""
        self.handed += 1

    def take(self) -> None:
        """The consumer took one item; wakes the waiting readers once there is room."""
        self.taken += 1
        room = self._room
        if room is not None and self.handed - self.taken < self.size:
            self._room = None  # set once: the readers it wakes make a new one if they must wait again
            room.set()

    async def wait(self) -> None:
        """Return when there is room (at once if there is)."""
        while self.full:
            room = self._room
            if room is None:
                room = self._room = asyncio.Event()
            await room.wait()


class GatedScheduler(AsyncIOScheduler):
    """The scheduler of ``loop`` for runs whose events go to one consumer: each run started with it
    (``run_observable``) waits on ``gate`` after delivering an event, before reading the next one."""

    def __init__(self, loop: asyncio.AbstractEventLoop, gate: Gate) -> None:
        super().__init__(loop)
        self.gate = gate


def clock(scheduler: abc.SchedulerBase) -> float:
    """The scheduler's clock in seconds (virtual seconds for a ``TestScheduler``)."""
    now = scheduler.now
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    return (now - _EPOCH).total_seconds()


def loop_clock(loop: asyncio.AbstractEventLoop) -> Callable[[], float]:
    """:func:`clock` of ``loop``'s scheduler, cheaply: a function returning ``loop.time()`` plus the offset between
    the two clocks, taken once now.

    The scheduler's clock reads the wall clock as a ``datetime`` (about half a microsecond a reading), the loop's is
    a float from the monotonic clock. A run reads it once per event, so it takes the offset once: its times are the
    scheduler's seconds, and never go backwards even if the wall clock is set back during the run.
    """
    time = loop.time
    offset = clock(loop_scheduler(loop)) - time()

    def now() -> float:
        return time() + offset

    return now
