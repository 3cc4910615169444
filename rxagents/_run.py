"""The run drivers: one agent run executed for real, its rules taken from :class:`~rxagents._core.machine.RunMachine`.

The machine decides everything (what to emit, when to retry, restart or fail, which silence limit runs); a
driver only does what it says — open a model request, pull its next delta within a silence limit, wait,
deliver events, complete or fail:

* :func:`run_events` — an async generator on the current asyncio loop (any backend);
* :func:`play_virtual` — a scripted backend (the offline model) played on any reactivex
  scheduler, so runs can be tested in virtual time with ``TestScheduler``.

:func:`run_observable` turns a run into a cold ``Observable[TokenEvent]`` with the driver its scheduler needs.
:class:`~rxagents._core.policy.RetryPolicy` and :func:`~rxagents._core.policy.retryable` are re-exported here.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import reactivex
from reactivex import abc
from reactivex.disposable import Disposable, SerialDisposable
from reactivex.scheduler import VirtualTimeScheduler

from rxagents import _runtime
from rxagents._core.machine import Complete, Fail, Open, Pull, RunMachine, Step, Wait
from rxagents._core.policy import NO_RETRY, RetryPolicy, retryable
from rxagents._core.silence import Silence
from rxagents.errors import ConfigurationError
from rxagents.events import TokenEvent, new_run_id
from rxagents.models import STALL, Delta, ModelBackend, ModelRequest
from rxagents.models import Step as ScriptStep
from rxagents.operators._bridge import iterate

__all__ = ["RetryPolicy", "RunSpec", "play_virtual", "retryable", "run_events", "run_observable"]

log = logging.getLogger("rxagents")

#: The user turn added before each loop after the first (the documented multi-loop prompt shape).
CONTINUE_PROMPT = "Continue (loop {loop} of {max_loops}): review your previous answer, then refine and extend it."


@runtime_checkable
class Scripted(Protocol):
    """A backend :func:`play_virtual` can play: its answer to a request as timed steps (the offline model)."""

    def script(self, request: ModelRequest) -> list[ScriptStep]: ...


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

    def machine(self, run_id: str | None = None, record: list[TokenEvent] | None = None) -> RunMachine:
        """A new run's state machine (``run_id`` default: a new :func:`~rxagents.events.new_run_id`), keeping
        its events in ``record`` if given."""
        return RunMachine(
            agent=self.agent,
            model=self.model,
            run_id=run_id or new_run_id(),
            max_loops=self.max_loops,
            retry=self.retry,
            first_token_timeout=self.first_token_timeout,
            stall_timeout=self.stall_timeout,
            events=record,
        )

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


def _log_retry(spec: RunSpec, wait: Wait) -> None:
    error = wait.error
    log.info(
        "agent %r: %s: %s; %s (retry %d of %d) in %.3g s",
        spec.agent,
        type(error).__name__,
        error,
        "restarting the run with a retry event" if wait.restart else "retrying the request",
        wait.retry,
        spec.retry.retries,
        wait.seconds,
    )


class _Silent(Exception):
    """The silence limit of a pull passed."""


class _Watchdog:
    """The silence limits of one run's pulls, on one timer.

    Arming a timer per pull (``call_later`` and its cancel) costs more than the rest of a delta's path; a delta
    comes far sooner than any limit, so the timer armed for one pull usually still covers the next: a pull only
    notes its deadline, and the timer, when it fires, arms itself again for the deadline of the pull running
    then (if any; the next pull arms it if none runs). A new timer is needed only when a pull's deadline is
    earlier than the timer's (a shorter limit).

    When the limit of the pull running expires, that pull is cancelled one loop turn later, not at once: on a
    loop busy past the limit, the socket callback holding the next chunk and the expired timer come due in the
    same iteration, and the chunk must win (otherwise a busy loop looks like a silent model).
    """

    __slots__ = ("armed_at", "deadline", "expiring", "expiry", "fired", "loop", "serial", "task", "timer")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.task: asyncio.Task[Any] | None = None  # the task of the pull running
        self.serial = 0  # counts the pulls
        self.deadline = 0.0  # when the limit of the pull running passes (loop time)
        self.timer: asyncio.TimerHandle | None = None
        self.armed_at = 0.0  # when the timer fires
        self.expiry: asyncio.Handle | None = None
        self.expiring = 0  # the pull whose limit passed
        self.fired = False

    async def pull(self, deltas: AsyncIterator[Delta], silence: Silence | None) -> Delta:
        """The next delta (``StopAsyncIteration`` at the end), or :class:`_Silent` after ``silence``."""
        if silence is None:
            return await anext(deltas)
        self.serial += 1
        deadline = self.deadline = self.loop.time() + silence.seconds
        if self.timer is None or self.armed_at > deadline:
            self._arm(deadline)
        task = self.task = asyncio.current_task(self.loop)
        assert task is not None
        try:
            return await anext(deltas)
        except asyncio.CancelledError:
            if self.fired and task.uncancel() == 0:
                raise _Silent from None
            raise
        finally:
            self.task = None
            self.fired = False

    def _arm(self, when: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        self.armed_at = when
        self.timer = self.loop.call_at(when, self._due)

    def _due(self) -> None:
        self.timer = None
        if self.task is None:  # between pulls: the next one arms the timer
            return
        if self.deadline > self.armed_at:  # the pull running started after the timer was armed
            self._arm(self.deadline)
            return
        self.expiring = self.serial
        self.expiry = self.loop.call_soon(self._expire)

    def _expire(self) -> None:
        self.expiry = None
        task = self.task
        if task is not None and self.serial == self.expiring:  # still the pull whose limit passed
            self.fired = True
            task.cancel()

    def close(self) -> None:
        for handle in (self.timer, self.expiry):
            if handle is not None:
                handle.cancel()
        self.timer = self.expiry = None


async def _aclose(iterator: AsyncIterator[Delta]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


async def run_events(
    spec: RunSpec,
    task: str,
    now: Callable[[], float],
    run_id: str | None = None,
    record: list[TokenEvent] | None = None,
) -> AsyncGenerator[TokenEvent, None]:
    """The events of one run, on the running asyncio loop. Each is appended to ``record`` (if given) as it is
    made, before it is yielded.

    On failure the ``error`` event is yielded, then the :class:`~rxagents.errors.RxAgentsError` raised.
    Closing the generator early closes the backend's iterator (and so its HTTP stream). Timeouts and
    retries follow ``spec`` through its :class:`~rxagents._core.machine.RunMachine`; waits run on the loop.
    """
    machine = spec.machine(run_id, record)
    step = machine.begin(now())
    prepared = False
    deltas: AsyncIterator[Delta] | None = None  # the open request
    watchdog = _Watchdog(asyncio.get_running_loop())
    pull = watchdog.pull
    try:
        while True:
            for event in step.events:
                yield event
            command = step.command
            if isinstance(command, Open):
                if not prepared:
                    prepared = True
                    prepare = getattr(spec.backend, "aprepare", None)
                    if prepare is not None:  # e.g. litellm's slow first import, off the loop, before any timeout
                        try:
                            await prepare()
                        except Exception as exc:
                            step = machine.abort(exc, now())
                            continue
                try:
                    deltas = spec.backend.stream(spec.request(task, command.answers))
                except Exception as exc:
                    step = machine.failed(exc, now())
                    continue
            elif not isinstance(command, Pull):
                if isinstance(command, Complete):
                    return
                if isinstance(command, Fail):
                    raise command.error
                _log_retry(spec, command)
                await asyncio.sleep(command.seconds)
                step = machine.resume(now())
                continue
            assert deltas is not None
            try:
                delta = await pull(deltas, command.silence)
            except StopAsyncIteration:
                failure: Exception | None = None
            except Exception as exc:  # _Silent included
                failure = exc
            else:
                step = machine.delta(delta, now())
                if not isinstance(step.command, Pull):  # the machine refused the delta: the request failed
                    closing, deltas = deltas, None
                    try:
                        await _aclose(closing)
                    except Exception:
                        log.debug("closing the model stream of a failed request raised", exc_info=True)
                continue
            closing, deltas = deltas, None
            step = await _request_over(machine, closing, failure, now)
    finally:
        watchdog.close()
        if deltas is not None:  # the consumer closed the generator, or the task was cancelled, mid-request
            await _aclose(deltas)


async def _request_over(
    machine: RunMachine, deltas: AsyncIterator[Delta], failure: Exception | None, now: Callable[[], float]
) -> Step:
    """A request ended (``failure`` None), failed or went silent: close it, so its connection is released
    before any wait, then tell the machine."""
    try:
        await _aclose(deltas)
    except Exception as exc:
        failure = failure or exc
    if failure is None:
        return machine.end(now())
    if isinstance(failure, _Silent):
        return machine.silent(now())
    return machine.failed(failure, now())


def play_virtual(
    spec: RunSpec,
    task: str,
    observer: abc.ObserverBase[TokenEvent],
    scheduler: abc.SchedulerBase,
    run_id: str | None = None,
    record: list[TokenEvent] | None = None,
) -> abc.DisposableBase:
    """Play a scripted backend's run on ``scheduler`` (virtual time included), with the same rules as
    :func:`run_events`: a request's steps come at their delays, a step later than the silence limit
    (or a stall) fails the request when the limit passes, and waits are scheduled."""
    backend = spec.backend
    if not isinstance(backend, Scripted):
        raise ConfigurationError(
            f"scheduler={type(scheduler).__name__} (virtual time) needs a scripted backend such as "
            f"OfflineModel; model {spec.model!r} streams over the network. Use an asyncio scheduler."
        )
    script = backend.script
    machine = spec.machine(run_id, record)
    pending = SerialDisposable()
    steps: Iterator[ScriptStep] = iter(())
    stopped = False

    def now() -> float:
        return _runtime.clock(scheduler)

    def later(delay: float, action: Callable[[], None]) -> None:
        def act(_: abc.SchedulerBase, __: Any = None) -> None:
            if not stopped:
                action()

        pending.disposable = scheduler.schedule_relative(delay, act)

    def execute(step: Step) -> None:
        nonlocal stopped, steps
        for event in step.events:
            if stopped:  # disposed from inside on_next
                return
            observer.on_next(event)
        command = step.command
        if stopped:
            return
        if isinstance(command, Complete | Fail):
            stopped = True
            if isinstance(command, Fail):
                observer.on_error(command.error)
            else:
                observer.on_completed()
        elif isinstance(command, Wait):
            _log_retry(spec, command)
            later(command.seconds, lambda: execute(machine.resume(now())))
        else:
            if isinstance(command, Open):
                steps = iter(script(spec.request(task, command.answers)))
            pull(command.silence)

    def pull(silence: Silence | None) -> None:
        step = next(steps, None)
        if step is None:
            execute(machine.end(now()))
            return
        delay, payload = step
        if silence is not None and (payload is STALL or delay > silence.seconds):
            later(silence.seconds, lambda: execute(machine.silent(now())))
        elif isinstance(payload, BaseException):
            failure = payload
            later(delay, lambda: execute(machine.failed(failure, now())))
        elif isinstance(payload, Delta):
            delta = payload
            later(delay, lambda: execute(machine.delta(delta, now())))
        # a stall without a silence limit: the run waits until it is disposed

    def begin(_: abc.SchedulerBase, __: Any = None) -> None:
        execute(machine.begin(now()))

    pending.disposable = scheduler.schedule(begin)

    def dispose() -> None:
        nonlocal stopped
        stopped = True
        pending.dispose()

    return Disposable(dispose)


def run_observable(
    spec: RunSpec,
    task: str,
    scheduler: abc.SchedulerBase | None = None,
    run_id: str | None = None,
    *,
    record: list[TokenEvent] | None = None,
) -> reactivex.Observable[TokenEvent]:
    """A cold Observable: each subscription is a new run; disposing it cancels the run. Its events carry
    ``run_id`` (default: a new :func:`~rxagents.events.new_run_id` per subscription).

    ``record``: an empty list the run appends each event to as it is made, before it is delivered (for a
    consumer that reads the events there instead of keeping a second list, see
    :class:`~rxagents._dispatch.Dispatcher`); every subscription appends to it, so subscribe once.

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
            return play_virtual(spec, task, observer, chosen, run_id, record=record)
        loop = _runtime.loop_of(chosen)
        gate = chosen.gate if isinstance(chosen, _runtime.GatedScheduler) else None

        def events() -> AsyncIterator[TokenEvent]:
            return run_events(spec, task, _runtime.loop_clock(loop), run_id, record=record)

        # observer is create()'s already: no second wrapper. With a gate, the run waits at its yield for the
        # consumer's room, so its silence limits do not run meanwhile: a slow consumer is never a silent model.
        return iterate(events, observer, loop, gate)

    return reactivex.create(subscribe)
