"""The WebSocket server's send buffer: messages waiting for one client, merged when the client falls behind.

An Observable cannot be paused, so each connection has an :class:`Outbox` between the stream and the socket.
:meth:`Outbox.put` applies the server's slow-client policy (``max_buffer``, ``max_buffer_bytes``, ``on_slow``)
and says when the client is too slow; the connection's send task takes messages out with :meth:`Outbox.pop`.
Everything here runs on the server's loop.
"""

from __future__ import annotations

import json
from collections import deque
from typing import TYPE_CHECKING, Any, Literal

from rxagents.events import EventKind

if TYPE_CHECKING:
    from rxagents.sinks._websocket import _Counters

__all__ = ["OnSlow", "Outbox", "Pending", "dumps"]

#: What to do when a client's send buffer is full: merge pending text messages, or close the connection.
OnSlow = Literal["coalesce", "disconnect"]

_TEXT_TYPES = frozenset({EventKind.TOKEN.value, EventKind.REASONING.value})
_MERGE_KEYS = ("type", "agent", "run_id", "loop")


def dumps(message: dict[str, Any]) -> str:
    """Compact JSON. ASCII-only output: the string's length is the number of bytes sent."""
    return json.dumps(message, separators=(",", ":"))


class Pending:
    """A message waiting to be sent; text messages can absorb the next ones (coalescing)."""

    __slots__ = ("encoded", "final", "message", "parts", "size")

    def __init__(self, message: dict[str, Any], *, final: bool = False) -> None:
        self.message = message
        self.final = final
        self.encoded: str | None = dumps(message)
        self.size = len(self.encoded)
        self.parts: list[str] | None = None

    def text(self) -> str:
        return "".join(self.parts) if self.parts is not None else str(self.message["content"])

    def can_absorb(self, other: Pending) -> bool:
        mine, theirs = self.message, other.message
        return mine["type"] in _TEXT_TYPES and all(mine.get(k) == theirs.get(k) for k in _MERGE_KEYS)

    def absorb(self, other: Pending) -> int:
        """Append ``other``'s text to this message; returns the bytes added."""
        text = other.text()
        if self.parts is None:
            self.parts = [self.message["content"]]
        self.parts.append(text)
        theirs = other.message
        added = (len(json.dumps(text)) - 2) * (2 if self.message["type"] == EventKind.REASONING.value else 1)
        if "coalesced" not in self.message:
            added += 32  # the "last_seq" and "coalesced" keys
        self.message["last_seq"] = theirs.get("last_seq", theirs["seq"])
        self.message["coalesced"] = self.message.get("coalesced", 1) + theirs.get("coalesced", 1)
        self.encoded = None
        self.size += added
        return added

    def encode(self) -> str:
        if self.encoded is None:
            text = self.text()
            self.message["content"] = text
            if self.message["type"] == EventKind.REASONING.value:
                self.message["reasoning"] = text
            self.encoded = dumps(self.message)
        return self.encoded


class Outbox:
    """The messages waiting for one client, within ``max_buffer`` messages and ``max_buffer_bytes`` bytes."""

    def __init__(self, *, max_buffer: int, max_buffer_bytes: int, on_slow: OnSlow, counters: _Counters) -> None:
        self.max_buffer = max_buffer
        self.max_buffer_bytes = max_buffer_bytes
        self.on_slow: OnSlow = on_slow
        self.counters = counters
        self.items: deque[Pending] = deque()
        self.bytes = 0  # of the waiting messages, the final one excluded

    def __len__(self) -> int:
        return len(self.items)

    def put(self, item: Pending, *, behind: bool) -> str | None:
        """Queue ``item``; returns why the client is too slow instead, if it is (the caller disconnects it).

        ``behind``: the send task is stuck in ``send``, waiting for the connection's write buffer to drain.
        When ``max_buffer`` messages are waiting, adjacent text messages are merged — unless the client is
        behind and ``on_slow="disconnect"``: then the client is too slow. Merging a burst the stream produced
        faster than the loop could send it loses nothing, so it is done under either policy; only a client that
        does not read is disconnected. ``max_buffer_bytes`` bounds the outbox in every case. The final message
        is always queued.
        """
        counters, items = self.counters, self.items
        if item.final or len(items) < self.max_buffer:
            items.append(item)
            self.bytes += 0 if item.final else item.size
        elif self.on_slow == "disconnect" and behind:
            return f"too slow: {len(items)} messages waiting (max_buffer={self.max_buffer})"
        elif items[-1].can_absorb(item):
            self.bytes += items[-1].absorb(item)
            counters.coalesced += 1
        elif not behind:  # a burst of messages that cannot merge: max_buffer_bytes still bounds it
            items.append(item)
            self.bytes += item.size
        else:
            self._compact()
            if len(items) >= self.max_buffer:  # nothing left to merge
                return f"too slow: {len(items)} messages waiting could not be merged"
            items.append(item)
            self.bytes += item.size
        if self.bytes > self.max_buffer_bytes:
            return f"too slow: {self.bytes} bytes waiting (max_buffer_bytes={self.max_buffer_bytes})"
        counters.peak_buffered = max(counters.peak_buffered, len(items))
        counters.peak_buffered_bytes = max(counters.peak_buffered_bytes, self.bytes)
        return None

    def pop(self) -> Pending:
        """The next message to send."""
        item = self.items.popleft()
        if not item.final:
            self.bytes -= item.size
        return item

    def clear(self) -> None:
        self.items.clear()
        self.bytes = 0

    def _compact(self) -> None:
        """Merge every run of adjacent text messages of one agent's run into one message."""
        merged: list[Pending] = []
        for item in self.items:
            if merged and not item.final and merged[-1].can_absorb(item):
                merged[-1].absorb(item)
                self.counters.coalesced += 1
            else:
                merged.append(item)
        self.items.clear()
        self.items.extend(merged)
        self.bytes = sum(item.size for item in merged if not item.final)
