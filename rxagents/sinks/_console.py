"""Plain streaming console output: a header, a rule, then the text as it arrives.

Each token is written once and never redrawn, so the cost is linear in the answer's length. The output is plain
text (no ANSI codes, no cursor movement), so it reads the same in a terminal, a CI log or a file. On a terminal
the text is word-wrapped as it arrives (:mod:`rxagents.sinks._wrap`): line breaks are inserted between words
instead of the terminal splitting them at its last column.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import threading
from collections.abc import Callable
from typing import Any, TextIO

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable, SerialDisposable

from rxagents import _runtime
from rxagents._validate import check_bool, check_int, check_scheduler, check_str
from rxagents.events import EventKind, TokenEvent
from rxagents.sinks._wrap import StreamWrap

__all__ = ["ConsolePrinter", "console_printer"]

log = logging.getLogger("rxagents")

#: On a terminal, the longest :func:`console_printer` holds back the start of a word that may not fit on its line.
FRAME_SECONDS = 1 / 8


def _isatty(file: TextIO) -> bool:
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed file
        return False


def _check(max_loops: object, width: object, wrap: object) -> None:
    check_int("max_loops", max_loops, none="(leave the loop count out)")
    check_int("width", width, none="(the terminal's width)")
    check_bool("wrap", wrap, none="(wrap on a terminal)")


class ConsolePrinter:
    """Writes the events of a run to ``file`` (default: ``sys.stdout`` at write time)::

        🤖 Agent: NAME | Loops: N
        ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━
        text appears token by token...

    Call it with each event (``printer(event)``); it is what ``Agent.run`` uses with ``streaming_on=True``.
    Call it from one thread at a time.

    On a terminal (``file.isatty()``) the text is word-wrapped as it arrives: a line break goes between two
    words rather than the terminal splitting a word at its last column. To know whether a word that starts near
    the end of a line fits, its start may be held back until the next token, :meth:`flush` or the end of the
    run (``finish``/``error``/``retry``) writes it. Nothing is reordered or lost: the output is the text with
    line breaks inserted. Off a terminal the text is written exactly as it arrives.

    Args:
        agent_name: the name in the header; ``None``: the name of the agent whose ``start`` event it is, so
            one printer can show runs one after another (each gets its own header).
        max_loops: shown as ``| Loops: N``; ``None`` leaves that part out.
        file: where to write; default ``sys.stdout`` (looked up at each write).
        width: the rule's width (default the terminal's, at most 100; 64 when not a terminal) and, when
            wrapping, the line width (default the terminal's, read at each new line).
        wrap: word-wrap the text; default ``None``: when ``file`` is a terminal (checked at each ``start``).
    """

    def __init__(
        self,
        agent_name: str | None,
        max_loops: int | None,
        file: TextIO | None = None,
        width: int | None = None,
        *,
        wrap: bool | None = None,
    ) -> None:
        check_str("agent_name", agent_name, none="(each run's agent name from its events)")
        _check(max_loops, width, wrap)
        self.agent_name = agent_name
        self.max_loops = max_loops
        self._file = file
        self.width = width
        self.wrap = wrap
        self._loops: dict[str, int] = {}
        self._current: str | None = None
        self._at_line_start = True
        self._wrapper: StreamWrap | None = None
        self._wrap_decided = False

    @property
    def file(self) -> TextIO:
        return self._file if self._file is not None else sys.stdout

    def _write(self, text: str) -> None:
        if text:
            self.file.write(text)
            self._at_line_start = text.endswith("\n")
            if self._wrapper is not None:
                self._wrapper.wrote(text)

    # --- word wrapping on a terminal -----------------------------------------------------------------------
    def _columns(self) -> int:
        if self.width is not None:
            return self.width
        try:
            columns = os.get_terminal_size(self.file.fileno()).columns
        except (AttributeError, ValueError, OSError):  # not a real file descriptor (a wrapper, a fake)
            columns = 0
        return columns if columns > 0 else shutil.get_terminal_size((80, 24)).columns

    def _decide_wrap(self) -> None:
        wrap = self.wrap if self.wrap is not None else _isatty(self.file)
        if not wrap:
            self._wrapper = None
        elif self._wrapper is None:
            self._wrapper = StreamWrap(self._columns)
        self._wrap_decided = True

    def _write_text(self, text: str) -> None:
        if not self._wrap_decided:
            self._decide_wrap()
        wrapper = self._wrapper
        if wrapper is None:
            self._write(text)
            return
        out = wrapper.feed(text)
        if out:
            self.file.write(out)
            self._at_line_start = out.endswith("\n")

    def _release(self) -> None:
        """Write the partial word held back, if any (before anything else is written)."""
        wrapper = self._wrapper
        if wrapper is not None and wrapper.held:
            out = wrapper.flush()
            self.file.write(out)
            self._at_line_start = out.endswith("\n")

    @property
    def hold_episode(self) -> int | None:
        """While the start of a word is held back (wrapping), a number telling this hold from the next."""
        wrapper = self._wrapper
        return wrapper.holds if wrapper is not None and wrapper.held else None

    def flush(self) -> None:
        """Write the start of a word held back by wrapping now (a frame timer calls it), and flush ``file``."""
        if self.hold_episode is not None:
            self._release()
            self.file.flush()

    def header(self, agent: str | None = None) -> str:
        """The header and rule printed when a run starts."""
        name = self.agent_name if self.agent_name is not None else (agent or "Agent")
        width = self.width or min(shutil.get_terminal_size((64, 20)).columns, 100)
        loops = f" | Loops: {self.max_loops}" if self.max_loops is not None else ""
        return f"🤖 Agent: {name}{loops}\n{'━' * width}\n\n"

    def _switch(self, agent: str) -> None:
        """Runs of several agents interleaved (a merge): mark where another agent's text continues."""
        if self._current is not None and agent != self._current:
            self._release()
            self._write(("" if self._at_line_start else "\n") + f"[{agent}] ")
        self._current = agent

    def __call__(self, event: TokenEvent) -> None:
        kind = event.kind
        if kind is EventKind.TOKEN:
            self._switch(event.agent)
            loop = self._loops.get(event.agent, 1)
            if event.loop != loop:
                self._loops[event.agent] = event.loop
                self._release()
                self._write(("" if self._at_line_start else "\n") + f"\n── loop {event.loop} ──\n")
            self._write_text(event.text)
        elif kind is EventKind.START:
            self._release()
            self._decide_wrap()
            self._write(("" if self._at_line_start else "\n") + self.header(event.agent))
            self._current = event.agent
            self._loops[event.agent] = 1
        elif kind is EventKind.FINISH:
            self._release()
            self._write("" if self._at_line_start else "\n")
        elif kind is EventKind.ERROR:
            self._release()
            lead = "" if self._at_line_start else "\n"
            self._write(f"{lead}[error] {type(event.error).__name__}: {event.error}\n")
        elif kind is EventKind.RETRY:
            self._release()
            self._write(f"\n[retrying: {event.text}]\n")
        else:
            return
        self.file.flush()


def console_printer(
    *,
    max_loops: int | None = None,
    file: TextIO | None = None,
    width: int | None = None,
    wrap: bool | None = None,
    scheduler: abc.SchedulerBase | None = None,
) -> Callable[[Observable[TokenEvent]], Observable[TokenEvent]]:
    """Print the stream as ``Agent.run(streaming_on=True)`` does; every event passes through unchanged.

    Each run's ``start`` prints the spec's header (``🤖 Agent: NAME | Loops: N`` and a rule); each token's
    text is written once, as it arrives (linear cost, plain text: fine for terminals, CI logs and files);
    an error prints ``[error] Type: message``. Runs one after another (a sequential chain) each get their
    header. Interleaved runs (a merge) are marked ``[NAME]`` where the writer changes; for several agents at
    once, :func:`~rxagents.sinks.dashboard` is easier to read. Writes happen on the thread delivering the
    events (for ``agent.stream``: the run's loop).

    On a terminal the text is word-wrapped (see :class:`ConsolePrinter`): the start of a word that may not fit
    on its line is held until the next token, at most one frame (1/8 s, a timer on ``scheduler``), or
    the end of the stream, whichever comes first.

    .. code-block:: text

        source:  -s---a---b---f-|         a="Hel", b="lo"
        file:     H   Hel Hello\\n         (H = header and rule)
        output:  -s---a---b---f-|         (unchanged)

    Args:
        max_loops: shown in the header as ``| Loops: N``; ``None`` leaves it out.
        file: where to write; default ``sys.stdout`` at write time.
        width: the rule's width (default the terminal's, at most 100) and the line width when wrapping
            (default the terminal's).
        wrap: word-wrap the text; default ``None``: when ``file`` is a terminal.
        scheduler: runs the frame timer that writes a held word start; default the run's loop scheduler.
            Used only while wrapping holds something back.

    Returns:
        An operator passing every event through unchanged.

    Example::

        text = agent.stream(task).pipe(console_printer(max_loops=1), collect_text()).run()
    """
    _check(max_loops, width, wrap)
    check_scheduler(scheduler)

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            printer = ConsolePrinter(None, max_loops, file=file, width=width, wrap=wrap)
            lock = threading.Lock()  # events and the frame timer may come from different threads
            timer = SerialDisposable()
            broken = False
            armed: int | None = None  # the hold episode the timer is set for

            def attempt(action: Callable[[], None]) -> None:
                nonlocal broken
                if broken:
                    return
                try:
                    action()
                except Exception as exc:  # a closed pipe or file must not break the stream
                    broken = True
                    timer.dispose()
                    log.warning("console_printer: writing failed; printing stopped", exc_info=exc)

            def frame(_: abc.SchedulerBase, episode: Any = None) -> None:
                with lock:
                    if printer.hold_episode == episode:
                        attempt(printer.flush)

            def on_next(event: TokenEvent) -> None:
                nonlocal armed
                with lock:
                    attempt(lambda: printer(event))
                    episode = printer.hold_episode
                    if episode is not None and episode != armed and not broken:
                        armed = episode
                        timer.disposable = _runtime.default_scheduler(scheduler).schedule_relative(
                            FRAME_SECONDS, frame, episode
                        )
                observer.on_next(event)

            def end() -> None:
                with lock:
                    timer.dispose()
                    attempt(printer.flush)

            def on_error(error: Exception) -> None:
                end()
                observer.on_error(error)

            def on_completed() -> None:
                end()
                observer.on_completed()

            subscription = source.subscribe(on_next, on_error, on_completed, scheduler=subscribe_scheduler)
            return CompositeDisposable(subscription, Disposable(end))  # disposed: what was received is shown

        return reactivex.create(subscribe)

    return operator
