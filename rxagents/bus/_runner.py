"""What a worker runs for a task: the agent or workflow of its spec, as one run under the submitted run id.

An agent task is ``Agent.stream(task, run_id=run_id)``. A workflow task is the workflow's merged stream made one
run (:func:`as_one_run`): a ``start`` of the workflow, then every agent's ``token``, ``reasoning``,
``tool_call`` and ``retry`` event in the order they came (``agent`` still names the agent; a ``retry`` voids
that agent's text), then one ``usage`` (the sum) and ``finish``, or the workflow's ``error``. Split it by
``event.agent`` to see each agent's answer.

Provider keys come from the worker's environment only. A spec's ``api_base`` must be one the worker allows
(``Worker(api_bases=...)``, ``rxagents worker --allow-api-base URL``): the worker sends its keys there.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Any

import reactivex
from reactivex import Observable, abc

from rxagents.agent import Agent
from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, TokenEvent, Usage
from rxagents.models import OfflineModel
from rxagents.workflows import ConcurrentWorkflow, SequentialWorkflow

__all__ = ["Runner", "as_one_run", "runner"]

#: A task's run: ``(task, run_id) -> Observable[TokenEvent]`` whose events all carry ``run_id``.
Runner = Callable[[str, str], Observable[TokenEvent]]
_BODY = frozenset({EventKind.TOKEN, EventKind.REASONING, EventKind.TOOL_CALL, EventKind.RETRY})


def _agent(fields: dict[str, Any], api_bases: Collection[str]) -> Agent:
    options = {name: value for name, value in fields.items() if name != "offline"}
    api_base = options.get("api_base")
    if api_base is not None and api_base.rstrip("/") not in {base.rstrip("/") for base in api_bases}:
        raise ConfigurationError(
            f"api_base {api_base!r} is not one this worker sends its keys to; start the worker with "
            f"--allow-api-base {api_base} (Worker(api_bases=[...])) if it should"
        )
    if "offline" in fields:
        options["llm"] = OfflineModel(**fields["offline"])
        options.setdefault("model_name", "offline")
    return Agent(print_on=False, **options)


def runner(spec: dict[str, Any], *, api_bases: Collection[str] = ()) -> Runner:
    """The run of a checked spec (:func:`~rxagents.bus._spec.check_spec`).

    Raises:
        ConfigurationError: the worker cannot run it (an unknown model, a provider without its key in the
            worker's environment, an ``api_base`` the worker does not allow).
    """
    if "agent" in spec:
        agent = _agent(spec["agent"], api_bases)

        def run_agent(task: str, run_id: str) -> Observable[TokenEvent]:
            return agent.stream(task, run_id=run_id)

        return run_agent
    fields = dict(spec["workflow"])
    kind = fields.pop("kind")
    agents = [_agent(agent, api_bases) for agent in fields.pop("agents")]
    workflow: ConcurrentWorkflow | SequentialWorkflow
    if kind == "concurrent":
        workflow = ConcurrentWorkflow(agents=agents, **fields)
    else:
        workflow = SequentialWorkflow(agents=agents, **fields)
    label = f"{kind} workflow"

    def run_workflow(task: str, run_id: str) -> Observable[TokenEvent]:
        return workflow.stream(task).pipe(as_one_run(run_id, workflow.name, label))

    return run_workflow


def as_one_run(
    run_id: str, name: str, model: str = "workflow"
) -> Callable[[Observable[TokenEvent]], Observable[TokenEvent]]:
    """A workflow's merged stream as one run ``run_id`` (see the module docs).

    .. code-block:: text

        source:  -sA-sB-a1-b1-fA-b2-uB-fB-|
        output:  -s----a1-b1----b2-------(uf)|     s: start of ``name``; u: the usage summed; f: finish
    """

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            seq = 0
            usage: Usage | None = None
            time = 0.0

            def emit(kind: EventKind, **fields: Any) -> None:
                nonlocal seq
                observer.on_next(TokenEvent(kind, fields.pop("agent", name), run_id, seq, time=time, model=model,
                                            **fields))  # fmt: skip
                seq += 1

            def on_next(event: TokenEvent) -> None:
                nonlocal seq, usage, time
                time = max(time, event.time)
                if seq == 0:
                    emit(EventKind.START)
                if event.kind in _BODY:
                    observer.on_next(replace(event, run_id=run_id, seq=seq))
                    seq += 1
                elif event.kind is EventKind.USAGE and event.usage is not None:
                    usage = event.usage if usage is None else usage + event.usage

            def on_completed() -> None:
                if seq == 0:
                    emit(EventKind.START)
                if usage is not None:
                    emit(EventKind.USAGE, usage=usage)
                emit(EventKind.FINISH, finish_reason="stop")
                observer.on_completed()

            def on_error(error: Exception) -> None:
                if seq == 0:
                    emit(EventKind.START)
                emit(EventKind.ERROR, error=error)
                observer.on_error(error)

            return source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)

        return reactivex.create(subscribe)

    return operator
