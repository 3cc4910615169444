"""What a workflow run produced: one :class:`AgentOutput` per agent run, gathered in a :class:`WorkflowResult`.

Both are built from the events alone (:meth:`WorkflowResult.from_events`), so a ``.stream(task)`` subscriber
can rebuild exactly what ``.run(task)`` returns. A failed workflow raises :class:`WorkflowError`, which
carries the same result (successful agents' answers and the failed agents' partial text).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from rxagents._core.partial import AnswerText, PartialText, answer_of
from rxagents._validate import fail
from rxagents.errors import RunError, RxAgentsError
from rxagents.events import EventKind, TokenEvent, Usage

__all__ = ["AgentOutput", "AnswerText", "OutputStatus", "WorkflowError", "WorkflowResult"]

#: ``done``: the run finished. ``error``: the run failed (``error`` is set). ``cancelled``: the workflow
#: stopped the run before it finished (``fail_fast``, a lost race, the caller disposed). ``skipped``: the
#: agent never started (an earlier agent of a sequential chain failed, or ``fail_fast`` stopped the
#: workflow before its turn came under ``max_concurrency``).
OutputStatus = Literal["done", "error", "cancelled", "skipped"]


@dataclass(frozen=True, slots=True)
class AgentOutput:
    """One agent run inside a workflow.

    Attributes:
        agent: the agent's name.
        status: see :data:`OutputStatus`.
        text: the agent's answer: the text of its last loop (what ``Agent.run`` returns). For a run that did
            not finish, the text that arrived before it stopped; check :attr:`ok` before trusting it.
        partial_text: all answer text that arrived, over every loop (equals ``text`` when ``max_loops=1``).
        error: the exception that ended the run (``status == "error"``), else ``None``.
        usage: token counts the model reported, if the run got that far.
        finish_reason: why the model stopped, for a finished run.
        tokens: how many token events arrived.
        run_id: the run's id (``""`` for a skipped agent).
        events: every event of the run, in order (not shown in the repr).
    """

    agent: str
    status: OutputStatus
    text: str = ""
    partial_text: str = ""
    error: BaseException | None = field(default=None, compare=False)
    usage: Usage | None = None
    finish_reason: str | None = None
    tokens: int = 0
    run_id: str = ""
    events: tuple[TokenEvent, ...] = field(default=(), repr=False, compare=False)

    @property
    def ok(self) -> bool:
        """True when the run finished normally."""
        return self.status == "done"

    @classmethod
    def from_run(cls, events: Sequence[TokenEvent]) -> AgentOutput:
        """The output of one run from its events (all with the same ``run_id``, in order)."""
        if not events:
            fail("events", "the events of one run, at least one", events)
        first, last = events[0], events[-1]
        status: OutputStatus = "cancelled"
        error: BaseException | None = None
        if last.kind is EventKind.FINISH:
            status = "done"
        elif last.kind is EventKind.ERROR:
            status, error = "error", last.error
        kept = PartialText(events)  # what survives the run's retries
        partial = kept.text
        if isinstance(error, RxAgentsError) and error.partial_text:
            partial = error.partial_text
        usage = next((e.usage for e in reversed(events) if e.kind is EventKind.USAGE), None)
        return cls(
            agent=first.agent,
            status=status,
            text=answer_of(events),
            partial_text=partial,
            error=error,
            usage=usage,
            finish_reason=last.finish_reason if status == "done" else None,
            tokens=kept.count,
            run_id=first.run_id,
            events=tuple(events),
        )

    def describe(self) -> str:
        """A one-line status: ``done, 42 tokens`` / ``error: ModelError: ... (12 chars arrived)``."""
        if self.status == "done":
            return f"done, {self.tokens} tokens"
        if self.status == "error":
            return (
                f"error: {type(self.error).__name__}: {self.error} "
                f"({len(self.partial_text)} chars arrived before the failure)"
            )
        if self.status == "cancelled":
            return f"cancelled by the workflow after {self.tokens} tokens"
        return "skipped: never started"


class WorkflowResult(Mapping[str, str]):
    """The outcome of a workflow run: a read-only mapping from agent name to its answer text.

    ``result["Writer"]`` is that agent's answer (the last run of it, for ``max_loops > 1``); iterating
    gives the agent names in the workflow's order. ``print(result)`` shows a readable report: a header per
    agent with its status, then its text. More detail:

    * :attr:`outputs`: agent name -> :class:`AgentOutput` of its last run (status, usage, error, events);
    * :attr:`steps`: every agent run in the order they started (a sequential chain with ``max_loops=2``
      has two steps per agent);
    * :attr:`final`: the text of the last finished step (what ``SequentialWorkflow.run`` returns);
    * :attr:`ok`, :attr:`errors`, :attr:`events`.

    A result with failures is only handed out inside a :class:`WorkflowError` (``error.result``), so
    ``result[name]`` of a failed agent (its partial text) is never mistaken for a success.
    """

    __slots__ = ("_outputs", "events", "name", "steps")

    def __init__(self, name: str, agents: Sequence[str], steps: Sequence[AgentOutput],
                 events: Sequence[TokenEvent] = ()) -> None:
        self.name = name
        self.steps: tuple[AgentOutput, ...] = tuple(steps)
        self.events: tuple[TokenEvent, ...] = tuple(events)
        outputs: dict[str, AgentOutput] = {agent: AgentOutput(agent, "skipped") for agent in agents}
        for step in self.steps:
            outputs[step.agent] = step
        self._outputs = outputs

    @classmethod
    def from_events(cls, name: str, agents: Sequence[str], events: Iterable[TokenEvent]) -> WorkflowResult:
        """Gather ``events`` (a workflow's stream, in delivery order) into a result.

        Events are grouped by ``run_id``; runs are ordered by their first event. ``agents`` gives the
        agent names in the workflow's order (agents with no events are ``skipped``).

        Example::

            events = workflow.stream(task).pipe(ops.to_list()).run()
            print(WorkflowResult.from_events(workflow.name, workflow.agent_names, events))
        """
        all_events = tuple(events)
        runs: dict[str, list[TokenEvent]] = {}
        for event in all_events:
            runs.setdefault(event.run_id, []).append(event)
        return cls(name, agents, [AgentOutput.from_run(run) for run in runs.values()], all_events)

    # Mapping ------------------------------------------------------------------------------------------------
    def __getitem__(self, agent: str) -> str:
        return self._outputs[agent].text

    def __iter__(self) -> Iterator[str]:
        return iter(self._outputs)

    def __len__(self) -> int:
        return len(self._outputs)

    # details ------------------------------------------------------------------------------------------------
    @property
    def outputs(self) -> Mapping[str, AgentOutput]:
        """Agent name -> its last run's :class:`AgentOutput` (``skipped`` if it never ran)."""
        return dict(self._outputs)

    @property
    def ok(self) -> bool:
        """True when every agent's last run finished."""
        return all(output.ok for output in self._outputs.values())

    @property
    def errors(self) -> dict[str, BaseException]:
        """Agent name -> the exception of each failed run (empty when nothing failed)."""
        return {s.agent: s.error for s in self.steps if s.status == "error" and s.error is not None}

    @property
    def final(self) -> str:
        """The answer of the last finished step (the chain's output for a sequential workflow)."""
        return next((s.text for s in reversed(self.steps) if s.ok), "")

    def __repr__(self) -> str:
        statuses = ", ".join(f"{agent!r}: {output.status!r}" for agent, output in self._outputs.items())
        return f"WorkflowResult(name={self.name!r}, agents={{{statuses}}})"

    def __str__(self) -> str:
        width = min(shutil.get_terminal_size((80, 20)).columns, 100)
        done = sum(1 for output in self._outputs.values() if output.ok)
        lines = [f"Workflow {self.name}: {done}/{len(self._outputs)} agents done"]
        for agent, output in self._outputs.items():
            title = f"━━ {agent} ({output.describe()}) "
            lines += ["", title + "━" * max(3, width - len(title))]
            if output.text:
                lines.append(output.text)
        return "\n".join(lines)


class WorkflowError(RunError):
    """A workflow failed: one or more of its agents' runs ended with an error (or were cancelled).

    Attributes:
        result: the :class:`WorkflowResult` so far: the answers of the agents that finished, and the
            partial text and error of each that failed.
        errors: agent name -> exception, for each failed run.
        partial_text: the partial text of the first failed agent.
        events: every event the workflow delivered.

    ``__cause__`` is the first agent's error.
    """

    def __init__(self, message: str, *, result: WorkflowResult) -> None:
        failed = [s for s in result.steps if s.status == "error"]
        partial = failed[0].partial_text if failed else ""
        super().__init__(message, partial_text=partial, events=result.events)
        self.result = result
        self.errors = result.errors

    @classmethod
    def of(cls, result: WorkflowResult, *, stopped: str = "") -> WorkflowError:
        """The error for a result with failed runs; the message names each failed agent and its partial text."""
        failed = [s for s in result.steps if s.status == "error"]
        parts = [f"agent {s.agent!r} failed: {type(s.error).__name__}: {s.error} "
                 f"(partial text: {len(s.partial_text)} chars)" for s in failed]
        done = sum(1 for output in result.outputs.values() if output.ok)
        summary = f"workflow {result.name!r}: " + "; ".join(parts or ["a run failed"])
        summary += f". {done} of {len(result)} agents finished"
        if stopped:
            summary += f"; {stopped}"
        error = cls(summary + ". The finished answers and partial text are in error.result.", result=result)
        if failed and failed[0].error is not None:
            error.__cause__ = failed[0].error
        return error
