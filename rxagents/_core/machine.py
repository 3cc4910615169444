"""One agent run as a pure state machine: :class:`RunMachine`.

The machine turns what happens to a run — the backend's deltas, its end, a failure, a silence limit
passing, a retry wait ending — into the events to emit and the next thing to do. It has no clock (each input
brings ``now``), no I/O and no scheduler: the drivers in :mod:`rxagents._run` (asyncio: ``run_events``;
virtual time: ``play_virtual``) open model requests, pull deltas, run the timers and waits it asks for, and
deliver its events. So every rule of a run lives here and in the policies it uses, once::

    begin ─▶ [start] ─▶ Open(loop 1) ──▶ STREAMING ◀──────────────────────────────────────────┐
                                            │  delta: [token | reasoning | tool_call] ─▶ Pull    │
                                            │         (usage summed, finish kept for the end)    │
                                            │                                                    │
        end (finish seen), loop < max_loops ├─▶ Open(loop + 1) ──────────────────────────────────┤
        end (finish seen), last loop        ├─▶ [usage?, finish] ─▶ Complete                     │
        end without finish                  ├─▶ ModelError ─┐                                    │
        silent (the Pull's limit passed)    ├─▶ StallTimeout┤                                    │
        failed(error)                       └───────────────┴─▶ RetryPolicy.decide(error,        │
                                                                  retried, delivered)            │
                   Retry, nothing of the request delivered: forget it ─▶ Wait ─▶ WAITING ─resume─┤
                   Retry(restart), output delivered: [retry], back to loop 1 ─▶ Wait ─▶ WAITING ─┘
                   GiveUp ─▶ [error] ─▶ Fail(error carrying partial_text, events, retries)
    abort(error) (the driver's own failure, e.g. preparing the backend) ─▶ [error] ─▶ Fail

``[...]``: events emitted. Where a rule lives:

* whether and when to retry — :meth:`~rxagents._core.policy.RetryPolicy.decide` (also used by the
  ``retry`` operator);
* which silence limit runs when — :class:`~rxagents._core.silence.SilenceWatch` (also used by the timeout
  operators); what a silence means for a run — :meth:`RunMachine.silent`;
* what a request's failure does to the run (forget, restart, fail) — :meth:`RunMachine.failed`;
* the grammar the events follow — :mod:`rxagents._core.grammar` (the tests check the machine against it).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from rxagents._core.partial import PartialText
from rxagents._core.policy import NO_RETRY, GiveUp, RetryPolicy
from rxagents._core.silence import Silence, SilenceWatch, limit
from rxagents.errors import ModelError, RxAgentsError, StallTimeout
from rxagents.events import EventKind, TokenEvent, ToolCallDelta, Usage, make_event

__all__ = ["Command", "Complete", "DeltaLike", "Fail", "Open", "Pull", "RunMachine", "Step", "Wait"]

#: The delta kinds a backend may yield.
_DELTA_KINDS = frozenset({EventKind.TOKEN, EventKind.REASONING, EventKind.TOOL_CALL, EventKind.USAGE, EventKind.FINISH})


class DeltaLike(Protocol):
    """What the machine reads of a backend's delta (:class:`rxagents.models.Delta`)."""

    @property
    def kind(self) -> EventKind: ...
    @property
    def text(self) -> str: ...
    @property
    def tool_call(self) -> ToolCallDelta | None: ...
    @property
    def usage(self) -> Usage | None: ...
    @property
    def finish_reason(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Open:
    """Send the model request of ``loop`` (its conversation holds the ``answers`` of the loops before), then
    pull its first delta, failing it with :meth:`RunMachine.silent` if ``silence`` passes first."""

    loop: int
    answers: tuple[str, ...]
    silence: Silence | None


@dataclass(frozen=True, slots=True)
class Pull:
    """Pull the next delta of the open request (its end: :meth:`RunMachine.end`), within ``silence``."""

    silence: Silence | None


@dataclass(frozen=True, slots=True)
class Wait:
    """The request is over (close it): wait ``seconds``, then call :meth:`RunMachine.resume`.

    ``error`` failed the request; this is retry number ``retry``; ``restart``: the run starts again.
    """

    seconds: float
    error: BaseException
    retry: int
    restart: bool


@dataclass(frozen=True, slots=True)
class Complete:
    """The run finished: complete the stream."""


@dataclass(frozen=True, slots=True)
class Fail:
    """The run failed (its ``error`` event was emitted): end the stream with ``error``."""

    error: RxAgentsError


Command = Open | Pull | Wait | Complete | Fail


class Step(NamedTuple):
    """The machine's answer to an input: the ``events`` to deliver, in order, then the ``command`` to do."""

    events: tuple[TokenEvent, ...]
    command: Command


class _Phase(enum.Enum):
    NEW = "new"
    STREAMING = "streaming"  # a request is open: delta, end, failed, silent
    WAITING = "waiting"  # a retry wait: resume
    ENDED = "ended"


#: ``Step(events, command)`` without the frame of the NamedTuple's ``__new__``: for :meth:`RunMachine.delta`.
_new_step = tuple.__new__

# Read once: an enum member read from its class (``EventKind.TOKEN``) costs a metaclass lookup each time, which on
# the per-delta path costs as much as a rule.
_STREAMING = _Phase.STREAMING
_TOKEN, _REASONING, _TOOL_CALL = EventKind.TOKEN, EventKind.REASONING, EventKind.TOOL_CALL
_USAGE, _FINISH = EventKind.USAGE, EventKind.FINISH


class RunMachine:
    """The state of one run and its rules (see the module docstring). Not thread-safe: one driver feeds it.

    Args:
        agent, model, run_id: stamped on every event.
        max_loops: model requests whose answers build on each other (``Agent(max_loops=...)``).
        retry: the :class:`~rxagents._core.policy.RetryPolicy`.
        first_token_timeout, stall_timeout: the silence limits of a request, seconds (None: no limit).
        events: the (empty) list to keep the run's events in, as :attr:`events` (a failure's partial text is made
            of them), for a consumer that reads them there instead of keeping its own copy; default: a new list.
    """

    def __init__(
        self,
        *,
        agent: str,
        model: str,
        run_id: str,
        max_loops: int = 1,
        retry: RetryPolicy = NO_RETRY,
        first_token_timeout: float | None = None,
        stall_timeout: float | None = None,
        events: list[TokenEvent] | None = None,
    ) -> None:
        self.agent = agent
        self.model = model
        self.run_id = run_id
        self.max_loops = max_loops
        self.policy = retry
        self.watch = SilenceWatch(limit(first_token_timeout, "first_token"), limit(stall_timeout, "stall"))
        self._pull_then = Pull(self.watch.then)  # the command after most deltas, made once
        self.seq = 0
        self.loop = 1
        self.retried = 0
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.answers: list[str] = []
        #: Every event emitted, in order.
        self.events: list[TokenEvent] = [] if events is None else events
        self._current: list[str] = []  # the answer text of the open request
        self._mark: tuple[int, Usage | None] = (0, None)  # seq and usage when the open request was sent
        self._time = float("-inf")
        self._phase = _Phase.NEW

    # --- inputs ---------------------------------------------------------------------------------------------

    def begin(self, now: float) -> Step:
        """The run starts: its ``start`` event, then the first request."""
        self._expect(_Phase.NEW, "begin")
        start = self._emit(EventKind.START, now)
        return Step((start,), self._open())

    def delta(self, delta: DeltaLike, now: float) -> Step:
        """The open request yielded ``delta``."""
        if self._phase is not _STREAMING:
            self._expect(_STREAMING, "delta")
        kind = delta.kind
        events: tuple[TokenEvent, ...] = ()
        if kind is _TOKEN or kind is _REASONING or kind is _TOOL_CALL:
            text = delta.text
            if kind is _TOKEN:
                self._current.append(text)
            events = (self._emit(kind, now, text, delta.tool_call),)
        elif kind is _USAGE:
            if delta.usage is not None:
                self.usage = delta.usage if self.usage is None else self.usage + delta.usage
        elif kind is _FINISH:
            self.finish_reason = delta.finish_reason or "stop"
        else:
            return self.failed(
                ModelError(
                    f"model {self.model!r} yielded a {kind.value!r} delta; a backend yields token, reasoning, "
                    "tool_call, usage and finish deltas and raises its failures"
                ),
                now,
            )
        watch = self.watch
        watch.seen()
        limit = watch.limit
        return _new_step(Step, (events, self._pull_then if limit is watch.then else Pull(limit)))

    def end(self, now: float) -> Step:
        """The open request's deltas ended: the next loop, or the run's end (a request without a finish
        failed)."""
        self._expect(_Phase.STREAMING, "end")
        if self.finish_reason is None:
            error = ModelError(f"model {self.model!r} ended loop {self.loop} without a finish_reason")
            return self.failed(error, now)
        self.answers.append("".join(self._current))
        if self.loop < self.max_loops:
            self.loop += 1
            return Step((), self._open())
        events: list[TokenEvent] = []
        if self.usage is not None:
            events.append(self._emit(EventKind.USAGE, now, usage=self.usage))
        events.append(self._emit(EventKind.FINISH, now, finish_reason=self.finish_reason))
        self._phase = _Phase.ENDED
        return Step(tuple(events), Complete())

    def failed(self, error: BaseException, now: float) -> Step:
        """The open request failed with ``error``: retry it invisibly, restart the run, or fail the run."""
        self._expect(_Phase.STREAMING, "failed")
        delivered = self.seq != self._mark[0]
        decision = self.policy.decide(error, self.retried, delivered=delivered)
        if isinstance(decision, GiveUp):
            return self._fail(decision.error, now)
        self.retried += 1
        events: tuple[TokenEvent, ...] = ()
        if decision.restart:
            events = (self._emit(EventKind.RETRY, now, text=f"{type(error).__name__}: {error}"),)
            self.answers = []
            self.usage = None
            self.loop = 1
        else:  # forget the request: it delivered nothing (its usage, if any, is not the run's)
            self.usage = self._mark[1]
        self._phase = _Phase.WAITING
        return Step(events, Wait(decision.wait, error, self.retried, decision.restart))

    def silent(self, now: float) -> Step:
        """The silence limit of the last :class:`Open`/:class:`Pull` passed with no delta: the request fails
        with :class:`~rxagents.errors.StallTimeout`."""
        self._expect(_Phase.STREAMING, "silent")
        silence = self.watch.limit
        if silence is None:
            raise RuntimeError("RunMachine.silent(): no silence limit runs for this request")
        return self.failed(self._silence_error(silence), now)

    def resume(self, now: float) -> Step:
        """The retry wait is over: send the request again (after a restart: the first loop's)."""
        self._expect(_Phase.WAITING, "resume")
        return Step((), self._open())

    def abort(self, error: BaseException, now: float) -> Step:
        """The run fails with ``error``, no retry considered (e.g. preparing the backend failed)."""
        if self._phase is _Phase.ENDED or self._phase is _Phase.NEW:
            raise RuntimeError(f"RunMachine.abort() in state {self._phase.value}: the run is not running")
        return self._fail(error, now)

    @property
    def ended(self) -> bool:
        return self._phase is _Phase.ENDED

    # --- inside ---------------------------------------------------------------------------------------------

    def _expect(self, phase: _Phase, name: str) -> None:
        if self._phase is not phase:  # the driver broke the protocol: a bug, not a model failure
            raise RuntimeError(
                f"RunMachine.{name}() in state {self._phase.value}, expected {phase.value}: the driver must "
                "follow the machine's commands"
            )

    def _open(self) -> Open:
        self._mark = (self.seq, self.usage)
        self._current = []
        self.finish_reason = None
        self._phase = _Phase.STREAMING
        return Open(self.loop, tuple(self.answers), self.watch.arm())

    def _emit(
        self,
        kind: EventKind,
        now: float,
        text: str = "",
        tool_call: ToolCallDelta | None = None,
        usage: Usage | None = None,
        finish_reason: str | None = None,
        error: BaseException | None = None,
    ) -> TokenEvent:
        if now > self._time:
            self._time = now
        event = make_event(
            kind, self.agent, self.run_id, self.seq, self.loop, text, tool_call, usage, finish_reason, error,
            self._time, self.model,
        )
        self.seq += 1
        self.events.append(event)
        return event

    def _fail(self, exc: BaseException, now: float) -> Step:
        error = exc if isinstance(exc, RxAgentsError) else ModelError(f"{type(exc).__name__}: {exc}")
        if error is not exc:
            error.__cause__ = exc
        event = self._emit(EventKind.ERROR, now, error=error)
        error.partial_text = PartialText(self.events).text
        error.events = tuple(self.events)
        if self.retried and isinstance(error, ModelError):
            error.retries = self.retried
            error.add_note(f"rxagents: the run gave up after {self.retried} retr{'y' if self.retried == 1 else 'ies'}")
        self._phase = _Phase.ENDED
        return Step((event,), Fail(error))

    def _silence_error(self, silence: Silence) -> StallTimeout:
        seconds = silence.seconds
        if silence.phase == "first_token":
            message = (
                f"model {self.model!r} sent nothing for {seconds:g} s after the request "
                f"(first_token_timeout={seconds:g}); raise it for slow models, or set it to None"
            )
        else:
            message = (
                f"model {self.model!r} went silent for {seconds:g} s mid-stream "
                f"(stall_timeout={seconds:g}); raise it for slow models, or set it to None"
            )
        return StallTimeout(message, seconds=seconds, phase=silence.phase)
