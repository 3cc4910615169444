"""One agent run: from backend deltas to a well-formed sequence of TokenEvents.

:class:`RunBuilder` is the single place that stamps events (seq, loop, time) and enforces the run
grammar. Two drivers feed it:

* :func:`run_events` — an async generator on the current asyncio loop (any backend);
* :func:`play_virtual` — a scripted backend (the offline model) played on any reactivex
  scheduler, so runs can be tested in virtual time with ``TestScheduler``.

Both drivers apply the run's reliability settings the same way: the silence limits
(``first_token_timeout``, ``stall_timeout`` → :class:`~rxagents.errors.StallTimeout`) and the
:class:`RetryPolicy`. A model request that fails with a transient error *before it delivered
anything* is retried invisibly (after the backoff, and at least the provider's ``Retry-After``,
waited on the loop or scheduler); once it delivered output it is never retried silently: the run
fails with its partial text, or — with ``after_tokens="restart"`` — announces a ``retry`` event and
starts again (law 13).

:func:`run_observable` turns a run into a cold ``Observable[TokenEvent]``.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import reactivex
from reactivex import abc
from reactivex.disposable import Disposable, SerialDisposable
from reactivex.scheduler import VirtualTimeScheduler

from rxagents import _runtime
from rxagents.errors import ConfigurationError, ModelError, RxAgentsError, StallTimeout, partial_text_of
from rxagents.events import EventKind, TokenEvent, Usage
from rxagents.models import STALL, Delta, ModelBackend, ModelRequest, Step
from rxagents.operators._bridge import from_async_iter
from rxagents.operators._retry import ExponentialBackoff, is_transient

__all__ = ["RetryPolicy", "RunBuilder", "RunSpec", "play_virtual", "retryable", "run_events", "run_observable"]

log = logging.getLogger("rxagents")
_run_ids = itertools.count(1)

#: The user turn added before each loop after the first (the documented multi-loop prompt shape).
CONTINUE_PROMPT = "Continue (loop {loop} of {max_loops}): review your previous answer, then refine and extend it."


class _Scripted(Protocol):
    def script(self, request: ModelRequest) -> list[Step]: ...


def _seconds(value: object) -> float | None:
    """``value`` as seconds >= 0, or None when it is not a finite non-negative number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


def retryable(error: BaseException) -> bool:
    """The default ``retry_on`` of :class:`RetryPolicy`: :func:`~rxagents.operators.is_transient` (HTTP 429/5xx,
    cut, malformed or empty streams, a stall), **except** a first-token timeout.

    A model that sent nothing for ``first_token_timeout`` is most often still busy (queued, or a reasoning model
    thinking before its first token): a new request starts that work again and multiplies the wait (three
    requests of 60 s: three minutes before a chat UI shows the error). So it fails at once, at the documented
    time; ``RetryPolicy(retry_on=is_transient)`` retries it too (a fresh connection can help a stuck server).
    """
    if isinstance(error, StallTimeout) and error.phase == "first_token":
        return False
    return is_transient(error)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a run retries a failed model request: ``Agent(retries=RetryPolicy(...))``.

    * A request that fails with a retryable error **before it delivered anything** (no token,
      reasoning or tool-call event of that request) is retried invisibly: consumers see no error,
      no duplicate ``start``, contiguous ``seq``.
    * Once it delivered output it is never retried silently. ``after_tokens="fail"`` (default):
      the run fails with the typed error and its ``partial_text``. ``"restart"``: a ``retry``
      event (``text`` = the reason) announces that the run starts again from its first loop;
      consumers discard the text they have (``collect_text``, the sinks and ``Agent.run`` do).

    .. code-block:: text

        request 1:  -s--#                        (# = 429, Retry-After 0.2 s, before any token)
        request 2:        ~0.2 s~--a--b--u--f-|
        events:     -s-------------a--b--u--f-|  (one start, seq 0..4, no error)

    Args:
        retries: retries allowed per run, in all (0: never retry).
        backoff: seconds to wait before retry ``n`` (1, 2, ...): a number, or a function of ``n``;
            default :class:`~rxagents.operators.ExponentialBackoff` (0.5 s doubling, at most 30 s).
            The wait is at least the error's ``retry_after`` (the provider's ``Retry-After``).
        max_wait: the longest wait the run accepts: an error asking for more (say ``Retry-After:
            3600``) fails the run at once, its ``retry_after`` telling the caller how long to wait.
        retry_on: which errors are retryable; default :func:`retryable`: HTTP 429/5xx, cut, malformed or
            empty streams — not 400/401, and not a first-token timeout (pass
            :func:`~rxagents.operators.is_transient` to retry that too).
        after_tokens: ``"fail"`` or ``"restart"``, see above.

    Example::

        Agent(model_name="gpt-4o-mini", retries=RetryPolicy(retries=4, after_tokens="restart"))
    """

    retries: int = 2
    backoff: float | Callable[[int], float] = field(default_factory=ExponentialBackoff)
    max_wait: float = 60.0
    retry_on: Callable[[BaseException], bool] = retryable
    after_tokens: Literal["fail", "restart"] = "fail"

    def __post_init__(self) -> None:
        if isinstance(self.retries, bool) or not isinstance(self.retries, int) or self.retries < 0:
            raise ConfigurationError(f"retries must be an int >= 0 (0: never retry), got {self.retries!r}")
        if not callable(self.backoff) and _seconds(self.backoff) is None:
            raise ConfigurationError(
                f"backoff must be seconds >= 0 or a function (retry number) -> seconds, got {self.backoff!r}"
            )
        if _seconds(self.max_wait) is None:
            raise ConfigurationError(f"max_wait must be seconds >= 0, got {self.max_wait!r}")
        if not callable(self.retry_on):
            raise ConfigurationError(f"retry_on must be a predicate (error) -> bool, got {self.retry_on!r}")
        if self.after_tokens not in ("fail", "restart"):
            raise ConfigurationError(f"after_tokens must be 'fail' or 'restart', got {self.after_tokens!r}")

    def wait(self, error: BaseException, retried: int) -> float | None:
        """Seconds to wait before retrying after ``error`` when ``retried`` retries were made; None: don't."""
        if retried >= self.retries or not isinstance(error, Exception) or not self.retry_on(error):
            return None
        backoff = self.backoff(retried + 1) if callable(self.backoff) else self.backoff
        wait = max(_seconds(backoff) or 0.0, _seconds(getattr(error, "retry_after", None)) or 0.0)
        return wait if wait <= self.max_wait else None


#: No retries: what a bare :class:`RunSpec` does.
NO_RETRY = RetryPolicy(retries=0)


@dataclass(frozen=True, slots=True)
class RunSpec:
    """Everything a run needs from its Agent. ``api_key`` never shows in the repr."""

    agent: str
    backend: ModelBackend
    model: str
    system_prompt: str | None = None
    max_loops: int = 1
    temperature: float | None = None
    max_tokens: int | None = None
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict)
    retry: RetryPolicy = NO_RETRY
    first_token_timeout: float | None = None
    stall_timeout: float | None = None

    def limit(self, pulled: int) -> tuple[float | None, str]:
        """The silence limit (seconds, None: none) and its phase, after ``pulled`` deltas of a request."""
        if pulled:
            return self.stall_timeout, "stall"
        return self.first_token_timeout, "first_token"

    def messages(self, task: str, answers: Sequence[str]) -> list[dict[str, str]]:
        """The conversation for the next loop: system, task, then each answer and a continue turn."""
        out: list[dict[str, str]] = []
        if self.system_prompt:
            out.append({"role": "system", "content": self.system_prompt})
        out.append({"role": "user", "content": task})
        for i, answer in enumerate(answers, start=2):
            out.append({"role": "assistant", "content": answer})
            out.append({"role": "user", "content": CONTINUE_PROMPT.format(loop=i, max_loops=self.max_loops)})
        return out

    def request(self, task: str, answers: Sequence[str]) -> ModelRequest:
        return ModelRequest(
            model=self.model,
            messages=self.messages(task, answers),
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            api_base=self.api_base,
            api_key=self.api_key,
            extra=self.extra,
        )


class RunBuilder:
    """Stamps the events of one run and keeps its grammar: start, deltas, usage?, finish | error."""

    def __init__(self, spec: RunSpec, now: Callable[[], float], run_id: str | None = None) -> None:
        self.spec = spec
        self.now = now
        self.run_id = run_id or f"run-{next(_run_ids)}"
        self.seq = 0
        self.loop = 1
        self.usage: Usage | None = None
        self.finish_reason: str | None = None
        self.answers: list[str] = []
        self._current: list[str] = []
        self.events: list[TokenEvent] = []

    def _event(self, kind: EventKind, **fields: Any) -> TokenEvent:
        event = TokenEvent(
            kind, self.spec.agent, self.run_id, self.seq, self.loop, time=self.now(), model=self.spec.model, **fields
        )
        self.seq += 1
        self.events.append(event)
        return event

    def start(self) -> TokenEvent:
        return self._event(EventKind.START)

    def begin_loop(self, loop: int) -> None:
        self.loop = loop
        self._current = []
        self.finish_reason = None

    def delta(self, delta: Delta) -> TokenEvent | None:
        """The event for ``delta``; None for usage and finish, which are kept for :meth:`end`."""
        if delta.kind is EventKind.USAGE:
            if delta.usage is not None:
                self.usage = delta.usage if self.usage is None else self.usage + delta.usage
            return None
        if delta.kind is EventKind.FINISH:
            self.finish_reason = delta.finish_reason or "stop"
            return None
        if delta.kind is EventKind.TOKEN:
            self._current.append(delta.text)
        return self._event(delta.kind, text=delta.text, tool_call=delta.tool_call)

    def mark(self) -> tuple[int, Usage | None]:
        """Where a model request starts, for :meth:`delivered_since` and :meth:`rewind`."""
        return self.seq, self.usage

    def delivered_since(self, mark: tuple[int, Usage | None]) -> bool:
        """Whether an event was made (so delivered) since ``mark``."""
        return self.seq != mark[0]

    def rewind(self, mark: tuple[int, Usage | None]) -> None:
        """Forget a request that failed before delivering anything (its usage and finish, if any)."""
        self.usage = mark[1]
        self.finish_reason = None
        self._current = []

    def restart(self, reason: BaseException) -> TokenEvent:
        """The ``retry`` event announcing the run starts again from loop 1; resets the answers."""
        event = self._event(EventKind.RETRY, text=f"{type(reason).__name__}: {reason}")
        self.answers = []
        self.usage = None
        self.begin_loop(1)
        return event

    def end_loop(self) -> None:
        """Close the current loop; a backend that ended without a finish is a failure."""
        if self.finish_reason is None:
            raise ModelError(f"model {self.spec.model!r} ended loop {self.loop} without a finish_reason")
        self.answers.append("".join(self._current))

    def end(self) -> list[TokenEvent]:
        out = []
        if self.usage is not None:
            out.append(self._event(EventKind.USAGE, usage=self.usage))
        out.append(self._event(EventKind.FINISH, finish_reason=self.finish_reason))
        return out

    def fail(self, exc: BaseException) -> tuple[TokenEvent, RxAgentsError]:
        """The error event and the exception (carrying partial text and events) for a failure."""
        error = exc if isinstance(exc, RxAgentsError) else ModelError(f"{type(exc).__name__}: {exc}")
        if error is not exc:
            error.__cause__ = exc
        event = self._event(EventKind.ERROR, error=error)
        error.partial_text = partial_text_of(self.events)
        error.events = tuple(self.events)
        return event, error


def _gave_up(error: RxAgentsError, retried: int) -> None:
    if retried and isinstance(error, ModelError):
        error.retries = retried
        error.add_note(f"rxagents: the run gave up after {retried} retr{'y' if retried == 1 else 'ies'}")


def _log_retry(spec: RunSpec, error: BaseException, retried: int, wait: float, restart: bool = False) -> None:
    log.info(
        "agent %r: %s: %s; %s (retry %d of %d) in %.3g s",
        spec.agent,
        type(error).__name__,
        error,
        "restarting the run with a retry event" if restart else "retrying the request",
        retried,
        spec.retry.retries,
        wait,
    )


def _silence(spec: RunSpec, seconds: float, phase: str) -> StallTimeout:
    if phase == "first_token":
        message = (
            f"model {spec.model!r} sent nothing for {seconds:g} s after the request "
            f"(first_token_timeout={seconds:g}); raise it for slow models, or set it to None"
        )
    else:
        message = (
            f"model {spec.model!r} went silent for {seconds:g} s mid-stream "
            f"(stall_timeout={seconds:g}); raise it for slow models, or set it to None"
        )
    return StallTimeout(message, seconds=seconds, phase=phase)


async def _pull(deltas: AsyncIterator[Delta], spec: RunSpec, pulled: int) -> Delta:
    """The next delta (``StopAsyncIteration`` at the end), or :class:`StallTimeout` after the limit.

    When the limit expires the run is cancelled one loop turn later, not at once: on a loop busy
    past the limit, the socket callback holding the next chunk and the expired timer come due in
    the same iteration, and the chunk must win (otherwise a busy loop looks like a silent model).
    """
    seconds, phase = spec.limit(pulled)
    if seconds is None:
        return await anext(deltas)
    loop = asyncio.get_running_loop()
    task = asyncio.current_task()
    assert task is not None
    fired = False
    handles: list[asyncio.Handle] = []

    def expire() -> None:
        nonlocal fired
        fired = True
        task.cancel()

    def due() -> None:
        handles.append(loop.call_soon(expire))

    handles.append(loop.call_later(seconds, due))
    try:
        return await anext(deltas)
    except asyncio.CancelledError:
        if fired and task.uncancel() == 0:
            raise _silence(spec, seconds, phase) from None
        raise
    finally:
        for handle in handles:
            handle.cancel()


async def _aclose(iterator: AsyncIterator[Delta]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


async def run_events(
    spec: RunSpec, task: str, now: Callable[[], float], run_id: str | None = None
) -> AsyncGenerator[TokenEvent, None]:
    """The events of one run, on the running asyncio loop.

    On failure the ``error`` event is yielded, then the :class:`RxAgentsError` raised. Closing the
    generator early closes the backend's iterator (and so its HTTP stream). Timeouts and retries
    follow ``spec`` (see the module docstring); their waits run on the loop.
    """
    builder = RunBuilder(spec, now, run_id)
    policy = spec.retry
    retried = 0
    yield builder.start()
    try:
        prepare = getattr(spec.backend, "aprepare", None)
        if prepare is not None:  # e.g. litellm's slow first import, off the loop and before any timeout
            await prepare()
        while True:  # the run from its first loop; again after a restart
            try:
                for loop in range(1, spec.max_loops + 1):
                    builder.begin_loop(loop)
                    while True:  # one model request; again after a failure before it delivered anything
                        mark = builder.mark()
                        try:
                            deltas = spec.backend.stream(spec.request(task, builder.answers))
                            pulled = 0
                            try:
                                while True:
                                    try:
                                        delta = await _pull(deltas, spec, pulled)
                                    except StopAsyncIteration:
                                        break
                                    pulled += 1
                                    event = builder.delta(delta)
                                    if event is not None:
                                        yield event
                            finally:
                                await _aclose(deltas)
                            break
                        except Exception as exc:
                            wait = None if builder.delivered_since(mark) else policy.wait(exc, retried)
                            if wait is None:
                                raise
                            retried += 1
                            builder.rewind(mark)
                            _log_retry(spec, exc, retried, wait)
                            await asyncio.sleep(wait)
                    builder.end_loop()
                break
            except Exception as exc:
                wait = policy.wait(exc, retried) if policy.after_tokens == "restart" else None
                if wait is None:
                    raise
                retried += 1
                _log_retry(spec, exc, retried, wait, restart=True)
                yield builder.restart(exc)
                await asyncio.sleep(wait)
    except Exception as exc:
        event, error = builder.fail(exc)
        _gave_up(error, retried)
        yield event
        if error is exc:
            raise
        raise error from exc
    for event in builder.end():
        yield event


def play_virtual(
    spec: RunSpec,
    task: str,
    observer: abc.ObserverBase[TokenEvent],
    scheduler: abc.SchedulerBase,
    run_id: str | None = None,
) -> abc.DisposableBase:
    """Play a scripted backend's run on ``scheduler`` (virtual time included), with the same
    timeouts and retries as :func:`run_events`."""
    backend: _Scripted = spec.backend  # type: ignore[assignment]  # checked by run_observable
    policy = spec.retry
    builder = RunBuilder(spec, lambda: _runtime.clock(scheduler), run_id)
    pending = SerialDisposable()
    steps: Iterator[Step] = iter(())
    loop = 0
    stopped = False
    mark = builder.mark()
    pulled = 0
    retried = 0

    def later(delay: float, action: Callable[[], None]) -> None:
        def act(_: abc.SchedulerBase, __: Any = None) -> None:
            if not stopped:
                action()

        pending.disposable = scheduler.schedule_relative(delay, act)

    def request() -> None:
        nonlocal steps, mark, pulled
        mark, pulled = builder.mark(), 0
        steps = iter(backend.script(spec.request(task, builder.answers)))

    def fail(exc: BaseException) -> None:
        nonlocal stopped
        event, error = builder.fail(exc)
        _gave_up(error, retried)
        stopped = True
        observer.on_next(event)
        observer.on_error(error)

    def failed(exc: BaseException) -> None:
        """A request failed: retry it, restart the run, or fail."""
        nonlocal retried, loop, steps
        if not builder.delivered_since(mark):
            wait = policy.wait(exc, retried)
            if wait is not None:
                retried += 1
                builder.rewind(mark)
                _log_retry(spec, exc, retried, wait)
                later(wait, retry_request)
                return
        elif policy.after_tokens == "restart":
            wait = policy.wait(exc, retried)
            if wait is not None:
                retried += 1
                _log_retry(spec, exc, retried, wait, restart=True)
                observer.on_next(builder.restart(exc))
                loop, steps = 0, iter(())
                later(wait, advance)
                return
        fail(exc)

    def retry_request() -> None:
        request()
        advance()

    def next_loop() -> bool:
        nonlocal loop
        if loop:
            builder.end_loop()
        if loop == spec.max_loops:
            return False
        loop += 1
        builder.begin_loop(loop)
        request()
        return True

    def advance() -> None:
        nonlocal stopped
        if stopped:  # disposed from inside on_next
            return
        step = next(steps, None)
        while step is None:
            try:
                more = next_loop()
            except RxAgentsError as exc:
                fail(exc)
                return
            if not more:
                for event in builder.end():
                    observer.on_next(event)
                stopped = True
                observer.on_completed()
                return
            step = next(steps, None)
        delay, payload = step
        seconds, phase = spec.limit(pulled)
        if seconds is not None and (payload is STALL or delay > seconds):
            later(seconds, lambda: failed(_silence(spec, seconds, phase)))
            return

        def act() -> None:
            nonlocal pulled
            if payload is STALL:
                return
            if isinstance(payload, BaseException):
                failed(payload)
                return
            assert isinstance(payload, Delta)
            pulled += 1
            event = builder.delta(payload)
            if event is not None:
                observer.on_next(event)
            advance()

        later(delay, act)

    def begin(_: abc.SchedulerBase, __: Any = None) -> None:
        observer.on_next(builder.start())
        advance()

    pending.disposable = scheduler.schedule(begin)

    def dispose() -> None:
        nonlocal stopped
        stopped = True
        pending.dispose()

    return Disposable(dispose)


def run_observable(
    spec: RunSpec, task: str, scheduler: abc.SchedulerBase | None = None
) -> reactivex.Observable[TokenEvent]:
    """A cold Observable: each subscription is a new run; disposing it cancels the run.

    With an asyncio scheduler (or none) the run executes on that loop (or the current/runtime
    loop, see :mod:`rxagents._runtime`); with a :class:`~rxagents._runtime.GatedScheduler` the run
    also waits for its consumer's room before reading each next event. With a virtual-time scheduler
    the backend must be scripted (the offline model) and the run is played on the scheduler.
    """

    def subscribe(
        observer: abc.ObserverBase[TokenEvent], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        chosen = scheduler or subscribe_scheduler
        if isinstance(chosen, VirtualTimeScheduler):
            if not hasattr(spec.backend, "script"):
                raise ConfigurationError(
                    f"scheduler={type(chosen).__name__} (virtual time) needs a scripted backend such as "
                    f"OfflineModel; model {spec.model!r} streams over the network. Use an asyncio scheduler."
                )
            return play_virtual(spec, task, observer, chosen)
        sched = _runtime.loop_scheduler(_runtime.loop_of(chosen))
        gate = chosen.gate if isinstance(chosen, _runtime.GatedScheduler) else None

        def events() -> AsyncIterator[TokenEvent]:
            run = run_events(spec, task, lambda: _runtime.clock(sched))
            return run if gate is None else _gated(run, gate)

        return from_async_iter(events, scheduler=sched).subscribe(observer)

    return reactivex.create(subscribe)


async def _gated(run: AsyncGenerator[TokenEvent, None], gate: _runtime.Gate) -> AsyncGenerator[TokenEvent, None]:
    """``run``'s events, each read only once its consumer has room for it (see :class:`~rxagents._runtime.Gate`).

    The run is suspended at its ``yield`` while it waits, so its silence limits do not run meanwhile: a slow
    consumer is never mistaken for a silent model.
    """
    try:
        async for event in run:
            yield event
            if gate.full:
                await gate.wait()
    finally:
        await run.aclose()
