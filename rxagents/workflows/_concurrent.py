"""ConcurrentWorkflow: every agent answers the same task at once; their streams are merged."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import reactivex
from reactivex import abc
from reactivex import operators as ops
from reactivex.scheduler import CurrentThreadScheduler

from rxagents._core.partial import AnswerText
from rxagents._validate import check_bool, check_int, check_task
from rxagents.agent import Agent, StreamingCallback
from rxagents.events import TokenEvent
from rxagents.workflows._base import Workflow, handoff_prompt
from rxagents.workflows._results import WorkflowError, WorkflowResult

__all__ = ["ConcurrentWorkflow"]


class _Subscription:
    """Per-subscription state of one concurrent stream: everything seen, each agent's latest answer."""

    def __init__(self, seen: list[TokenEvent]) -> None:
        self.seen = seen
        self.answers: dict[str, str] = {}
        self.failed = False


class ConcurrentWorkflow(Workflow):
    """Runs all agents on the same task at the same time; ``stream(task)`` is the merge of their runs.

    .. code-block:: text

        agent A:   sA--a1----a2--fA|
        agent B:   sB----b1----b2----fB|
        stream():  sA-sB-a1-b1-a2-fA-b2-fB|     every event carries .agent; each agent's order kept

        agent B:   sB--b1--eB#                  (B fails; fail_fast=False: A goes on)
        stream():  sA-sB-a1-b1-eB-a2-fA-#       ends with WorkflowError once every agent is done

    Args:
        name: the workflow's name (dashboard title, report header).
        agents: the agents; their ``agent_name`` values must be unique.
        max_loops: rounds. Round 1 gives every agent the task; each later round gives every agent the
            task followed by all agents' answers of the previous round (see :func:`handoff_prompt`).
            An agent's own ``max_loops`` still applies inside each round.
        show_dashboard: ``run``/``arun`` show a live dashboard with one lane per agent
            (:func:`rxagents.sinks.dashboard`). ``stream`` never draws; pipe it yourself.
        max_concurrency: at most this many agents run at once (the rest wait their turn); ``None``: all.
        fail_fast: the first agent failure cancels the other runs (their HTTP streams are closed). By
            default a failure is reported (with its partial text) and the other agents finish.
        streaming_callback: called by ``run``/``arun`` with each text delta (``str``) of every agent; with
            ``stream=True``, with each event's detailed dict (its ``"agent"`` key names the agent).
        stream: detailed mode for ``streaming_callback`` (as for ``Agent``).
        on_callback_error: ``"log"`` (default) or ``"raise"``, as for ``Agent``.

    Example::

        workflow = ConcurrentWorkflow(name="analysis", agents=[researcher, analyst], show_dashboard=True)
        result = workflow.run("Analyze TSLA")
        print(result)                   # a report: one section per agent
        result["Researcher"]            # that agent's answer
    """

    _live_output = False

    def __init__(
        self,
        name: str = "ConcurrentWorkflow",
        agents: Sequence[Agent] = (),
        max_loops: int = 1,
        show_dashboard: bool = False,
        *,
        max_concurrency: int | None = None,
        fail_fast: bool = False,
        streaming_callback: StreamingCallback | None = None,
        stream: bool = False,
        on_callback_error: Literal["log", "raise"] = "log",
        **swarms_options: Any,
    ) -> None:
        super().__init__(
            name=name,
            agents=agents,
            max_loops=max_loops,
            streaming_callback=streaming_callback,
            stream=stream,
            show_dashboard=show_dashboard,
            on_callback_error=on_callback_error,
            swarms_options=swarms_options,
        )
        self.max_concurrency = check_int("max_concurrency", max_concurrency, none="to run every agent at once")
        self.fail_fast = check_bool("fail_fast", fail_fast)

    def stream(self, task: str, *, scheduler: abc.SchedulerBase | None = None) -> reactivex.Observable[TokenEvent]:
        """All agents' runs on ``task``, merged: a cold ``Observable[TokenEvent]``.

        Each subscription starts every agent's run (at most ``max_concurrency`` at once). Events of one
        run keep their order (``seq`` 0, 1, 2, ... per ``run_id``) and nothing is dropped; runs interleave
        as their tokens arrive. An agent's failure shows as its ``error`` event; when every run has ended,
        the stream ends with ``on_error(WorkflowError)`` (at once with ``fail_fast``, cancelling the
        others). Disposing the subscription cancels every run. ``scheduler`` is passed to each
        ``Agent.stream`` (a ``TestScheduler`` plays offline agents in virtual time).
        """
        return self._recorded(check_task(task), scheduler, None)

    def _recorded(
        self, task: str, scheduler: abc.SchedulerBase | None, record: list[TokenEvent] | None
    ) -> reactivex.Observable[TokenEvent]:
        def subscribe(_: abc.SchedulerBase | None) -> reactivex.Observable[TokenEvent]:
            state = _Subscription([] if record is None else record)
            rounds = [self._round(task, number, state, scheduler) for number in range(1, self.max_loops + 1)]
            return reactivex.concat(*rounds, reactivex.defer(lambda _: self._end(state)))

        return reactivex.defer(subscribe)

    def _round(
        self, task: str, number: int, state: _Subscription, scheduler: abc.SchedulerBase | None
    ) -> reactivex.Observable[TokenEvent]:
        def start(_: abc.SchedulerBase | None) -> reactivex.Observable[TokenEvent]:
            if state.failed:
                return reactivex.empty()
            prompt = task
            if number > 1:
                prompt = handoff_prompt(task, [(name, state.answers.get(name, "")) for name in self.agent_names])
            runs = [self._run_of(agent, prompt, state, scheduler) for agent in self.agents]
            # a trampoline, not the subscribe scheduler: the runs start at once, in the agents' order
            sources = reactivex.from_iterable(runs, scheduler=CurrentThreadScheduler.singleton())
            if self.max_concurrency is None:
                return sources.pipe(ops.merge_all())
            return sources.pipe(ops.merge(max_concurrent=self.max_concurrency))

        return reactivex.defer(start)

    def _run_of(
        self, agent: Agent, prompt: str, state: _Subscription, scheduler: abc.SchedulerBase | None
    ) -> reactivex.Observable[TokenEvent]:
        def start(_: abc.SchedulerBase | None) -> reactivex.Observable[TokenEvent]:
            answer = AnswerText()

            def on_next(event: TokenEvent) -> None:
                state.seen.append(event)
                answer.add(event)

            def on_completed() -> None:
                state.answers[agent.agent_name] = answer.text

            def on_error(_: Exception, __: reactivex.Observable[TokenEvent]) -> reactivex.Observable[TokenEvent]:
                state.failed = True
                if self.fail_fast:
                    return reactivex.throw(self._error(state, "fail_fast cancelled the other agents"))
                return reactivex.empty()  # the error event went by in-band; the others go on

            return agent.stream(prompt, scheduler=scheduler).pipe(
                ops.do_action(on_next, on_completed=on_completed), ops.catch(on_error)
            )

        return reactivex.defer(start)

    def _error(self, state: _Subscription, stopped: str = "") -> WorkflowError:
        result = WorkflowResult.from_events(self.name, self.agent_names, state.seen)
        return WorkflowError.of(result, stopped=stopped)

    def _end(self, state: _Subscription) -> reactivex.Observable[TokenEvent]:
        if state.failed:
            return reactivex.throw(self._error(state))
        return reactivex.empty()

    def run(
        self, task: str, streaming_callback: StreamingCallback | None = None, *args: Any, **kwargs: Any
    ) -> WorkflowResult:
        """Run every agent on ``task`` and return a :class:`WorkflowResult`: ``print(result)`` shows a report,
        ``result[agent_name]`` is that agent's answer. See :meth:`Workflow.run_result` for where callbacks
        run and what is raised (:class:`WorkflowError` when an agent failed, after the others finished)."""
        delivery, source = self._call("run", task, streaming_callback, args, kwargs, awaiting=False)
        return self._result(delivery.run(source))

    async def arun(
        self, task: str, streaming_callback: StreamingCallback | None = None, *args: Any, **kwargs: Any
    ) -> WorkflowResult:
        """``await workflow.arun(task)``: as :meth:`run`, on the current loop (see :meth:`Workflow.arun_result`)."""
        delivery, source = self._call("arun", task, streaming_callback, args, kwargs, awaiting=True)
        return self._result(await delivery.arun(source))
