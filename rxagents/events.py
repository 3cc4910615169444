"""The token event model: one frozen record per thing a run produces.

Grammar of one run (see ``docs/architecture.md``)::

    start (token | reasoning | tool_call | retry)* usage? finish      then on_completed
    start (token | reasoning | tool_call | retry)* error              then on_error

``seq`` counts the events of one run from 0 with no gaps, so a consumer can detect a
lost event (a gap) or a duplicate (a repeated seq) without looking at the text.
"""

from __future__ import annotations

import enum
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "EventKind",
    "TokenEvent",
    "ToolCallDelta",
    "Usage",
    "new_run_id",
]


class EventKind(enum.StrEnum):
    """What a :class:`TokenEvent` carries."""

    START = "start"
    TOKEN = "token"
    REASONING = "reasoning"
    TOOL_CALL = "tool_call"
    USAGE = "usage"
    FINISH = "finish"
    ERROR = "error"
    RETRY = "retry"


#: Kinds that carry text of the answer or of the model's reasoning.
TEXT_KINDS = frozenset({EventKind.TOKEN, EventKind.REASONING})
#: Kinds that end a run; exactly one of them is the last event of every run.
TERMINAL_KINDS = frozenset({EventKind.FINISH, EventKind.ERROR})


@dataclass(frozen=True, slots=True)
class Usage:
    """Token counts reported by the model for a run (summed over its loops)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call. Pieces with the same ``index`` join into one call:
    ``id`` and ``name`` arrive once (usually first), ``arguments`` is a JSON text split anywhere."""

    index: int = 0
    id: str | None = None
    name: str | None = None
    arguments: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"index": self.index, "id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """One event of one agent run.

    Attributes:
        kind: what the event carries (:class:`EventKind`).
        agent: the agent's name.
        run_id: identifies the run (one subscription to ``Agent.stream``).
        seq: position in the run, from 0, strictly increasing, no gaps.
        loop: the ``max_loops`` iteration (1-based) the event belongs to.
        text: the text delta for ``token``/``reasoning``; the reason for ``retry``.
        tool_call: the tool-call delta for ``tool_call`` events.
        usage: token counts for ``usage`` events.
        finish_reason: why the model stopped, on ``finish`` events.
        error: the exception, on ``error`` events.
        time: the scheduler clock (seconds) when the event was produced.
        model: the model name the run used.
    """

    kind: EventKind
    agent: str
    run_id: str
    seq: int
    loop: int = 1
    text: str = ""
    tool_call: ToolCallDelta | None = None
    usage: Usage | None = None
    finish_reason: str | None = None
    error: BaseException | None = field(default=None, compare=False)
    time: float = 0.0
    model: str = ""

    @property
    def is_terminal(self) -> bool:
        return self.kind in TERMINAL_KINDS

    def to_dict(self) -> dict[str, Any]:
        """The detailed-mode dict given to ``stream=True`` callbacks: only what this event has.

        Every dict has the identity keys ``type``, ``agent``, ``run_id``, ``seq``, ``loop``, ``time`` and
        ``model``. The rest depend on the kind, so ``"usage" in info`` is true exactly once per run:

        - ``token``: ``content`` (the text delta);
        - ``reasoning``: ``content`` and ``reasoning`` (both the reasoning delta);
        - ``tool_call``: ``tool_call`` (``{index, id, name, arguments}``);
        - ``retry``: ``reason`` (why the run starts over; no ``content``: it is not part of the answer);
        - ``usage``: ``usage`` (``{prompt_tokens, completion_tokens, total_tokens}``);
        - ``finish``: ``finish_reason`` (``"stop"``, ``"length"``, ...; ``None`` if the model gave none);
        - ``error``: ``error`` (``"ValueError: message"``);
        - ``start``: nothing more.

        >>> TokenEvent(EventKind.TOKEN, "A", "run-1", 1, text="Hi").to_dict()["content"]
        'Hi'
        >>> "usage" in TokenEvent(EventKind.TOKEN, "A", "run-1", 1, text="Hi").to_dict()
        False
        """
        kind = self.kind
        out: dict[str, Any] = {"type": kind.value}
        if kind in TEXT_KINDS:
            out["content"] = self.text
            if kind is EventKind.REASONING:
                out["reasoning"] = self.text
        elif kind is EventKind.RETRY:
            out["reason"] = self.text
        elif kind is EventKind.USAGE:
            out["usage"] = self.usage.to_dict() if self.usage is not None else None
        elif kind is EventKind.FINISH:
            out["finish_reason"] = self.finish_reason
        if self.tool_call is not None:
            out["tool_call"] = self.tool_call.to_dict()
        if self.error is not None:
            out["error"] = f"{type(self.error).__name__}: {self.error}"
        out |= {
            "agent": self.agent,
            "run_id": self.run_id,
            "seq": self.seq,
            "loop": self.loop,
            "time": self.time,
            "model": self.model,
        }
        return out

    def __repr__(self) -> str:
        parts = [f"{self.kind.value}", f"agent={self.agent!r}", f"seq={self.seq}"]
        if self.loop != 1:
            parts.append(f"loop={self.loop}")
        if self.text:
            parts.append(f"text={self.text!r}")
        if self.tool_call is not None:
            parts.append(f"tool_call={self.tool_call!r}")
        if self.usage is not None:
            parts.append(f"usage={self.usage!r}")
        if self.finish_reason is not None:
            parts.append(f"finish_reason={self.finish_reason!r}")
        if self.error is not None:
            parts.append(f"error={type(self.error).__name__}")
        return f"TokenEvent({', '.join(parts)})"


def new_run_id() -> str:
    """A run id unique across processes and machines, ordered by creation time and readable in logs.

    ``run-`` then 32 hex digits laid out as a UUIDv7: 48 bits of Unix milliseconds, then 80 random bits
    (``run-0193a1b2c3d4e5f60718293a4b5c6d7e``). The time only orders ids (brokers and logs list runs by
    creation); it is read once per run, never on the stream path.
    """
    return f"run-{time.time_ns() // 1_000_000 & 0xFFFF_FFFF_FFFF:012x}{secrets.randbits(80):020x}"


class _Unfrozen:
    """:class:`TokenEvent`'s slots, in its order, without its frozen ``__setattr__``: :func:`make_event` fills one
    with plain attribute stores, then makes it a TokenEvent (same layout, so ``__class__`` may be assigned)."""

    __slots__ = TokenEvent.__slots__


def make_event(
    kind: EventKind,
    agent: str,
    run_id: str,
    seq: int,
    loop: int,
    text: str,
    tool_call: ToolCallDelta | None,
    usage: Usage | None,
    finish_reason: str | None,
    error: BaseException | None,
    time: float,
    model: str,
) -> TokenEvent:
    """The :class:`TokenEvent` of these fields, every one given in order: the same type and value as the
    constructor gives, in about a third of the time (the frozen dataclass's ``__init__`` calls
    ``object.__setattr__`` by name once per field). For code that makes one per token (the run machine); not
    exported."""
    made: Any = _new(_Unfrozen)
    made.kind = kind
    made.agent = agent
    made.run_id = run_id
    made.seq = seq
    made.loop = loop
    made.text = text
    made.tool_call = tool_call
    made.usage = usage
    made.finish_reason = finish_reason
    made.error = error
    made.time = time
    made.model = model
    made.__class__ = TokenEvent
    event: TokenEvent = made  # no cast(): it is a call, once per token
    return event


_new = object.__new__
