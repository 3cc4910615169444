"""The run grammar, defined once: :class:`RunGrammar` checks a stream of interleaved runs event by event.

A run is one ``run_id`` of one ``agent``::

    start (token | reasoning | tool_call | retry)* usage? finish        then on_completed
    start (token | reasoning | tool_call | retry)* error                then on_error

As a state diagram (``#n``: the event's ``seq``; every run counts from 0 with no gap or repeat and its event
times never go backwards)::

                start #0           token | reasoning | tool_call | retry
        (new) ──────────▶ open ◀──────┐
                           │ ─────────┘
                           │ usage                  finish
                           ├────────────▶ used ──────────────▶ ended
                           │ finish | error          │ error (only where a run may be cut)
                           └─────────────────────────┴───────▶ ended       (nothing after ended)

A run as *produced* (by :mod:`rxagents._run`, or drawn in marbles) puts ``usage`` right before ``finish``.
Downstream of operators a run may be **cut**: an operator that has to stop a run (a timeout, a budget, a
retry giving up) ends it with an ``error`` event wherever it is, after its ``usage`` too. ``cut=True`` (the
default) allows that, as :func:`~rxagents.operators.assert_well_formed` does;
:func:`~rxagents.testing.assert_well_formed_run` checks runs as produced (``cut=False``).
"""

from __future__ import annotations

import enum

from rxagents.events import TERMINAL_KINDS, EventKind, TokenEvent

__all__ = ["BODY_KINDS", "RunGrammar"]

#: Kinds that may come between a run's start and its usage or terminal event.
BODY_KINDS = frozenset({EventKind.TOKEN, EventKind.REASONING, EventKind.TOOL_CALL, EventKind.RETRY})


class _State(enum.Enum):
    OPEN = "open"
    USED = "used"  # after usage: only finish (or, cut, error) may follow
    ENDED = "ended"


class _Run:
    __slots__ = ("last_seq", "last_time", "state", "terminal")

    def __init__(self, event: TokenEvent) -> None:
        self.last_seq = event.seq
        self.last_time = event.time
        self.state = _State.OPEN
        self.terminal: EventKind | None = None


class RunGrammar:
    """The grammar state of the runs of one stream; :meth:`check` each event in order.

    Args:
        cut: whether a run may end with an ``error`` event after its ``usage`` (see the module docstring).

    >>> from rxagents.events import EventKind as K, TokenEvent as E
    >>> grammar = RunGrammar()
    >>> grammar.check(E(K.START, "A", "r1", 0)) is None
    True
    >>> grammar.check(E(K.TOKEN, "A", "r1", 2, text="x"))
    "run 'r1' of agent 'A': a gap in seq: #2 after #0, expected #1"
    """

    __slots__ = ("_runs", "cut")

    def __init__(self, *, cut: bool = True) -> None:
        self.cut = cut
        self._runs: dict[tuple[str, str], _Run] = {}

    def check(self, event: TokenEvent) -> str | None:
        """Take ``event``; the violation it makes (a message naming the run, the event and the rule), or None.

        An event that breaks the grammar is not taken into account.
        """
        key = (event.agent, event.run_id)
        run = self._runs.get(key)
        where = f"run {event.run_id!r} of agent {event.agent!r}"
        kind = event.kind
        if run is None:
            if kind is not EventKind.START:
                return f"{where} begins with {kind.value} #{event.seq}: missing start (a run starts with a start event)"
            if event.seq != 0:
                return f"{where} starts at seq {event.seq}, expected 0"
            self._runs[key] = _Run(event)
            return None
        if run.state is _State.ENDED:
            assert run.terminal is not None
            return (
                f"{where}: {kind.value} #{event.seq} cannot appear inside a run after its terminal "
                f"{run.terminal.value} event"
            )
        if kind is EventKind.START:
            return f"{where}: a second start (#{event.seq}) cannot appear inside a run"
        if event.seq != run.last_seq + 1:
            what = "duplicate or out-of-order seq" if event.seq <= run.last_seq else "a gap in seq"
            return f"{where}: {what}: #{event.seq} after #{run.last_seq}, expected #{run.last_seq + 1}"
        if event.time < run.last_time:
            return f"{where}: time went backwards at #{event.seq} ({event.time} < {run.last_time})"
        if run.state is _State.USED and not (kind is EventKind.FINISH or (kind is EventKind.ERROR and self.cut)):
            return f"{where}: {kind.value} #{event.seq} after usage (usage comes at most once, right before finish)"
        if kind is EventKind.ERROR and event.error is None:
            return f"{where}: error event #{event.seq} carries no exception"
        run.last_seq = event.seq
        run.last_time = event.time
        if kind is EventKind.USAGE:
            run.state = _State.USED
        elif kind in TERMINAL_KINDS:
            run.state = _State.ENDED
            run.terminal = kind
        return None

    def open_runs(self) -> list[tuple[str, str]]:
        """The ``(agent, run_id)`` of every run started and not ended, in the order they started."""
        return [key for key, run in self._runs.items() if run.state is not _State.ENDED]
