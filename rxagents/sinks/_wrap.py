"""Word-wrapping text that arrives in pieces, for an output that cannot take back what it wrote.

A terminal folds a line at its last column, splitting words (``Expl`` / ``ain``). :class:`StreamWrap` decides
where to insert line breaks as the pieces arrive, writing each character once and in order:

* spaces and tabs are written at once (a space that would pass the width goes to the next line);
* a word that starts a line is written at once (it can never move), and so is the rest of it;
* a word that starts mid-line is held while it is partial and still fits; it is written as soon as it ends
  (a space, a newline), as soon as it no longer fits (then after a line break), or when :meth:`flush` is
  called (the end of the run, or a frame timer: then a word that later grows past the width is folded
  by the terminal, the only case where a word shorter than the width is split);
* a word longer than the width gets a line of its own and is left to the terminal to fold.

So the output is the input with line breaks inserted: nothing is reordered, dropped or held past the next
piece or :meth:`flush`, and no line is wider than the width except one holding a single longer word.
Widths are counted in terminal cells (wide characters count 2); a tab advances to the next multiple of 8.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from rich.cells import cell_len

__all__ = ["StreamWrap"]

# a line end, a run of spaces/tabs, or a run of anything else (a word, or part of one)
_PIECES = re.compile(r"[\r\n]|[ \t]+|[^ \t\r\n]+")
_TAB = 8


def _cells(text: str) -> int:
    return len(text) if text.isascii() else cell_len(text)


class StreamWrap:
    """Inserts line breaks into a stream of text pieces so words are not split at ``columns()`` cells.

    :meth:`feed` takes a piece and returns the text to write now; :meth:`flush` returns what is held (a
    partial word). :meth:`wrote` accounts for text written around the wrapper (headers, markers), after a
    :meth:`flush`. ``columns`` is asked for the width at the start of each line (a terminal may be resized).

    >>> wrap = StreamWrap(lambda: 12)
    >>> [wrap.feed(piece) for piece in ["Please ", "expl", "ain it"]] + [wrap.flush()]
    ['Please ', '', '\\nexplain ', 'it']
    """

    __slots__ = ("_columns", "col", "held", "holds", "open", "width")

    def __init__(self, columns: Callable[[], int]) -> None:
        self._columns = columns
        #: Cells written on the current line.
        self.col = 0
        #: The partial word held back (not written yet).
        self.held = ""
        #: The cursor is right after a written word that may go on: more of it is written as it comes.
        self.open = False
        #: How many times a word started being held (tells one hold from the next, for a frame timer).
        self.holds = 0
        self.width = max(1, columns())

    def _new_line(self, out: list[str]) -> None:
        out.append("\n")
        self.col = 0
        self.width = max(1, self._columns())

    def _place(self, out: list[str], word: str, room_after: int) -> None:
        """Write ``word`` (not open), after a line break if it does not fit with ``room_after`` cells after it."""
        cells = _cells(word)
        if self.col > 0 and self.col + cells + room_after > self.width:
            self._new_line(out)
        out.append(word)
        self.col += cells

    def _spaces(self, out: list[str], run: str) -> None:
        for ch in run:
            cells = _TAB - self.col % _TAB if ch == "\t" else 1
            if self.col > 0 and self.col + cells > self.width:
                self._new_line(out)
                cells = _TAB if ch == "\t" else 1
            out.append(ch)
            self.col += cells

    def feed(self, text: str) -> str:
        """Take the next piece of text; return what to write now (the piece, maybe minus a held partial word,
        plus earlier held text and inserted line breaks)."""
        out: list[str] = []
        for match in _PIECES.finditer(text):
            piece = match.group()
            first = piece[0]
            if first in "\r\n":
                if self.held:
                    self._place(out, self.held, 0)
                    self.held = ""
                out.append(piece)
                self.col, self.open = 0, False
                self.width = max(1, self._columns())
            elif first in " \t":
                if self.held:
                    self._place(out, self.held, 1)  # the word is followed by a space: that must fit too
                    self.held = ""
                self.open = False
                self._spaces(out, piece)
            elif self.open:
                out.append(piece)
                self.col += _cells(piece)
            else:
                if not self.held:
                    self.holds += 1
                self.held += piece
        if self.held and (self.col == 0 or self.col + _cells(self.held) > self.width):
            # it starts a line, or cannot fit on this one whatever follows: its place is known now
            self._place(out, self.held, 0)
            self.held, self.open = "", True
        return "".join(out)

    def flush(self) -> str:
        """Write the held partial word now (the end of a run, or a frame later); more of it will follow it."""
        if not self.held:
            return ""
        out: list[str] = []
        self._place(out, self.held, 0)
        self.held, self.open = "", True
        return "".join(out)

    def wrote(self, text: str) -> None:
        """Account for ``text`` written directly (nothing may be held: :meth:`flush` first)."""
        if not text:
            return
        line_end = max(text.rfind("\n"), text.rfind("\r"))
        if line_end >= 0:
            self.col = _cells(text[line_end + 1 :])
            self.width = max(1, self._columns())
        else:
            self.col += _cells(text)
        self.open = False
