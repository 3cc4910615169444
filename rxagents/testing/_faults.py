"""What the local test model server sends back: scripted replies and injected faults.

These are plain frozen values; :mod:`rxagents.testing._server` turns them into HTTP. A :class:`Reply`
describes one completion (reasoning chunks, text chunks, tool calls, finish reason, usage, pacing) and may
carry one :data:`Fault` that corrupts how it is delivered. Fault positions are counted in *SSE events*:
``after=3`` means "exactly three ``data:`` events have been written, then the fault happens". Every reasoning
piece, text token and tool-call piece is one event; so are the finish chunk and the usage chunk.
``data: [DONE]`` is not counted.

The end of the module renders a reply in OpenAI's wire format (:class:`OpenAIReply`), kept next to the values
it renders so the server module is only about HTTP, lifecycle and observation.
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from rxagents.models._tool_calls import ToolCallSpec

__all__ = [
    "DropAfter",
    "EmptyStream",
    "Fault",
    "HttpError",
    "MalformedAfter",
    "NoDone",
    "RawBody",
    "Reply",
    "SlowFirstByte",
    "StallAfter",
    "ToolCallSpec",
    "UsageLike",
    "distinct_text",
    "words",
]


class UsageLike(Protocol):
    """Anything with OpenAI's three usage counters, e.g. :class:`rxagents.events.Usage`."""

    @property
    def prompt_tokens(self) -> int: ...

    @property
    def completion_tokens(self) -> int: ...

    @property
    def total_tokens(self) -> int: ...


# --- faults -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HttpError:
    """Answer with an HTTP error instead of a completion (before any body is sent).

    The body is OpenAI-shaped: ``{"error": {"message", "type", "param", "code"}}``. ``retry_after`` (seconds,
    or an HTTP date string) becomes the ``Retry-After`` header. ``error_type``/``code`` default from the
    status (429 → ``rate_limit_exceeded``, 5xx → ``server_error``, other 4xx → ``invalid_request_error``).
    """

    status: int = 500
    message: str | None = None
    retry_after: float | str | None = None
    error_type: str | None = None
    code: str | None = None


@dataclass(frozen=True, slots=True)
class DropAfter:
    """Abort the TCP connection after ``after`` events: no terminating chunk, no ``[DONE]``.

    Non-streaming requests are dropped before any response bytes are written.
    """

    after: int = 0


@dataclass(frozen=True, slots=True)
class MalformedAfter:
    """After ``after`` events, send one event whose data is truncated, invalid JSON - or, with
    ``invalid_utf8=True``, a complete chunk whose text holds bytes that are not UTF-8 (``\\xff\\xfe``).

    The stream then continues normally (rest of the reply and ``[DONE]``), so a lenient client that skips a
    bad line still gets the remainder. Non-streaming requests get a 200 with a truncated JSON body (with
    ``invalid_utf8=True``: the whole body, with the two bytes in the answer text).
    """

    after: int = 0
    invalid_utf8: bool = False


@dataclass(frozen=True, slots=True)
class StallAfter:
    """After ``after`` events, stop sending but keep the connection open.

    The handler stays parked until the client disconnects or the server stops; the server notices a client
    disconnect immediately (it watches the transport, not failed writes).
    """

    after: int = 0


@dataclass(frozen=True, slots=True)
class SlowFirstByte:
    """Wait ``delay`` seconds before sending the response headers, then reply normally."""

    delay: float = 1.0


@dataclass(frozen=True, slots=True)
class NoDone:
    """Send the whole stream (including finish and usage chunks) but omit the final ``data: [DONE]``.

    The HTTP response still ends cleanly. No effect on non-streaming requests.
    """


@dataclass(frozen=True, slots=True)
class EmptyStream:
    """A reply with no content at all.

    ``finish=False``: the stream is only ``data: [DONE]``. ``finish=True``: one finish chunk with an empty
    delta (plus the usage chunk if the client asked for usage), then ``[DONE]``. Non-streaming requests get a
    completion with empty content.
    """

    finish: bool = False


@dataclass(frozen=True, slots=True)
class RawBody:
    """Send exactly these bytes as the streaming body, for fuzzing SSE parsers.

    The response is a normal ``200`` with the usual SSE headers (``Content-Type: text/event-stream``); then each
    element of ``chunks`` is written as-is, in order, one write each, with the reply's ``token_delay`` between
    writes, and the body ends cleanly. Nothing is added: no ``data:`` framing, no ``[DONE]``, no usage. Chunks may
    split a line, an event or a multi-byte character anywhere, and may hold invalid UTF-8. The reply's other
    fields are ignored. Non-streaming requests get the concatenated bytes as a ``200`` JSON-typed body.
    """

    chunks: tuple[bytes, ...] = ()


Fault: TypeAlias = HttpError | DropAfter | MalformedAfter | StallAfter | SlowFirstByte | NoDone | EmptyStream | RawBody
"""Any one injected fault; ``isinstance(x, Fault)`` works."""


# --- replies ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """A scripted completion.

    - ``tokens``: the exact text chunks, one SSE event each. ``None`` means the server's default text (derived
      from the last user message) - unless ``tool_calls`` is non-empty, in which case ``None`` means no text.
    - ``reasoning``: ``delta.reasoning_content`` chunks, sent before the text.
    - ``tool_calls``: streamed after the text.
    - ``finish_reason``: ``None`` means ``"tool_calls"`` when there are tool calls, else ``"stop"``.
    - ``usage``: reported counts; ``None`` computes them (prompt ≈ words in all messages, completion = number
      of reasoning, text and tool-call chunks).
    - ``token_delay``: seconds between events (between writes, on a server with ``events_per_write`` > 1); ``None``
      uses the server's ``token_delay``.
    - ``fault``: how to break the delivery, see :data:`Fault`.
    """

    tokens: tuple[str, ...] | None = None
    reasoning: tuple[str, ...] = ()
    tool_calls: tuple[ToolCallSpec, ...] = ()
    finish_reason: str | None = None
    usage: UsageLike | None = None
    token_delay: float | None = None
    fault: Fault | None = None


def words(text: str) -> tuple[str, ...]:
    """Split ``text`` into word tokens that keep their leading space, so joining them gives ``text`` back.

    ``words("Hello big world")`` is ``("Hello", " big", " world")``; use it as ``Reply(tokens=words(...))``.
    """
    parts = text.split(" ")
    tokens = [part if i == 0 else " " + part for i, part in enumerate(parts)]
    return tuple(token for token in tokens if token)


# --- OpenAI wire format (used by the server)

_FILLER = words("This is deterministic filler text from a local test server, not a real language model.")


class OpenAIReply:
    """One :class:`Reply` to one request, rendered in OpenAI's wire format.

    ``events()`` gives the ``chat.completion.chunk`` dicts of a stream (content deltas, finish chunk, optional
    usage chunk with ``choices: []``); ``completion()`` gives one ``chat.completion`` dict. ``n`` numbers the
    response id (``chatcmpl-local-<n>``); ``default_tokens`` is the length of the default text.
    """

    def __init__(
        self, body: dict[str, Any], reply: Reply, *, n: int, default_tokens: int, distinct: bool = False
    ) -> None:
        self.body, self.reply, self.model = body, reply, str(body.get("model", ""))
        messages = [m for m in body["messages"] if isinstance(m, dict)]
        tokens = reply.tokens
        if tokens is None and reply.tool_calls:
            tokens = ()
        elif tokens is None:
            task = last_user_text(messages)
            tokens = distinct_text(self.model, task, default_tokens) if distinct else default_text(task, default_tokens)
        self.tokens = tokens
        self.id = f"chatcmpl-local-{n}"
        self.created = int(time.time())
        self.prompt_tokens = sum(len(_text_of(m.get("content")).split()) for m in messages)
        self.finish_reason = reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")

    def _base(self, kind: str) -> dict[str, Any]:
        return {"id": self.id, "object": kind, "created": self.created, "model": self.model}

    def chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**self._base("chat.completion.chunk"), "choices": [choice]}

    def usage(self, completion_tokens: int) -> dict[str, int]:
        if self.reply.usage is not None:
            counts = self.reply.usage
            return {
                "prompt_tokens": counts.prompt_tokens,
                "completion_tokens": counts.completion_tokens,
                "total_tokens": counts.total_tokens,
            }
        total = self.prompt_tokens + completion_tokens
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": completion_tokens, "total_tokens": total}

    def _usage_chunk(self, completion_tokens: int) -> dict[str, Any]:
        return {**self._base("chat.completion.chunk"), "choices": [], "usage": self.usage(completion_tokens)}

    def deltas(self) -> list[dict[str, Any]]:
        """The content deltas: reasoning pieces, then text tokens, then tool calls (header + argument pieces)."""
        deltas: list[dict[str, Any]] = [{"reasoning_content": piece} for piece in self.reply.reasoning]
        deltas += [{"content": token} for token in self.tokens]
        for n, call in enumerate(self.reply.tool_calls):
            function = {"name": call.name, "arguments": ""}
            deltas.append({"tool_calls": [{"index": n, "id": call.call_id(n), "type": "function",
                                           "function": function}]})  # fmt: skip
            pieces = call.argument_pieces()
            deltas += [{"tool_calls": [{"index": n, "function": {"arguments": piece}}]} for piece in pieces]
        if deltas:
            deltas[0] = {"role": "assistant", **deltas[0]}
        return deltas

    def events(self, *, include_usage: bool) -> list[dict[str, Any]]:
        deltas = self.deltas()
        events = [self.chunk(delta) for delta in deltas]
        events.append(self.chunk({}, self.finish_reason))
        if include_usage:
            events.append(self._usage_chunk(len(deltas)))
        return events

    def encoded_events(self, *, include_usage: bool) -> list[bytes]:
        """:meth:`events`, each as the bytes of ``json.dumps(event, separators=(",", ":"))``, cheaply: the chunks
        that only carry text (nearly all) are one template around each token's JSON string."""
        head, tail = compact_json(self.chunk({"content": ""})).split(b'"content":""', 1)
        head += b'"content":'
        out = []
        deltas = self.deltas()
        for delta in deltas:
            text = delta.get("content")
            if len(delta) == 1 and type(text) is str:
                out.append(head + _json_string(text).encode() + tail)
            else:
                out.append(compact_json(self.chunk(delta)))
        out.append(compact_json(self.chunk({}, self.finish_reason)))
        if include_usage:
            out.append(compact_json(self._usage_chunk(len(deltas))))
        return out

    def empty_events(self, *, include_usage: bool) -> list[dict[str, Any]]:
        events = [self.chunk({}, self.finish_reason)]
        if include_usage:
            events.append(self._usage_chunk(0))
        return events

    def completion(self, *, empty: bool) -> dict[str, Any]:
        reply = self.reply
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.tokens) or None}
        if empty:
            message["content"] = ""
        elif reply.reasoning:
            message["reasoning_content"] = "".join(reply.reasoning)
        if reply.tool_calls and not empty:
            message["tool_calls"] = [
                {"id": call.call_id(n), "type": "function",
                 "function": {"name": call.name, "arguments": call.arguments_json}}
                for n, call in enumerate(reply.tool_calls)
            ]  # fmt: skip
        finish = "stop" if empty else self.finish_reason
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        usage = self.usage(0 if empty else len(self.deltas()))
        return {**self._base("chat.completion"), "choices": [choice], "usage": usage}


def compact_json(obj: object) -> bytes:
    """``obj`` as compact JSON bytes, as the local server writes its events."""
    return json.dumps(obj, separators=(",", ":")).encode()


_json_string = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str (ensure_ascii=True)


def wants_usage(body: dict[str, Any]) -> bool:
    """Whether a request asked for a usage chunk (``stream_options.include_usage``)."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _text_of(content: object) -> str:
    """The text of a message ``content``: a string, or the text parts of a content-part list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def last_user_text(messages: list[Any]) -> str:
    """The text of the last ``user`` message (``""`` if there is none)."""
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def default_text(task: str, n: int) -> tuple[str, ...]:
    """``n`` word tokens: ``"Local test model reply to: <first 60 chars of task>."``, then filler words
    starting at a position chosen by a CRC of the task (deterministic across runs and processes)."""
    tokens = list(words(f"Local test model reply to: {' '.join(task.split())[:60]}."))[:n]
    start = zlib.crc32(task.encode())
    for i in range(n - len(tokens)):
        word = _FILLER[(start + i) % len(_FILLER)]
        tokens.append(word if word.startswith(" ") else " " + word)
    return tuple(tokens)


def distinct_text(model: str, task: str, n: int) -> tuple[str, ...]:
    """``n`` tokens that belong to this ``model`` and ``task`` only: ``" <key>:<k>"`` for k = 0 .. n-1, where
    ``key`` is 8 hex digits of a CRC of both. A token delivered twice, out of order or to another run (another
    model or task) then shows in the text a client received. Deterministic across runs and processes.

    >>> distinct_text("m", "task", 3)
    (' 3c22a1bf:0', ' 3c22a1bf:1', ' 3c22a1bf:2')
    """
    key = format(zlib.crc32(f"{model}\n{task}".encode()), "08x")
    return tuple(f" {key}:{k}" for k in range(n))
