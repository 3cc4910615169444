"""The WebSocket server's send buffer: messages waiting for one client, merged when they pile up.

An Observable cannot be paused, so each connection has an :class:`Outbox` between the stream and the socket.
:meth:`Outbox.put` applies the server's slow-client policy (``max_buffer``, ``max_buffer_bytes``, ``on_slow``)
and says when the client is too slow; the connection's send task takes messages out with :meth:`Outbox.pop` and
hands them to the websocket, one at a time. Everything here runs on the server's loop.

The client is *behind* while the send task is stuck in ``send``: the connection's write buffer holds more than
``write_limit`` bytes the client has not read. Only what is queued while the client is behind — its *backlog* —
counts against ``max_buffer_bytes``:

- a burst the stream produced in one go, before the loop could run the send task, is not the client's doing:
  it is queued whole (adjacent text messages merged), however large, and sent as soon as the loop runs;
- one message larger than ``max_buffer_bytes`` (a huge token) is let through when nothing else waits behind;
- past that, a backlog over ``max_buffer_bytes`` means the client does not read fast enough: it is disconnected.
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
    """A message waiting to be sent; text messages can absorb the next ones (coalescing).

    It is encoded when its size is first needed: a message merged into another one in a burst never is.
    """

    __slots__ = ("_size", "encoded", "final", "late", "message", "parts")

    def __init__(self, message: dict[str, Any], *, final: bool = False) -> None:
        self.message = message
        self.final = final
        self.encoded: str | None = None
        self._size = -1
        self.parts: list[str] | None = None
        self.late = 0  # of its bytes, those queued while the client was behind (its share of the backlog)

    @property
    def size(self) -> int:
        """Its encoded length in bytes."""
        if self._size < 0:
            self._size = len(self.encode())
        return self._size

    def text(self) -> str:
        return "".join(self.parts) if self.parts is not None else str(self.message["content"])

    def can_absorb(self, other: Pending) -> bool:
        mine, theirs = self.message, other.message
        return mine["type"] in _TEXT_TYPES and all(mine.get(k) == theirs.get(k) for k in _MERGE_KEYS)

    def absorb(self, other: Pending) -> int:
        """Append ``other``'s text to this message; returns the bytes added."""
        text = other.text()
        size = self.size  # before the message changes
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
        self._size = size + added
        return added

    def encode(self) -> str:
        if self.encoded is None:
            if self.parts is not None:  # merged: the text of every absorbed message
                text = self.message["content"] = "".join(self.parts)
                if self.message["type"] == EventKind.REASONING.value:
                    self.message["reasoning"] = text
            self.encoded = dumps(self.message)
        return self.encoded


class Outbox:
    """The messages waiting for one client: at most ``max_buffer_bytes`` of backlog (see the module's docstring)."""

    def __init__(self, *, max_buffer: int, max_buffer_bytes: int, on_slow: OnSlow, counters: _Counters) -> None:
        self.max_buffer = max_buffer
        self.max_buffer_bytes = max_buffer_bytes
        self.on_slow: OnSlow = on_slow
        self.counters = counters
        self.items: deque[Pending] = deque()
        self.bytes = 0  # of the waiting messages, the final one excluded
        self.backlog = 0  # of those bytes, the ones queued while the client was behind: sum(item.late)

    def __len__(self) -> int:
        return len(self.items)

    def put(self, item: Pending, *, behind: bool) -> str | None:
        """Queue ``item``; returns why the client is too slow instead, if it is (the caller disconnects it).

        ``behind``: the send task is stuck in ``send``, waiting for the connection's write buffer to drain.
        When ``max_buffer`` messages are waiting, adjacent text messages of one run are merged — unless the
        client is behind and ``on_slow="disconnect"``: then it is too slow. A burst (not behind) is merged
        under either policy and never refused. While behind, the backlog may not exceed ``max_buffer_bytes``,
        except by one message queued alone. The final message is always queued.
        """
        items = self.items
        if item.final:
            items.append(item)
            return None
        target = item
        if len(items) < self.max_buffer:
            items.append(item)
            added = item.size
        elif self.on_slow == "disconnect" and behind:
            return f"too slow: {len(items)} messages waiting (max_buffer={self.max_buffer})"
        elif items[-1].can_absorb(item):
            target = items[-1]
            added = target.absorb(item)
            self.counters.coalesced += 1
        elif not behind:  # a burst of messages that cannot merge
            items.append(item)
            added = item.size
        else:
            self._compact()
            if len(items) >= self.max_buffer:  # nothing left to merge
                return f"too slow: {len(items)} messages waiting could not be merged"
            items.append(item)
            added = item.size
        self.bytes += added
        if behind:
            backlog, limit = self.backlog + added, self.max_buffer_bytes
            if backlog > limit and self.backlog:  # (alone, one message may exceed the limit)
                return f"too slow: {backlog} bytes waiting (max_buffer_bytes={limit})"
            target.late += added
            self.backlog = backlog
        counters = self.counters
        counters.peak_buffered = max(counters.peak_buffered, len(items))
        counters.peak_buffered_bytes = max(counters.peak_buffered_bytes, self.backlog)
        return None

    def pop(self) -> Pending:
        """The next message to send."""
        item = self.items.popleft()
        if not item.final:
            self.bytes -= item.size
            self.backlog -= item.late
        return item

    def clear(self) -> None:
        self.items.clear()
        self.bytes = self.backlog = 0

    def _compact(self) -> None:
        """Merge every run of adjacent text messages of one agent's run into one message."""
        merged: list[Pending] = []
        for item in self.items:
            if merged and not item.final and merged[-1].can_absorb(item):
                merged[-1].absorb(item)
                merged[-1].late += item.late
                self.counters.coalesced += 1
            else:
                merged.append(item)
        self.items.clear()
        self.items.extend(merged)
        self.bytes = sum(item.size for item in merged if not item.final)
