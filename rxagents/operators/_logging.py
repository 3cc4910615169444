"""``log_to_file`` and ``log_to``: one line per event (or text chunk), to a file or to a stdlib logger."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import string
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rxagents import _runtime
from rxagents._validate import check_kinds, check_scheduler
from rxagents.events import EventKind, TokenEvent

__all__ = ["DEFAULT_FILE_FORMAT", "DEFAULT_LOG_FORMAT", "format_event", "log_to", "log_to_file"]

#: A template, or a callable given each item (a TokenEvent, or a ``str`` chunk) and returning its line.
Format: TypeAlias = str | Callable[[Any], str]

_T = TypeVar("_T")

#: ``log_to_file``'s line: ``2025-06-01T12:00:00.250000+00:00 Writer run-3 #7 token 'Hello'``.
DEFAULT_FILE_FORMAT = "{time} {agent} {run_id} #{seq} {kind} {detail}"
#: ``log_to``'s message (the logging record has its own time): ``Writer run-3 #7 token 'Hello'``.
DEFAULT_LOG_FORMAT = "{agent} {run_id} #{seq} {kind} {detail}"

_FIELDS = ("time", "timestamp", "kind", "agent", "run_id", "seq", "loop", "model", "text", "detail")
_MODES = {
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
}


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
        raise TypeError(f"{name} must be a template or a callable(event) -> str, not {type(fmt).__name__}")
    probe = TokenEvent(EventKind.TOKEN, "agent", "run", 0, text="x")
    try:
        format_event(probe, fmt)
    except (KeyError, IndexError, ValueError, AttributeError) as exc:
        raise ValueError(
            f"{name}={fmt!r} is not a valid template ({type(exc).__name__}: {exc}); "
            f"use named fields among {', '.join('{' + f + '}' for f in _FIELDS)}"
        ) from None

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


class _FileLog:
    """One subscription of ``log_to_file``: the open file, written and flushed per item, closed once."""

    def __init__(
        self,
        observer: abc.ObserverBase[Any],
        fd: int,
        encoding: str,
        lines: Lines,
        clock: abc.SchedulerBase | None,
    ) -> None:
        self.observer = observer
        self.fd = fd
        self.encoding = encoding
        self.lines = lines
        self.clock = clock  # the scheduler timing chunk lines (None when the lines show no time)
        self.lock = threading.RLock()
        self.closed = False
        self.last_time = 0.0
        self.logged_error = False
        self.upstream: abc.DisposableBase | None = None

    def write(self, text: str) -> None:
        # One unbuffered write per line: nothing waits in a user-space buffer, so a crash loses nothing.
        data = (text + "\n").encode(self.encoding, "backslashreplace")
        while data:
            data = data[os.write(self.fd, data) :]

    def chunk_line(self, item: object) -> str:
        """The line of an item that is not an event; its time is the scheduler clock now."""
        if self.clock is not None:
            self.last_time = _runtime.clock(self.clock)
        return self.lines.chunk(item, self.last_time)

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            os.close(self.fd)

    def fail(self, error: Exception) -> None:
        self.close()
        if self.upstream is not None:
            self.upstream.dispose()
        self.observer.on_error(error)


def log_to_file(
    path: str | os.PathLike[str],
    *,
    mode: Literal["a", "w", "x"] = "a",
    fmt: Format = DEFAULT_FILE_FORMAT,
    kinds: Iterable[EventKind | str] | None = None,
    encoding: str = "utf-8",
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Write one line per event (or text chunk) to ``path`` and pass every item through unchanged.

    Unlike the spec's ``StreamLogger`` (which opens the file for every token and stamps it with the wall
    clock), the file is opened once per subscription, each line is flushed as it is written (a crash loses
    nothing already received), and the file is closed exactly once when the stream completes, fails or is
    disposed. Timestamps are ISO-8601 from each event's ``time`` (the scheduler clock), so logs of
    virtual-time runs are deterministic. Text is escaped (``repr``), so one event is always one line; errors
    are logged as ``Type: message`` only. A new file is created with permissions ``0600``.

    .. code-block:: text

        source:  -s----a----b----f-|
        output:  -s----a----b----f-|
        file:    open at subscribe; a line (written + flushed) per event; closed at "|"

        2025-06-01T12:00:00.000000+00:00 Writer run-1 #0 start model='offline'
        2025-06-01T12:00:00.250000+00:00 Writer run-1 #1 token 'Hello'
        2025-06-01T12:00:00.500000+00:00 Writer run-1 #2 token ' world\\n'
        2025-06-01T12:00:00.500000+00:00 Writer run-1 #3 finish finish_reason='stop'

    It also logs the ``str`` chunks of a buffer (put it before or after one): a chunk has no event fields,
    so its line is ``<time> chunk <repr(text)>``, the time read from the scheduler clock when the chunk
    arrives. ``kinds`` filters events only: every chunk is logged.

    .. code-block:: text

        source:  -X-----Y---(Z|)           buffer_tokens(20) chunks
        output:  -X-----Y---(Z|)

        2025-06-01T12:00:01.000000+00:00 chunk 'The cat sat on the mat, and then'
        2025-06-01T12:00:02.000000+00:00 chunk ' it slept.\\n'

    An ``on_error`` not preceded by an ``error`` event is logged as an ``error`` line too. If the file cannot
    be opened or written, the stream fails with that ``OSError`` (and upstream is released): a log you asked
    for never goes missing silently.

    Args:
        path: the log file.
        mode: ``"a"`` append (default), ``"w"`` truncate, ``"x"`` fail if the file exists.
        fmt: a template with the fields of :func:`format_event`, or a callable ``(item) -> str`` (given each
            event, or each chunk as it is). In a template, a chunk's ``kind`` is ``chunk``, its ``text`` and
            ``detail`` the ``repr`` of its text, and the event fields it lacks are empty.
        kinds: the event kinds to log; ``None`` (default) for all. Chunks are always logged.
        encoding: the file's text encoding.
        scheduler: the clock that times chunk lines; default: the run's loop scheduler (chosen at
            subscription). Event lines use each event's own ``time``.

    Returns:
        An operator passing every item (event or chunk) through unchanged.

    Example::

        stream = agent.stream("Analyze quarterly results").pipe(log_to_file("agent_stream.log"))
        async for event in to_async_iter(stream):
            ...

        # the chunks a client receives, one line each:
        agent.stream(task).pipe(buffer_tokens(20), log_to_file("chunks.log"), collect_text())
    """
    path = os.fspath(path)
    if not isinstance(path, str) or not path:
        raise ValueError(f"path must be a non-empty file path, got {path!r}")
    if mode not in _MODES:
        raise ValueError(f"mode must be 'a' (append), 'w' (truncate) or 'x' (new file), got {mode!r}")
    try:
        "".encode(encoding)
    except (LookupError, TypeError):
        raise ValueError(f"encoding must be a text encoding such as 'utf-8', got {encoding!r}") from None
    lines = line_formatter(fmt, "fmt")
    chosen = check_kinds(kinds)
    check_scheduler(scheduler)
    flags = _MODES[mode] | getattr(os, "O_CLOEXEC", 0)

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = _runtime.default_scheduler(scheduler) if lines.timed else None
            try:
                fd = os.open(path, flags, 0o600)
            except OSError as exc:
                observer.on_error(exc)
                return Disposable()
            state = _FileLog(observer, fd, encoding, lines, clock)
            event_line = lines.event

            def on_next(item: Any) -> None:
                with state.lock:
                    if state.closed:
                        return
                    try:
                        if type(item) is TokenEvent or (type(item) is not str and isinstance(item, TokenEvent)):
                            event: TokenEvent = item
                            state.last_time = event.time
                            if chosen is None or event.kind in chosen:
                                if event.kind is EventKind.ERROR:
                                    state.logged_error = True
                                state.write(event_line(event))
                        else:  # a text chunk (or any other item): always logged, timed by the scheduler
                            state.write(state.chunk_line(item))
                    except Exception as exc:
                        state.fail(exc)
                        return
                try:
                    observer.on_next(item)
                except BaseException:  # the consumer raised: it will not dispose us, so release now
                    state.close()
                    if state.upstream is not None:
                        state.upstream.dispose()
                    raise

            def on_error(error: Exception) -> None:
                with state.lock:
                    if state.closed:
                        return
                    if not state.logged_error and (chosen is None or EventKind.ERROR in chosen):
                        with contextlib.suppress(Exception):  # failing anyway: report the stream's own error
                            state.write(f"{iso_time(state.last_time)} on_error {error_text(error)}")
                    state.close()
                observer.on_error(error)

            def on_completed() -> None:
                with state.lock:
                    if state.closed:
                        return
                    state.close()
                observer.on_completed()

            state.upstream = source.subscribe(on_next, on_error, on_completed, scheduler=subscribe_scheduler)
            if state.closed:
                state.upstream.dispose()

            def dispose() -> None:
                if state.upstream is not None:
                    state.upstream.dispose()
                state.close()

            return Disposable(dispose)

        return reactivex.create(subscribe)

    return operator


def log_to(
    logger: logging.Logger | logging.LoggerAdapter[Any] | str,
    level: int = logging.INFO,
    *,
    error_level: int = logging.ERROR,
    fmt: Format = DEFAULT_LOG_FORMAT,
    kinds: Iterable[EventKind | str] | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[_T]], Observable[_T]]:
    """Log one record per event (or text chunk) to a stdlib ``logging`` logger; pass every item through.

    Lines are formatted only when the logger is enabled for the level. Each record carries the event as
    ``record.rxagents_event`` (``extra=``) for structured handlers. Error events are logged at
    ``error_level`` with ``Type: message`` only (no traceback, no exception repr).

    The ``str`` chunks of a buffer are logged too, at ``level``, as ``chunk <repr(text)>``; their records
    carry ``record.rxagents_event = None`` and the chunk as ``record.rxagents_chunk``. ``kinds`` filters
    events only: every chunk is logged.

    .. code-block:: text

        source:  -s--a--b--f-|
        output:  -s--a--b--f-|
        logger:   s  a  b  f         (one record each, at ``level``)

        source:  -X--Y--(Z|)         buffer chunks
        logger:   X  Y   Z           chunk 'The cat', chunk ' sat on', chunk ' the mat'

    Args:
        logger: a ``logging.Logger`` or a logger name.
        level: the level of the records.
        error_level: the level of ``error`` events.
        fmt: a template with the fields of :func:`format_event`, or a callable ``(item) -> str`` (given each
            event, or each chunk as it is).
        kinds: the event kinds to log; ``None`` (default) for all. Chunks are always logged.
        scheduler: the clock for the ``{time}``/``{timestamp}`` of chunk lines, read only when ``fmt``
            uses them; default: the run's loop scheduler (chosen at subscription).

    Returns:
        An operator passing every item (event or chunk) through unchanged.

    Example::

        stream = agent.stream(task).pipe(log_to("myapp.agents", logging.DEBUG, kinds=("start", "finish")))
    """
    if isinstance(logger, str):
        logger = logging.getLogger(logger)
    if not isinstance(logger, logging.Logger | logging.LoggerAdapter):
        raise TypeError(f"logger must be a logging.Logger or a logger name, got {type(logger).__name__}")
    for name, value in (("level", level), ("error_level", error_level)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{name} must be a logging level such as logging.INFO, got {value!r}")
    lines = line_formatter(fmt, "fmt")
    chosen = check_kinds(kinds)
    check_scheduler(scheduler)
    target = logger
    event_line = lines.event

    def operator(source: Observable[_T]) -> Observable[_T]:
        def subscribe(
            observer: abc.ObserverBase[_T], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            clock = _runtime.default_scheduler(scheduler) if lines.timed else None
            upstream = SerialDisposable()
            failed = False

            def record(item: object) -> tuple[int, str, dict[str, object]] | None:
                if type(item) is TokenEvent or (type(item) is not str and isinstance(item, TokenEvent)):
                    event: TokenEvent = item
                    if chosen is not None and event.kind not in chosen:
                        return None
                    lvl = error_level if event.kind is EventKind.ERROR else level
                    if not target.isEnabledFor(lvl):
                        return None
                    return lvl, event_line(event), {"rxagents_event": event}
                if not target.isEnabledFor(level):
                    return None
                time = _runtime.clock(clock) if clock is not None else 0.0
                return level, lines.chunk(item, time), {"rxagents_event": None, "rxagents_chunk": item}

            def on_next(item: _T) -> None:
                nonlocal failed
                if failed:
                    return
                try:
                    entry = record(item)
                except Exception as exc:  # a fmt callable raised: end the stream with it, not the producer
                    failed = True
                    upstream.dispose()
                    observer.on_error(exc)
                    return
                if entry is not None:
                    target.log(entry[0], "%s", entry[1], extra=entry[2])
                observer.on_next(item)

            def on_error(error: Exception) -> None:
                if not failed:
                    observer.on_error(error)

            def on_completed() -> None:
                if not failed:
                    observer.on_completed()

            upstream.disposable = source.subscribe(on_next, on_error, on_completed, scheduler=subscribe_scheduler)
            return upstream

        return reactivex.create(subscribe)

    return operator
