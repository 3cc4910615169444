"""Chunking: re-split the token text into complete words, lines, sentences, or pieces ending at a regex.

Tokens split text anywhere (``"Hel"``, ``"lo wor"``, ``"ld.\\n"``); ``chunk_by`` re-splits it at
meaningful boundaries and emits each unit once it is complete. A unit is the text up to and including its
delimiter (like ``str.splitlines(keepends=True)``), so the units always add up to the text that arrived.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

from reactivex import Observable, abc

from rxagents._validate import fail
from rxagents.events import EventKind, TokenEvent
from rxagents.operators._held import HeldTail

__all__ = ["chunk_by"]

_TOKEN = EventKind.TOKEN
_WHITESPACE = re.compile(r"\s")


_SENTENCE_TAIL = frozenset(".!?…\"'”’)]")


def _never(ch: str) -> bool:
    return False


def _is_space(ch: str) -> bool:
    return ch.isspace()


def _is_sentence_tail(ch: str) -> bool:
    return ch.isspace() or ch in _SENTENCE_TAIL


class _Unit(NamedTuple):
    """How to find the end of a unit."""

    delimiter: re.Pattern[str]
    eager: bool  # a delimiter match at the very end of the buffered text is final (it cannot grow)
    trigger: re.Pattern[str] | None  # a new text without a match of this cannot complete a unit; None: any
    # characters a delimiter match consists of: a match still to come starts in the trailing run of these
    # (None: unknown, rescan the pending text from its start)
    tail: Callable[[str], bool] | None


_UNITS: dict[str, _Unit] = {
    # a word with the whitespace after it: "Hello " — complete when the next word starts
    "word": _Unit(re.compile(r"(?<=\S)\s+"), False, _WHITESPACE, _is_space),
    # a line with its "\n" — complete as soon as the "\n" arrives
    "line": _Unit(re.compile(r"\n"), True, re.compile(r"\n"), _never),
    # a sentence with the whitespace after it: ends at . ! ? … (plus closing quotes or brackets) followed by
    # whitespace, or at a line break — complete when the next sentence starts
    "sentence": _Unit(
        re.compile(r"[.!?…]+[\"'”’)\]]*\s+|(?<=\S)[^\S\n]*\n\s*"), False, _WHITESPACE, _is_sentence_tail
    ),
}


class _Pending:
    """The text received but not yet emitted, kept so that each character is searched about once.

    ``head`` holds text no delimiter can start in (it is only ever joined into a unit); ``scan`` the rest,
    which is searched when new text arrives. Built-in units know which characters a delimiter consists of,
    so ``scan`` is just the trailing run of those; for a user regex ``head`` stays empty and the whole
    pending text is searched again (cost grows with the length of a unit).
    """

    __slots__ = ("head", "scan", "unit")

    def __init__(self, unit: _Unit) -> None:
        self.unit = unit
        self.head: list[str] = []
        self.scan = ""

    def feed(self, text: str, final: bool) -> list[str]:
        """Add ``text``; return the units now complete (with ``final``, everything)."""
        unit = self.unit
        head = self.head
        context = head[-1][-1] if head else ""  # one character before ``scan``, for lookbehinds
        buf = context + self.scan + text
        pos = len(context)
        size = len(buf)
        units: list[str] = []
        start = pos
        for match in unit.delimiter.finditer(buf, pos):
            end = match.end()
            if end >= size and not (final or unit.eager):
                break  # the delimiter may still grow (or, for a lookahead, not match) with more text
            if end > start:
                if head:
                    units.append("".join(head) + buf[start:end])
                    head.clear()
                else:
                    units.append(buf[start:end])
                start = end
        if final:
            if start < size or head:
                units.append("".join(head) + buf[start:])
            head.clear()
            self.scan = ""
            return units
        self._keep(buf[start:])
        return units

    def add(self, text: str) -> None:
        """Add ``text`` that cannot complete a unit (the caller checked), without searching it."""
        self._keep(self.scan + text)

    def _keep(self, rest: str) -> None:
        """Make ``rest`` the unsearched text, moving what no delimiter can start in to ``head``."""
        keep = self.unit.tail
        if keep is not None:
            i = len(rest)
            while i > 0 and keep(rest[i - 1]):
                i -= 1
            if i:
                self.head.append(rest[:i])
                rest = rest[i:]
        self.scan = rest

    @property
    def ends_with_space(self) -> bool:
        scan = self.scan
        return scan[-1].isspace() if scan else bool(self.head) and self.head[-1][-1].isspace()

    def clear(self) -> None:
        self.head.clear()
        self.scan = ""


_UNIT = "'word', 'line', 'sentence', a regular expression (str) or an re.Pattern"


def _unit(unit: str | re.Pattern[str]) -> _Unit:
    if isinstance(unit, re.Pattern):
        if not isinstance(unit.pattern, str):
            fail("unit", "an re.Pattern of str", unit, hint="compile a str pattern, not bytes")
        return _Unit(unit, False, None, None)
    if not isinstance(unit, str):
        fail("unit", _UNIT, unit)
    builtin = _UNITS.get(unit)
    if builtin is not None:
        return builtin
    if re.fullmatch(r"[a-z]+", unit):
        fail("unit", _UNIT, unit, hint=f"to split after the literal text {unit!r}, pass re.compile({unit!r})")
    if not unit:
        fail("unit", _UNIT, unit, hint="an empty pattern would match everywhere")
    try:
        return _Unit(re.compile(unit), False, None, None)
    except re.error as exc:
        fail("unit", _UNIT, unit, hint=f"it is not a valid regular expression: {exc}")


def chunk_by(unit: str | re.Pattern[str]) -> Callable[[Observable[TokenEvent]], Observable[str]]:
    """Re-split the token text into complete units: words, lines, sentences, or pieces ending at a regex.

    Each unit is emitted (as a ``str``) once it is complete; it ends with its delimiter:

    * ``"word"``: a word with the whitespace after it (``"Hello "``); complete when the next word starts.
    * ``"line"``: a line with its ``"\\n"``; complete as soon as the ``"\\n"`` arrives.
    * ``"sentence"``: up to ``.``, ``!``, ``?`` or ``…`` (with closing quotes or brackets) and the whitespace
      after it, or up to a line break; complete when the next sentence starts. It is a heuristic:
      ``"e.g. this"`` splits after ``"e.g. "``; ``"3.14"`` does not split.
    * a regex (``str`` or ``re.Pattern``): a unit ends where a match of it ends (``r"\\n\\n"`` for
      paragraphs, ``r"[,;]\\s*"`` for clauses). A match touching the end of the text received so far waits
      for more text, as it might still grow; the pattern is matched against the text after the last unit
      (searched again as text arrives, so keep units short; the built-in units search each character once).

    What is left when the stream completes is emitted as the last unit; on an error it is emitted before
    the same error. Units add up to the token text that arrived (nothing lost, nothing repeated). Other
    events are dropped; no empty unit is emitted.

    .. code-block:: text

        source:               -s-a---b---c---d-f-|      a="Hel", b="lo wor", c="ld.\\nBye", d="!"
        chunk_by("word"):     -------W---X-------(Y|)   W="Hello ", X="world.\\n", Y="Bye!" (the tail)
        chunk_by("line"):     -----------X-------(Y|)   X="Hello world.\\n", Y="Bye!"
        chunk_by("sentence"): -----------X-------(Y|)   X="Hello world.\\n", Y="Bye!"

        source:               -s-a---b---#
        chunk_by("word"):     -------W---(X#)           W="Hello ", X="wor" (the tail), then the error

    Args:
        unit: ``"word"``, ``"line"``, ``"sentence"``, or a regular expression (``str`` or compiled) matching
            the end of a unit. A plain lower-case word that is not one of the three names is rejected (it is
            almost always a typo); pass ``re.compile("and")`` to split after a literal word.

    Returns:
        An operator from TokenEvents to units of text (``str``).

    Raises:
        ValueError: an unknown unit name or an invalid regular expression.
        TypeError: ``unit`` is neither a ``str`` nor a ``re.Pattern`` of ``str``.

    Example::

        agent.stream(task).pipe(chunk_by("sentence")).subscribe(speak)
    """
    spec = _unit(unit)
    trigger = spec.trigger

    def operator(source: Observable[TokenEvent]) -> Observable[str]:
        def subscribe(
            observer: abc.ObserverBase[str], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            pending = _Pending(spec)
            emit = observer.on_next

            def send(units: list[str]) -> None:
                for piece in units:
                    if tail.disposed:  # the consumer disposed from inside on_next
                        return
                    emit(piece)

            def on_next(event: TokenEvent) -> None:
                text = event.text
                if event.kind is not _TOKEN or not text:
                    return
                if trigger is not None and trigger.search(text) is None and not pending.ends_with_space:
                    pending.add(text)  # it cannot complete a unit
                    return
                send(pending.feed(text, False))

            def flush() -> None:
                send(pending.feed("", True))

            tail = HeldTail(observer, flush, pending.clear)
            return tail.subscribe(source, on_next, scheduler)

        return Observable(subscribe)

    return operator
