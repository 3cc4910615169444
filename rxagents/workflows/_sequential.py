"""SequentialWorkflow: agents answer one after another, each receiving the previous agent's answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import reactivex
from reactivex import abc
from reactivex import operators as ops

from rxagents._core.partial import AnswerText
from rxagents._validate import check_task
from rxagents.agent import Agent, StreamingCallback
from rxagents.events import TokenEvent
from rxagents.workflows._base import Workflow, handoff_prompt
from rxagents.workflows._results import WorkflowError, WorkflowResult

__all__ = ["SequentialWorkflow"]


class _Chain:
    """Per-subscription state of one sequential stream."""

    def __init__(self, seen: list[TokenEvent]) -> None:
        self.seen = seen
        self.previous: tuple[str, str] | None = None  # (agent name, its answer)


class SequentialWorkflow(Workflow):
    """Runs agents one after another; each receives the task plus the previous agent's answer.

    ``stream(task)`` is the concatenation of the runs: an agent starts only when the one before it has
    finished, and its prompt is built from that agent's collected answer (see :func:`handoff_prompt`)::

        <original task>

        Previous agent (Researcher) output:
        <the Researcher's answer>

    .. code-block:: text

        researcher:  sR--r1--r2--fR|
        writer:                     sW--w1--w2--fW|      (prompt: task + the Researcher's "r1r2")
        stream():    sR--r1--r2--fR-sW--w1--w2--fW|

        researcher:  sR--r1--eR#
        stream():    sR--r1--eR#                         WorkflowError; the writer never starts

    Args:
        agents: the chain, in order. An agent may appear more than once (``[writer, critic, writer]``);
            ``result[name]`` is then the answer of its last run, and ``result.steps`` has every run.
        max_loops: how many times the whole chain runs. On later passes the first agent receives the task
            plus the last agent's answer. An agent's own ``max_loops`` still applies to each of its runs.
        name: the workflow's name.
        streaming_callback: called by ``run``/``arun`` with each text delta (``str``) of every agent in
            turn (or the detailed dict with ``stream=True``). swarms ignores this; rxagents honours it.
        stream: detailed mode for ``streaming_callback`` (as for ``Agent``).
        show_dashboard: ``run``/``arun`` show a live dashboard with one lane per agent.
        on_callback_error: ``"log"`` (default) or ``"raise"``, as for ``Agent``.

    Without a workflow-level callback, each agent prints as ``Agent.run`` would (``streaming_on=True``:
    header, rule, then its text live), one agent after the other, or calls its own ``streaming_callback``.

    Example::

        workflow = SequentialWorkflow(agents=[researcher, writer], max_loops=1)
        final_output = workflow.run("The future of renewable energy technology")
    """

    _unique_names = False

    def __init__(
        self,
        agents: Sequence[Agent] = (),
        max_loops: int = 1,
        name: str = "SequentialWorkflow",
        *,
        streaming_callback: StreamingCallback | None = None,
        stream: bool = False,
        show_dashboard: bool = False,
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

    def stream(self, task: str, *, scheduler: abc.SchedulerBase | None = None) -> reactivex.Observable[TokenEvent]:
        """The chain's runs on ``task``, one after another: a cold ``Observable[TokenEvent]``.

        Each subscription runs the chain anew. A failed run ends the stream with ``on_error(WorkflowError)``
        (after that run's ``error`` event); the agents after it do not run. Disposing the subscription
        cancels the run in progress. ``scheduler`` is passed to each ``Agent.stream``.
        """
        return self._recorded(check_task(task), scheduler, None)

    def _recorded(
        self, task: str, scheduler: abc.SchedulerBase | None, record: list[TokenEvent] | None
    ) -> reactivex.Observable[TokenEvent]:
        def subscribe(_: abc.SchedulerBase | None) -> reactivex.Observable[TokenEvent]:
            chain = _Chain([] if record is None else record)
            steps = [self._step(agent, task, chain, scheduler) for _ in range(self.max_loops) for agent in self.agents]
            return reactivex.concat(*steps)

        return reactivex.defer(subscribe)

    def _step(
        self, agent: Agent, task: str, chain: _Chain, scheduler: abc.SchedulerBase | None
    ) -> reactivex.Observable[TokenEvent]:
        def start(_: abc.SchedulerBase | None) -> reactivex.Observable[TokenEvent]:
            prompt = task if chain.previous is None else handoff_prompt(task, [chain.previous])
            answer = AnswerText()

            def on_next(event: TokenEvent) -> None:
                chain.seen.append(event)
                answer.add(event)

            def on_completed() -> None:
                chain.previous = (agent.agent_name, answer.text)

            def on_error(_: Exception, __: reactivex.Observable[TokenEvent]) -> reactivex.Observable[TokenEvent]:
                result = WorkflowResult.from_events(self.name, self.agent_names, chain.seen)
                return reactivex.throw(WorkflowError.of(result, stopped="the agents after it did not run"))

            return agent.stream(prompt, scheduler=scheduler).pipe(
                ops.do_action(on_next, on_completed=on_completed), ops.catch(on_error)
            )

        return reactivex.defer(start)

    def run(self, task: str, streaming_callback: StreamingCallback | None = None, *args: Any, **kwargs: Any) -> str:
        """Run the chain and return the last agent's answer.

        Per-agent answers: :meth:`run_result` returns the :class:`WorkflowResult` instead (``.steps`` in
        order, ``result[agent_name]``). Callbacks run on the calling thread; see :meth:`Workflow.run_result`.

        Raises:
            WorkflowError: an agent failed; ``.result`` holds the answers so far and its partial text.
        """
        delivery, source = self._call("run", task, streaming_callback, args, kwargs, awaiting=False)
        return self._result(delivery.run(source)).final

    async def arun(
        self, task: str, streaming_callback: StreamingCallback | None = None, *args: Any, **kwargs: Any
    ) -> str:
        """``await workflow.arun(task)``: as :meth:`run`, on the current loop (see :meth:`Workflow.arun_result`)."""
        delivery, source = self._call("arun", task, streaming_callback, args, kwargs, awaiting=True)
        return self._result(await delivery.arun(source)).final
