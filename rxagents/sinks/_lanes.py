"""The dashboard's lane model: one lane per agent, its status, and the snapshot a frame shows of it."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

from rxagents.sinks._live_view import token_rate
from rxagents.sinks._terminal import TailBuffer

__all__ = ["ENDED", "ICONS", "PRIORITY", "STYLES", "Lane", "LaneStatus", "LaneView", "Named"]


class Named(Protocol):
    """Anything with an ``agent_name`` (an :class:`~rxagents.Agent`)."""

    @property
    def agent_name(self) -> str: ...


class LaneStatus(enum.StrEnum):
    """Where an agent's run is."""

    WAITING = "waiting"
    STREAMING = "streaming"
    DONE = "done"
    ERROR = "error"
    CANCELLED = "cancelled"


ICONS = {
    LaneStatus.WAITING: "⏳",
    LaneStatus.STREAMING: "🔄",
    LaneStatus.DONE: "✅",
    LaneStatus.ERROR: "❌",
    LaneStatus.CANCELLED: "⛔",
}
STYLES = {
    LaneStatus.WAITING: "dim",
    LaneStatus.STREAMING: "cyan",
    LaneStatus.DONE: "green",
    LaneStatus.ERROR: "red",
    LaneStatus.CANCELLED: "yellow",
}
ENDED = frozenset({LaneStatus.DONE, LaneStatus.ERROR, LaneStatus.CANCELLED})
# Which lanes stay visible when a compact frame has fewer rows than lanes (lower first).
PRIORITY = {
    LaneStatus.ERROR: 0,
    LaneStatus.STREAMING: 1,
    LaneStatus.CANCELLED: 2,
    LaneStatus.WAITING: 3,
    LaneStatus.DONE: 4,
}


@dataclass(frozen=True, slots=True)
class LaneView:
    """A snapshot of one lane: what a frame shows for one agent.

    Attributes:
        name: the agent's name.
        status: waiting, streaming, done, error or cancelled.
        tokens: token events received in the current run.
        rate: tokens/s from the events' times (``None`` until two distinct times are seen).
        tail: the end of the text (at most the dashboard's tail size), not the whole text.
        error: ``"ErrorType: message"`` for an error lane.
        runs: how many runs the lane has shown (a sequential chain repeated by ``max_loops`` reuses lanes).
    """

    name: str
    status: LaneStatus
    tokens: int
    rate: float | None
    tail: str
    error: str | None
    runs: int


class Lane:
    __slots__ = ("error", "name", "parts", "run_id", "runs", "status", "t0", "t_last", "tail", "tokens")

    def __init__(self, name: str, tail_limit: int) -> None:
        self.name = name
        self.status = LaneStatus.WAITING
        self.run_id: str | None = None
        self.runs = 0
        self.tokens = 0
        self.t0: float | None = None
        self.t_last: float | None = None
        self.tail = TailBuffer(tail_limit)
        self.parts: list[str] | None = None  # the whole text, kept only for plain-line output
        self.error: str | None = None

    def reset(self, keep_text: bool) -> None:
        self.status = LaneStatus.WAITING
        self.tokens = 0
        self.t0 = self.t_last = None
        self.tail.clear()
        self.parts = [] if keep_text else None
        self.error = None

    @property
    def rate(self) -> float | None:
        return token_rate(self.tokens, self.t0, self.t_last)

    def view(self) -> LaneView:
        return LaneView(self.name, self.status, self.tokens, self.rate, self.tail.text(), self.error, self.runs)
