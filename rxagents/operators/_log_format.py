"""The lines of the logging operators: :func:`format_event` for an event, a ``repr`` line for a text chunk."""

from __future__ import annotations

import math
import string
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeAlias

from rxagents._validate import fail
from rxagents.events import EventKind, TokenEvent

__all__ = [
    "DEFAULT_FILE_FORMAT",
    "DEFAULT_LOG_FORMAT",
    "Format",
    "Lines",
    "error_text",
    "format_event",
    "iso_time",
    "line_formatter",
]

#: A template, or a callable given each item (a TokenEvent, or a ``str`` chunk) and returning its line.
Format: TypeAlias = str | Callable[[Any], str]

#: ``log_to_file``'s line: ``2025-06-01T12:00:00.250000+00:00 Writer run-3 #7 token 'Hello'``.
DEFAULT_FILE_FORMAT = "{time} {agent} {run_id} #{seq} {kind} {detail}"
#: ``log_to``'s message (the logging record has its own time): ``Writer run-3 #7 token 'Hello'``.
DEFAULT_LOG_FORMAT = "{agent} {run_id} #{seq} {kind} {detail}"

_FIELDS = ("time", "timestamp", "kind", "agent", "run_id", "seq", "loop", "model", "text", "detail")


_second: tuple[int, str] = (0, "1970-01-01T00:00:00")  # the last whole second formatted (cheap cache)


def iso_time(seconds: float) -> str:
    """ISO-8601 UTC with microseconds, e.g. ``2025-06-01T12:00:00.250000+00:00``."""
    global _second
    whole = math.floor(seconds)
    micro = round((seconds - whole) * 1_000_000)
    if micro >= 1_000_000:
        whole, micro = whole + 1, micro - 1_000_000
    cached = _second
    if cached[0] != whole:
        cached = _second = (whole, datetime.fromtimestamp(whole, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S"))
    return f"{cached[1]}.{micro:06d}+00:00"


def _one_line(text: str) -> str:
    if "\n" in text or "\r" in text:
        return text.replace("\r", "\\r").replace("\n", "\\n")
    return text


def _detail(event: TokenEvent) -> str:
    kind = event.kind
    if kind is EventKind.TOOL_CALL and event.tool_call is not None:
        call = event.tool_call
        return f"index={call.index} id={call.id!r} name={call.name!r} arguments={call.arguments!r}"
    if kind is EventKind.USAGE and event.usage is not None:
        usage = event.usage
        return f"prompt={usage.prompt_tokens} completion={usage.completion_tokens} total={usage.total_tokens}"
    if kind is EventKind.FINISH:
        return f"finish_reason={event.finish_reason!r}"
    if kind is EventKind.ERROR and event.error is not None:
        return error_text(event.error)
    if kind is EventKind.START:
        return f"model={event.model!r}"
    return repr(event.text)


def error_text(error: BaseException) -> str:
    # Type name and message only: never an exception's repr/attributes (they may hold request details).
    return repr(f"{type(error).__name__}: {error}")


def format_event(event: TokenEvent, fmt: str = DEFAULT_FILE_FORMAT) -> str:
    """One line describing ``event``, from the template ``fmt``.

    Fields: ``time`` (ISO-8601 UTC from ``event.time``, the scheduler clock), ``timestamp`` (``event.time``
    in seconds), ``kind``, ``agent``, ``run_id``, ``seq``, ``loop``, ``model``, ``text`` (the delta,
    ``repr``-escaped) and ``detail`` (what the event carries, escaped: the text for token/reasoning/retry, the
    tool-call delta, usage counts, the finish reason, or ``"Type: message"`` for an error). The result never
    contains a line break.

    Example::

        >>> format_event(TokenEvent(EventKind.TOKEN, "Writer", "run-1", 3, text="Hi\\n", time=1.5))
        "1970-01-01T00:00:01.500000+00:00 Writer run-1 #3 token 'Hi\\n'"
    """
    if fmt is DEFAULT_FILE_FORMAT or fmt == DEFAULT_FILE_FORMAT:  # the common case, without str.format
        line = f"{iso_time(event.time)} {event.agent} {event.run_id} #{event.seq} {event.kind.value} {_detail(event)}"
        return _one_line(line)
    line = fmt.format(
        time=iso_time(event.time),
        timestamp=event.time,
        kind=event.kind.value,
        agent=event.agent,
        run_id=event.run_id,
        seq=event.seq,
        loop=event.loop,
        model=event.model,
        text=repr(event.text),
        detail=_detail(event),
    )
    return _one_line(line)


class _Blank:
    """A field a text chunk does not have (``agent``, ``seq``...): formats as ``""`` whatever the spec."""

    __slots__ = ()

    def __format__(self, spec: str) -> str:
        return ""

    def __str__(self) -> str:
        return ""

    def __repr__(self) -> str:
        return ""


_BLANK = _Blank()


def _format_chunk(item: object, time: float, fmt: str) -> str:
    """One line describing an item that is not an event (a buffer's ``str`` chunk), seen at ``time``.

    Its ``kind`` is ``chunk`` for a ``str`` (``item`` for anything else), ``text`` and ``detail`` are its
    ``repr`` (so a chunk is always one line), ``time``/``timestamp`` come from ``time`` (the scheduler
    clock when it arrived), and the event fields it lacks (``agent``, ``run_id``, ``seq``, ``loop``,
    ``model``) are empty.
    """
    kind = "chunk" if type(item) is str else "item"
    if fmt is DEFAULT_FILE_FORMAT:
        return _one_line(f"{iso_time(time)} {kind} {item!r}")
    if fmt is DEFAULT_LOG_FORMAT:
        return _one_line(f"{kind} {item!r}")
    text = repr(item)
    line = fmt.format(
        time=iso_time(time),
        timestamp=time,
        kind=kind,
        agent=_BLANK,
        run_id=_BLANK,
        seq=_BLANK,
        loop=_BLANK,
        model=_BLANK,
        text=text,
        detail=text,
    )
    return _one_line(line)


class Lines:
    """How one operator formats its lines: ``event(e)`` for a TokenEvent, ``chunk(item, time)`` for anything
    else; ``timed`` is whether chunk lines show a time (then the operator reads the scheduler clock)."""

    __slots__ = ("chunk", "event", "timed")

    def __init__(self, event: Callable[[TokenEvent], str], chunk: Callable[[object, float], str], timed: bool) -> None:
        self.event = event
        self.chunk = chunk
        self.timed = timed


def _uses_time(fmt: str) -> bool:
    for _, field, _, _ in string.Formatter().parse(fmt):
        if field is not None and field.split(".", 1)[0].split("[", 1)[0] in ("time", "timestamp"):
            return True
    return False


def line_formatter(fmt: Format, name: str) -> Lines:
    if callable(fmt):
        user = fmt

        def call(item: object) -> str:
            return _one_line(str(user(item)))

        def call_chunk(item: object, time: float) -> str:
            return _one_line(str(user(item)))

        return Lines(call, call_chunk, timed=False)
    if not isinstance(fmt, str):
        fail(name, "a template or a callable(event) -> str", fmt, hint="e.g. '{agent}: {text}'")
    probe = TokenEvent(EventKind.TOKEN, "agent", "run", 0, text="x")
    try:
        format_event(probe, fmt)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        fields = ", ".join("{" + f + "}" for f in _FIELDS)
        fail(
            name,
            "a valid template",
            fmt,
            hint=f"{type(exc).__name__}: {exc}; use named fields among {fields}",
        )

    if fmt == DEFAULT_FILE_FORMAT:
        fmt = DEFAULT_FILE_FORMAT  # the constant itself: the fast paths test identity
    elif fmt == DEFAULT_LOG_FORMAT:
        fmt = DEFAULT_LOG_FORMAT
    template_ = fmt

    def template(event: TokenEvent) -> str:
        return format_event(event, template_)

    def chunk(item: object, time: float) -> str:
        return _format_chunk(item, time, template_)

    return Lines(template, chunk, _uses_time(fmt))
