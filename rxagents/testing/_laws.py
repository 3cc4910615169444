"""``check_operator_laws``: the 13 operator laws of DESIGN.md as hypothesis properties.

Every example draws a timed input and runs five trials of the operator in virtual time, each on a
fresh ``TestScheduler`` with a fresh ``make(scheduler)``:

======  ==========================================================================================
trial   what it does
======  ==========================================================================================
main    one subscription at t=1, no dispose, run until ``GRACE`` s after the end of the input
again   the main trial once more (determinism)
cold    one operator value subscribed twice, the second 0-N s later, possibly overlapping
cancel  dispose at a random time or from inside the k-th ``on_next``, again at once, and later
raise   the consumer's ``on_next`` raises once, on the k-th item
======  ==========================================================================================

The input is one run (``start``, tokens with reasoning/tool-call deltas mixed in, maybe usage,
``finish`` or ``error``; token texts from a pool of words, separators, multi-byte and astral
characters, a combining mark and an emoji sequence split from their bases, empty deltas; a steady
tempo with random pauses, often several events in the same instant). When :attr:`Law.ORDER`
applies, a third of the examples interleave the runs of 2-3 agents instead (every run complete,
at most one failing, last); so an operator meant for a single run declares ORDER not applicable.
An error input ends with an ``error`` event, then ``on_error`` with the same exception.

How each law is checked:

1. GRAMMAR: at most one terminal notification and nothing after it (every trial).
2. SERIALISED: no notification starts while another is in progress (re-entrancy, e.g. a flush
   from inside ``dispose`` called by a consumer's ``on_next``), all arrive on the thread driving
   the scheduler, and the scheduler clock never goes backwards between them (every trial).
3. CANCELLATION: after ``dispose`` nothing arrives -- also when it is called from inside
   ``on_next``: not the rest of a batch, not a terminal notification --, every upstream
   subscription has ended when ``dispose`` returns, and disposing again is harmless.
4. CLEANUP: the upstream is subscribed exactly once (with ``handles_errors``: again only after it
   failed, one at a time); every upstream subscription has ended once the output ended or was
   disposed, and a finally-handler attached upstream ran exactly once per subscription; no work
   scheduled after that point runs (a timer left running).
5. ERROR_TRANSPARENCY: when the upstream delivered ``on_error(exc)`` to the operator, the output
   ends with ``on_error`` of that very object. With ``handles_errors=True`` the output may
   complete instead, and an error it ends with must be ``exc`` or have ``exc`` in its
   ``__cause__``/``__context__`` chain.
6. COMPLETION: when the upstream completed, the output completes (not errors, not hangs) within
   ``GRACE`` virtual seconds and, unless CONSERVATION is declared not applicable, with all the
   text: nothing left in a buffer. An operator that releases its upstream early must still end.
7. CONSERVATION: ``text_of(out)`` equals the text of the input's ``token`` events when the
   input completed and the output completed, else it is a prefix of it (error, dispose, early
   end); per agent for several agents (their alphabets are disjoint, so this works for any text
   output, events or strings).
8. ORDER: per agent, the output text is a subsequence of the input text (nothing reordered), and
   input events passed through unchanged keep increasing ``seq`` per run (a ``retry`` event
   restarts the run). Workflow-level order (concat sequential, ``merge(k)`` concurrency) is not
   in scope: the input here is one stream.
9. COLD_REPEATABILITY: two subscriptions to the same operator value give the same trace, shifted
   by the time between them (event ``time`` fields stamped from the clock are shifted too).
10. DETERMINISM: the same input on a fresh scheduler gives the same trace, times included.
11. CALLBACK_ISOLATION: no exception escapes from the operator into the producer (the upstream's
    calls of ``on_next``/``on_error``/``on_completed``) in any trial -- give ``make`` a raising
    user callback to test an operator that calls one; and after the consumer's ``on_next``
    raised (the consumer's bug: it may propagate), no token is delivered twice (the peer defect:
    a raising callback treated as a model failure, the run restarted).
12. PURE_FACTORY: ``make(scheduler)`` and applying the operator to a source schedule nothing and
    subscribe to nothing.
13. NO_DUPLICATION: no ``(run_id, seq)`` among the output's events (also inside lists/tuples)
    twice, unless a ``retry`` event of that run came in between; for other outputs, the
    output text per agent is a subsequence of the input text.

Whatever is declared, an operator that raises into the scheduler (a timer callback), fails to
subscribe, or keeps the scheduler busy for more than 50,000 actions in one trial fails the check.

A law that the operator cannot meet is declared in ``not_applicable`` with a reason; it is then
not checked and the returned :class:`LawReport` lists it. Nothing is skipped silently.
"""

from __future__ import annotations

import dataclasses
import enum
import itertools
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeAlias

import reactivex
from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import errors as hypothesis_errors
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable
from reactivex.testing import TestScheduler

from rxagents.events import EventKind, TokenEvent, Usage
from rxagents.testing._logs import LogCollector, LoggedMessage
from rxagents.testing._marbles import text_of_items
from rxagents.testing._strategies import AGENT_ALPHABETS, multi_agent_runs, timed_runs, token_runs

__all__ = ["GRACE", "Law", "LawReport", "LawViolation", "check_operator_laws"]

log = logging.getLogger("rxagents")

Operator: TypeAlias = Callable[[Observable[TokenEvent]], Observable[Any]]
OperatorFactory: TypeAlias = Callable[[abc.SchedulerBase], Operator]

#: Virtual seconds after the end of the input within which the output must have completed.
GRACE = 100.0
#: Scheduled actions one trial may run before it is declared stuck.
_BUDGET = 50_000
_SUBSCRIBE_AT = 1.0
_EPS = 1e-6


class Law(enum.Enum):
    """The operator laws of DESIGN.md, numbered as there."""

    GRAMMAR = 1
    SERIALISED = 2
    CANCELLATION = 3
    CLEANUP = 4
    ERROR_TRANSPARENCY = 5
    COMPLETION = 6
    CONSERVATION = 7
    ORDER = 8
    COLD_REPEATABILITY = 9
    DETERMINISM = 10
    CALLBACK_ISOLATION = 11
    PURE_FACTORY = 12
    NO_DUPLICATION = 13

    def __str__(self) -> str:
        return f"law {self.value} ({self.name})"


@dataclasses.dataclass(frozen=True, slots=True)
class LawReport:
    """What :func:`check_operator_laws` checked.

    Attributes:
        operator: a name for the operator factory that was checked.
        checked: the laws checked (and held on every example).
        not_applicable: ``(law, reason)`` pairs declared not to apply; they were not checked.
        examples: how many examples were run: three or four fixed ones (a clean run, a failing
            run, a burst, two agents) and up to ``max_examples`` generated ones.
        handles_errors: whether law 5 was relaxed for an error-handling operator.
        logged: what the operator logged on the ``rxagents`` logger during the check, counted by kind
            (held back rather than printed once per example; one summary line is logged instead).
    """

    operator: str
    checked: tuple[Law, ...]
    not_applicable: tuple[tuple[Law, str], ...]
    examples: int
    handles_errors: bool = False
    logged: tuple[LoggedMessage, ...] = ()

    def reason(self, law: Law) -> str | None:
        """Why ``law`` was declared not applicable, or None if it was checked."""
        return dict(self.not_applicable).get(law)

    def __str__(self) -> str:
        lines = [f"{self.operator}: {len(self.checked)} laws held on {self.examples} examples"]
        lines += [f"  checked  {law}" for law in self.checked]
        lines += [f"  n/a      {law}: {why}" for law, why in self.not_applicable]
        if self.handles_errors:
            lines.append("  (law 5 relaxed: the operator handles errors)")
        lines += [f"  logged   {message}" for message in self.logged]
        return "\n".join(lines)


class LawViolation(AssertionError):
    """A law was broken; the message names the law and shows the example."""


class _TextOfError(TypeError):
    """``text_of`` cannot read the output: a usage error, reported without shrinking."""


# --------------------------------------------------------------------------------------------
# The virtual world: a counting scheduler, a traced producer, a strict recording consumer.


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
            if self.invoked > _BUDGET:
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


_Entry: TypeAlias = tuple[float, str, Any]  # (time, "N" | "E" | "C", value | exception | None)


class _Consumer(abc.ObserverBase[Any]):
    """Records every notification, even illegal ones, and checks serialisation as it goes."""

    def __init__(
        self,
        scheduler: _LawScheduler,
        *,
        dispose_on: int | None = None,
        raise_on: int | None = None,
    ) -> None:
        self.scheduler = scheduler
        self.trace: list[_Entry] = []
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
        if now + _EPS < self._last_time:
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
        self._enter("on_error")
        try:
            self.trace.append((self.scheduler.now_s(), "E", error))
            self._ended()
        finally:
            self._inside = None

    def on_completed(self) -> None:
        self._enter("on_completed")
        try:
            self.trace.append((self.scheduler.now_s(), "C", None))
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
class _Plan:
    at: float
    dispose_at: float | None = None
    dispose_on: int | None = None
    raise_on: int | None = None


@dataclasses.dataclass
class _Trial:
    consumers: list[_Consumer]
    producer: _Producer
    factory_scheduled: int
    factory_subscribed: int
    crashes: list[str]
    stuck: bool
    dispose_times: list[float | None]
    horizon: float = float("inf")  # virtual time the trial was run until


def _run_trial(make: OperatorFactory, schedule: Sequence[tuple[float, TokenEvent]], plans: list[_Plan]) -> _Trial:
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
    consumers: list[_Consumer] = []
    dispose_times: list[float | None] = []
    span = schedule[-1][0] if schedule else 0.0
    horizon = max(p.at for p in plans) + span + GRACE

    for plan in plans:
        consumer = _Consumer(sched, dispose_on=plan.dispose_on, raise_on=plan.raise_on)
        consumers.append(consumer)
        dispose_times.append(plan.dispose_at)

        def subscribe(_s: abc.SchedulerBase, _st: Any = None, consumer: _Consumer = consumer) -> Any:
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

            def dispose(_s: abc.SchedulerBase, _st: Any = None, consumer: _Consumer = consumer) -> Any:
                consumer.dispose()
                consumer.dispose()  # idempotent
                return None

            def dispose_later(_s: abc.SchedulerBase, _st: Any = None, consumer: _Consumer = consumer) -> Any:
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
    return _Trial(consumers, producer, factory_scheduled, factory_subscribed, crashes, stuck, dispose_times, horizon)


# --------------------------------------------------------------------------------------------
# Scenarios


@dataclasses.dataclass(frozen=True)
class _Scenario:
    schedule: tuple[tuple[float, TokenEvent], ...]
    alphabets: tuple[tuple[str, str], ...]  # (agent, alphabet) when several agents, else ()
    dispose_at: float
    dispose_on: int | None
    raise_on: int
    shift: float

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' pretty printer
        printer.text(repr(self))

    def __repr__(self) -> str:
        lines = [
            f"_Scenario(dispose_at=+{self.dispose_at}, dispose_on={self.dispose_on}, "
            f"raise_on={self.raise_on}, second_subscription=+{self.shift}, input=["
        ]
        lines += [f"    {t:>8.3f}  {ev!r}" for t, ev in self.schedule]
        lines.append("])")
        return "\n".join(lines)


# Token texts come from pools (one hypothesis choice per token, so examples are cheap to generate
# and shrink): words, separators, multi-byte and astral characters, a combining mark split from its
# base, an emoji ZWJ sequence split in two, empty deltas.
_PIECES = (
    "Hel", "lo", " ", "wor", "ld", ".", "\n", "a", "b", "c", "é", "e", "\u0301", "中文", "🙂", "👩", "\u200d💻",
    "Ω", "!", "?", " and", "\t", "\r\n", "...", "1", "23", "", "Zß", " the", "ẞ",
)  # fmt: skip


def _agent_pieces(alphabet: str) -> tuple[str, ...]:
    return tuple(alphabet) + tuple(alphabet[i : i + 3] for i in range(0, len(alphabet) - 2, 3))


_SINGLE_TEXTS = st.lists(st.sampled_from(_PIECES), max_size=10)
_AGENT_TEXTS = tuple(st.lists(st.sampled_from(_agent_pieces(a)), max_size=5) for a in AGENT_ALPHABETS)


def _run(
    agent: str, texts: Sequence[str], *, start: float, step: float, error: Exception | None = None
) -> list[tuple[float, TokenEvent]]:
    rid = f"run-{agent}"
    out = [(start, TokenEvent(EventKind.START, agent, rid, 0, time=start))]
    for text in texts:
        t = round(out[-1][0] + step, 6)
        out.append((t, TokenEvent(EventKind.TOKEN, agent, rid, len(out), text=text, time=t)))
    t = round(out[-1][0] + step, 6)
    if error is not None:
        out.append((t, TokenEvent(EventKind.ERROR, agent, rid, len(out), error=error, time=t)))
    else:
        usage = Usage(7, len(texts), 7 + len(texts))
        out.append((t, TokenEvent(EventKind.USAGE, agent, rid, len(out), usage=usage, time=t)))
        out.append((t, TokenEvent(EventKind.FINISH, agent, rid, len(out), finish_reason="stop", time=t)))
    return out


def _explicit_scenarios(multi: bool) -> list[_Scenario]:
    """Examples run first on every check, whatever hypothesis draws: a clean run, a failing run,
    a burst in one instant (and two agents, one failing, when ORDER applies)."""
    words = ["Hel", "lo", ", ", "wor", "ld", "!", " ok"]
    clean = _run("A", words, start=0.0, step=0.1)
    failing = _run("A", words[:4], start=0.0, step=0.1, error=ConnectionError("connection reset"))
    burst = _run("A", ["a", "b", "c", "d", "e"], start=0.0, step=0.0)
    out = [
        _Scenario(tuple(clean), (), 0.35, 3, 2, 0.25),
        _Scenario(tuple(failing), (), 2.0, None, 3, 3.0),
        _Scenario(tuple(burst), (), 0.0, 2, 1, 0.0),
    ]
    if multi:
        a = _run("A", ["ab", "c", "d"], start=0.0, step=0.2)
        b = _run("B", ["KL", "M", "N"], start=0.1, step=0.2)
        c = _run("C", ["12", "3"], start=0.05, step=0.2)
        err = TimeoutError("read timed out")
        merged = sorted(a + c + b[:-2], key=lambda pair: pair[0])
        t_end = merged[-1][0]
        merged.append((t_end, TokenEvent(EventKind.ERROR, "B", "run-B", len(b) - 2, error=err, time=t_end)))
        alphabets = tuple(zip(("A", "B", "C"), AGENT_ALPHABETS, strict=False))
        out.append(_Scenario(tuple(merged), alphabets, 0.5, 4, 3, 0.25))
    return out


@st.composite
def _scenarios(draw: st.DrawFn, multi: bool) -> _Scenario:
    alphabets: tuple[tuple[str, str], ...] = ()
    if multi and draw(st.integers(0, 2)) == 0:
        schedule = draw(multi_agent_runs(agents=("A", "B", "C"), texts=_AGENT_TEXTS))
        agents = sorted({ev.agent for _, ev in schedule})
        alphabets = tuple(zip(agents, AGENT_ALPHABETS, strict=False))
    else:
        ending: Literal["finish", "error"] = "error" if draw(st.integers(0, 3)) == 3 else "finish"
        schedule = draw(timed_runs(token_runs(agent="A", run_id="run-A", texts=_SINGLE_TEXTS, ending=ending)))
    span = schedule[-1][0]
    times = sorted({t for t, _ in schedule} | {span + 1.0})
    dispose_at = draw(st.sampled_from(times)) + draw(st.sampled_from([0.0, 0.0005]))
    dispose_on = draw(st.one_of(st.none(), st.integers(1, 6)))
    raise_on = draw(st.integers(1, 6))
    shift = draw(st.sampled_from([0.0, 0.25, 3.0, span + 2.0]))
    return _Scenario(tuple(schedule), alphabets, dispose_at, dispose_on, raise_on, shift)


# --------------------------------------------------------------------------------------------
# Checks


def _fmt_entry(e: _Entry) -> str:
    t, kind, value = e
    if kind == "N":
        return f"{t:>8.3f}  on_next({value!r})"
    if kind == "E":
        return f"{t:>8.3f}  on_error({type(value).__name__}: {value})"
    return f"{t:>8.3f}  on_completed()"


def _fmt_trace(trace: Sequence[_Entry], limit: int = 60) -> str:
    lines = [_fmt_entry(e) for e in trace[:limit]]
    if len(trace) > limit:
        lines.append(f"... {len(trace) - limit} more")
    return "\n".join("    " + line for line in lines) or "    (nothing)"


class _Checker:
    def __init__(
        self,
        name: str,
        applicable: frozenset[Law],
        text_of: Callable[[list[Any]], str],
        handles_errors: bool,
    ) -> None:
        self.name = name
        self.applicable = applicable
        self.text_of = text_of
        self.handles_errors = handles_errors
        self.sc: _Scenario | None = None
        self.override: Law | None = None

    def fail(self, law: Law, what: str, trace: Sequence[_Entry] | None = None, trial: str = "main") -> None:
        if self.override is not None:
            what = f"after the consumer's on_next raised once, {what}"
            law = self.override
        msg = [f"{self.name} breaks {law}: {what}", f"  trial: {trial}"]
        if trace is not None:
            msg += ["  output:", _fmt_trace(trace)]
        raise LawViolation("\n".join(msg))

    def on(self, law: Law) -> bool:
        return law in self.applicable

    # text helpers ---------------------------------------------------------------------------
    def input_texts(self) -> dict[str | None, str]:
        assert self.sc is not None
        events = [ev for _, ev in self.sc.schedule]
        if not self.sc.alphabets:
            return {None: text_of_items(events)}
        return {agent: text_of_items([e for e in events if e.agent == agent]) for agent, _ in self.sc.alphabets}

    # per-trace checks -----------------------------------------------------------------------
    def generic(self, trial: _Trial, label: str) -> None:
        if trial.stuck:
            raise LawViolation(
                f"{self.name}: trial {label} kept the scheduler busy for more than {_BUDGET} actions "
                "(a timer that never stops?)"
            )
        for c in trial.consumers:
            if self.on(Law.GRAMMAR):
                terminals = [i for i, e in enumerate(c.trace) if e[1] != "N"]
                if terminals and terminals[0] != len(c.trace) - 1:
                    self.fail(Law.GRAMMAR, f"notification after the terminal #{terminals[0]}", c.trace, label)
            if self.on(Law.SERIALISED) and c.serial:
                self.fail(Law.SERIALISED, c.serial[0], c.trace, label)
        if self.on(Law.PURE_FACTORY):
            if trial.factory_subscribed:
                self.fail(
                    Law.PURE_FACTORY,
                    f"building the operator subscribed to the upstream {trial.factory_subscribed} time(s)",
                    trial=label,
                )
            if trial.factory_scheduled:
                self.fail(
                    Law.PURE_FACTORY,
                    f"building the operator scheduled {trial.factory_scheduled} action(s) before any subscription",
                    trial=label,
                )
        if self.on(Law.CALLBACK_ISOLATION):
            allowed = {id(c.raised) for c in trial.consumers if c.raised is not None}
            for t, exc in trial.producer.escaped:
                if id(exc) not in allowed:
                    self.fail(
                        Law.CALLBACK_ISOLATION,
                        f"{type(exc).__name__}: {exc} escaped from the operator into the producer at t={t}",
                        trial.consumers[0].trace,
                        label,
                    )
        if trial.crashes:
            raise LawViolation(
                f"{self.name}: trial {label}: {trial.crashes[0]}\n  output:\n" + _fmt_trace(trial.consumers[0].trace)
            )

    def items(self, c: _Consumer, upto: int | None = None) -> list[Any]:
        trace = c.trace if upto is None else c.trace[:upto]
        return [v for _, k, v in trace if k == "N"]

    def text(self, items: list[Any]) -> str:
        try:
            return self.text_of(items)
        except TypeError as exc:
            raise _TextOfError(
                f"{exc}. Laws 6, 7, 8 and 13 compare the text of the output with the input's: pass "
                "text_of=... or declare the laws that do not apply in not_applicable"
            ) from exc

    def output_texts(self, items: list[Any]) -> dict[str | None, str]:
        assert self.sc is not None
        text = self.text(items)
        if not self.sc.alphabets:
            return {None: text}
        return {agent: "".join(ch for ch in text if ch in alpha) for agent, alpha in self.sc.alphabets}

    def foreign_chars(self, items: list[Any]) -> str:
        assert self.sc is not None
        if not self.sc.alphabets:
            return ""
        known = "".join(alpha for _, alpha in self.sc.alphabets)
        return "".join(ch for ch in self.text(items) if ch not in known)

    def text_laws(self, c: _Consumer, label: str, *, complete: bool) -> None:
        """COMPLETION (the text part), CONSERVATION, ORDER and NO_DUPLICATION on one consumer."""
        items = self.items(c)
        if self.on(Law.NO_DUPLICATION):
            self.no_duplication(c, items, label, Law.NO_DUPLICATION)
        if self.on(Law.ORDER):
            self.order(c, items, label)
        if self.on(Law.CONSERVATION) or (complete and self.on(Law.COMPLETION)):
            self.conservation(c, items, label, complete=complete)

    def conservation(self, c: _Consumer, items: list[Any], label: str, *, complete: bool) -> None:
        law = Law.CONSERVATION if self.on(Law.CONSERVATION) else Law.COMPLETION
        got = self.output_texts(items)
        foreign = self.foreign_chars(items)
        if foreign:
            self.fail(law, f"output text has characters no agent sent: {foreign!r}", c.trace, label)
        for agent, text_in in self.input_texts().items():
            text_out = got[agent]
            who = f" of agent {agent}" if agent is not None else ""
            if complete and text_out != text_in:
                tail_lost = text_in.startswith(text_out)
                self.fail(
                    Law.COMPLETION if tail_lost and self.on(Law.COMPLETION) else law,
                    f"on completion the text{who} must equal the input's "
                    f"({'the tail was lost' if tail_lost else 'it differs'}):\n"
                    f"    in : {text_in!r}\n    out: {text_out!r}",
                    c.trace,
                    label,
                )
            if self.on(Law.CONSERVATION) and not text_in.startswith(text_out):
                self.fail(
                    Law.CONSERVATION,
                    f"the text{who} is not a prefix of the input's:\n    in : {text_in!r}\n    out: {text_out!r}",
                    c.trace,
                    label,
                )

    def order(self, c: _Consumer, items: list[Any], label: str) -> None:
        assert self.sc is not None
        inputs = {(ev.run_id, ev.seq): ev for _, ev in self.sc.schedule}
        last: dict[str, int] = {}
        for ev in _events_in(items):
            if ev.kind is EventKind.RETRY:
                last.pop(ev.run_id, None)
                continue
            if inputs.get((ev.run_id, ev.seq)) == ev:
                prev = last.get(ev.run_id)
                if prev is not None and ev.seq <= prev:
                    self.fail(Law.ORDER, f"{ev!r} of run {ev.run_id!r} came after seq {prev}", c.trace, label)
                last[ev.run_id] = ev.seq
        got = self.output_texts(items)
        for agent, text_in in self.input_texts().items():
            if not _is_subsequence(got[agent], text_in):
                who = f" of agent {agent}" if agent is not None else ""
                self.fail(
                    Law.ORDER,
                    f"the text{who} is out of order:\n    in : {text_in!r}\n    out: {got[agent]!r}",
                    c.trace,
                    label,
                )

    def no_duplication(self, c: _Consumer, items: list[Any], label: str, law: Law) -> None:
        seen: set[tuple[str, int]] = set()
        events = list(_events_in(items))
        for ev in events:
            if ev.kind is EventKind.RETRY:
                seen = {k for k in seen if k[0] != ev.run_id}
                continue
            key = (ev.run_id, ev.seq)
            if key in seen:
                self.fail(law, f"{ev!r} (run {ev.run_id!r}, seq {ev.seq}) was delivered twice", c.trace, label)
            seen.add(key)
        if all(isinstance(item, TokenEvent) for item in items):
            return  # events only: the (run_id, seq) check is the whole story
        if any(ev.kind is EventKind.RETRY for ev in events):
            return  # the text legitimately restarts
        got = self.output_texts(items)
        for agent, text_in in self.input_texts().items():
            if not _is_subsequence(got[agent], text_in):
                who = f" of agent {agent}" if agent is not None else ""
                self.fail(
                    law,
                    f"the text{who} repeats or invents text:\n    in : {text_in!r}\n    out: {got[agent]!r}",
                    c.trace,
                    label,
                )

    # trials ---------------------------------------------------------------------------------
    def main(self, trial: _Trial) -> None:
        self.generic(trial, "main")
        c = trial.consumers[0]
        subs = trial.producer.subs
        delivered = {u.delivered for u in subs}
        last = c.trace[-1] if c.trace else None
        input_error = trial.producer.error
        if self.on(Law.ERROR_TRANSPARENCY) and "error" in delivered:
            assert input_error is not None
            if not self.handles_errors:
                if last is None or last[1] != "E" or last[2] is not input_error:
                    self.fail(
                        Law.ERROR_TRANSPARENCY,
                        f"the upstream failed with {type(input_error).__name__}: {input_error}; the output must "
                        "end with on_error of that same exception object",
                        c.trace,
                    )
            elif last is not None and last[1] == "E" and not _chains_to(last[2], input_error):
                self.fail(
                    Law.ERROR_TRANSPARENCY,
                    f"the output failed with {type(last[2]).__name__}: {last[2]}, which is neither the upstream's "
                    f"{type(input_error).__name__} nor caused by it",
                    c.trace,
                )
        completed_input = "completed" in delivered and "error" not in delivered
        if self.on(Law.COMPLETION):
            if completed_input and (last is None or last[1] != "C"):
                what = "nothing" if last is None else ("on_error" if last[1] == "E" else "no terminal")
                self.fail(
                    Law.COMPLETION,
                    f"the upstream completed but the output ended with {what} within {GRACE} s",
                    c.trace,
                )
            if not delivered and c.terminated_at is None:
                self.fail(
                    Law.COMPLETION, "the operator released the upstream early but never ended its output", c.trace
                )
        if self.on(Law.CLEANUP):
            self.cleanup(trial, c, "main")
        complete = completed_input and last is not None and last[1] == "C"
        self.text_laws(c, "main", complete=complete)

    def cleanup(self, trial: _Trial, c: _Consumer, label: str) -> None:
        subs = trial.producer.subs
        if not subs and c.terminated_at is None and c.disposed_at is None:
            return
        if not self.handles_errors and len(subs) > 1:
            self.fail(
                Law.CLEANUP,
                f"the upstream was subscribed {len(subs)} times (at {[u.start for u in subs]}) for one subscriber",
                c.trace,
                label,
            )
        for prev, nxt in itertools.pairwise(subs):
            if prev.delivered != "error" or prev.end is None or prev.end > nxt.start + _EPS:
                self.fail(
                    Law.CLEANUP,
                    f"the upstream was subscribed again at t={nxt.start} while/after a subscription that did not "
                    "fail (resubscribing is only for retrying a failed upstream, one at a time)",
                    c.trace,
                    label,
                )
        if c.terminated_at is not None or c.disposed_at is not None:
            for i, u in enumerate(subs):
                if u.end is None:
                    self.fail(
                        Law.CLEANUP,
                        f"upstream subscription {i} (from t={u.start}) was never released after the output ended",
                        c.trace,
                        label,
                    )
                if u.finally_runs != 1:
                    self.fail(
                        Law.CLEANUP,
                        f"the finally-handler of upstream subscription {i} ran {u.finally_runs} times, not once",
                        c.trace,
                        label,
                    )
            late = [i for i in trial.producer.scheduler.invoked_indices if i > (c.ended_scheduled or 1 << 62)]
            if late:
                self.fail(
                    Law.CLEANUP,
                    f"{len(late)} action(s) scheduled after the output ended or was disposed still ran "
                    "(a timer left running)",
                    c.trace,
                    label,
                )

    def determinism(self, a: _Trial, b: _Trial) -> None:
        self.generic(b, "again")
        if not self.on(Law.DETERMINISM):
            return
        diff = _diff(a.consumers[0].trace, b.consumers[0].trace, 0.0)
        if diff:
            self.fail(
                Law.DETERMINISM,
                f"the same input on a fresh scheduler gave a different trace: {diff}\n  first run:\n"
                + _fmt_trace(a.consumers[0].trace),
                b.consumers[0].trace,
                "again",
            )

    def cold(self, trial: _Trial, shift: float) -> None:
        self.generic(trial, "cold")
        if not self.on(Law.COLD_REPEATABILITY):
            return
        first, second = trial.consumers
        # Both are compared over the same span: the later subscription was observed for ``shift`` s less
        # (an operator that retries can outlast the horizon, and would otherwise look non-repeatable).
        limit = trial.horizon - shift
        first_trace = [entry for entry in first.trace if entry[0] <= limit]
        diff = _diff(first_trace, second.trace, shift)
        if diff:
            self.fail(
                Law.COLD_REPEATABILITY,
                f"a second subscription {shift} s later gave a different trace: {diff}\n  first subscription:\n"
                + _fmt_trace(first.trace),
                second.trace,
                "cold",
            )

    def cancel(self, trial: _Trial) -> None:
        self.generic(trial, "cancel")
        c = trial.consumers[0]
        if self.on(Law.CANCELLATION) and c.disposed_at is not None:
            if c.dispose_errors:
                exc = c.dispose_errors[0]
                self.fail(Law.CANCELLATION, f"dispose raised {type(exc).__name__}: {exc}", c.trace, "cancel")
            late = c.trace[c.disposed_at :]
            if late:
                self.fail(
                    Law.CANCELLATION,
                    f"{len(late)} notification(s) after dispose (the first: {_fmt_entry(late[0]).strip()})",
                    c.trace,
                    "cancel",
                )
            t_dispose = c.disposed_time
            assert t_dispose is not None
            for i, u in enumerate(trial.producer.subs):
                if u.start > t_dispose + _EPS:
                    self.fail(
                        Law.CANCELLATION,
                        f"the upstream was subscribed at t={u.start}, after dispose at t={t_dispose}",
                        c.trace,
                        "cancel",
                    )
                if u.end is None or u.end > t_dispose + _EPS:
                    when = "never" if u.end is None else f"only at t={u.end}"
                    self.fail(
                        Law.CANCELLATION,
                        f"upstream subscription {i} (from t={u.start}) was not released by dispose at "
                        f"t={t_dispose} ({when})",
                        c.trace,
                        "cancel",
                    )
        if self.on(Law.CLEANUP):
            self.cleanup(trial, c, "cancel")
        if self.on(Law.CONSERVATION) or self.on(Law.ORDER) or self.on(Law.NO_DUPLICATION):
            self.text_laws(c, "cancel", complete=False)

    def raise_trial(self, trial: _Trial) -> None:
        self.generic(trial, "raise")
        if not self.on(Law.CALLBACK_ISOLATION):
            return
        c = trial.consumers[0]
        items = self.items(c)
        self.override = Law.CALLBACK_ISOLATION
        try:
            events_only = all(isinstance(item, TokenEvent) for item in items)
            if events_only or self.on(Law.CONSERVATION):
                self.no_duplication(c, items, "raise", Law.CALLBACK_ISOLATION)
            if self.on(Law.CONSERVATION):
                self.conservation(c, items, "raise", complete=False)
        finally:
            self.override = None


def _events_in(items: Iterable[Any]) -> Iterable[TokenEvent]:
    for item in items:
        if isinstance(item, TokenEvent):
            yield item
        elif isinstance(item, list | tuple):
            yield from _events_in(item)


def _is_subsequence(small: str, big: str) -> bool:
    it = iter(big)
    return all(ch in it for ch in small)


def _chains_to(exc: BaseException, origin: BaseException) -> bool:
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        if cur is origin:
            return True
        seen.add(id(cur))
        cur = cur.__cause__ or cur.__context__
    return False


def _rounded(value: Any) -> Any:
    """``value`` with event times rounded to the clock's resolution (microseconds)."""
    if isinstance(value, TokenEvent):
        return dataclasses.replace(value, time=round(value.time, 6))
    if type(value) in (list, tuple) and any(isinstance(v, TokenEvent | list | tuple) for v in value):
        return type(value)(_rounded(v) for v in value)
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal values (event times to the microsecond); exceptions by type and args; objects without
    ``__eq__`` by their attributes."""
    if a is b:
        return True
    a, b = _rounded(a), _rounded(b)
    if isinstance(a, BaseException) and isinstance(b, BaseException):
        return type(a) is type(b) and a.args == b.args
    if type(a) is type(b) and getattr(type(a), "__eq__", None) is object.__eq__:
        return bool(_attrs(a) == _attrs(b))
    try:
        return bool(a == b)
    except Exception:
        return repr(a) == repr(b)


def _attrs(obj: Any) -> Any:
    if hasattr(obj, "__dict__"):
        return vars(obj)
    return {name: getattr(obj, name, None) for name in getattr(type(obj), "__slots__", ())} or repr(obj)


def _unshift(value: Any, shift: float) -> Any:
    """``value`` with the ``time`` of the events in it moved back by ``shift`` (for cold traces)."""
    if not shift:
        return value
    if isinstance(value, TokenEvent):
        return dataclasses.replace(value, time=round(value.time - shift, 6))
    if type(value) in (list, tuple):
        return type(value)(_unshift(v, shift) for v in value)
    return value


def _field_diff(a: Any, b: Any) -> str:
    if isinstance(a, TokenEvent) and isinstance(b, TokenEvent):
        names = [f.name for f in dataclasses.fields(TokenEvent) if getattr(a, f.name) != getattr(b, f.name)]
        if names:
            return (
                " (differing fields: " + ", ".join(f"{n}={getattr(a, n)!r} vs {getattr(b, n)!r}" for n in names) + ")"
            )
    return ""


def _diff(a: Sequence[_Entry], b: Sequence[_Entry], shift: float) -> str:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        # events the operator stamps with the clock are ``shift`` later; events passed through are not
        yv = y[2] if _same(x[2], y[2]) else _unshift(y[2], shift)
        if x[1] != y[1] or abs((y[0] - shift) - x[0]) > 1e-5 or not _same(x[2], yv):
            return (
                f"notification #{i}: {_fmt_entry(x).strip()}  vs  {_fmt_entry((y[0] - shift, y[1], yv)).strip()}"
                + _field_diff(x[2], yv)
            )
    if len(a) != len(b):
        return f"{len(a)} notifications vs {len(b)}"
    return ""


# --------------------------------------------------------------------------------------------
# The public entry point


def _name_of(make: Any) -> str:
    return str(getattr(make, "__qualname__", None) or getattr(make, "__name__", None) or repr(make))


def check_operator_laws(
    make: OperatorFactory,
    *,
    not_applicable: Mapping[Law, str] | None = None,
    text_of: Callable[[list[Any]], str] | None = None,
    handles_errors: bool = False,
    max_examples: int = 40,
) -> LawReport:
    """Check that an operator obeys the 13 laws of DESIGN.md on generated streams in virtual time.

    Call it from a plain test (not from inside a hypothesis ``@given`` test: it runs its own).
    Settings not named here (database, derandomize, verbosity, ...) come from the loaded
    hypothesis profile; ``deadline`` is always off.

    Args:
        make: builds the operator for one example: ``make(scheduler)`` gets the example's
            ``TestScheduler`` and returns the operator (``Observable[TokenEvent] -> Observable``),
            e.g. ``lambda s: buffer_tokens(3)`` or ``lambda s: pace(0.1, scheduler=s)``. Pass the
            scheduler to every time-based operator. Give callbacks that raise to check an
            operator that calls user code (law 11).
        not_applicable: laws the operator cannot meet, each with the reason; they are not
            checked and the report lists them. Declaring ORDER not applicable also keeps
            multi-agent input away (for operators that handle one run).
        text_of: the text carried by a list of output items, compared with the text of the
            input's ``token`` events (default :func:`text_of_items`: ``token`` events, strings,
            and lists/tuples of those; a ``retry`` event restarts its run's text). For a running
            text, ``lambda items: items[-1] if items else ""``.
        handles_errors: True for an operator that exists to handle errors (retry, catch): it may
            resubscribe a failed upstream and replace its error (law 5 relaxed).
        max_examples: generated examples.

    What the operator logs on the ``rxagents`` logger while it is checked (a ``tap_safe`` with a
    raising callback logs a traceback per run: hundreds over all examples) is held back and counted:
    the report's ``logged`` lists it, one summary line is logged at the end, and a failure carries
    the summary and the first traceback as a note.

    Returns:
        A :class:`LawReport` of what was checked.

    Raises:
        AssertionError: a law was broken (a :class:`LawViolation`); the message names the law,
            the trial and the output, and hypothesis adds the shrunk input.
        ValueError: a bad argument (a reason missing, a key that is not a :class:`Law`).
        TypeError: ``text_of`` cannot read the output (pass one, or declare the text laws).

    Example:
        >>> from reactivex import operators as ops
        >>> report = check_operator_laws(lambda s: ops.map(lambda e: e), max_examples=10)
        >>> Law.GRAMMAR in report.checked
        True
        >>> report = check_operator_laws(
        ...     lambda s: ops.filter(lambda e: e.kind != "token"),
        ...     not_applicable={Law.CONSERVATION: "drops the text", Law.COMPLETION: "drops the text"},
        ...     max_examples=10,
        ... )
        >>> report.reason(Law.CONSERVATION)
        'drops the text'
    """
    if max_examples < 1:
        raise ValueError(f"max_examples must be >= 1, got {max_examples}")
    na: dict[Law, str] = {}
    for law, why in (not_applicable or {}).items():
        if not isinstance(law, Law):
            raise ValueError(f"not_applicable keys must be Law members, got {law!r}")
        if not isinstance(why, str) or not why.strip():
            raise ValueError(f"not_applicable[{law!r}] needs a reason (a non-empty str), got {why!r}")
        na[law] = why.strip()
    applicable = frozenset(law for law in Law if law not in na)
    name = _name_of(make)
    checker = _Checker(name, applicable, text_of or text_of_items, handles_errors)
    multi = Law.ORDER in applicable
    examples = 0
    usage_error: _TextOfError | None = None

    def law_property(sc: _Scenario) -> None:
        nonlocal examples, usage_error
        if usage_error is not None:
            return
        examples += 1
        checker.sc = sc
        try:
            run_trials(sc)
        except _TextOfError as exc:
            usage_error = exc

    test = given(sc=_scenarios(multi))(law_property)
    for explicit in _explicit_scenarios(multi):
        test = example(sc=explicit)(test)
    test = settings(
        max_examples=max_examples,
        deadline=None,
        report_multiple_bugs=False,
        phases=[p for p in (settings.default or settings()).phases if p is not Phase.explain],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )(test)

    def run_trials(sc: _Scenario) -> None:
        schedule = list(sc.schedule)
        # every trial runs whatever is declared: GRAMMAR, SERIALISED, PURE_FACTORY and
        # CALLBACK_ISOLATION (nothing escapes into the producer) are checked in all of them
        main = _run_trial(make, schedule, [_Plan(_SUBSCRIBE_AT)])
        checker.main(main)
        checker.determinism(main, _run_trial(make, schedule, [_Plan(_SUBSCRIBE_AT)]))
        checker.cold(_run_trial(make, schedule, [_Plan(_SUBSCRIBE_AT), _Plan(_SUBSCRIBE_AT + sc.shift)]), sc.shift)
        plan = _Plan(_SUBSCRIBE_AT, dispose_at=sc.dispose_at, dispose_on=sc.dispose_on)
        checker.cancel(_run_trial(make, schedule, [plan]))
        checker.raise_trial(_run_trial(make, schedule, [_Plan(_SUBSCRIBE_AT, raise_on=sc.raise_on)]))

    collector = LogCollector()
    try:
        with collector:
            _run_test(test)
    except BaseException as exc:
        if collector.messages:
            exc.add_note(_logs_note(name, collector))
        raise
    if usage_error is not None:
        raise TypeError(str(usage_error)) from usage_error
    if collector.messages:
        log.log(collector.highest_level, "check_operator_laws(%s): %s (LawReport.logged)", name, collector.summary())
    return LawReport(
        operator=name,
        checked=tuple(law for law in Law if law in applicable),
        not_applicable=tuple((law, na[law]) for law in Law if law in na),
        examples=examples,
        handles_errors=handles_errors,
        logged=collector.messages,
    )


def _run_test(test: Callable[[], None]) -> None:
    try:
        test()
    except LawViolation:
        raise
    except hypothesis_errors.FlakyFailure as exc:
        first = _first_violation(exc)
        if first is None:
            raise
        raise LawViolation(f"{first}\n  (the failure did not reproduce on every run: flaky)") from exc


def _logs_note(name: str, collector: LogCollector) -> str:
    lines = [f"While {name} was checked, the rxagents logger got (held back, counted):"]
    lines += [f"  {message}" for message in collector.messages]
    if collector.first_traceback is not None:
        lines += ["The first of them with a traceback:", collector.first_traceback]
    return "\n".join(lines)


def _first_violation(exc: BaseException) -> BaseException | None:
    if isinstance(exc, LawViolation):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _first_violation(inner)
        if found is not None:
            return found
    return None
