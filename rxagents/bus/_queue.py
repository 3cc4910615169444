"""The work queue of a bus: tasks that workers take, and the cancel requests of runs.

Each adapter implements :class:`TaskQueue` on its broker (:mod:`rxagents.bus._nats_queue`,
:mod:`rxagents.bus._redis_queue`); :func:`~rxagents.bus.submit`, :func:`~rxagents.bus.cancel` and
:class:`~rxagents.bus.Worker` use it through ``bus.queue``. A task is delivered to one worker of a group at a time
and stays that worker's while it :meth:`~TaskQueue.touch` es it; a task neither touched nor acknowledged for
``redeliver_after`` seconds (its worker died) is delivered again, to any worker of the group.

Cancel requests are stored (a marker per run, kept as long as runs are) and announced live, so a worker running
the run stops it at once and a worker taking the task later sees the marker before it starts.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Taken", "TaskQueue"]


@dataclass(frozen=True, slots=True, eq=False)
class Taken:
    """A task delivered to this worker: the submitted ``payload`` and the broker's handle for acknowledging it.
    ``deliveries`` is how many times the broker delivered it (1 the first time; 0 when the broker does not say)."""

    payload: bytes
    deliveries: int
    handle: Any = field(repr=False)


class TaskQueue(abc.ABC):
    """The work queue and cancel requests on one connected bus (use it on the bus's loop)."""

    @abc.abstractmethod
    async def put(self, run_id: str, payload: bytes) -> bool:
        """Queue a task; False when a task of ``run_id`` was queued already (it is not queued twice)."""

    @abc.abstractmethod
    async def join(self, group: str, worker: str, redeliver_after: float) -> None:
        """Become ``worker``, a taker of the tasks of ``group``: tasks a taker of the group neither touched nor
        acknowledged for ``redeliver_after`` seconds are delivered again."""

    @abc.abstractmethod
    async def take(self, count: int, wait: float) -> list[Taken]:
        """Up to ``count`` tasks (redelivered ones first), waiting up to ``wait`` seconds for one."""

    @abc.abstractmethod
    async def touch(self, taken: Taken) -> None:
        """Keep ``taken`` this worker's for another ``redeliver_after`` seconds."""

    @abc.abstractmethod
    async def ack(self, taken: Taken) -> None:
        """The task is done: remove it from the queue."""

    @abc.abstractmethod
    async def request_cancel(self, run_id: str, reason: str) -> None:
        """Store the cancel marker of ``run_id`` and announce it to every worker."""

    @abc.abstractmethod
    async def cancel_reason(self, run_id: str) -> str | None:
        """The reason of ``run_id``'s cancel request, None if there is none."""

    @abc.abstractmethod
    def cancel_requests(self) -> AsyncIterator[tuple[str, str] | None]:
        """``(run_id, reason)`` of cancel requests as they are announced, forever. ``None`` after a
        (re)subscription: requests announced meanwhile may be missed, so check the markers of your runs."""

    async def close(self) -> None:  # noqa: B027 - nothing to release unless the adapter holds something
        """Release what :meth:`join` holds (the bus connection stays open)."""
