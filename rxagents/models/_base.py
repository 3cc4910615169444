"""What a model backend is: something that turns one request into an async iterator of deltas."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from rxagents.errors import EmptyStreamError, StreamCutError
from rxagents.events import EventKind, ToolCallDelta, Usage

__all__ = ["Delta", "ModelBackend", "ModelRequest", "stream_end", "text_delta"]


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """One chat-completion request. ``api_key`` never appears in the repr."""

    model: str
    messages: Sequence[Mapping[str, Any]]
    temperature: float | None = None
    max_tokens: int | None = None
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    extra: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Delta:
    """A piece of a model's answer: the backend-side half of a TokenEvent.

    ``kind`` is one of TOKEN, REASONING, TOOL_CALL, USAGE, FINISH. A backend yields
    FINISH exactly once, last, with its ``finish_reason``; USAGE at most once, before FINISH.
    A failure is raised (an ``rxagents.errors.ModelError``), never yielded.
    """

    kind: EventKind
    text: str = ""
    tool_call: ToolCallDelta | None = None
    usage: Usage | None = None
    finish_reason: str | None = None


class _DeltaSlots:
    """:class:`Delta`'s slots, in its order, without its frozen ``__setattr__`` (see :func:`text_delta`)."""

    __slots__ = Delta.__slots__


_new = object.__new__


def text_delta(kind: EventKind, text: str) -> Delta:
    """``Delta(kind, text)`` (a TOKEN or REASONING delta), the same type and value, in about a third of the time:
    the frozen dataclass's ``__init__`` calls ``object.__setattr__`` by name once per field, this stores them
    plainly and then makes the object a Delta (same layout, so ``__class__`` may be assigned). For a backend's
    per-chunk path, as :func:`rxagents.events.make_event` is for the run's events."""
    made: Any = _new(_DeltaSlots)
    made.kind = kind
    made.text = text
    made.tool_call = None
    made.usage = None
    made.finish_reason = None
    made.__class__ = Delta
    delta: Delta = made
    return delta


@runtime_checkable
class ModelBackend(Protocol):
    """A model: ``stream(request)`` returns an async iterator of :class:`Delta`.

    Closing the iterator early (``aclose``, or cancelling the task iterating it) must release
    everything it holds, HTTP connections included.
    """

    @property
    def name(self) -> str: ...

    def stream(self, request: ModelRequest) -> AsyncIterator[Delta]: ...


def stream_end(
    model: str, finish: str | None, produced: bool, usage: Usage | None, *, cut: str, empty: str
) -> Iterator[Delta]:
    """How every network backend judges the end of a chat-completions stream: the last deltas to yield, or why
    the stream is not an answer.

    No finish reason: the connection was cut (:class:`~rxagents.errors.StreamCutError`; ``cut`` names what
    was missing). Nothing produced and no usage: an empty stream (:class:`~rxagents.errors.EmptyStreamError`;
    ``empty`` names where it ended). Otherwise the usage delta (if any) and the finish delta.
    """
    if finish is None:
        raise StreamCutError(f"model {model!r}: the stream ended without {cut} (connection cut?)")
    if not produced and usage is None:
        raise EmptyStreamError(f"model {model!r} sent an empty stream: no text, tool call or usage before {empty}")
    if usage is not None:
        yield Delta(EventKind.USAGE, usage=usage)
    yield Delta(EventKind.FINISH, finish_reason=finish)
