"""One agent run: from backend deltas to a well-formed sequence of TokenEvents.

:class:`RunBuilder` is the single place that stamps events (seq, loop, time) and enforces the run
grammar. Two drivers feed it:

* :func:`run_events` — an async generator on the current asyncio loop (any backend);
* :func:`play_virtual` — a scripted backend (the offline model) played on any reactivex
  scheduler, so runs can be tested in virtual time with ``TestScheduler``.

:func:`run_observable` turns a run into a cold ``Observable[TokenEvent]``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import reactivex
from reactivex import abc
from reactivex.disposable import Disposable, SerialDisposable
from reactivex.scheduler import VirtualTimeScheduler
from reactivex.scheduler.eventloop import AsyncIOScheduler, AsyncIOThreadSafeScheduler

from rxagents import _runtime
from rxagents.errors import ConfigurationError, ModelError, RxAgentsError, partial_text_of
from rxagents.events import EventKind, TokenEvent, Usage
from rxagents.models import STALL, Delta, ModelBackend, ModelRequest, Step

__all__ = ["RunBuilder", "RunSpec", "play_virtual", "run_events", "run_observable"]

log = logging.getLogger("rxagents")
_run_ids = itertools.count(1)

#: The user turn added before each loop after the first (the documented multi-loop prompt shape).
CONTINUE_PROMPT = "Continue (loop {loop} of {max_loops}): review your previous answer, then refine and extend it."


class _Scripted(Protocol):
    def script(self, request: ModelRequest) -> list[Step]: ...


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


async def _aclose(iterator: AsyncIterator[Delta]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


async def run_events(
    spec: RunSpec, task: str, now: Callable[[], float], run_id: str | None = None
) -> AsyncGenerator[TokenEvent, None]:
    """The events of one run, on the running asyncio loop.

    On failure the ``error`` event is yielded, then the :class:`RxAgentsError` raised. Closing the
    generator early closes the backend's iterator (and so its HTTP stream).
    """
    builder = RunBuilder(spec, now, run_id)
    yield builder.start()
    try:
        for loop in range(1, spec.max_loops + 1):
            builder.begin_loop(loop)
            deltas = spec.backend.stream(spec.request(task, builder.answers))
            try:
                async for delta in deltas:
                    event = builder.delta(delta)
                    if event is not None:
                        yield event
            finally:
                await _aclose(deltas)
            builder.end_loop()
    except Exception as exc:
        event, error = builder.fail(exc)
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
    """Play a scripted backend's run on ``scheduler`` (virtual time included)."""
    backend: Any = spec.backend
    builder = RunBuilder(spec, lambda: _runtime.clock(scheduler), run_id)
    pending = SerialDisposable()
    state: dict[str, Any] = {"steps": iter(()), "loop": 0, "stopped": False}

    def fail(exc: BaseException) -> None:
        event, error = builder.fail(exc)
        state["stopped"] = True
        observer.on_next(event)
        observer.on_error(error)

    def next_loop() -> bool:
        if state["loop"]:
            builder.end_loop()
        if state["loop"] == spec.max_loops:
            return False
        state["loop"] += 1
        builder.begin_loop(state["loop"])
        script: _Scripted = backend
        state["steps"] = iter(script.script(spec.request(task, builder.answers)))
        return True

    def advance() -> None:
        if state["stopped"]:
            return
        step = next(state["steps"], None)
        while step is None:
            try:
                more = next_loop()
            except RxAgentsError as exc:
                fail(exc)
                return
            if not more:
                for event in builder.end():
                    observer.on_next(event)
                state["stopped"] = True
                observer.on_completed()
                return
            step = next(state["steps"], None)
        delay, payload = step

        def act(_: abc.SchedulerBase, __: Any = None) -> None:
            if state["stopped"]:
                return
            if payload is STALL:
                return
            if isinstance(payload, BaseException):
                fail(payload)
                return
            assert isinstance(payload, Delta)
            event = builder.delta(payload)
            if event is not None:
                observer.on_next(event)
            advance()

        pending.disposable = scheduler.schedule_relative(delay, act)

    def begin(_: abc.SchedulerBase, __: Any = None) -> None:
        observer.on_next(builder.start())
        advance()

    pending.disposable = scheduler.schedule(begin)

    def dispose() -> None:
        state["stopped"] = True
        pending.dispose()

    return Disposable(dispose)


def _loop_of(scheduler: abc.SchedulerBase | None) -> asyncio.AbstractEventLoop:
    if isinstance(scheduler, AsyncIOScheduler | AsyncIOThreadSafeScheduler):
        loop: asyncio.AbstractEventLoop = scheduler._loop
        return loop
    return _runtime.run_loop()


def run_observable(
    spec: RunSpec, task: str, scheduler: abc.SchedulerBase | None = None
) -> reactivex.Observable[TokenEvent]:
    """A cold Observable: each subscription is a new run; disposing it cancels the run.

    With an asyncio scheduler (or none) the run executes on that loop (or the current/runtime
    loop, see :mod:`rxagents._runtime`). With a virtual-time scheduler the backend must be
    scripted (the offline model) and the run is played on the scheduler.
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
        loop = _loop_of(chosen)
        sched = _runtime.loop_scheduler(loop)
        disposed = False

        async def pump() -> None:
            events = run_events(spec, task, lambda: _runtime.clock(sched))
            try:
                async for event in events:
                    if disposed:
                        return
                    observer.on_next(event)
            except RxAgentsError as error:
                if not disposed:
                    observer.on_error(error)
            except Exception as error:  # raised by a downstream observer: end the run, report it
                log.error("observer of run raised; run stopped", exc_info=error)
                if not disposed:
                    observer.on_error(error)
            else:
                if not disposed:
                    observer.on_completed()
            finally:
                await events.aclose()

        if _runtime.running_loop() is loop:
            task_ = loop.create_task(pump())

            def cancel() -> None:
                nonlocal disposed
                disposed = True
                task_.cancel()

            return Disposable(cancel)
        future: concurrent.futures.Future[None] = asyncio.run_coroutine_threadsafe(pump(), loop)

        def cancel_threadsafe() -> None:
            nonlocal disposed
            disposed = True
            future.cancel()

        return Disposable(cancel_threadsafe)

    return reactivex.create(subscribe)
