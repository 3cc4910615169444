"""The swarms-style run driver shared by ``Agent.run``/``arun``, the workflows' ``run``/``arun`` and the CLI.

Every call goes through the same four steps; only what is printed, and what is returned, differ:

1. **check** the call: the task (:func:`~rxagents._validate.check_task`), each callback (:func:`check_callback`:
   ``run`` cannot await an ``async def`` one), and swarms' ``run`` parameters
   (:func:`~rxagents._swarms.check_run_arguments`);
2. **route** the events: an :class:`Output` turns one agent's settings (its callback, detailed dicts, verbose
   logging, and the console printer its owner injects) into handlers; a workflow adds one per agent as routes
   (:class:`Delivery`);
3. **dispatch** (:meth:`Delivery.run`, :meth:`Delivery.arun`): ``run`` executes the stream on the rxagents runtime
   loop and calls the handlers on the thread that called it; ``arun`` executes it on the running loop and calls
   them on the loop's thread, awaiting what they return (see :mod:`rxagents._dispatch`);
4. **outcome**: :func:`answer` (an agent's final text) or :func:`delivered` (a workflow's events); a failure is
   raised as a :class:`~rxagents.errors.RunError` carrying the partial text and the events delivered.

This module prints nothing and imports no sink: the Agent, a workflow or the CLI injects its printer as the
:attr:`Output.printer` handler.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from reactivex import Observable, abc

from rxagents import _runtime
from rxagents._core.partial import answer_of
from rxagents._dispatch import Dispatcher, Handler
from rxagents.errors import ConfigurationError, RunError, RxAgentsError, partial_text_of
from rxagents.events import EventKind, TokenEvent

__all__ = ["Delivery", "Output", "Source", "StreamingCallback", "answer", "check_callback", "delivered"]

log = logging.getLogger("rxagents")

#: A callback gets each text delta as ``str`` — or, in detailed mode (``stream=True``), each event's dict.
StreamingCallback = Callable[[Any], Any]

#: The stream of one call, built on the scheduler the driver chooses (the runtime loop's, or the running loop's).
Source = Callable[[abc.SchedulerBase], Observable[TokenEvent]]


# --- 1. check ------------------------------------------------------------------------------------------------------
def check_callback(name: str, fn: object, *, awaiting: bool = True, owner: str = "agent") -> None:
    """``fn`` is None or callable; for ``run`` (``awaiting=False``) not an ``async def`` function, which only
    ``arun`` can await. ``owner`` names what the fix awaits: ``await agent.arun(...)``, ``await workflow.arun(...)``.
    """
    if fn is None:
        return
    if not callable(fn):
        raise ConfigurationError(f"{name} must be callable (a function taking one argument) or None, got {fn!r}")
    if not awaiting and inspect.iscoroutinefunction(fn):
        raise ConfigurationError(
            f"{name} {fn!r} is an async function, which run() cannot await (it calls callbacks on the thread "
            f"that called it); use `await {owner}.arun(task, streaming_callback=...)`"
        )


# --- 2. route ------------------------------------------------------------------------------------------------------
def _log_event(event: TokenEvent) -> None:
    log.debug("%r", event)


def _text_handler(callback: StreamingCallback) -> Handler:
    token = EventKind.TOKEN  # read once: a member read from its enum class costs a metaclass lookup per event

    def handler(event: TokenEvent) -> Any:
        return callback(event.text) if event.kind is token else None  # arun awaits what it returns

    return handler


def _dict_handler(callback: StreamingCallback) -> Handler:
    def handler(event: TokenEvent) -> Any:
        return callback(event.to_dict())

    return handler


@dataclass(frozen=True, slots=True)
class Output:
    """Where one agent's events go, in this order: the verbose log (DEBUG on the ``rxagents`` logger), then the
    callback (each text delta, or each event's dict when ``detailed``), else the ``printer`` (a handler of events
    that its owner made: the Agent's console printer, a workflow's per-agent block, the CLI's)."""

    callback: StreamingCallback | None = None
    detailed: bool = False
    verbose: bool = False
    printer: Handler | None = None

    def handlers(self, *, awaiting: bool, name: str = "streaming_callback", owner: str = "agent") -> list[Handler]:
        """The handlers, after checking the callback (``name`` and ``owner`` as for :func:`check_callback`)."""
        handlers: list[Handler] = [_log_event] if self.verbose else []
        if self.callback is not None:
            check_callback(name, self.callback, awaiting=awaiting, owner=owner)
            handlers.append(_dict_handler(self.callback) if self.detailed else _text_handler(self.callback))
        elif self.printer is not None:
            handlers.append(self.printer)
        return handlers


# --- 3. dispatch ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Delivery:
    """Who gets the events of one ``run``/``arun`` call: ``handlers`` every event, ``routes`` (agent name ->
    handlers) that agent's events only, after ``handlers``. ``owner`` (the agent's or workflow's name) is named in
    the messages; ``on_callback_error`` is ``"log"`` or ``"raise"``. ``record``: the list the source appends each
    event to before passing it on, if it keeps one (see :class:`~rxagents._dispatch.Dispatcher`): the events are
    then kept there only."""

    owner: str
    handlers: Sequence[Handler] = ()
    routes: Mapping[str, Sequence[Handler]] = field(default_factory=dict)
    on_callback_error: str = "log"
    record: list[TokenEvent] | None = None

    def _dispatcher(self) -> Dispatcher:
        return Dispatcher(
            self.handlers,
            agent=self.owner,
            on_callback_error=self.on_callback_error,
            routes=self.routes,
            record=self.record,
        )

    def run(self, source: Source) -> Dispatcher:
        """Execute ``source`` on the rxagents runtime loop and call the handlers on *this* thread until it ends.

        Works from inside a running event loop too (Jupyter): that loop is not used. Ctrl-C cancels the run and
        closes its HTTP streams. Returns the dispatcher either way: :func:`answer`/:func:`delivered` tell the outcome.
        """
        dispatcher = self._dispatcher()
        dispatcher.consume(source(_runtime.loop_scheduler(_runtime.runtime_loop())))
        return dispatcher

    async def arun(self, source: Source) -> Dispatcher:
        """Execute ``source`` on the running loop and call the handlers in this task, on the loop's thread, awaiting
        what they return (no executor thread is held). Cancelling the awaiting task cancels the runs."""
        dispatcher = self._dispatcher()
        await dispatcher.aconsume(source)
        return dispatcher


# --- 4. outcome ----------------------------------------------------------------------------------------------------
def _raise_failure(dispatcher: Dispatcher, what: str) -> None:
    """Raise the call's failure, if any, as a RunError saying ``what`` failed, with the partial text and the events
    delivered; a RunError already (a fatal callback error, a WorkflowError) is raised as it is."""
    error = dispatcher.error
    if error is None:
        return
    if isinstance(error, RunError):
        raise error
    events = dispatcher.events
    partial = partial_text_of(events)
    if isinstance(error, RxAgentsError) and error.partial_text:
        partial = error.partial_text
    raise RunError(f"{what}: {type(error).__name__}: {error}", partial_text=partial, events=events) from error


def answer(dispatcher: Dispatcher) -> str:
    """An agent's final answer: the text of its last loop (after its last ``retry`` event, which starts the run
    over). Raises :class:`~rxagents.errors.RunError` if the run failed."""
    _raise_failure(dispatcher, f"agent {dispatcher.agent!r} run failed")
    return answer_of(dispatcher.events)


def delivered(dispatcher: Dispatcher) -> list[TokenEvent]:
    """The events a workflow delivered, in order. Raises its :class:`~rxagents.workflows.WorkflowError`, or a
    :class:`~rxagents.errors.RunError`, if it failed."""
    _raise_failure(dispatcher, f"workflow {dispatcher.agent!r} failed")
    return dispatcher.events
