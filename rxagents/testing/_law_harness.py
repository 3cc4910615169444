"""The virtual world a law check runs an operator in: a counting scheduler, a traced producer, a strict
recording consumer, and :func:`run_trial`, which runs one trial of the operator in it."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.testing import TestScheduler

from rxagents.events import EventKind, TokenEvent

__all__ = [
    "BUDGET",
    "EPS",
    "GRACE",
    "SUBSCRIBE_AT",
    "Consumer",
    "Entry",
    "OperatorFactory",
    "Plan",
    "Trial",
    "run_trial",
]

Operator: TypeAlias = Callable[[Observable[TokenEvent]], Observable[Any]]
OperatorFactory: TypeAlias = Callable[[abc.SchedulerBase], Operator]

#: Virtual seconds after the end of the input within which the output must have completed.
GRACE = 100.0
#: Scheduled actions one trial may run before it is declared stuck.
BUDGET = 50_000
SUBSCRIBE_AT = 1.0
EPS = 1e-6


class _Stuck(Exception):
    pass


class _DownstreamError(Exception):
    """Raised by the consumer in the ``raise`` trial."""


class _LawScheduler(TestScheduler):
    def __init__(self) -> None:
        super().__init__()
        self.scheduled = 0
        self.invoked = 0
        self.invoked_indices: list[int] = []  # the scheduling index of every action that ran

    def schedule_absolute(self, duetime: Any, action: Any, state: Any = None) -> abc.DisposableBase:
        self.scheduled += 1
        index = self.scheduled

        def counted(scheduler: abc.SchedulerBase, state: Any = None) -> Any:
            self.invoked += 1
            self.invoked_indices.append(index)
            if self.invoked > BUDGET:
                raise _Stuck
            return action(scheduler, state)

        return super().schedule_absolute(duetime, counted, state)

    def now_s(self) -> float:
        return float(self.to_seconds(self.now))


@dataclasses.dataclass
class _Upstream:
    start: float
    end: float | None = None
    finally_runs: int = 0
    delivered: str | None = None  # "completed" | "error" once the producer delivered its terminal


class _Producer:
    """A cold source from a schedule that records subscriptions and what escaped into it."""

    def __init__(self, scheduler: _LawScheduler, schedule: Sequence[tuple[float, TokenEvent]]) -> None:
        self.scheduler = scheduler
        self.schedule = schedule
        self.subs: list[_Upstream] = []
        self.escaped: list[tuple[float, BaseException]] = []
        last = schedule[-1][1] if schedule else None
        self.error = last.error if last is not None and last.kind is EventKind.ERROR else None

    def observable(self) -> Observable[TokenEvent]:
        sched = self.scheduler

        def subscribe(observer: abc.ObserverBase[TokenEvent], _: abc.SchedulerBase | None = None) -> Any:
            up = _Upstream(start=sched.now_s())
            self.subs.append(up)
            handles = CompositeDisposable()

            def stop() -> None:
                if up.end is None:
                    up.end = sched.now_s()
                    handles.dispose()

            def deliver(call: Callable[[], None]) -> None:
                if up.end is not None:
                    return
                try:
                    call()
                except Exception as exc:  # the operator let an exception escape into the producer
                    self.escaped.append((sched.now_s(), exc))
                    stop()  # a producer that crashed stops producing

            def at(t: float, call: Callable[[], None]) -> None:
                def action(_s: abc.SchedulerBase, _st: Any = None) -> None:
                    deliver(call)

                handles.add(sched.schedule_relative(t, action))

            def next_of(ev: TokenEvent) -> Callable[[], None]:
                return lambda: observer.on_next(ev)

            for t, ev in self.schedule:
                at(t, next_of(ev))
            t_end = self.schedule[-1][0] if self.schedule else 0.0
            if self.error is not None:
                err = self.error

                def fail() -> None:
                    up.delivered = "error"
                    observer.on_error(err)  # type: ignore[arg-type]
                    stop()

                at(t_end, fail)
            else:

                def complete() -> None:
                    up.delivered = "completed"
                    observer.on_completed()
                    stop()

                at(t_end, complete)
            return Disposable(stop)

        source: Observable[TokenEvent] = reactivex.create(subscribe)

        def with_finally(_: abc.SchedulerBase | None = None) -> Observable[TokenEvent]:
            # the finally-handler belongs to the subscription that is about to start
            index = len(self.subs)

            def ran() -> None:
                if index < len(self.subs):
                    self.subs[index].finally_runs += 1

            return source.pipe(ops.finally_action(ran))

        return reactivex.defer(with_finally)


Entry: TypeAlias = tuple[float, str, Any]  # (time, "N" | "E" | "C", value | exception | None)


class Consumer(abc.ObserverBase[Any]):
    """Records every notification, even illegal ones, and checks serialisation as it goes."""

    def __init__(
        self,
        scheduler: _LawScheduler,
        *,
        dispose_on: int | None = None,
        raise_on: int | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.trace: list[Entry] = []
        self.serial: list[str] = []
        self.thread = threading.get_ident()
        self.subscription: abc.DisposableBase | None = None
        self.disposed_at: int | None = None  # len(trace) when dispose was first called
        self.disposed_time: float | None = None
        self.dispose_errors: list[BaseException] = []
        self.terminated_at: float | None = None
        self.ended_scheduled: int | None = None  # scheduler.scheduled when it ended or was disposed
        self.raised: _DownstreamError | None = None
        self._dispose_on = dispose_on
        self._raise_on = raise_on
        self._inside: str | None = None
        self._count = 0
        self._last_time = float("-inf")
        self._pending_dispose = False

    # serialisation bookkeeping
    def _enter(self, what: str) -> None:
        now = self.scheduler.now_s()
        n = len(self.trace)
        if self._inside is not None:
            self.serial.append(f"notification #{n} ({what}) arrived while #{n - 1} ({self._inside}) was in progress")
        if threading.get_ident() != self.thread:
            self.serial.append(f"notification #{n} ({what}) arrived on a foreign thread")
        if now + EPS < self._last_time:
            self.serial.append(f"notification #{n} ({what}) at t={now} after one at t={self._last_time}")
        self._last_time = max(self._last_time, now)
        self._inside = what

    def on_next(self, value: Any) -> None:
        self._enter("on_next")
        try:
            self.trace.append((self.scheduler.now_s(), "N", value))
            self._count += 1
            count = self._count
            # (only once subscribed: reactivex's own observers ignore what follows a dispose made
            # during the synchronous subscribe call, so an operator cannot be blamed for it)
            if self._dispose_on is not None and count == self._dispose_on and self.subscription is not None:
                self.dispose()
            if self._raise_on is not None and count == self._raise_on and self.raised is None:
                self.raised = _DownstreamError(f"consumer's on_next raised on item {count}")
                raise self.raised
        finally:
            self._inside = None

    def on_error(self, error: Exception) -> None:
        self._terminal("on_error", "E", error)

    def on_completed(self) -> None:
        self._terminal("on_completed", "C", None)

    def _terminal(self, what: str, kind: str, value: Exception | None) -> None:
        self._enter(what)
        try:
            self.trace.append((self.scheduler.now_s(), kind, value))
            self._ended()
        finally:
            self._inside = None

    def _ended(self) -> None:
        if self.terminated_at is None:
            self.terminated_at = self.scheduler.now_s()
            self._mark_end()
            # like reactivex's AutoDetachObserver: release the subscription on termination
            if self.subscription is not None:
                self.subscription.dispose()
            else:
                self._pending_dispose = True

    def _mark_end(self) -> None:
        if self.ended_scheduled is None:
            self.ended_scheduled = self.scheduler.scheduled

    def attach(self, subscription: abc.DisposableBase) -> None:
        self.subscription = subscription
        if self._pending_dispose or self.disposed_at is not None:
            subscription.dispose()

    def dispose(self) -> None:
        if self.disposed_at is None:
            self.disposed_at = len(self.trace)
            self.disposed_time = self.scheduler.now_s()
            self._mark_end()
        if self.subscription is not None:
            try:
                self.subscription.dispose()
            except Exception as exc:
                self.dispose_errors.append(exc)


def _as_disposable(result: Any) -> abc.DisposableBase:
    if isinstance(result, abc.DisposableBase):
        return result
    if hasattr(result, "dispose"):
        return Disposable(result.dispose)
    if callable(result):
        return Disposable(result)
    return Disposable()


@dataclasses.dataclass
class Plan:
    at: float
    dispose_at: float | None = None
    dispose_on: int | None = None
    raise_on: int | None = None


@dataclasses.dataclass
class Trial:
    consumers: list[Consumer]
    producer: _Producer
    factory_scheduled: int
    factory_subscribed: int
    crashes: list[str]
    stuck: bool
    dispose_times: list[float | None]
    horizon: float = float("inf")  # virtual time the trial was run until


def run_trial(make: OperatorFactory, schedule: Sequence[tuple[float, TokenEvent]], plans: list[Plan]) -> Trial:
    sched = _LawScheduler()
    producer = _Producer(sched, schedule)
    source = producer.observable()
    op = make(sched)
    if not callable(op):
        raise TypeError(f"make(scheduler) must return an operator (a callable), got {op!r}")
    out = op(source)
    if not isinstance(out, abc.ObservableBase):
        raise TypeError(f"the operator must return an Observable, got {out!r}")
    factory_scheduled = sched.scheduled
    factory_subscribed = len(producer.subs)
    crashes: list[str] = []
    consumers: list[Consumer] = []
    dispose_times: list[float | None] = []
    span = schedule[-1][0] if schedule else 0.0
    horizon = max(p.at for p in plans) + span + GRACE

    for plan in plans:
        consumer = Consumer(sched, dispose_on=plan.dispose_on, raise_on=plan.raise_on)
        consumers.append(consumer)
        dispose_times.append(plan.dispose_at)

        def subscribe(_s: abc.SchedulerBase, _st: Any = None, consumer: Consumer = consumer) -> Any:
            try:
                if isinstance(out, Observable):
                    raw = out._subscribe_core(consumer, sched)  # raw: no auto-detach hiding late events
                else:
                    raw = out.subscribe(consumer, scheduler=sched)
            except _DownstreamError:
                return None
            except Exception as exc:
                crashes.append(f"subscribing raised {type(exc).__name__}: {exc}")
                return None
            consumer.attach(_as_disposable(raw))
            return None

        sched.schedule_absolute(plan.at, subscribe)
        if plan.dispose_at is not None:

            def dispose(_s: abc.SchedulerBase, _st: Any = None, consumer: Consumer = consumer) -> Any:
                consumer.dispose()
                consumer.dispose()  # idempotent
                return None

            def dispose_later(_s: abc.SchedulerBase, _st: Any = None, consumer: Consumer = consumer) -> Any:
                consumer.dispose()
                return None

            sched.schedule_absolute(plan.at + plan.dispose_at, dispose)
            sched.schedule_absolute(plan.at + plan.dispose_at + 0.5, dispose_later)

    stuck = False
    while True:
        try:
            sched.advance_to(horizon)
            break
        except _DownstreamError:
            sched.stop()  # the consumer's exception reached the scheduler via a timer: allowed
        except _Stuck:
            sched.stop()
            stuck = True
            break
        except Exception as exc:
            sched.stop()
            crashes.append(f"an exception escaped into the scheduler: {type(exc).__name__}: {exc}")
            if len(crashes) > 20:
                break
    return Trial(consumers, producer, factory_scheduled, factory_subscribed, crashes, stuck, dispose_times, horizon)
