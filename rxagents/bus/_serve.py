"""``BusRuns``: the runs of a bus as a run source of the SSE server, so any number of servers serve every run."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from reactivex import Observable

from rxagents.bus._attach import attach
from rxagents.bus._base import Bus, check_bus, run_info
from rxagents.bus._spec import check_spec
from rxagents.bus._submit import submit
from rxagents.events import TokenEvent

__all__ = ["BusRuns"]

_STATUS = {"running": "running", "finished": "completed", "failed": "failed", "cancelled": "cancelled"}
#: Tasks a server remembers (for GET /runs/{id} of the runs it created), at most.
_REMEMBERED = 1_000


class BusRuns:
    """The runs of ``bus`` for :func:`~rxagents.sinks.serve_sse`: ``POST /runs`` submits a task with ``spec``
    (workers run it), and every server given a ``BusRuns`` of the same bus serves every run by its id, from any
    ``Last-Event-ID`` (message ids are ``seq + 1``): a browser reloading on another server resumes with no gap
    and no duplicate.

    Args:
        bus: a connected bus; the server must run on its loop.
        spec: what ``POST /runs`` submits (see :func:`~rxagents.bus.submit`).
        start_timeout: seconds a client of a run waits for its first event (a worker to take it).

    Example::

        async with connect_bus(url) as bus:
            async with serve_sse(BusRuns(bus, spec), port=8000) as server:
                await asyncio.Event().wait()
    """

    def __init__(self, bus: Bus, spec: dict[str, Any], *, start_timeout: float = 60.0) -> None:
        check_bus(bus)
        self.bus = bus
        self.spec = check_spec(spec)
        self.start_timeout = start_timeout
        if "agent" in self.spec:
            self.agent_names: list[str] = []  # a lane per run, named by its events
            self.name = str(self.spec["agent"].get("agent_name", "Agent"))
        else:
            workflow = self.spec["workflow"]
            self.agent_names = [str(agent.get("agent_name", "Agent")) for agent in workflow["agents"]]
            self.name = str(workflow.get("name") or "rxagents")
        self._tasks: OrderedDict[str, str] = OrderedDict()

    def __repr__(self) -> str:
        return f"BusRuns({self.bus!r}, name={self.name!r})"

    async def create(self, task: str) -> str:
        run_id = await submit(self.bus, task, self.spec)
        self._tasks[run_id] = task
        while len(self._tasks) > _REMEMBERED:
            self._tasks.popitem(last=False)
        return run_id

    async def info(self, run_id: str) -> dict[str, Any] | None:
        last = await self.bus.last_message(run_id)
        task = self._tasks.get(run_id, "")
        if last is None:
            return {"status": "pending", "task": task, "last_seq": -1} if run_id in self._tasks else None
        run = run_info(last)
        reason = None
        if run.status in ("failed", "cancelled"):
            error = last.events[-1].error
            reason = str(error) if error is not None else None
        return {"status": _STATUS[run.status], "task": task, "last_seq": run.last_seq, "reason": reason}

    def events(self, run_id: str, from_seq: int) -> Observable[TokenEvent]:
        return attach(self.bus, run_id, from_seq, start_timeout=self.start_timeout)
