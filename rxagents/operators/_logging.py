"""``log_to_file`` and ``log_to``: one line per event, to a file or to a stdlib logger."""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal, TypeAlias

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rxagents.events import EventKind, TokenEvent

__all__ = ["DEFAULT_FILE_FORMAT", "DEFAULT_LOG_FORMAT", "format_event", "log_to", "log_to_file"]

Format: TypeAlias = str | Callable[[TokenEvent], str]

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


def _iso(seconds: float) -> str:
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
        return _error_text(event.error)
    if kind is EventKind.START:
        return f"model={event.model!r}"
    return repr(event.text)


def _error_text(error: BaseException) -> str:
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
        line = f"{_iso(event.time)} {event.agent} {event.run_id} #{event.seq} {event.kind.value} {_detail(event)}"
        return _one_line(line)
    line = fmt.format(
        time=_iso(event.time),
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


def _formatter(fmt: Format, name: str) -> Callable[[TokenEvent], str]:
    if callable(fmt):
        user = fmt

        def call(event: TokenEvent) -> str:
            return _one_line(str(user(event)))

        return call
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

    def template(event: TokenEvent) -> str:
        return format_event(event, fmt)

    return template


def _kinds(kinds: Iterable[EventKind | str] | None) -> frozenset[EventKind] | None:
    if kinds is None:
        return None
    if isinstance(kinds, str | EventKind):
        raise TypeError(f"kinds must be a collection of event kinds, e.g. ({kinds!r},), got {kinds!r}")
    try:
        chosen = frozenset(EventKind(kind) for kind in kinds)
    except ValueError as exc:
        raise ValueError(f"kinds: {exc}; valid kinds are {[k.value for k in EventKind]}") from None
    if not chosen:
        raise ValueError("kinds must name at least one event kind, or be None for all kinds")
    return chosen


class _FileLog:
    """One subscription of ``log_to_file``: the open file, written and flushed per event, closed once."""

    def __init__(
        self, observer: abc.ObserverBase[TokenEvent], fd: int, encoding: str, line: Callable[[TokenEvent], str]
    ) -> None:
        self.observer = observer
        self.fd = fd
        self.encoding = encoding
        self.line = line
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
) -> Callable[[Observable[TokenEvent]], Observable[TokenEvent]]:
    """Write one line per event to ``path`` and pass every event through unchanged.

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

    An ``on_error`` not preceded by an ``error`` event is logged as an ``error`` line too. If the file cannot
    be opened or written, the stream fails with that ``OSError`` (and upstream is released): a log you asked
    for never goes missing silently.

    Args:
        path: the log file.
        mode: ``"a"`` append (default), ``"w"`` truncate, ``"x"`` fail if the file exists.
        fmt: a template with the fields of :func:`format_event`, or a callable ``(event) -> str``.
        kinds: the event kinds to log; ``None`` (default) for all.
        encoding: the file's text encoding.

    Returns:
        An operator passing every event through unchanged.

    Example::

        stream = agent.stream("Analyze quarterly results").pipe(log_to_file("agent_stream.log"))
        async for event in to_async_iter(stream):
            ...
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
    line = _formatter(fmt, "fmt")
    chosen = _kinds(kinds)
    flags = _MODES[mode] | getattr(os, "O_CLOEXEC", 0)

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            try:
                fd = os.open(path, flags, 0o600)
            except OSError as exc:
                observer.on_error(exc)
                return Disposable()
            state = _FileLog(observer, fd, encoding, line)

            def on_next(event: TokenEvent) -> None:
                with state.lock:
                    if state.closed:
                        return
                    state.last_time = event.time
                    if chosen is None or event.kind in chosen:
                        if event.kind is EventKind.ERROR:
                            state.logged_error = True
                        try:
                            state.write(state.line(event))
                        except Exception as exc:
                            state.fail(exc)
                            return
                try:
                    observer.on_next(event)
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
                            state.write(f"{_iso(state.last_time)} on_error {_error_text(error)}")
                    state.close()
                observer.on_error(error)

            def on_completed() -> None:
                with state.lock:
                    if state.closed:
                        return
                    state.close()
                observer.on_completed()

            state.upstream = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)
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
) -> Callable[[Observable[TokenEvent]], Observable[TokenEvent]]:
    """Log one record per event to a stdlib ``logging`` logger and pass every event through unchanged.

    Lines are formatted only when the logger is enabled for the level. Each record carries the event as
    ``record.rxagents_event`` (``extra=``) for structured handlers. Error events are logged at
    ``error_level`` with ``Type: message`` only (no traceback, no exception repr).

    .. code-block:: text

        source:  -s--a--b--f-|
        output:  -s--a--b--f-|
        logger:   s  a  b  f         (one record each, at ``level``)

    Args:
        logger: a ``logging.Logger`` or a logger name.
        level: the level of the records.
        error_level: the level of ``error`` events.
        fmt: a template with the fields of :func:`format_event`, or a callable ``(event) -> str``.
        kinds: the event kinds to log; ``None`` (default) for all.

    Returns:
        An operator passing every event through unchanged.

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
    line = _formatter(fmt, "fmt")
    chosen = _kinds(kinds)
    target = logger

    def message(event: TokenEvent) -> tuple[int, str] | None:
        if chosen is not None and event.kind not in chosen:
            return None
        lvl = error_level if event.kind is EventKind.ERROR else level
        return (lvl, line(event)) if target.isEnabledFor(lvl) else None

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            upstream = SerialDisposable()
            failed = False

            def on_next(event: TokenEvent) -> None:
                nonlocal failed
                if failed:
                    return
                try:
                    record = message(event)
                except Exception as exc:  # a fmt callable raised: end the stream with it, not the producer
                    failed = True
                    upstream.dispose()
                    observer.on_error(exc)
                    return
                if record is not None:
                    target.log(record[0], "%s", record[1], extra={"rxagents_event": event})
                observer.on_next(event)

            def on_error(error: Exception) -> None:
                if not failed:
                    observer.on_error(error)

            def on_completed() -> None:
                if not failed:
                    observer.on_completed()

            upstream.disposable = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)
            return upstream

        return reactivex.create(subscribe)

    return operator
