"""Delivering a run's events to user callbacks, in order, isolated from the run.

One :class:`Dispatcher` per ``run``/``arun`` call; two drivers:

* :meth:`Dispatcher.consume` (``Agent.run``, ``Workflow.run_result``): the runs execute on the rxagents
  runtime loop, which only reads the sockets and queues events; **the thread that called** ``run`` takes
  them off and calls the handlers, so a slow callback never stalls the socket reader. The events are handed
  over in batches: those one turn of the loop produced (one socket read's worth) go on the queue together,
  once that turn's work is done, so the calling thread is woken once per batch, not once per token. Except
  after a pause: the first event of a batch that starts :data:`YIELD_INTERVAL` or more after the previous
  one, while the calling thread **waits** idle for events, is handed over at once, not when its turn ends (a
  turn that parses a burst can take 100 ms). The calling thread, once woken, also needs the GIL, which a
  runtime thread busy with a burst would keep until the interpreter forces a switch
  (``sys.getswitchinterval()``, 5 ms), so the runtime thread then **yields** to it: it waits until the
  calling thread has taken the batch (at most :data:`YIELD_TIMEOUT`); the calling thread is woken through a
  pipe, so that the kernel runs it there and then (:class:`_Waker`). So the first token after the request,
  or after any pause, reaches the callback at once (the handlers run meanwhile; the loop thread goes on once
  the calling thread waits again, or the interpreter switches back), while a burst's events still go a turn
  at a time. That costs at most one such wait per :data:`YIELD_INTERVAL` per ``run``
  call: typically a thread switch, 0.01–0.2 ms of the runtime loop, which every ``run`` call shares (no
  measurable CPU per token, bench/README.md). ``run`` cannot await: an ``async def`` callback is rejected
  before the run starts (use ``arun``), and a coroutine a callback returns is closed and counted as that
  callback's error.
* :meth:`Dispatcher.aconsume` (``arun``, ``arun_result``): the runs execute on the caller's loop and the
  awaiting task calls the handlers **on the loop's thread**, in event order, as every asyncio callback
  runs; it takes the events waiting a batch at a time too
  (:meth:`~rxagents.operators.ObservableIterator.next_batch`). Whatever a handler returns that is awaitable
  (an ``async def`` callback's coroutine, the task a ``lambda t: asyncio.create_task(...)`` creates) is
  awaited before the next event's handlers. Between
  the runs' readers and the callbacks is a buffer of at most :data:`CALLBACK_BUFFER` events; when it is
  full the readers wait (backpressure: nothing is dropped, the model's socket is just not read until the
  callbacks catch up). No executor thread is used, so any number of ``arun`` calls can be gathered. A
  slow *sync* callback holds up the loop, as in any asyncio code: that is the caller's choice.

Either way a raising callback is isolated (``on_callback_error="log"``: counted, logged once per run) or
fatal (``"raise"``: the run is cancelled and :attr:`Dispatcher.error` is a ``RunError`` with the partial
text); every event reaches every handler once, in order. Building the handlers and reading the outcome is the
run driver's part (:mod:`rxagents._drive`).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from reactivex import Observable, abc

from rxagents import _runtime
from rxagents.errors import RunError, partial_text_of
from rxagents.events import TokenEvent
from rxagents.operators._bridge import to_gated_iter

__all__ = ["CALLBACK_BUFFER", "YIELD_INTERVAL", "YIELD_TIMEOUT", "CallbackErrorPolicy", "Dispatcher", "Handler"]

log = logging.getLogger("rxagents")

#: "log": count a raising callback's errors and log them once per run, keep streaming.
#: "raise": the first callback error stops the run; ``run`` raises a RunError from it.
CallbackErrorPolicy = str

#: A handler gets each event; in ``arun`` an awaitable it returns is awaited before the next event.
Handler = Callable[[TokenEvent], Any]

#: ``arun``: the most events that wait for the callbacks before the runs' readers wait too.
CALLBACK_BUFFER = 256

#: ``run``: a batch that starts this long (seconds, loop clock) after the previous one goes to a waiting callback
#: thread at once, and the runtime thread yields to it.
YIELD_INTERVAL = 0.001
#: ``run``: the longest the runtime thread waits for the calling thread to take a batch when it yields (seconds).
YIELD_TIMEOUT = 0.0005

_END = object()

_CORO_IN_RUN = (
    "the streaming_callback returned a coroutine, which run() cannot await (it calls callbacks on the "
    "thread that called it); use `await agent.arun(task, streaming_callback=...)` for async callbacks"
)


class _Waker:
    """Wakes the callback thread of ``run`` through a pipe it reads when it has nothing to do.

    A pipe, not the queue's own lock: on Linux a pipe write wakes the reader synchronously (the kernel places it
    to run where the writer runs, as soon as the writer blocks), where a lock's wake-up can queue the woken
    thread behind another process's task until the next scheduler tick (4 ms): measured, the first token
    reached the callback 0.03 ms after the hand-off every time, against 3.5–4.5 ms in a third of the runs.
    Without a pipe (none could be opened) the thread blocks on the queue itself.
    """

    __slots__ = ("_lock", "read", "write")

    def __init__(self) -> None:
        self._lock = threading.Lock()  # a write never goes to a descriptor closed (and maybe reused) meanwhile
        self.read: int | None = None
        self.write: int | None = None
        try:
            self.read, self.write = os.pipe()
            os.set_blocking(self.write, False)
        except OSError:  # out of descriptors: the queue's lock wakes the thread instead
            self.close()

    def wake(self) -> None:
        with self._lock:
            if self.write is not None:
                with contextlib.suppress(BlockingIOError):  # full of wake-ups not read yet: it is awake anyway
                    os.write(self.write, b"\0")

    def wait(self) -> None:
        """Block until the next wake-up (or one not read yet)."""
        assert self.read is not None
        os.read(self.read, 512)

    def close(self) -> None:
        with self._lock:
            for fd in (self.read, self.write):
                if fd is not None:
                    os.close(fd)
            self.read = self.write = None


class Dispatcher:
    """The events of one ``run``/``arun`` call, delivered to its handlers (see the module docstring).

    ``handlers`` get every event; ``routes`` maps an agent name to handlers that get only that agent's
    events (a workflow's per-agent callbacks and printers), called after ``handlers``.

    :attr:`events` are the events delivered so far, in order: what the outcome and a fatal callback error's
    partial text are made of. ``record`` is a list the source itself appends each event to *before* handing it
    on (a workflow's stream keeps one for its ``WorkflowError``; an agent's run machine keeps its run's events):
    the dispatcher then reads that list up to :attr:`delivered` instead of keeping a second one.
    """

    def __init__(
        self,
        handlers: Sequence[Handler],
        *,
        agent: str,
        on_callback_error: str = "log",
        routes: Mapping[str, Sequence[Handler]] | None = None,
        record: list[TokenEvent] | None = None,
    ) -> None:
        self.handlers = tuple(handlers)
        self.routes = {name: tuple(hs) for name, hs in (routes or {}).items() if hs}
        #: agent name -> every handler of its events, in order (only the agents with routes)
        self._routed = {name: self.handlers + hs for name, hs in self.routes.items()}
        self.agent = agent
        self.policy = on_callback_error
        self._record = record
        self._kept: list[TokenEvent] = [] if record is None else record
        #: How many events reached the handlers.
        self.delivered = 0
        self.callback_errors = 0
        self.first_callback_error: BaseException | None = None
        self.error: BaseException | None = None
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._batch: list[TokenEvent] = []  # the events of this loop turn, not handed over yet
        self._consumer: int | None = None  # the thread that calls the handlers (consume)
        self._waiting = False  # the callback thread waits for a batch, with none on the queue (consume)
        self._batch_at = float("-inf")  # when the first event of the latest batch was pushed (loop clock)
        self._taken = threading.Lock()  # released by the callback thread when it takes a batch the producer waits on
        self._taken.acquire()
        self._want_taken = False  # the producer waits (or waited) on _taken
        self._waker: _Waker | None = None  # how the producer wakes the waiting callback thread (consume)
        #: How many times the producer waited for the callback thread to take a batch (see the module docstring).
        self.yields = 0
        #: Called (on the callback thread) when a callback error is fatal; cancels the run.
        self.on_fatal: Callable[[], Any] | None = None

    @property
    def events(self) -> list[TokenEvent]:
        """The events delivered so far, in order."""
        if self._record is None or self.delivered == len(self._kept):
            return self._kept
        return self._kept[: self.delivered]  # the source recorded events the handlers have not had yet

    # producer side (the run's loop) ------------------------------------------------------------
    def push(self, event: TokenEvent) -> None:
        """Queue ``event`` for the callback thread: with the other events of this turn of the running loop, handed
        over together once the turn's work is done. At once when it starts a batch after a pause while that
        thread waits idle for events (see the module docstring), when no loop runs on this thread, or when this
        is the callback thread itself, whose loop, if any, waits for the handlers."""
        batch = self._batch
        batch.append(event)
        if len(batch) == 1:
            loop = _runtime.running_loop()
            if loop is None or threading.get_ident() == self._consumer:
                self._flush()
                return
            now = loop.time()
            if self._waiting and now - self._batch_at >= YIELD_INTERVAL:
                self._batch_at = now
                self._hand_over()
            else:
                self._batch_at = now
                loop.call_soon(self._flush)

    def _hand_over(self) -> None:
        """Hand the batch to the waiting callback thread now, and wait until that thread has taken it (at most
        :data:`YIELD_TIMEOUT`), so it gets the GIL now rather than at the interpreter's next forced switch."""
        self.yields += 1
        self._want_taken = True
        self._flush()
        self._taken.acquire(timeout=YIELD_TIMEOUT)  # releases the GIL meanwhile

    def _flush(self) -> None:
        batch = self._batch
        if batch:
            self._batch = []
            self._put(batch)

    def _put(self, item: Any) -> None:
        self._queue.put(item)
        if self._waiting:  # after the put: if the thread had looked at the queue before it, it waits for this
            self._waiting = False
            waker = self._waker
            if waker is not None:
                waker.wake()

    def push_error(self, error: Exception) -> None:
        self._flush()
        self._put((_END, error))

    def push_end(self) -> None:
        self._flush()
        self._put((_END, None))

    # consumer side (the callback thread) --------------------------------------------------------
    def drain(self) -> None:
        """Call the handlers for every event until the run ends. Returns normally either way;
        :attr:`error` tells the outcome."""
        take = self._take
        kept = None if self._record is not None else self._kept
        handlers, routed = self.handlers, self._routed
        iscoroutine = inspect.iscoroutine
        while self.error is None:  # a fatal callback error cancelled the run
            item = take()
            if type(item) is tuple:  # the end: (_END, error or None)
                if item[1] is not None and self.error is None:
                    self.error = item[1]
                break
            for event in item:
                if kept is not None:
                    kept.append(event)
                self.delivered += 1
                for handler in routed.get(event.agent, handlers) if routed else handlers:
                    try:
                        result = handler(event)
                        if result is not None and iscoroutine(result):
                            result.close()  # never awaited: close it rather than leak a "never awaited" warning
                            raise TypeError(_CORO_IN_RUN)
                    except Exception as exc:
                        self._callback_failed(exc)
                if self.error is not None:
                    break
        self._report()

    def _take(self) -> Any:
        """The next item of the queue, waiting for it (woken by :meth:`_put`)."""
        get, waker = self._queue.get_nowait, self._waker
        while True:
            self._waiting = True  # before looking: a put after the look then wakes this thread
            try:
                item = get()
            except queue.Empty:
                if waker is None or waker.read is None:
                    item = self._queue.get()
                else:
                    waker.wait()
                    continue
            self._waiting = False
            if self._want_taken:  # the producer waits until this thread has taken a batch: it has
                self._want_taken = False
                with contextlib.suppress(RuntimeError):  # released already, after the producer stopped waiting
                    self._taken.release()
            return item

    # driving a run -----------------------------------------------------------------------------
    def consume(self, observable: Observable[TokenEvent]) -> None:
        """Subscribe ``observable`` and call the handlers on *this* thread until it ends.

        Any exception here (``KeyboardInterrupt`` included) disposes the subscription, which
        cancels the run and closes its HTTP stream, before it propagates.
        """
        self._consumer = threading.get_ident()
        self._waker = waker = _Waker()
        try:
            subscription = observable.subscribe(on_next=self.push, on_error=self.push_error, on_completed=self.push_end)
            self.on_fatal = subscription.dispose
            try:
                self.drain()
            except BaseException:
                self._waiting = False  # interrupted while waiting: nobody will take a batch now
                subscription.dispose()
                raise
        finally:
            waker.close()

    async def aconsume(self, build: Callable[[abc.SchedulerBase], Observable[TokenEvent]]) -> None:
        """Run ``build(scheduler)`` on the running loop and call the handlers in this task until it ends.

        ``scheduler`` is a :class:`~rxagents._runtime.GatedScheduler` of the running loop: runs started
        with it wait while :data:`CALLBACK_BUFFER` events wait for the handlers. An awaitable a handler
        returns is awaited here, before the next event. Returns normally when the runs end or a callback
        error is fatal (:attr:`error` tells the outcome); cancelling the awaiting task cancels the runs
        (and closes their HTTP streams), then propagates.
        """
        gate = _runtime.Gate(CALLBACK_BUFFER)
        observable = build(_runtime.GatedScheduler(asyncio.get_running_loop(), gate))
        try:
            async with to_gated_iter(observable, gate) as events:
                try:
                    while self.error is None:  # a fatal callback error: leaving disposes the runs
                        await self._adeliver(await events.next_batch(), gate)
                except StopAsyncIteration:
                    pass
                except Exception as exc:  # the stream's own error (the handlers' are caught in _adeliver)
                    if self.error is None:
                        self.error = exc
        finally:
            self._report()

    async def _adeliver(self, batch: list[TokenEvent], gate: _runtime.Gate) -> None:
        """Call the handlers of each event of ``batch`` in order, awaiting what they return, until a callback
        error is fatal."""
        kept = None if self._record is not None else self._kept
        handlers, routed = self.handlers, self._routed
        isawaitable = inspect.isawaitable
        for event in batch:
            gate.take()  # the event no longer waits: a reader may read one more
            if kept is not None:
                kept.append(event)
            self.delivered += 1
            for handler in routed.get(event.agent, handlers) if routed else handlers:
                try:
                    result = handler(event)
                    if result is not None and isawaitable(result):
                        await result
                except asyncio.CancelledError as cancelled:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise  # this arun was cancelled
                    self._callback_failed(cancelled)  # the callback's own task was cancelled by someone else
                except Exception as exc:
                    self._callback_failed(exc)
            if self.error is not None:
                return

    def _callback_failed(self, exc: BaseException) -> None:
        self.callback_errors += 1
        if self.first_callback_error is None:
            self.first_callback_error = exc
        if self.policy == "raise" and self.error is None:
            events = self.events
            self.error = RunError(
                f"agent {self.agent!r}: streaming_callback raised {type(exc).__name__}: {exc} "
                "(on_callback_error='raise'; use 'log' to keep streaming)",
                partial_text=partial_text_of(events),
                events=events,
            )
            self.error.__cause__ = exc
            if self.on_fatal is not None:
                self.on_fatal()

    def _report(self) -> None:
        if self.callback_errors and self.policy != "raise":
            log.warning(
                "agent %r: streaming_callback raised %d time(s) during the run; the stream continued. First error:",
                self.agent,
                self.callback_errors,
                exc_info=self.first_callback_error,
            )
