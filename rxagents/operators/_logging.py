"""``log_to_file`` and ``log_to``: one line per event (or text chunk), to a file or to a stdlib logger."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any, Literal, TypeVar

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rxagents import _runtime
from rxagents._validate import check_int, check_kinds, check_scheduler, fail
from rxagents.events import EventKind, TokenEvent
from rxagents.operators._log_format import (
    DEFAULT_FILE_FORMAT,
    DEFAULT_LOG_FORMAT,
    Format,
    Lines,
    error_text,
    format_event,
    iso_time,
    line_formatter,
)

__all__ = ["DEFAULT_FILE_FORMAT", "DEFAULT_LOG_FORMAT", "format_event", "log_to", "log_to_file"]

_T = TypeVar("_T")

_MODES = {
    "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
    "w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
    "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL,
}


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
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path:
        fail("path", "a non-empty file path", path, hint="e.g. 'agent_stream.log' or a pathlib.Path")
    if not isinstance(mode, str) or mode not in _MODES:
        fail("mode", "'a' (append), 'w' (truncate) or 'x' (new file)", mode)
    try:
        "".encode(encoding)
    except (LookupError, TypeError):
        fail("encoding", "a text encoding", encoding, hint="e.g. 'utf-8'")
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
        fail("logger", "a logging.Logger or a logger name", logger, hint="e.g. 'myapp.agents'")
    for name, value in (("level", level), ("error_level", error_level)):
        check_int(name, value, minimum=0, hint="pass a logging level such as logging.INFO")
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
