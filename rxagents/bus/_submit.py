"""``submit`` a task to the bus's work queue, ``cancel`` a run from any process; the task's wire format."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rxagents.bus._base import Bus, check_bus
from rxagents.bus._errors import BusError
from rxagents.bus._spec import check_spec, check_submitted_task
from rxagents.errors import ConfigurationError
from rxagents.events import new_run_id

__all__ = ["InvalidTask", "SubmittedTask", "cancel", "decode_task", "encode_task", "submit"]

TASK_VERSION = 1
CANCEL_REASON = "cancelled on request"


@dataclass(frozen=True, slots=True)
class SubmittedTask:
    """A task as it travels on the work queue: the run id chosen at submit time, the task, the checked spec."""

    run_id: str
    task: str
    spec: dict[str, Any]


class InvalidTask(BusError):
    """A task on the queue that cannot run: ``run_id`` is its run (None: the payload does not say), the
    message says what is wrong."""

    def __init__(self, message: str, run_id: str | None) -> None:
        super().__init__(message)
        self.run_id = run_id


def encode_task(task: SubmittedTask) -> bytes:
    """The JSON of a task on the queue: ``{"v": 1, "run_id", "task", "spec"}``."""
    body = {"v": TASK_VERSION, "run_id": task.run_id, "task": task.task, "spec": task.spec}
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def decode_task(payload: bytes) -> SubmittedTask:
    """The task in ``payload``, checked again (a worker trusts nothing it reads from the bus).

    Raises:
        InvalidTask: not a task in the wire format, or its task or spec is bad (the message says why).
    """
    try:
        data = json.loads(payload.decode("utf-8", "surrogatepass"))
        if not isinstance(data, dict) or data.get("v") != TASK_VERSION:
            raise ValueError(f"not a version {TASK_VERSION} task object")
        run_id = data["run_id"]
        if not isinstance(run_id, str) or not run_id:
            raise ValueError(f"run_id must be a non-empty string, got {run_id!r}")
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as error:
        raise InvalidTask(f"not an rxagents task ({error})", None) from None
    try:
        return SubmittedTask(run_id, check_submitted_task(data.get("task")), check_spec(data.get("spec")))
    except ConfigurationError as error:
        raise InvalidTask(str(error), run_id) from error



async def submit(bus: Bus, task: str, spec: dict[str, Any], *, run_id: str | None = None) -> str:
    """Queue ``task`` for a worker to run with ``spec`` and return the run's id, at once: attach to it with
    :func:`~rxagents.bus.attach` (it waits for the run to start), stop it with :func:`cancel`.

    ``spec`` says what runs: ``{"agent": {...}}`` or ``{"workflow": {...}}`` (see :mod:`rxagents.bus._spec`);
    it is checked here, strictly, and again by the worker. It never holds a provider key (a field like
    ``api_key`` is refused): workers use the keys of their own environment. Each task is taken by one worker;
    if that worker dies, another takes it and the run starts over after a ``retry`` event.

    Args:
        bus: a connected :class:`~rxagents.bus.Bus`.
        task: the task text.
        spec: what runs it.
        run_id: the run's id (default: a new :func:`~rxagents.events.new_run_id`). Submitting the same id again
            queues nothing (a client may retry a submit safely).

    Raises:
        ConfigurationError: a bad task or spec (the message names the field).
        BusUnavailable: the broker cannot be reached.

    Example::

        run_id = await submit(bus, "Explain streams", {"agent": {"agent_name": "writer", "model_name": "offline"}})
        text = await attach(bus, run_id).pipe(collect_text())
    """
    check_bus(bus)
    task = check_submitted_task(task)
    checked = check_spec(spec)
    if run_id is None:
        run_id = new_run_id()
    elif not isinstance(run_id, str) or not run_id.strip():
        raise ConfigurationError(f"run_id must be a non-empty string or None (a new id), got {run_id!r}")
    await bus.queue.put(run_id, encode_task(SubmittedTask(run_id, task, checked)))
    return run_id


async def cancel(bus: Bus, run_id: str, reason: str = CANCEL_REASON) -> None:
    """Stop run ``run_id``, from any process: the worker running it disposes the run (its model HTTP stream
    closes) and publishes its terminal ``error`` event of :class:`~rxagents.bus.RunCancelled` with ``reason``;
    a task not started yet is not run (its worker publishes the same ending). A run that already ended is left
    as it is. Returns once the request is stored on the broker.

    Raises:
        BusUnavailable: the broker cannot be reached.

    Example::

        await cancel(bus, run_id)
    """
    check_bus(bus)
    if not isinstance(run_id, str) or not run_id:
        raise ConfigurationError(f"run_id must be a non-empty string, got {run_id!r}")
    if not isinstance(reason, str) or not reason.strip():
        raise ConfigurationError(f"reason must be a non-empty string, got {reason!r}")
    await bus.queue.request_cancel(run_id, reason)
