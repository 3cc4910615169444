"""Plain streaming console output: a header, a rule, then the text as it arrives.

Each token is written once and never redrawn, so the cost is linear in the answer's length.
"""

from __future__ import annotations

import shutil
import sys
from typing import TextIO

from rxagents.events import EventKind, TokenEvent

__all__ = ["ConsolePrinter"]


class ConsolePrinter:
    """Writes events of one run to ``file`` (default: ``sys.stdout`` at write time)::

        🤖 Agent: NAME | Loops: N
        ━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━
        text appears token by token...
    """

    def __init__(self, agent_name: str, max_loops: int, file: TextIO | None = None, width: int | None = None) -> None:
        self.agent_name = agent_name
        self.max_loops = max_loops
        self._file = file
        self.width = width
        self._loop = 1
        self._at_line_start = True

    @property
    def file(self) -> TextIO:
        return self._file if self._file is not None else sys.stdout

    def _write(self, text: str) -> None:
        if text:
            self.file.write(text)
            self._at_line_start = text.endswith("\n")

    def header(self) -> str:
        width = self.width or min(shutil.get_terminal_size((64, 20)).columns, 100)
        return f"🤖 Agent: {self.agent_name} | Loops: {self.max_loops}\n{'━' * width}\n\n"

    def __call__(self, event: TokenEvent) -> None:
        kind = event.kind
        if kind is EventKind.TOKEN:
            if event.loop != self._loop:
                self._loop = event.loop
                self._write(("" if self._at_line_start else "\n") + f"\n── loop {event.loop} ──\n")
            self._write(event.text)
        elif kind is EventKind.START:
            self._write(self.header())
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
