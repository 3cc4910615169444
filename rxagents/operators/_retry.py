"""``retry``: resubscribe to a cold run on error, without ever delivering a token twice."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable, SingleAssignmentDisposable

from rxagents import _runtime
from rxagents._validate import check_scheduler
from rxagents.errors import ModelError
from rxagents.events import EventKind, TokenEvent
from rxagents.operators._errors import Relay, RetryExhausted, StreamTimeout, TokensAlreadyDelivered

__all__ = ["ExponentialBackoff", "is_transient", "retry"]

RetryOn: TypeAlias = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
Backoff: TypeAlias = float | Callable[[int], float]

_TRANSIENT_STATUS = frozenset({408, 409, 425, 429})


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is worth retrying: the default ``retry_on`` of :func:`retry`.

    True for :class:`StreamTimeout`, a :class:`~rxagents.errors.ModelError` without an HTTP status (dropped
    connection, malformed or truncated stream) or with status 408, 409, 425, 429 or >= 500, and the builtin
    ``TimeoutError``/``ConnectionError``. False for everything else: bad requests, authentication, budget,
    callback and grammar errors would fail again.
    """
    if isinstance(error, StreamTimeout | TimeoutError | ConnectionError):
        return True
    if isinstance(error, ModelError):
        status = error.status_code
        return status is None or status in _TRANSIENT_STATUS or status >= 500
    return False


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    """Wait ``initial * factor ** (failures - 1)`` seconds, at most ``maximum``: 0.5, 1, 2, 4 ... 30."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0

    def __post_init__(self) -> None:
        for name in ("initial", "factor", "maximum"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.initial < 0 or self.maximum < 0:
            raise ValueError(f"initial and maximum must be >= 0, got {self.initial!r} and {self.maximum!r}")
        if self.factor < 1:
            raise ValueError(f"factor must be >= 1, got {self.factor!r}")

    def __call__(self, failures: int) -> float:
        return float(min(self.maximum, self.initial * self.factor ** max(0, failures - 1)))


def _predicate(retry_on: RetryOn) -> Callable[[BaseException], bool]:
    if isinstance(retry_on, type):
        if not issubclass(retry_on, BaseException):
            raise TypeError(f"retry_on must be an exception type, got {retry_on!r}")
        kind = retry_on
        return lambda error: isinstance(error, kind)
    if isinstance(retry_on, tuple):
        if not retry_on or not all(isinstance(t, type) and issubclass(t, BaseException) for t in retry_on):
            raise TypeError(f"retry_on must hold exception types, got {retry_on!r}")
        kinds = retry_on
        return lambda error: isinstance(error, kinds)
    if callable(retry_on):
        return retry_on
    raise TypeError(f"retry_on must be an exception type, a tuple of them, or a predicate, got {retry_on!r}")


def _retry_after(error: BaseException) -> float:
    value = getattr(error, "retry_after", None)
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0:
        return float(value)
    return 0.0


@dataclass(slots=True)
class _Run:
    """A run as downstream sees it (one per agent): its stable id, next seq, and what was delivered."""

    run_id: str
    last: TokenEvent
    next_seq: int = 0
    content: bool = False  # output delivered since the run (re)started
    finished: bool = False


class _Retry:
    """One subscription of ``retry``."""

    def __init__(
        self,
        source: Observable[TokenEvent],
        observer: abc.ObserverBase[TokenEvent],
        scheduler: abc.SchedulerBase,
        subscribe_scheduler: abc.SchedulerBase | None,
        config: _Config,
    ) -> None:
        self.source = source
        self.relay: Relay[TokenEvent] = Relay(observer, keep_events=True)
        self.scheduler = scheduler
        self.subscribe_scheduler = subscribe_scheduler
        self.cfg = config
        self.runs: dict[str, _Run] = {}
        self.attempts = 0
        self.held: TokenEvent | None = None
        self.last_time = -math.inf  # the time of the last event delivered
        self.timer = SerialDisposable()

    def attempt(self, *_: Any) -> None:
        with self.relay.lock:
            if self.relay.done:
                return
            self.attempts += 1
            number = self.attempts
            self.held = None
            holder = SingleAssignmentDisposable()
            self.relay.upstream.disposable = holder

        def on_next(event: TokenEvent) -> None:
            with self.relay.lock:
                if number == self.attempts:
                    self.on_next(event)

        def on_error(error: Exception) -> None:
            with self.relay.lock:
                if number == self.attempts:
                    self.on_error(error)

        def on_completed() -> None:
            with self.relay.lock:
                if number == self.attempts:
                    self.on_completed()

        holder.disposable = self.source.subscribe(on_next, on_error, on_completed, scheduler=self.subscribe_scheduler)

    def now(self) -> float:
        """The time of an event made here: the scheduler clock, never before the last event delivered."""
        return max(_runtime.clock(self.scheduler), self.last_time)

    def emit(self, event: TokenEvent) -> None:
        run = self.runs.get(event.agent)
        if run is None:
            run = self.runs[event.agent] = _Run(event.run_id, event)
        elif run.finished or event.kind is EventKind.START:
            return  # a new attempt's start, or a replay of a run downstream already has complete
        time = max(event.time, self.last_time)
        if event.seq != run.next_seq or event.run_id != run.run_id or time != event.time:
            event = dataclasses.replace(event, run_id=run.run_id, seq=run.next_seq, time=time)
        run.next_seq += 1
        run.last = event
        if event.kind is EventKind.FINISH:
            run.finished = True
        elif event.kind not in (EventKind.START, EventKind.RETRY):
            run.content = True
        self.last_time = time
        self.relay.on_next(event)

    def on_next(self, event: TokenEvent) -> None:
        if self.relay.done:
            return
        if event.kind is EventKind.ERROR:
            self.held = event  # decided at on_error: dropped if retried, re-made by relay.fail if not
            return
        self.emit(event)

    def on_completed(self) -> None:
        if self.held is not None:  # an error event without on_error: pass it on as it came
            self.emit(self.held)
        self.relay.on_completed()

    def on_error(self, error: Exception) -> None:
        relay, cfg = self.relay, self.cfg
        if relay.done:
            return
        self.held = None
        time = self.now()
        try:
            retryable = cfg.retry_on(error)
        except Exception as predicate_error:
            predicate_error.__context__ = error
            relay.fail(predicate_error, time)
            return
        if not retryable:
            relay.fail(error, time, fill=False)
            return
        if self.attempts >= cfg.max_attempts:
            relay.fail(
                RetryExhausted(
                    f"gave up after {self.attempts} attempt(s); the last failed with "
                    f"{type(error).__name__}: {error} — raise max_attempts, or handle the error",
                    attempts=self.attempts,
                    last_error=error,
                ),
                time,
            )
            return
        delivered = [run for run in self.runs.values() if run.content and not run.finished]
        if delivered:
            if cfg.after_tokens == "fail":
                relay.fail(
                    TokensAlreadyDelivered(
                        f"not retried: attempt {self.attempts} failed with {type(error).__name__}: {error} "
                        "after output was delivered, and retrying would deliver it again "
                        "(after_tokens='fail'); the text so far is in .partial_text — use "
                        "after_tokens='restart' to restart with a retry event",
                        attempts=self.attempts,
                        last_error=error,
                    ),
                    time,
                )
                return
            for run in delivered:
                last = run.last
                self.emit(
                    TokenEvent(
                        EventKind.RETRY,
                        last.agent,
                        run.run_id,
                        run.next_seq,
                        last.loop,
                        text=f"{type(error).__name__}: {error}",
                        time=time,
                        model=last.model,
                    )
                )
                run.content = False
            relay.restart_text()
        try:
            wait = max(0.0, float(cfg.delay(self.attempts)), _retry_after(error))
        except Exception as backoff_error:
            backoff_error.__context__ = error
            relay.fail(backoff_error, time)
            return
        if not math.isfinite(wait):
            wait = _retry_after(error)
        self.timer.disposable = self.scheduler.schedule_relative(wait, self.attempt)

    def dispose(self) -> None:
        self.timer.dispose()
        self.relay.dispose()


@dataclass(frozen=True, slots=True)
class _Config:
    max_attempts: int
    delay: Callable[[int], float]
    retry_on: Callable[[BaseException], bool]
    after_tokens: Literal["fail", "restart"]


def retry(
    max_attempts: int = 3,
    *,
    backoff: Backoff | None = None,
    retry_on: RetryOn = is_transient,
    after_tokens: Literal["fail", "restart"] = "fail",
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[TokenEvent]], Observable[TokenEvent]]:
    """Resubscribe to the (cold) source when it fails with a retryable error — never repeating output.

    * **Before any output** (only ``start`` delivered) a retry is invisible: downstream sees one ``start``,
      no error, then the new attempt's events.
    * **After output** (a token, reasoning, tool-call or usage event) was delivered, replaying the run would
      deliver it twice (what swarms does when it falls back to another model). With
      ``after_tokens="fail"`` (default) the stream fails with :class:`TokensAlreadyDelivered` carrying the
      partial text. With ``"restart"`` a ``retry`` event (``text`` = the reason) is emitted, then the new
      attempt's events: consumers discard the text they have at a ``retry`` event (``collect_text`` and the
      sinks do).

    Downstream sees one run: ``run_id`` stays the first attempt's and ``seq`` stays contiguous from 0
    (events are re-stamped). Waits use ``backoff`` and are at least the error's ``retry_after`` (seconds,
    as set on :class:`~rxagents.errors.ModelError` from a 429's ``Retry-After``); they run on the scheduler.
    Errors that are not retryable pass through unchanged; when attempts run out the stream fails with
    :class:`RetryExhausted` (``__cause__`` = the last error).

    Over a stream of several runs (a workflow; one run per agent) the rules apply per run: a run that
    already finished is not replayed (the new attempt's events for it are dropped), a run that delivered
    output gets its own ``retry`` event (or, with ``"fail"``, makes the stream fail).

    .. code-block:: text

        attempt 1:  -s--#                      (# = error before any token)
        attempt 2:       ~wait~-s--a--b--f-|
        output:     -s-----------a--b--f-|      (one start, seq 0..3)

        attempt 1:  -s--a--#                    after_tokens="restart"
        attempt 2:          ~wait~-s--a--b--f-|
        output:     -s--a--r-------a--b--f-|    (r = retry event: discard "a")

    Args:
        max_attempts: subscriptions in all, the first included (>= 1).
        backoff: seconds to wait before the next attempt, a number or a function of the failures so far
            (1, 2, ...); default :class:`ExponentialBackoff` (0.5 s doubling, at most 30 s).
        retry_on: the retryable errors: an exception type, a tuple of them, or a predicate; default
            :func:`is_transient`.
        after_tokens: ``"fail"`` or ``"restart"``: what to do when output was already delivered.
        scheduler: where waits run; default: the run's loop scheduler (chosen at subscription).

    Returns:
        An operator giving the events of one (possibly restarted) run.

    Example::

        stream = agent.stream(task).pipe(gap_timeout(30), retry(3, after_tokens="restart"))
    """
    if isinstance(max_attempts, bool) or not isinstance(max_attempts, int) or max_attempts < 1:
        raise ValueError(f"max_attempts must be an int >= 1 (1 = no retry), got {max_attempts!r}")
    if after_tokens not in ("fail", "restart"):
        raise ValueError(f"after_tokens must be 'fail' or 'restart', got {after_tokens!r}")
    delay: Callable[[int], float]
    if backoff is None:
        delay = ExponentialBackoff()
    elif isinstance(backoff, int | float) and not isinstance(backoff, bool):
        if not math.isfinite(backoff) or backoff < 0:
            raise ValueError(f"backoff must be seconds >= 0 or a function of the failure count, got {backoff!r}")
        seconds = float(backoff)

        def constant(_: int) -> float:
            return seconds

        delay = constant
    elif callable(backoff):
        delay = backoff
    else:
        raise TypeError(f"backoff must be seconds or a function (failures) -> seconds, got {backoff!r}")
    check_scheduler(scheduler)
    config = _Config(max_attempts, delay, _predicate(retry_on), after_tokens)

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            state = _Retry(source, observer, _runtime.default_scheduler(scheduler), subscribe_scheduler, config)
            state.attempt()
            return Disposable(state.dispose)

        return reactivex.create(subscribe)

    return operator
