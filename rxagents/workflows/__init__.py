"""Multi-agent workflows: compositions of agent runs, each still one cold ``Observable[TokenEvent]``.

* :class:`ConcurrentWorkflow` — every agent on the same task at once: the **merge** of their runs.
* :class:`SequentialWorkflow` — agents one after another, each given the previous answer: the **concat**.
* :func:`race` — the first agent to answer wins; the others are cancelled.
* :func:`switch` — a stream of tasks where each new task cancels the run in progress.

``run``/``arun`` return a :class:`WorkflowResult` (or raise :class:`WorkflowError`); see ``docs/workflows.md``.
"""

from __future__ import annotations

from rxagents.workflows._base import HANDOFF_TEMPLATE, Streamable, Workflow, handoff_prompt
from rxagents.workflows._concurrent import ConcurrentWorkflow
from rxagents.workflows._race import race, switch
from rxagents.workflows._results import AgentOutput, OutputStatus, WorkflowError, WorkflowResult
from rxagents.workflows._sequential import SequentialWorkflow

__all__ = [
    "HANDOFF_TEMPLATE",
    "AgentOutput",
    "ConcurrentWorkflow",
    "OutputStatus",
    "SequentialWorkflow",
    "Streamable",
    "Workflow",
    "WorkflowError",
    "WorkflowResult",
    "handoff_prompt",
    "race",
    "switch",
]
