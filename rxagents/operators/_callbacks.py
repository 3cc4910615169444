"""``tap_safe``: call a user callback for each item (event or text chunk) without letting it break the stream."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Literal, TypeAlias, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rxagents import _runtime
from rxagents._validate import check_bool, check_choice, check_kinds, check_scheduler, fail
from rxagents.events import EventKind, TokenEvent
from rxagents.operators._errors import CallbackError, Relay

__all__ = ["CallbackStats", "tap_safe"]

log = logging.getLogger("rxagents")

Payload: TypeAlias = Literal["text", "dict", "event"]
#: ``handler(exception, item)``: ``item`` is the TokenEvent (or, on a stream of text chunks, the ``str``) the
#: callback failed on.
ErrorHandler: TypeAlias = Callable[[Exception, Any], object]

_T = TypeVar("_T")


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


_DEFAULT = _Default()


class CallbackStats:
    """Counters of a ``tap_safe`` callback, summed over every subscription of the operator it is given to.

    Attributes:
        calls: callback invocations started.
        errors: invocations that raised (sync) or whose awaitable failed (async).
        dropped: awaitables (async callbacks) discarded unfinished because the subscription was disposed
            or the stream was ended by ``on_error="raise"``.
        first_error: the first exception, or None.

    Updated from whichever thread runs the callback; reads are consistent per attribute.
    """

    __slots__ = ("_lock", "calls", "dropped", "errors", "first_error")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.errors = 0
        self.dropped = 0
        self.first_error: BaseException | None = None

    def _call(self) -> None:
        with self._lock:
            self.calls += 1

    def _add(self, *, calls: int = 0, errors: int = 0, dropped: int = 0, error: BaseException | None = None) -> None:
        with self._lock:
            self.calls += calls
            self.errors += errors
            self.dropped += dropped
            if error is not None and self.first_error is None:
                self.first_error = error

    def __repr__(self) -> str:
        first = type(self.first_error).__name__ if self.first_error is not None else None
        return f"CallbackStats(calls={self.calls}, errors={self.errors}, dropped={self.dropped}, first_error={first})"


def _name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, "__qualname__", None) or repr(fn))


class _Tap:
    """One subscription of ``tap_safe``."""

    def __init__(self, config: _Config, observer: abc.ObserverBase[Any]) -> None:
        self.cfg = config
        raising = config.on_error == "raise"
        self.relay: Relay[Any] = Relay(observer, keep_events=raising)
        # raise mode: the str chunks delivered (the relay records only events), for CallbackError.partial_text
        self.chunks: list[str] | None = [] if raising else None
        self.lock = threading.Lock()
        self.calls = 0
        self.errors = 0
        self.first_error: BaseException | None = None
        self.handler_warned = False
        self.ended = False  # upstream terminated, stream failed, or disposed
        self.terminated = False  # upstream terminated: pending callbacks are for delivered events, keep them
        self.completion_held = False  # raise mode: on_completed waits for pending callbacks
        self.stopped = False  # no more callbacks: disposed or failed
        self.reported = False
        # scheduler= mode: events waiting for the callback, drained by one scheduled action at a time
        self.waiting: deque[Any] = deque()
        self.draining = False
        self.drain_action = SerialDisposable()
        # awaitables (async callbacks): awaited in order by one task on the run's loop
        self.loop: asyncio.AbstractEventLoop | None = None
        self.subscriber_loop = _runtime.running_loop()
        self.awaiting: deque[tuple[Awaitable[Any], Any]] = deque()
        self.worker: asyncio.Task[None] | None = None
        self.handing_over = 0  # awaitables on their way to the loop (call_soon_threadsafe)

    # --- upstream -----------------------------------------------------------------------------------------
    def on_next(self, item: Any) -> None:
        cfg = self.cfg
        kinds = cfg.kinds
        if kinds is None:
            call = True
        elif type(item) is TokenEvent:  # the common case, without isinstance
            call = item.kind in kinds
        else:  # ``kinds`` selects among events; any other item (a buffer's str chunk) gets the callback
            call = not isinstance(item, TokenEvent) or item.kind in kinds
        if call:
            if cfg.scheduler is None:
                self.invoke(item)
            else:
                self.schedule(item)
        chunks = self.chunks
        if chunks is not None and type(item) is str and not self.relay.done:
            chunks.append(item)
        self.relay.on_next(item)

    def on_error(self, error: Exception) -> None:
        self.terminated = True
        self.relay.on_error(error)
        self.end()

    def on_completed(self) -> None:
        self.terminated = True
        if self.cfg.on_error == "raise" and self.busy():
            with self.lock:
                self.completion_held = True
        else:
            self.relay.on_completed()
        self.end()

    def dispose(self) -> None:
        """Dispose before termination drops pending callbacks; after it (reactivex disposes a completed
        subscription) they still run: they are for events already delivered."""
        self.relay.dispose()
        if not self.terminated:
            self.stop()
        self.end()

    # --- calling the callback -----------------------------------------------------------------------------
    def invoke(self, item: Any) -> None:
        if self.stopped:
            return
        arg: Any = item
        if type(item) is TokenEvent or (type(item) is not str and isinstance(item, TokenEvent)):
            # any other item (a str chunk) is passed as it is, whatever the payload
            payload = self.cfg.payload
            if payload == "text":
                arg = item.text
            elif payload == "dict":
                arg = item.to_dict()
        self.calls += 1  # one writer: calls are serialised (inline by the stream, else by the drain)
        self.cfg.stats._call()
        try:
            result = self.cfg.fn(arg)
        except Exception as exc:
            self.failed(exc, item)
            return
        if result is not None and inspect.isawaitable(result):
            self.submit(result, item)

    def failed(self, exc: Exception, item: Any) -> None:
        with self.lock:
            self.errors += 1
            if self.first_error is None:
                self.first_error = exc
        self.cfg.stats._add(errors=1, error=exc)
        on_error = self.cfg.on_error
        if on_error == "raise":
            event = item if isinstance(item, TokenEvent) else None
            error = CallbackError(
                f"callback {_name(self.cfg.fn)} raised {type(exc).__name__}: {exc} "
                f"(on_error='raise'; use on_error='log' to keep the stream going)",
                original=exc,
                event=event,
            )
            relay = self.relay
            last = relay.last
            time = event.time if event is not None else last.time if last is not None else 0.0
            if self.chunks:  # a stream of text chunks: its partial text is the chunks delivered
                with relay.lock:
                    error.partial_text = relay.partial_text + "".join(self.chunks)
                    error.events = relay.events
                relay.fail(error, time, fill=False)
            else:
                relay.fail(error, time)
            self.stop()
            self.end()
        elif on_error != "log":
            try:
                on_error(exc, item)
            except Exception as handler_exc:
                if not self.handler_warned:
                    self.handler_warned = True
                    log.warning(
                        "tap_safe: the on_error handler of callback %s raised; the stream continues",
                        _name(self.cfg.fn),
                        exc_info=handler_exc,
                    )

    # --- scheduler= mode -----------------------------------------------------------------------------------
    def schedule(self, item: Any) -> None:
        scheduler = self.cfg.scheduler
        assert scheduler is not None
        with self.lock:
            if self.stopped:
                return
            self.waiting.append(item)
            if self.draining:
                return
            self.draining = True
        self.drain_action.disposable = scheduler.schedule(self.drain)

    def drain(self, _: abc.SchedulerBase, __: Any = None) -> None:
        while True:
            with self.lock:
                if self.stopped or not self.waiting:
                    self.draining = False
                    break
                item = self.waiting.popleft()
            self.invoke(item)
        self.settle()

    # --- awaitables -----------------------------------------------------------------------------------------
    def submit(self, awaitable: Awaitable[Any], item: Any) -> None:
        if self.loop is None:  # the delivering thread's loop, else the subscriber's, else the runtime loop
            self.loop = _runtime.running_loop() or self.subscriber_loop or _runtime.runtime_loop()
        if _runtime.running_loop() is self.loop:
            self.enqueue(awaitable, item)
        else:
            with self.lock:
                self.handing_over += 1
            self.loop.call_soon_threadsafe(self.enqueue, awaitable, item, True)

    def enqueue(self, awaitable: Awaitable[Any], item: Any, handed_over: bool = False) -> None:
        """On the loop: queue the awaitable; one worker task awaits them in order."""
        if self.stopped:
            self.discard(awaitable)
        else:
            self.awaiting.append((awaitable, item))
            if self.worker is None:
                assert self.loop is not None
                self.worker = self.loop.create_task(self.work())
        if handed_over:
            with self.lock:
                self.handing_over -= 1
            self.settle()

    async def work(self) -> None:
        try:
            while self.awaiting and not self.stopped:
                awaitable, item = self.awaiting.popleft()
                try:
                    await awaitable
                except asyncio.CancelledError:
                    self.cfg.stats._add(dropped=1)
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise  # disposed: stop
                    # the callback's own task was cancelled by someone else: not ours to stop for
                except Exception as exc:
                    self.failed(exc, item)
        finally:
            self.worker = None
            self.discard_all()
            self.settle()

    def discard(self, awaitable: Awaitable[Any]) -> None:
        self.cfg.stats._add(dropped=1)
        if inspect.iscoroutine(awaitable):
            awaitable.close()
        elif isinstance(awaitable, asyncio.Future):
            awaitable.cancel()

    def discard_all(self) -> None:
        while self.awaiting:
            self.discard(self.awaiting.popleft()[0])

    # --- ending ---------------------------------------------------------------------------------------------
    def busy(self) -> bool:
        with self.lock:
            return self.draining or bool(self.waiting) or self.worker is not None or self.handing_over > 0

    def stop(self) -> None:
        """No more callbacks: drop waiting events and pending awaitables."""
        with self.lock:
            if self.stopped:
                return
            self.stopped = True
            self.waiting.clear()
        self.drain_action.dispose()
        loop, worker = self.loop, self.worker
        if loop is not None and not loop.is_closed():
            if _runtime.running_loop() is loop:
                self._cancel_worker(worker)
            else:
                loop.call_soon_threadsafe(self._cancel_worker, worker)

    def _cancel_worker(self, worker: asyncio.Task[None] | None) -> None:
        if worker is not None and not worker.done():
            worker.cancel()
        else:
            self.discard_all()

    def end(self) -> None:
        with self.lock:
            self.ended = True
        self.settle()

    def settle(self) -> None:
        """After the stream ended and no callback is pending: release a held completion, report errors."""
        with self.lock:
            if self.reported or not self.ended or self.draining or self.waiting or self.worker is not None:
                return
            if self.handing_over:
                return
            self.reported = True
            held, errors, calls, first = self.completion_held, self.errors, self.calls, self.first_error
        if held:
            self.relay.on_completed()
        if errors and self.cfg.on_error == "log":
            log.warning(
                "tap_safe: callback %s raised in %d of %d calls; the stream was not affected. First error:",
                _name(self.cfg.fn),
                errors,
                calls,
                exc_info=first,
            )


class _Config:
    __slots__ = ("fn", "kinds", "on_error", "payload", "scheduler", "stats")

    def __init__(
        self,
        fn: Callable[[Any], object],
        kinds: frozenset[EventKind] | None,
        on_error: Literal["log", "raise"] | ErrorHandler,
        payload: Payload,
        scheduler: abc.SchedulerBase | None,
        stats: CallbackStats,
    ) -> None:
        self.fn = fn
        self.kinds = kinds
        self.on_error = on_error
        self.payload = payload
        self.scheduler = scheduler
        self.stats = stats


def tap_safe(
    fn: Callable[[Any], object],
    *,
    on_error: Literal["log", "raise"] | ErrorHandler = "log",
    kinds: Iterable[EventKind | str] | _Default | None = _DEFAULT,
    detailed: bool = False,
    payload: Payload | None = None,
    scheduler: abc.SchedulerBase | None = None,
    stats: CallbackStats | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Call ``fn`` for each item and pass every item through unchanged; ``fn`` can never break the stream.

    This is the spec's ``safe_streaming_callback`` (``try: ... except: logger.error(...)``) done once, for
    every callback: an exception from ``fn`` is caught, counted (``stats``) and reported once per
    subscription — one ``WARNING`` on the ``"rxagents"`` logger when the stream ends, with the count and the
    first exception's traceback. It never reaches the model, never ends the stream, and never makes a run
    restart (so no token is delivered twice — unlike swarms, which treats a raising callback as a model
    failure and replays the answer on a fallback model).

    .. code-block:: text

        source:  -s--a--b--c--f-|          (s=start, a b c tokens, f=finish)
        fn:          a  b! c               ("b!" raises)
        output:  -s--a--b--c--f-|          + one warning at "|": 1 of 3 calls raised

    What ``fn`` receives (``payload``): the text delta (``"text"``, default), the detailed-mode dict
    ``event.to_dict()`` (``"dict"``, or ``detailed=True`` as in ``Agent(stream=True)``), or the
    :class:`TokenEvent` itself (``"event"``).

    Any item that is not a :class:`TokenEvent` — the ``str`` chunks of a buffer, say — is passed to ``fn``
    as it is, whatever the ``payload``, and ``kinds`` does not apply to it (``fn`` is called for every
    chunk). So ``tap_safe`` goes anywhere in a pipeline, before or after a buffer, with the same isolation:

    .. code-block:: text

        source:  -s-a-b-c-d-e-f-|          a..e token events
        buffer:  -----X---Y-----(Z|)       buffer_tokens(2): X="ab", Y="cd", Z="e"
        fn:           X   Y      Z         tap_safe(fn) after the buffer: fn("ab"), fn("cd"), fn("e")

    Where ``fn`` runs: with ``scheduler=None`` (default) inline, on the thread delivering the event (for
    ``Agent.stream`` the run's asyncio loop) before the event is passed on — keep it short. With a
    ``scheduler`` the calls are queued and run there in order, and events pass on without waiting.
    If ``fn`` returns an awaitable (an ``async def`` callback, or a lambda returning a coroutine or task),
    the awaitable is awaited on the run's asyncio loop (the loop of the thread delivering events, else the
    subscriber's loop, else the rxagents runtime loop) by one task per subscription, in event order,
    without blocking the stream; its failures are isolated the same way. Disposing the subscription cancels the
    awaitables not yet done (counted in ``stats.dropped``).

    Args:
        fn: the callback; sync, or returning an awaitable.
        on_error: ``"log"`` (default) as above; ``"raise"`` ends the stream at the first failure with a
            :class:`CallbackError` (its ``original`` is ``fn``'s exception; the event ``fn`` failed on is not
            passed on; a completion waits for pending awaitables); or a handler ``(exception, item) -> None``
            called for each failure instead of the warning (``item`` the event, or the ``str`` chunk).
        kinds: the event kinds ``fn`` is called for; ``None`` for all. Default: token events for
            ``payload="text"``, every kind for ``"dict"`` and ``"event"``. Items that are not events
            (``str`` chunks) always get the call.
        detailed: shorthand for ``payload="dict"``.
        payload: ``"text"``, ``"dict"`` or ``"event"`` (see above).
        scheduler: where ``fn`` runs (see above); ``None`` for inline.
        stats: a :class:`CallbackStats` to count calls, errors and dropped awaitables in.

    Returns:
        An operator passing every item (event or chunk) through unchanged.

    Example::

        stats = CallbackStats()
        async for event in to_async_iter(agent.stream(task).pipe(tap_safe(send_to_api, stats=stats))):
            ...
        print(f"{stats.errors} of {stats.calls} calls to send_to_api failed")

        # after a buffer, fn gets the chunks:
        agent.stream(task).pipe(buffer_tokens(20), tap_safe(websocket_send), collect_text())
    """
    if not callable(fn):
        fail("fn", "a callable", fn, hint="pass the function to call with each item")
    if not (on_error in ("log", "raise") or callable(on_error)):
        fail("on_error", "'log', 'raise' or a callable(exception, event)", on_error)
    check_bool("detailed", detailed)
    if payload is None:
        payload = "dict" if detailed else "text"
    else:
        check_choice("payload", payload, ("text", "dict", "event"))
        if detailed and payload != "dict":
            fail("payload", "'dict' (or None) with detailed=True", payload, hint="pass only one of them")
    chosen: frozenset[EventKind] | None
    if isinstance(kinds, _Default):
        chosen = frozenset({EventKind.TOKEN}) if payload == "text" else None
    else:
        chosen = check_kinds(kinds)
    check_scheduler(scheduler)
    if stats is not None and not isinstance(stats, CallbackStats):
        fail("stats", "a CallbackStats or None", stats, hint="create one with CallbackStats()")
    config = _Config(fn, chosen, on_error, payload, scheduler, CallbackStats() if stats is None else stats)

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            tap = _Tap(config, observer)
            tap.relay.upstream.disposable = source.subscribe(
                tap.on_next, tap.on_error, tap.on_completed, scheduler=subscribe_scheduler
            )
            return Disposable(tap.dispose)

        return reactivex.create(subscribe)

    return operator
