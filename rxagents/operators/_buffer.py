"""Buffering: gather token text into larger ``str`` chunks, by count, characters, time, or time-or-count.

What the buffers emit is text, not events: each chunk is the concatenated text of consecutive ``token``
events. Other events (start, reasoning, tool calls, usage, finish, retry, error) are dropped; to act on
them, put ``tap_safe`` or a logging operator before the buffer (both also accept the ``str`` chunks a buffer
emits, so they work after it too). Token events with empty text are
ignored (they are not counted). No empty chunk is ever emitted.

Unlike the hand-written buffering callback of the swarms documentation, the tail is never lost: what is
buffered is emitted when the stream completes, and also when it fails — the chunk first, then the same
error — so the chunks always add up to the text that arrived (laws 6 and 7, docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reactivex import Observable, abc

from rxagents._validate import check_int, check_scheduler, check_seconds
from rxagents.events import EventKind, TokenEvent
from rxagents.operators._held import HeldTail, TimedEmitter, timed_operator

__all__ = ["buffer_chars", "buffer_time", "buffer_time_or_count", "buffer_tokens"]

_TOKEN = EventKind.TOKEN

Operator = Callable[[Observable[TokenEvent]], Observable[str]]


# --- by size (no clock) -----------------------------------------------------------------------------------


def _sized(count: int | None, chars: int | None) -> Operator:
    """Emit when ``count`` token texts or ``chars`` characters are buffered (whichever is given)."""

    def operator(source: Observable[TokenEvent]) -> Observable[str]:
        def subscribe(
            observer: abc.ObserverBase[str], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            parts: list[str] = []
            append = parts.append
            emit = observer.on_next
            size = 0

            if count is not None:
                limit = count

                def on_next(event: TokenEvent) -> None:
                    if event.kind is _TOKEN and event.text:
                        append(event.text)
                        if len(parts) >= limit:
                            chunk = "".join(parts)
                            parts.clear()
                            emit(chunk)

            else:
                assert chars is not None
                limit = chars

                def on_next(event: TokenEvent) -> None:
                    nonlocal size
                    if event.kind is _TOKEN and event.text:
                        append(event.text)
                        size += len(event.text)
                        if size >= limit:
                            chunk = "".join(parts)
                            parts.clear()
                            size = 0
                            emit(chunk)

            def flush() -> None:
                if parts:
                    chunk = "".join(parts)
                    parts.clear()
                    emit(chunk)

            return HeldTail(observer, flush, parts.clear).subscribe(source, on_next, scheduler)

        return Observable(subscribe)

    return operator


def buffer_tokens(count: int) -> Operator:
    """Text chunks of ``count`` token events each; the last chunk may be shorter.

    .. code-block:: text

        source:  -s-a-b-c-d-e-f-|          a..e token events, s start, f finish
        output:  -----X---Y-----(Z|)       buffer_tokens(2): X="ab", Y="cd", Z="e" (the tail)

        source:  -s-a-b-c-#
        output:  -----X---(Y#)             the tail "c" is emitted, then the same error

    Args:
        count: token events (with non-empty text) per chunk, >= 1.

    Returns:
        An operator from TokenEvents to text chunks (``str``).

    Raises:
        ValueError: ``count`` < 1.

    Example::

        agent.stream(task).pipe(buffer_tokens(20)).subscribe(lambda chunk: print(chunk, end="", flush=True))
    """
    return _sized(check_int("count", count), None)


def buffer_chars(min_chars: int) -> Operator:
    """Text chunks of at least ``min_chars`` characters; tokens are never split, the last chunk may be shorter.

    A chunk is emitted as soon as the buffered text reaches ``min_chars`` characters, so it is at most
    ``min_chars - 1`` plus one token's characters long.

    .. code-block:: text

        source:  -s-a---b---c---d-f-|      a="Hel", b="lo", c=" wor", d="ld"
        output:  -------X-------Y---|      buffer_chars(5): X="Hello", Y=" world"

        source:  -s-a---b---c---#
        output:  -------X-------(Y#)       the tail Y=" wor" is emitted, then the same error

    Args:
        min_chars: the least characters a chunk holds (except the tail), >= 1.

    Returns:
        An operator from TokenEvents to text chunks (``str``).

    Raises:
        ValueError: ``min_chars`` < 1.

    Example::

        agent.stream(task).pipe(buffer_chars(80)).subscribe(websocket_send)
    """
    return _sized(None, check_int("min_chars", min_chars))


# --- by time -----------------------------------------------------------------------------------------------


class _TimedBuffer(TimedEmitter[TokenEvent, str]):
    """One subscription of ``buffer_time`` / ``buffer_time_or_count``.

    The clock of a chunk starts when its first text arrives; the chunk is emitted ``seconds`` later, or
    sooner when ``count`` texts are buffered.
    """

    __slots__ = ("count", "generation", "parts", "seconds")

    def __init__(
        self,
        observer: abc.ObserverBase[str],
        seconds: float,
        count: int | None,
        scheduler: abc.SchedulerBase,
    ) -> None:
        super().__init__(observer, scheduler)
        self.seconds = seconds
        self.count = count
        self.parts: list[str] = []
        self.generation = 0  # identifies the chunk the pending timer belongs to

    def _take(self) -> tuple[str, abc.DisposableBase | None]:
        """The buffered chunk and the (now stale) timer; call with the lock held."""
        chunk = "".join(self.parts)
        self.parts.clear()
        self.generation += 1
        timer, self.timer = self.timer, None
        return chunk, timer

    def on_next(self, event: TokenEvent) -> None:
        if event.kind is not _TOKEN or not event.text:
            return
        stale = None
        try:
            with self.lock:
                if self.ended or self.disposed:
                    return
                parts = self.parts
                parts.append(event.text)
                if self.count is not None and len(parts) >= self.count:
                    chunk, stale = self._take()
                    self.observer.on_next(chunk)
                elif len(parts) == 1:
                    self.timer = self.scheduler.schedule_relative(self.seconds, self._fire, self.generation)
        finally:
            if stale is not None:
                stale.dispose()

    def _fire(self, _: abc.SchedulerBase, generation: Any = None) -> None:
        with self.lock:
            if self.disposed or generation != self.generation or not self.parts:
                return
            chunk, _timer = self._take()  # _timer is the one firing now
            self.observer.on_next(chunk)

    def _flush(self) -> None:
        """The tail, if any."""
        chunk, _timer = self._take()  # _timer is None: the end took it
        if chunk:
            self.observer.on_next(chunk)

    def _clear(self) -> None:
        self.parts.clear()


def _timed(seconds: float, count: int | None, scheduler: abc.SchedulerBase | None) -> Operator:
    def buffer(observer: abc.ObserverBase[str], clock: abc.SchedulerBase) -> _TimedBuffer:
        return _TimedBuffer(observer, seconds, count, clock)

    return timed_operator(buffer, scheduler)


def buffer_time(seconds: float, *, scheduler: abc.SchedulerBase | None = None) -> Operator:
    """Text chunks of what arrived within ``seconds`` of each chunk's first token.

    The first token of a chunk starts its clock; ``seconds`` later the chunk is emitted. No timer runs
    while nothing is buffered, and no empty chunk is emitted. Completion and errors flush the chunk at
    once (then complete, or fail with the same error); disposing cancels the pending timer.

    .. code-block:: text

        source:  -s-a-b-----c-------df|      a..d token events, s start, f finish
        output:  ------X-------Y------(Z|)   buffer_time(3): X="ab" (3 after a), Y="c" (3 after c),
                                             Z="d" (flushed at completion, before its 3 were up)

    Args:
        seconds: the longest a text waits in the buffer, > 0.
        scheduler: the clock; default: the run's loop scheduler (chosen at subscription).

    Returns:
        An operator from TokenEvents to text chunks (``str``).

    Raises:
        ValueError: ``seconds`` not a finite number > 0.

    Example::

        agent.stream(task).pipe(buffer_time(0.25)).subscribe(lambda chunk: print(chunk, end="", flush=True))
    """
    value = check_seconds("seconds", seconds)
    check_scheduler(scheduler)
    return _timed(value, None, scheduler)


def buffer_time_or_count(
    seconds: float, count: int, *, scheduler: abc.SchedulerBase | None = None
) -> Operator:
    """Text chunks of ``count`` token events, or fewer when ``seconds`` pass since the chunk's first token.

    A fast stream gives chunks of ``count`` tokens; a slow one never holds a token longer than ``seconds``.
    Completion and errors flush the chunk at once; disposing cancels the pending timer.

    .. code-block:: text

        source:  -s-a-b-c-d-e-------f-|    a..e token events
        output:  -------X------Y------|    buffer_time_or_count(5, 3): X="abc" (count reached),
                                           Y="de" (5 after d)

    Args:
        seconds: the longest a text waits in the buffer, > 0.
        count: token events (with non-empty text) per full chunk, >= 1.
        scheduler: the clock; default: the run's loop scheduler (chosen at subscription).

    Returns:
        An operator from TokenEvents to text chunks (``str``).

    Raises:
        ValueError: ``seconds`` not a finite number > 0, or ``count`` < 1.

    Example::

        agent.stream(task).pipe(buffer_time_or_count(0.5, 32)).subscribe(send_to_client)
    """
    value = check_seconds("seconds", seconds)
    size = check_int("count", count)
    check_scheduler(scheduler)
    return _timed(value, size, scheduler)
