"""The wire format: how token events travel through a broker, as JSON.

One event (:func:`event_to_wire`) is a JSON object with every field of :class:`~rxagents.events.TokenEvent`::

    {"kind": "token", "agent": "writer", "run_id": "run-1", "seq": 3, "loop": 1, "text": " cat",
     "tool_call": null, "usage": null, "finish_reason": null, "error": null, "time": 12.5, "model": "m"}

``tool_call`` is ``{index, id, name, arguments}``, ``usage`` is ``{prompt_tokens, completion_tokens,
total_tokens}`` and ``error`` is ``{type, message}`` (the exception's class name and text: an exception object
cannot cross a broker). :func:`event_from_wire` turns it back into an equal event; an error becomes a
:class:`~rxagents.bus.RemoteRunError` carrying the type and message.

A broker message (:func:`encode_message`) carries one or more *consecutive* events of one run::

    {"v": 1, "run_id": "run-1", "agent": "writer", "model": "m", "first": 3, "last": 5, "tokens": 4,
     "events": [{"kind": "token", "text": " cat", "time": 12.5}, ...]}

``first``/``last`` are the seq range (the events' seqs are ``first, first + 1, ... last``), ``tokens`` counts
the run's token events up to and including this message (``bus.runs()`` reads it). Inside a message an event
omits its seq and every field that has its default value or equals the message's (``run_id``, ``agent``,
``model``), which makes a coalesced message of many tokens several times smaller than the events one by one.
Decoding gives back exactly the events that were encoded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rxagents.bus._errors import BusError, RemoteRunError
from rxagents.events import EventKind, TokenEvent, ToolCallDelta, Usage

__all__ = [
    "WIRE_VERSION",
    "Message",
    "decode_message",
    "encode_message",
    "error_to_wire",
    "event_from_wire",
    "event_to_wire",
]

WIRE_VERSION = 1
_KINDS = {kind.value: kind for kind in EventKind}


def error_to_wire(error: BaseException) -> dict[str, str]:
    """``{type, message}`` of an exception; a :class:`RemoteRunError` keeps the original type and message,
    so an event relayed from one broker to another is unchanged."""
    if isinstance(error, RemoteRunError):
        return {"type": error.type, "message": error.message}
    return {"type": type(error).__name__, "message": str(error)}


def event_to_wire(event: TokenEvent) -> dict[str, Any]:
    """Every field of ``event`` as JSON-ready values (see the module docs).

    >>> from rxagents.events import EventKind, TokenEvent
    >>> event_to_wire(TokenEvent(EventKind.TOKEN, "A", "run-1", 2, text="Hi"))["text"]
    'Hi'
    """
    return {
        "kind": event.kind.value,
        "agent": event.agent,
        "run_id": event.run_id,
        "seq": event.seq,
        "loop": event.loop,
        "text": event.text,
        "tool_call": event.tool_call.to_dict() if event.tool_call is not None else None,
        "usage": event.usage.to_dict() if event.usage is not None else None,
        "finish_reason": event.finish_reason,
        "error": error_to_wire(event.error) if event.error is not None else None,
        "time": event.time,
        "model": event.model,
    }


def event_from_wire(data: Mapping[str, Any]) -> TokenEvent:
    """The event :func:`event_to_wire` made ``data`` from (its error a :class:`RemoteRunError`).

    Raises:
        BusError: ``data`` is not an event in the wire format (the message names what is wrong).
    """
    try:
        return _event(data, data["run_id"], data["seq"], data.get("agent", ""), data.get("model", ""))
    except (KeyError, TypeError, ValueError) as error:
        raise BusError(f"not a token event in the wire format ({error!r}): {_preview(data)}") from None


def _event(data: Mapping[str, Any], run_id: str, seq: int, agent: str, model: str) -> TokenEvent:
    kind = _KINDS[data["kind"]]
    tool_call = data.get("tool_call")
    usage = data.get("usage")
    error = data.get("error")
    return TokenEvent(
        kind,
        data.get("agent", agent),
        run_id,
        seq,
        loop=data.get("loop", 1),
        text=data.get("text", ""),
        tool_call=ToolCallDelta(**tool_call) if tool_call is not None else None,
        usage=Usage(**usage) if usage is not None else None,
        finish_reason=data.get("finish_reason"),
        error=RemoteRunError(str(error["type"]), str(error["message"])) if error is not None else None,
        time=data.get("time", 0.0),
        model=data.get("model", model),
    )


def _compact(event: TokenEvent, agent: str, model: str) -> dict[str, Any]:
    out: dict[str, Any] = {"kind": event.kind.value}
    if event.agent != agent:
        out["agent"] = event.agent
    if event.model != model:
        out["model"] = event.model
    if event.loop != 1:
        out["loop"] = event.loop
    if event.text:
        out["text"] = event.text
    if event.tool_call is not None:
        out["tool_call"] = event.tool_call.to_dict()
    if event.usage is not None:
        out["usage"] = event.usage.to_dict()
    if event.finish_reason is not None:
        out["finish_reason"] = event.finish_reason
    if event.error is not None:
        out["error"] = error_to_wire(event.error)
    if event.time != 0.0:
        out["time"] = event.time
    return out


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded broker message: consecutive events ``first..last`` of run ``run_id``; ``tokens`` counts the
    run's token events up to and including this message."""

    run_id: str
    first: int
    last: int
    tokens: int
    events: tuple[TokenEvent, ...]


def encode_message(events: Sequence[TokenEvent], tokens: int = 0) -> bytes:
    """One broker message holding ``events`` (consecutive seqs of one run, at least one); ``tokens`` is the
    run's token count up to and including them.

    Raises:
        ValueError: ``events`` is empty, mixes runs, or its seqs are not consecutive.
    """
    if not events:
        raise ValueError("events must hold at least one event, got none")
    head = events[0]
    run_id, first = head.run_id, head.seq
    for offset, event in enumerate(events):
        if event.run_id != run_id or event.seq != first + offset:
            raise ValueError(
                f"events must be consecutive events of one run: event {offset} is run {event.run_id!r} seq "
                f"{event.seq}, expected run {run_id!r} seq {first + offset}"
            )
    agent, model = head.agent, head.model
    envelope = {
        "v": WIRE_VERSION,
        "run_id": run_id,
        "agent": agent,
        "model": model,
        "first": first,
        "last": first + len(events) - 1,
        "tokens": tokens,
        "events": [_compact(event, agent, model) for event in events],
    }
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8", "surrogatepass")


def decode_message(payload: bytes) -> Message:
    """The events :func:`encode_message` put in ``payload``.

    Raises:
        BusError: ``payload`` is not a message in the wire format (or of a newer, unknown version).
    """
    try:
        data = json.loads(payload.decode("utf-8", "surrogatepass"))
        version = data["v"]
        if version != WIRE_VERSION:
            raise ValueError(f"wire version {version!r}, this rxagents reads version {WIRE_VERSION}")
        run_id, first, agent, model = data["run_id"], data["first"], data["agent"], data["model"]
        items = data["events"]
        events = tuple(_event(item, run_id, first + i, agent, model) for i, item in enumerate(items))
        last = first + len(events) - 1
        if not events or data["last"] != last or not isinstance(run_id, str) or not isinstance(first, int):
            raise ValueError(f"seq range {data['first']!r}..{data['last']!r} does not match its {len(events)} events")
        return Message(run_id, first, last, int(data["tokens"]), events)
    except (KeyError, TypeError, ValueError, UnicodeDecodeError) as error:
        raise BusError(f"not an rxagents bus message ({error!r}): {_preview(payload)}") from None


def _preview(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."
