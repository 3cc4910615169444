"""An incremental reader for ``text/event-stream`` bodies (the SSE wire format), bytes in, event data out.

It follows the parsing rules of the HTML standard's "Server-sent events" section
(https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream):

* a line ends with CRLF, LF or CR, and a CRLF split across two chunks is still one line end;
* a line starting with ``:`` is a comment; a blank line dispatches the event being built;
* ``field: value`` (one leading space of the value dropped; a line without a colon is a field with an empty
  value): ``data`` lines are joined with ``\\n``; ``id`` sets :attr:`SSEReader.last_event_id` (unless it
  holds NUL); ``retry`` with only ASCII digits sets :attr:`SSEReader.retry`; ``event`` and unknown fields
  are read and ignored (OpenAI-compatible servers do not name their events);
* an event with no ``data`` is not dispatched; a leading byte-order mark is skipped; at the end of the body
  an event not closed by a blank line is discarded.

:meth:`SSEReader.feed` takes the body's bytes as they arrive, split anywhere, and returns the ``data`` of every
event completed so far as **bytes**: the caller decodes them (UTF-8, strictly or not, as it chooses), so an
invalid byte fails the one event that holds it, in order, after the events before it were handed on. The
common line, ``data: {...}``, takes a fast path.
"""

from __future__ import annotations

__all__ = ["SSEReader"]

_BOM = b"\xef\xbb\xbf"


class SSEReader:
    """Turns chunks of an SSE body into the data of its events. One reader per body; not thread-safe.

    >>> reader = SSEReader()
    >>> reader.feed(b"data: hel")
    []
    >>> reader.feed(b"lo\\r\\n\\r\\n: a comment\\ndata: a\\ndata: b\\n\\n")
    [b'hello', b'a\\nb']
    """

    __slots__ = ("_data", "_pending", "_skip_lf", "_started", "last_event_id", "retry")

    def __init__(self) -> None:
        self._pending = b""  # an incomplete last line
        self._data: list[bytes] = []  # data lines of the event being built
        self._skip_lf = False  # the previous chunk ended with CR: a LF starting the next one belongs to it
        self._started = False  # past a possible byte-order mark
        #: The last ``id:`` field seen (the spec's "last event ID"), decoded leniently; "" until one arrives.
        self.last_event_id = ""
        #: The last valid ``retry:`` field, in milliseconds (the server's reconnection time), or None.
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[bytes]:
        """Read the next bytes of the body; returns the data of each event they complete, in order."""
        if not chunk:
            return []
        if not self._started:
            chunk = self._pending + chunk
            if len(chunk) < len(_BOM) and _BOM.startswith(chunk):
                self._pending = chunk  # could still be a BOM: wait for more
                return []
            self._pending = b""
            self._started = True
            if chunk.startswith(_BOM):
                chunk = chunk[len(_BOM) :]
        if self._skip_lf:
            self._skip_lf = False
            if chunk[:1] == b"\n":
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._skip_lf = chunk[-1:] == b"\r"
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if self._pending:
            chunk = self._pending + chunk
        lines = chunk.split(b"\n")
        self._pending = lines.pop()
        out: list[bytes] = []
        data = self._data
        for line in lines:
            if line[:6] == b"data: ":  # the fast path: nearly every line of a chat-completion stream
                data.append(line[6:])
            elif not line:
                if data:
                    out.append(data[0] if len(data) == 1 else b"\n".join(data))
                    data.clear()
            elif line[0] != 0x3A:  # not a ":" comment
                self._field(line)
        return out

    def _field(self, line: bytes) -> None:
        name, colon, value = line.partition(b":")
        if colon and value[:1] == b" ":
            value = value[1:]
        if name == b"data":
            self._data.append(value)
        elif name == b"id" and b"\0" not in value:
            self.last_event_id = value.decode("utf-8", "replace")
        elif name == b"retry" and value.isdigit():  # bytes.isdigit(): ASCII digits only, as the spec asks
            self.retry = int(value)
        # "event" and unknown fields: ignored

    def close(self) -> None:
        """The body ended: an event not closed by a blank line is discarded, as the spec says."""
        self._pending = b""
        self._data.clear()
