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
from rxagents._core.policy import ExponentialBackoff, GiveUp, RetryPolicy, is_transient
from rxagents._validate import check_choice, check_int, check_scheduler, check_seconds, fail
from rxagents.events import EventKind, TokenEvent
from rxagents.operators._errors import Relay, RetryExhausted, TokensAlreadyDelivered

__all__ = ["ExponentialBackoff", "is_transient", "retry"]

RetryOn: TypeAlias = type[BaseException] | tuple[type[BaseException], ...] | Callable[[BaseException], bool]
Backoff: TypeAlias = float | Callable[[int], float]


_RETRY_ON = "an exception type, a tuple of them, or a predicate (exception) -> bool"


def _predicate(retry_on: RetryOn) -> Callable[[BaseException], bool]:
    if isinstance(retry_on, type):
        if not issubclass(retry_on, BaseException):
            fail("retry_on", _RETRY_ON, retry_on)
        kind = retry_on
        return lambda error: isinstance(error, kind)
    if isinstance(retry_on, tuple):
        if not retry_on or not all(isinstance(t, type) and issubclass(t, BaseException) for t in retry_on):
            fail("retry_on", _RETRY_ON, retry_on, hint="a tuple must hold exception types only, at least one")
        kinds = retry_on
        return lambda error: isinstance(error, kinds)
    if callable(retry_on):
        return retry_on
    fail("retry_on", _RETRY_ON, retry_on)


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
        policy: RetryPolicy,
    ) -> None:
        self.source = source
        self.relay: Relay[TokenEvent] = Relay(observer, keep_events=True)
        self.scheduler = scheduler
        self.subscribe_scheduler = subscribe_scheduler
        self.policy = policy
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
        relay = self.relay
        if relay.done:
            return
        self.held = None
        time = self.now()
        delivered = [run for run in self.runs.values() if run.content and not run.finished]
        decision = self.policy.decide(error, self.attempts - 1, delivered=bool(delivered))
        if isinstance(decision, GiveUp):
            failure = self.give_up(decision, error)
            relay.fail(failure, time, fill=failure is not error)  # an error that is not retried passes unchanged
            return
        if decision.restart:
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
                run.content = False  # its retry event discarded its text, in the relay's partial_text too
        self.timer.disposable = self.scheduler.schedule_relative(decision.wait, self.attempt)

    def give_up(self, decision: GiveUp, error: Exception) -> Exception:
        """The exception the stream fails with: ``error`` itself when it is not retryable, else one saying why."""
        if decision.reason == "exhausted":
            return RetryExhausted(
                f"gave up after {self.attempts} attempt(s); the last failed with "
                f"{type(error).__name__}: {error} — raise max_attempts, or handle the error",
                attempts=self.attempts,
                last_error=error,
            )
        if decision.reason == "delivered":
            return TokensAlreadyDelivered(
                f"not retried: attempt {self.attempts} failed with {type(error).__name__}: {error} "
                "after output was delivered, and retrying would deliver it again "
                "(after_tokens='fail'); the text so far is in .partial_text — use "
                "after_tokens='restart' to restart with a retry event",
                attempts=self.attempts,
                last_error=error,
            )
        chosen = decision.error  # the error itself, or what retry_on or backoff raised
        assert isinstance(chosen, Exception)
        return chosen

    def dispose(self) -> None:
        self.timer.dispose()
        self.relay.dispose()


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

    The decision is a :class:`~rxagents.RetryPolicy`'s (the one ``Agent(retries=...)`` uses), built from these
    arguments with ``retries = max_attempts - 1`` and no ``max_wait``.

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
    check_int("max_attempts", max_attempts, hint="1 = no retry")
    check_choice("after_tokens", after_tokens, ("fail", "restart"))
    if backoff is not None and not callable(backoff):
        check_seconds("backoff", backoff, zero=True, hint="or pass a function (failures) -> seconds")
    check_scheduler(scheduler)
    policy = RetryPolicy(
        retries=max_attempts - 1,
        backoff=ExponentialBackoff() if backoff is None else backoff,
        max_wait=None,
        retry_on=_predicate(retry_on),
        after_tokens=after_tokens,
    )

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            state = _Retry(source, observer, _runtime.default_scheduler(scheduler), subscribe_scheduler, policy)
            state.attempt()
            return Disposable(state.dispose)

        return reactivex.create(subscribe)

    return operator
