"""One run served over SSE: a replay buffer of encoded messages shared by all of the run's subscribers.

Each message gets the next id of the run (1, 2, 3, ...: its position in the run's merged stream, so ids are
unique across the agents of a workflow). The last ``replay`` messages are kept; a subscriber resuming after id
``N`` gets exactly the messages after ``N`` — or, when some of them were already dropped, a ``gap`` message
saying which, then what is left. Everything here runs on the server's event loop.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["RunInfo", "RunStatus", "SharedRun"]

#: ``pending`` until the first subscriber connects, then ``running``, then one of the three end states.
RunStatus = Literal["pending", "running", "completed", "failed", "cancelled"]


@dataclass(frozen=True, slots=True)
class RunInfo:
    """A snapshot of one run on an :class:`~rxagents.sinks._sse.SSEServer`.

    ``events`` is the id of the last message so far (the ``complete`` message included once the run ended);
    ``buffered_from`` the oldest id still in the replay buffer; ``resumes`` the ``Last-Event-ID`` of every
    subscription that resumed (> 0); ``gaps`` how many times a subscriber asked for messages already dropped
    from the buffer; ``reason`` why a run was cancelled or failed.
    """

    run_id: str
    task: str
    status: RunStatus
    events: int
    buffered_from: int
    subscribers: int
    resumes: tuple[int, ...]
    gaps: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class _Message:
    id: int
    data: bytes  # the whole encoded SSE message


def encode(event: str, payload: dict[str, Any], ident: int | None = None) -> bytes:
    """One SSE message: ``id:`` (when given), ``event:``, and the payload as one line of JSON."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), default=str)
    head = "" if ident is None else f"id: {ident}\n"
    return f"{head}event: {event}\ndata: {data}\n\n".encode()


class SharedRun:
    """A run's state on the server: status, replay buffer, subscribers, and the tasks and timers around it."""

    def __init__(self, run_id: str, task: str, replay: int) -> None:
        self.run_id = run_id
        self.task = task
        self.buffer: deque[_Message] = deque(maxlen=replay)
        self.last_id = 0
        self.status: RunStatus = "pending"
        self.reason: str | None = None
        self.subscribers = 0
        self.resumes: list[int] = []
        self.gaps = 0
        self.changed = asyncio.Event()  # set (and replaced) on every new message
        self.pump: asyncio.Task[None] | None = None  # started by the first subscriber
        self.idle: asyncio.TimerHandle | None = None
        self.forget: asyncio.TimerHandle | None = None

    @property
    def first_id(self) -> int:
        """The oldest id still buffered (``last_id + 1`` when nothing is)."""
        return self.buffer[0].id if self.buffer else self.last_id + 1

    @property
    def ended(self) -> bool:
        return self.status not in ("pending", "running")

    def append(self, event: str, payload: dict[str, Any]) -> None:
        """Add a message with the next id and wake every subscriber."""
        self.last_id += 1
        self.buffer.append(_Message(self.last_id, encode(event, payload, self.last_id)))
        self.wake()

    def wake(self) -> None:
        changed, self.changed = self.changed, asyncio.Event()
        changed.set()

    def since(self, last: int) -> tuple[bytes, int]:
        """What a subscriber that has seen up to id ``last`` must be sent now, and the id it has then seen.

        O(messages sent), not O(buffer): new messages are taken from the buffer's right end.
        """
        chunk: list[bytes] = []
        if last + 1 < self.first_id:  # dropped from the replay buffer: say so, then go on from what is left
            self.gaps += 1
            chunk.append(encode("gap", {"type": "gap", "missing_from": last + 1, "missing_to": self.first_id - 1}))
            last = self.first_id - 1
        count = min(self.last_id - last, len(self.buffer))
        if count > 0:
            messages = list(itertools.islice(reversed(self.buffer), count))
            chunk.extend(message.data for message in reversed(messages))
            last = messages[0].id
        return b"".join(chunk), last

    def info(self) -> RunInfo:
        return RunInfo(
            self.run_id, self.task, self.status, self.last_id, self.first_id, self.subscribers,
            tuple(self.resumes), self.gaps, self.reason,
        )  # fmt: skip
