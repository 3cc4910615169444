"""Plain streaming console output: a header, a rule, then the text as it arrives.

Each token is written once and never redrawn, so the cost is linear in the answer's length. The output is plain
text (no ANSI codes, no cursor movement), so it reads the same in a terminal, a CI log or a file.
"""

from __future__ import annotations

import logging
import shutil
import sys
from collections.abc import Callable
from typing import TextIO

import reactivex
from reactivex import Observable, abc

from rxagents.events import EventKind, TokenEvent

__all__ = ["ConsolePrinter", "console_printer"]

log = logging.getLogger("rxagents")


class ConsolePrinter:
    """Writes the events of a run to ``file`` (default: ``sys.stdout`` at write time)::

        🤖 Agent: NAME | Loops: N
        ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━
        text appears token by token...

    Call it with each event (``printer(event)``); it is what ``Agent.run`` uses with ``streaming_on=True``.

    Args:
        agent_name: the name in the header; ``None``: the name of the agent whose ``start`` event it is, so
            one printer can show runs one after another (each gets its own header).
        max_loops: shown as ``| Loops: N``; ``None`` leaves that part out.
        file: where to write; default ``sys.stdout`` (looked up at each write).
        width: the rule's width; default the terminal's (at most 100; 64 when not a terminal).
    """

    def __init__(
        self, agent_name: str | None, max_loops: int | None, file: TextIO | None = None, width: int | None = None
    ) -> None:
        self.agent_name = agent_name
        self.max_loops = max_loops
        self._file = file
        self.width = width
        self._loops: dict[str, int] = {}
        self._current: str | None = None
        self._at_line_start = True

    @property
    def file(self) -> TextIO:
        return self._file if self._file is not None else sys.stdout

    def _write(self, text: str) -> None:
        if text:
            self.file.write(text)
            self._at_line_start = text.endswith("\n")

    def header(self, agent: str | None = None) -> str:
        """The header and rule printed when a run starts."""
        name = self.agent_name if self.agent_name is not None else (agent or "Agent")
        width = self.width or min(shutil.get_terminal_size((64, 20)).columns, 100)
        loops = f" | Loops: {self.max_loops}" if self.max_loops is not None else ""
        return f"🤖 Agent: {name}{loops}\n{'━' * width}\n\n"

    def _switch(self, agent: str) -> None:
        """Runs of several agents interleaved (a merge): mark where another agent's text continues."""
        if self._current is not None and agent != self._current:
            self._write(("" if self._at_line_start else "\n") + f"[{agent}] ")
        self._current = agent

    def __call__(self, event: TokenEvent) -> None:
        kind = event.kind
        if kind is EventKind.TOKEN:
            self._switch(event.agent)
            loop = self._loops.get(event.agent, 1)
            if event.loop != loop:
                self._loops[event.agent] = event.loop
                self._write(("" if self._at_line_start else "\n") + f"\n── loop {event.loop} ──\n")
            self._write(event.text)
        elif kind is EventKind.START:
            self._write(("" if self._at_line_start else "\n") + self.header(event.agent))
            self._current = event.agent
            self._loops[event.agent] = 1
        elif kind is EventKind.FINISH:
            self._write("" if self._at_line_start else "\n")
        elif kind is EventKind.ERROR:
            lead = "" if self._at_line_start else "\n"
            self._write(f"{lead}[error] {type(event.error).__name__}: {event.error}\n")
        elif kind is EventKind.RETRY:
            self._write(f"\n[retrying: {event.text}]\n")
        else:
            return
        self.file.flush()


def console_printer(
    *, max_loops: int | None = None, file: TextIO | None = None, width: int | None = None
) -> Callable[[Observable[TokenEvent]], Observable[TokenEvent]]:
    """Print the stream as ``Agent.run(streaming_on=True)`` does; every event passes through unchanged.

    Each run's ``start`` prints the spec's header (``🤖 Agent: NAME | Loops: N`` and a rule); each token's
    text is written once, as it arrives (linear cost, plain text: fine for terminals, CI logs and files);
    an error prints ``[error] Type: message``. Runs one after another (a sequential chain) each get their
    header. Interleaved runs (a merge) are marked ``[NAME]`` where the writer changes; for several agents at
    once, :func:`~rxagents.sinks.dashboard` is easier to read. Writes happen on the thread delivering the
    events (for ``agent.stream``: the run's loop).

    .. code-block:: text

        source:  -s---a---b---f-|         a="Hel", b="lo"
        file:     H   Hel Hello\\n         (H = header and rule)
        output:  -s---a---b---f-|         (unchanged)

    Args:
        max_loops: shown in the header as ``| Loops: N``; ``None`` leaves it out.
        file: where to write; default ``sys.stdout`` at write time.
        width: the rule's width; default the terminal's (at most 100).

    Returns:
        An operator passing every event through unchanged.

    Example::

        text = agent.stream(task).pipe(console_printer(max_loops=1), collect_text()).run()
    """
    if max_loops is not None and (isinstance(max_loops, bool) or not isinstance(max_loops, int) or max_loops < 1):
        raise ValueError(f"max_loops must be an int >= 1 or None, got {max_loops!r}")
    if width is not None and (isinstance(width, bool) or not isinstance(width, int) or width < 1):
        raise ValueError(f"width must be an int >= 1 or None (the terminal's width), got {width!r}")

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            printer = ConsolePrinter(None, max_loops, file=file, width=width)
            broken = False

            def on_next(event: TokenEvent) -> None:
                nonlocal broken
                if not broken:
                    try:
                        printer(event)
                    except Exception as exc:  # a closed pipe or file must not break the stream
                        broken = True
                        log.warning("console_printer: writing failed; printing stopped", exc_info=exc)
                observer.on_next(event)

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return reactivex.create(subscribe)

    return operator
