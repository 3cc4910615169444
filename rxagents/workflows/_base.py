"""What every workflow shares: argument checks, the hand-off prompt, output routing and the run drivers.

A workflow is defined by one method, ``stream(task, *, scheduler=None)``: a cold Observable of the events of
all its agents' runs. :class:`Workflow` builds the swarms-style ``run``/``arun`` on it with the run driver
``Agent.run`` uses (:mod:`rxagents._drive`): the runs execute on an event loop (the rxagents runtime loop for
``run``, the caller's loop for ``arun``), and the callbacks are called on the thread that called ``run``, or
on the loop's thread for ``arun`` (awaiting ``async def`` callbacks). What the workflow adds: the per-agent
routes (each agent's own callback or console output) and the result.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Literal, Protocol

import reactivex
from reactivex import abc
from reactivex import operators as ops

from rxagents import _drive
from rxagents._dispatch import Dispatcher, Handler
from rxagents._drive import StreamingCallback, check_callback
from rxagents._swarms import WORKFLOW_OPTIONS, WORKFLOW_RUN, check_run_arguments
from rxagents._validate import (
    MAX_LOOPS,
    check_bool,
    check_choice,
    check_int,
    check_keywords,
    check_str,
    check_task,
    fail,
)
from rxagents.agent import Agent
from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, TokenEvent
from rxagents.sinks import ConsolePrinter
from rxagents.workflows._results import WorkflowResult

__all__ = ["HANDOFF_TEMPLATE", "Streamable", "Workflow", "handoff_prompt"]

#: How one agent's answer is handed to the next agent, appended to the original task (see :func:`handoff_prompt`).
HANDOFF_TEMPLATE = "Previous agent ({agent}) output:\n{text}"

class Streamable(Protocol):
    """Anything with a cold ``stream(task, *, scheduler=None)``: an :class:`~rxagents.Agent` or a workflow."""

    def stream(
        self, task: str, *, scheduler: abc.SchedulerBase | None = None
    ) -> reactivex.Observable[TokenEvent]: ...


def handoff_prompt(task: str, outputs: Sequence[tuple[str, str]]) -> str:
    """The prompt an agent receives after others answered: the original task, then each answer.

    Shape (one block per ``(agent, text)``, separated by a blank line)::

        <original task>

        Previous agent (Researcher) output:
        <the Researcher's answer>

    Example::

        >>> print(handoff_prompt("Write a post", [("Researcher", "Solar is cheap.")]))
        Write a post
        <BLANKLINE>
        Previous agent (Researcher) output:
        Solar is cheap.
    """
    blocks = [task] + [HANDOFF_TEMPLATE.format(agent=agent, text=text) for agent, text in outputs]
    return "\n\n".join(blocks)


def _check_agents(owner: str, agents: object, *, unique: bool) -> tuple[Agent, ...]:
    if isinstance(agents, Agent | str) or not isinstance(agents, Sequence) or not agents:
        fail("agents", f"a non-empty list of Agent for {owner}", agents)
    bad = [a for a in agents if not isinstance(a, Agent)]
    if bad:
        fail("agents", f"a list of Agent instances only for {owner}", bad[0])
    names = [a.agent_name for a in agents]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if unique and duplicates:
        raise ConfigurationError(
            f"{owner}: agent names must be unique (events and results are keyed by name), got duplicate "
            f"{duplicates}; give each Agent a distinct agent_name"
        )
    return tuple(agents)


# --- where each agent's events go when no workflow-level callback is given ---------------------------------
class _LivePrinter:
    """The agent's console output as ``Agent.run`` prints it: header at start, text as it arrives. Runs after
    the first one printed (by any agent sharing ``printed``) are set off by a blank line."""

    def __init__(self, agent: Agent, printed: list[bool]) -> None:
        self.agent = agent
        self.printed = printed
        self.printer = ConsolePrinter(agent.agent_name, agent.max_loops)

    def __call__(self, event: TokenEvent) -> None:
        if event.kind is EventKind.START:
            self.printer = ConsolePrinter(self.agent.agent_name, self.agent.max_loops)
            if self.printed:
                self.printer.file.write("\n")
            self.printed[:] = [True]
        self.printer(event)


class _BlockPrinter:
    """The agent's console output printed in one block when its run ends, so that concurrent agents'
    outputs never interleave on the console."""

    def __init__(self, agent: Agent, printed: list[bool]) -> None:
        self.agent = agent
        self.printed = printed
        self.held: list[TokenEvent] = []

    def __call__(self, event: TokenEvent) -> None:
        if event.kind is EventKind.START:
            self.held = []
        self.held.append(event)
        if event.is_terminal:
            printer = ConsolePrinter(self.agent.agent_name, self.agent.max_loops)
            held, self.held = self.held, []
            if self.printed:
                printer.file.write("\n")
            self.printed[:] = [True]
            for item in held:
                printer(item)
            printer.file.flush()


class Workflow:
    """Base of :class:`ConcurrentWorkflow` and :class:`SequentialWorkflow`: configuration and run drivers.

    Subclasses define :meth:`stream`. ``run_result``/``arun_result`` drive it and return a
    :class:`WorkflowResult`, or raise :class:`WorkflowError`.
    """

    #: Print agents' output live (sequential: one agent at a time) or in one block per run (concurrent).
    _live_output = True
    #: Whether agent names must be unique (runs at the same time are told apart by name).
    _unique_names = True

    def __init__(
        self,
        *,
        name: str,
        agents: Sequence[Agent],
        max_loops: int,
        streaming_callback: StreamingCallback | None,
        stream: bool,
        show_dashboard: bool,
        on_callback_error: Literal["log", "raise"],
        swarms_options: dict[str, Any],
    ) -> None:
        kind = type(self).__name__
        check_keywords(kind, swarms_options, WORKFLOW_OPTIONS, inspect.signature(type(self)).parameters)
        self.name = check_str("name", name)
        self.agents = _check_agents(f"{kind}({name!r})", agents, unique=self._unique_names)
        self.max_loops = check_int("max_loops", max_loops, maximum=MAX_LOOPS)
        check_callback("streaming_callback", streaming_callback)
        check_choice("on_callback_error", on_callback_error, ("log", "raise"))
        self.streaming_callback = streaming_callback
        self.stream_detailed = check_bool("stream", stream)
        self.show_dashboard = check_bool("show_dashboard", show_dashboard)
        self.on_callback_error = on_callback_error
        self.description: str | None = swarms_options.get("description")

    @property
    def agent_names(self) -> list[str]:
        """The agents' names, in the workflow's order (each name once)."""
        return list(dict.fromkeys(agent.agent_name for agent in self.agents))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, agents={self.agent_names!r}, max_loops={self.max_loops})"

    def stream(self, task: str, *, scheduler: abc.SchedulerBase | None = None) -> reactivex.Observable[TokenEvent]:
        raise NotImplementedError

    def _recorded(
        self, task: str, scheduler: abc.SchedulerBase | None, record: list[TokenEvent] | None
    ) -> reactivex.Observable[TokenEvent]:
        """:meth:`stream` of ``task`` (already checked), appending each event to ``record`` before passing it on,
        so that ``run``'s driver keeps the events in that one list. A subclass whose stream keeps its events
        anyway (for its ``WorkflowError``) records them there; this default taps :meth:`stream`."""
        observable = self.stream(task, scheduler=scheduler)
        return observable if record is None else observable.pipe(ops.do_action(record.append))

    async def astream(self, task: str) -> AsyncIterator[TokenEvent]:
        """``async for event in workflow.astream(task)``: the workflow's events on the current loop.

        Leaving the loop early (``break``) or cancelling the task cancels every agent's run and closes its
        HTTP stream. A failed workflow raises :class:`WorkflowError` after the events that arrived.
        """
        from rxagents.operators._bridge import to_async_iter

        async with to_async_iter(self.stream(check_task(task))) as events:
            async for event in events:
                yield event

    # the swarms-style drivers -------------------------------------------------------------------------------
    def _printer(self, agent: Agent, printed: list[bool]) -> Handler | None:
        """The agent's console output in a run without a workflow-level callback (``printed`` is shared by the
        agents of one run, so that their outputs are set off by a blank line)."""
        if self.show_dashboard or not agent.print_on:
            return None
        live = self._live_output and agent.streaming_on
        return _LivePrinter(agent, printed) if live else _BlockPrinter(agent, printed)

    def _delivery(
        self, streaming_callback: StreamingCallback | None, *, awaiting: bool, record: list[TokenEvent]
    ) -> _drive.Delivery:
        """The workflow's callback gets every event; each agent's route does what ``Agent.run`` would do with its
        events (verbose log, then its own callback or console output), minus the callback and the printing when
        the workflow has a callback."""
        callback = streaming_callback or self.streaming_callback
        handlers = _drive.Output(callback, detailed=self.stream_detailed).handlers(awaiting=awaiting, owner="workflow")
        printed: list[bool] = []
        routes: dict[str, list[Handler]] = {}
        for agent in self.agents:
            if callback is None:  # the agent's own callback, else its printer
                printer = self._printer(agent, printed)
                output = _drive.Output(agent.streaming_callback, agent.stream_detailed, agent.verbose, printer)
            else:
                output = _drive.Output(verbose=agent.verbose)
            name = f"agent {agent.agent_name!r} streaming_callback"
            routes[agent.agent_name] = output.handlers(awaiting=awaiting, name=name, owner="workflow")
        return _drive.Delivery(self.name, handlers, routes, self.on_callback_error, record)

    def _source(self, task: str, record: list[TokenEvent]) -> _drive.Source:
        def source(scheduler: abc.SchedulerBase) -> reactivex.Observable[TokenEvent]:
            observable = self._recorded(task, scheduler, record)
            if not self.show_dashboard:
                return observable
            from rxagents.sinks._dashboard import dashboard  # imported here: rich loads only when one is shown

            return observable.pipe(dashboard(self.name, self.agent_names, scheduler=scheduler))

        return source

    def _call(
        self,
        method: str,
        task: str,
        callback: StreamingCallback | None,
        args: Sequence[object],
        kwargs: Mapping[str, object],
        *,
        awaiting: bool,
    ) -> tuple[_drive.Delivery, _drive.Source]:
        """The checks of a ``run``/``arun`` call (``method`` named in their messages), then its delivery and source,
        sharing the list the stream keeps its events in."""
        task = check_task(task)
        check_run_arguments(f"{type(self).__name__}.{method}", args, kwargs, WORKFLOW_RUN)
        record: list[TokenEvent] = []
        return self._delivery(callback, awaiting=awaiting, record=record), self._source(task, record)

    def _result(self, dispatcher: Dispatcher) -> WorkflowResult:
        return WorkflowResult.from_events(self.name, self.agent_names, _drive.delivered(dispatcher))

    def run_result(
        self, task: str, streaming_callback: StreamingCallback | None = None, *args: Any, **kwargs: Any
    ) -> WorkflowResult:
        """Run the workflow and return every agent's output as a :class:`WorkflowResult`.

        The runs execute on the rxagents runtime loop; ``streaming_callback`` (or the workflow's) is called
        on **the thread that called this method**: with each text delta (``str``), or with each event's
        detailed dict when the workflow has ``stream=True`` (the dict's ``"agent"`` key names the agent).
        Without a workflow-level callback each agent's own ``streaming_callback`` gets its own events, and
        agents with ``print_on=True`` print as ``Agent.run`` would. Works from inside a running event loop
        (Jupyter). Ctrl-C cancels every run and closes its connection. ``async def`` callbacks (the
        workflow's or an agent's) need :meth:`arun_result`/``arun``: here they raise ``ConfigurationError``.

        swarms' ``img=None`` and ``imgs=None`` are accepted unused, so that code written for swarms runs; an
        image (rxagents sends text only), any other keyword and a third positional argument raise
        ``ConfigurationError`` naming it, before anything runs. The same holds for ``run``/``arun``/``arun_result``.

        Raises:
            WorkflowError: an agent failed; ``.result`` holds the finished answers and partial text.
            RunError: a callback raised with ``on_callback_error="raise"``.
        """
        delivery, source = self._call("run_result", task, streaming_callback, args, kwargs, awaiting=False)
        return self._result(delivery.run(source))

    async def arun_result(
        self, task: str, streaming_callback: StreamingCallback | None = None, *args: Any, **kwargs: Any
    ) -> WorkflowResult:
        """``await workflow.arun_result(task)``: as :meth:`run_result`, with the runs and the callbacks on the
        current loop.

        Callbacks are called **on the loop's thread**, in event order, as every asyncio callback is; an
        ``async def`` callback (or any awaitable a callback returns) is awaited before the next event's calls.
        The agents' socket readers are separate tasks with a bounded buffer between them and the callbacks
        (``rxagents._dispatch.CALLBACK_BUFFER`` events): when it is full the readers wait, so nothing is lost.
        A slow *sync* callback holds up the loop, as in any asyncio code. No executor thread is used: any
        number of ``arun`` calls can be gathered. Cancelling the awaiting task cancels every run.
        """
        delivery, source = self._call("arun_result", task, streaming_callback, args, kwargs, awaiting=True)
        return self._result(await delivery.arun(source))
