"""Hypothesis strategies for token streams: texts split anywhere, well-formed runs, timed schedules.

With the law checker (``_laws``, ``_law_inputs``), this is the only part of ``rxagents.testing`` that
imports hypothesis, a test dependency (``pip install rxagents[test]``).

Example::

    from hypothesis import given
    from rxagents.testing import strategies as rst

    @given(rst.timed_runs())
    def test_my_pipeline_keeps_the_text(schedule):
        ...
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Sequence
from typing import Any, Literal, ParamSpec, TypeVar

from hypothesis import strategies as st

from rxagents.events import EventKind, TokenEvent, ToolCallDelta, Usage

__all__ = [
    "AGENT_ALPHABETS",
    "SEPARATORS",
    "errors",
    "gaps",
    "multi_agent_runs",
    "texts_split",
    "timed_runs",
    "token_runs",
]

Ending = Literal["finish", "error", "any"]
_P = ParamSpec("_P")
_T = TypeVar("_T")

#: Characters text operators split on (words, lines, sentences); drawn often by default.
SEPARATORS = " \n.,!?\t"

#: Pairwise disjoint alphabets (:func:`multi_agent_runs` gives agent ``i`` the ``i``-th), so the
#: text of each agent can be told apart in any merged output by its characters alone.
AGENT_ALPHABETS: tuple[str, ...] = (
    "abcdefghé .\n",
    "KLMNOPQRΩ\t!;",
    "0123456789中?\r",
    "stuvwxyzß,:-",
)

_DEFAULT_GAPS = (0.0, 0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


def _chars(alphabet: str | None) -> st.SearchStrategy[str]:
    if alphabet is not None:
        if not alphabet:
            raise ValueError("alphabet must not be empty, got ''")
        return st.characters(categories=(), include_characters=alphabet)
    return st.characters(codec="utf-8")


_SEPARATOR_PIECES = (" ", "\n", ". ", "! ", "?", "\t", ", ", "\n\n")


def texts_split(
    *,
    alphabet: str | None = None,
    min_pieces: int = 0,
    max_pieces: int = 12,
    max_piece_size: int = 6,
    allow_empty: bool = False,
) -> st.SearchStrategy[list[str]]:
    """A text split at random boundaries: the list of pieces a model might stream.

    Pieces are drawn from ``alphabet`` (default: any Unicode code point except surrogates, so
    multi-byte characters, combining marks and emoji appear, with separator pieces such as
    ``" "``, ``"\\n"`` and ``". "`` mixed in). A split never falls inside a code point; it may fall
    between a base character and its combining mark.

    Args:
        alphabet: the characters to draw from, or None for the default mix.
        min_pieces: fewest pieces.
        max_pieces: most pieces.
        max_piece_size: longest piece in characters.
        allow_empty: whether a piece may be ``""`` (models do send empty deltas).

    Example:
        >>> texts_split(alphabet="ab ", max_pieces=3).example()  # doctest: +SKIP
        ['a', 'b b', 'ba']
    """
    if min_pieces < 0 or max_pieces < min_pieces:
        raise ValueError(f"need 0 <= min_pieces <= max_pieces, got {min_pieces} and {max_pieces}")
    if max_piece_size < 1:
        raise ValueError(f"max_piece_size must be >= 1, got {max_piece_size}")
    piece = st.text(_chars(alphabet), min_size=0 if allow_empty else 1, max_size=max_piece_size)
    if alphabet is None:
        piece = st.one_of(piece, st.sampled_from(_SEPARATOR_PIECES))
    return st.lists(piece, min_size=min_pieces, max_size=max_pieces)


_ERRORS = st.sampled_from([ConnectionError, TimeoutError, RuntimeError, ValueError]).map(
    lambda cls: cls(f"injected {cls.__name__}")
)


def errors() -> st.SearchStrategy[Exception]:
    """Fresh exceptions of the kinds a model stream fails with."""
    return _ERRORS


def gaps(values: Sequence[float] = _DEFAULT_GAPS) -> st.SearchStrategy[float]:
    """Gaps between events in virtual seconds (0 means "in the same instant"); shrinks to the first value."""
    if not values or any(v < 0 for v in values):
        raise ValueError(f"gap values must be a non-empty sequence of numbers >= 0, got {values!r}")
    return st.sampled_from(tuple(values))


_EXTRA_ARGS = ('{"q": ', '"x"', "}", "")


def _check_token_runs(*, ending: str = "any", **_: Any) -> None:
    if ending not in ("finish", "error", "any"):
        raise ValueError(f"ending must be 'finish', 'error' or 'any', got {ending!r}")


def _check_multi_agent_runs(
    *,
    agents: Sequence[str] = ("A", "B", "C"),
    min_agents: int = 2,
    ending: str = "any",
    disjoint: bool = True,
    texts: Sequence[Any] | None = None,
    **_: Any,
) -> None:
    if not 1 <= min_agents <= len(agents):
        raise ValueError(f"min_agents must be between 1 and len(agents)={len(agents)}, got {min_agents}")
    if disjoint and texts is None and len(agents) > len(AGENT_ALPHABETS):
        raise ValueError(f"disjoint=True supports at most {len(AGENT_ALPHABETS)} agents, got {len(agents)}")
    if texts is not None and len(texts) < len(agents):
        raise ValueError(f"texts needs one strategy per agent: {len(agents)} agents, {len(texts)} strategies")
    _check_token_runs(ending=ending)


def _eager(
    check: Callable[..., None],
) -> Callable[[Callable[_P, st.SearchStrategy[_T]]], Callable[_P, st.SearchStrategy[_T]]]:
    """Validate a composite strategy's arguments when it is built, not when it is first drawn."""

    def decorate(build: Callable[_P, st.SearchStrategy[_T]]) -> Callable[_P, st.SearchStrategy[_T]]:
        @functools.wraps(build)
        def validated(*args: _P.args, **kwargs: _P.kwargs) -> st.SearchStrategy[_T]:
            check(**kwargs)
            return build(*args, **kwargs)

        return validated

    return decorate


@_eager(_check_token_runs)
@st.composite
def token_runs(
    draw: st.DrawFn,
    *,
    agent: str = "agent",
    run_id: str | None = None,
    alphabet: str | None = None,
    min_tokens: int = 0,
    max_tokens: int = 12,
    ending: Ending = "any",
    reasoning: bool = True,
    tool_calls: bool = True,
    usage: bool = True,
    retries: bool = False,
    allow_empty: bool = False,
    texts: st.SearchStrategy[list[str]] | None = None,
    loop: int = 1,
    model: str = "hypothesis",
) -> list[TokenEvent]:
    """The events of one well-formed run (times 0; use :func:`timed_runs` to spread them out).

    ``start (token | reasoning | tool_call | retry)* usage? finish`` or ``start ... error``, seq
    from 0, one ``run_id`` and ``agent``.

    Args:
        agent: the agent name.
        run_id: the run id; defaults to ``f"run-{agent}"``.
        alphabet: characters of the token texts (see :func:`texts_split`).
        min_tokens: fewest token events.
        max_tokens: most token events.
        ending: ``"finish"``, ``"error"`` (an ``error`` event carrying a fresh exception, see
            :func:`errors`) or ``"any"``.
        reasoning: whether reasoning events may be interleaved.
        tool_calls: whether tool-call deltas may be interleaved.
        usage: whether a usage event may come before ``finish``.
        retries: whether ``retry`` events may be interleaved (they reset the run's text).
        allow_empty: whether token texts may be ``""``.
        texts: the strategy of token texts; overrides ``alphabet``, ``min_tokens``,
            ``max_tokens`` and ``allow_empty`` (default :func:`texts_split` with those).
        loop: the ``loop`` stamped on every event.
        model: the model name stamped on every event.

    Example:
        >>> run = token_runs(agent="A", ending="finish").example()  # doctest: +SKIP
        >>> [e.kind.value for e in run]  # doctest: +SKIP
        ['start', 'token', 'reasoning', 'token', 'usage', 'finish']
    """
    rid = run_id if run_id is not None else f"run-{agent}"
    pieces = draw(
        texts
        if texts is not None
        else texts_split(alphabet=alphabet, min_pieces=min_tokens, max_pieces=max_tokens, allow_empty=allow_empty)
    )
    kinds = tuple(k for k, on in (("reasoning", reasoning), ("tool_call", tool_calls), ("retry", retries)) if on)
    # a few extra events, each placed before the token at some position (few choices: fast to shrink)
    extras: dict[int, list[str]] = {}
    if kinds:
        for pos, kind in draw(st.lists(st.tuples(st.integers(0, 64), st.sampled_from(kinds)), max_size=3)):
            extras.setdefault(pos % (len(pieces) + 1), []).append(kind)

    events: list[TokenEvent] = []

    def add(kind: EventKind, **fields: Any) -> None:
        events.append(TokenEvent(kind, agent, rid, len(events), loop=loop, model=model, **fields))

    add(EventKind.START)
    tool_started: set[int] = set()
    for i in range(len(pieces) + 1):
        for kind in extras.get(i, ()):
            if kind == "reasoning":
                add(EventKind.REASONING, text=(pieces[i - 1] if i else "hm")[::-1] or "…")
            elif kind == "tool_call":
                index = len(tool_started) % 2
                first = index not in tool_started
                tool_started.add(index)
                add(
                    EventKind.TOOL_CALL,
                    tool_call=ToolCallDelta(
                        index=index,
                        id=f"call_{index}" if first else None,
                        name="lookup" if first else None,
                        arguments=_EXTRA_ARGS[i % len(_EXTRA_ARGS)],
                    ),
                )
            else:
                add(EventKind.RETRY, text="retrying after a transient error")
        if i < len(pieces):
            add(EventKind.TOKEN, text=pieces[i])
    fail = ending == "error" or (ending == "any" and draw(st.booleans()))
    if fail:
        add(EventKind.ERROR, error=draw(_ERRORS))
    else:
        if usage and draw(st.booleans()):
            n = sum(1 for e in events if e.kind is EventKind.TOKEN)
            add(EventKind.USAGE, usage=Usage(prompt_tokens=7, completion_tokens=n, total_tokens=7 + n))
        add(EventKind.FINISH, finish_reason=draw(st.sampled_from(("stop", "length", "tool_calls"))))
    return events


_GAPS = gaps()
_PAUSES = st.lists(st.tuples(st.integers(0, 64), _GAPS), max_size=4)


@st.composite
def timed_runs(
    draw: st.DrawFn,
    runs: st.SearchStrategy[list[TokenEvent]] | None = None,
    *,
    gap: st.SearchStrategy[float] | None = None,
    start: float = 0.0,
) -> list[tuple[float, TokenEvent]]:
    """A run spread over virtual time: ``(seconds, event)`` pairs with random gaps.

    Each event's ``time`` field is set to its time. Feed the result to
    :func:`rxagents.testing.schedule_messages` to get notifications for a test observable.

    Args:
        runs: the strategy of runs to time (default :func:`token_runs`).
        gap: the strategy of every gap between consecutive events. The default draws a tempo
            (one gap used throughout) and up to four pauses of other lengths at random places,
            like a model streaming steadily with hiccups (and cheap for hypothesis to shrink).
        start: the time of the first event.
    """
    events = draw(runs if runs is not None else token_runs())
    n = len(events)
    if gap is not None:
        steps = [draw(gap) for _ in range(max(n - 1, 0))]
    else:
        tempo = draw(_GAPS)
        steps = [tempo] * max(n - 1, 0)
        for pos, pause in draw(_PAUSES):
            if steps:
                steps[pos % len(steps)] = pause
    out: list[tuple[float, TokenEvent]] = []
    t = float(start)
    for i, ev in enumerate(events):
        if i:
            t = round(t + steps[i - 1], 6)
        out.append((t, dataclasses.replace(ev, time=t)))
    return out


@_eager(_check_multi_agent_runs)
@st.composite
def multi_agent_runs(
    draw: st.DrawFn,
    *,
    agents: Sequence[str] = ("A", "B", "C"),
    min_agents: int = 2,
    ending: Ending = "any",
    gap: st.SearchStrategy[float] | None = None,
    max_tokens: int = 8,
    disjoint: bool = True,
    texts: Sequence[st.SearchStrategy[list[str]]] | None = None,
) -> list[tuple[float, TokenEvent]]:
    """Several agents' runs interleaved in virtual time, as a merged stream delivers them.

    Agent ``i`` (of the first ``n`` names of ``agents``, ``min_agents <= n <= len(agents)``) gets
    run id ``f"run-{name}"`` and, with ``disjoint=True``, the ``i``-th of :data:`AGENT_ALPHABETS`,
    so each agent's text can be recovered from any merged output by its characters alone.

    Every run is complete. With ``ending="error"`` (or sometimes with ``"any"``) one run fails:
    its ``error`` event is the last event of the schedule (an error ends a merged stream, so
    the other runs have finished by then).

    Args:
        agents: the agent names to draw from, in order.
        min_agents: fewest agents.
        ending: ``"finish"`` (every run finishes), ``"error"`` (one fails) or ``"any"``.
        gap: the strategy of gaps (see :func:`timed_runs`); also each run's start offset.
        max_tokens: most tokens per run.
        disjoint: give agents the disjoint :data:`AGENT_ALPHABETS`.
        texts: per-agent strategies of token texts (overrides the alphabets and ``max_tokens``).
    """
    n = draw(st.integers(min_agents, len(agents)))
    failing: int | None = None
    if ending == "error" or (ending == "any" and draw(st.integers(0, 3)) == 3):
        failing = draw(st.integers(0, n - 1))
    merged: list[tuple[float, int, int, TokenEvent]] = []
    error: TokenEvent | None = None
    for i, name in enumerate(agents[:n]):
        run = token_runs(
            agent=name,
            alphabet=AGENT_ALPHABETS[i] if disjoint and texts is None else None,
            texts=texts[i] if texts is not None else None,
            ending="error" if i == failing else "finish",
            max_tokens=max_tokens,
        )
        offset = draw(gap if gap is not None else _GAPS)
        for j, (t, ev) in enumerate(draw(timed_runs(run, gap=gap, start=offset))):
            if ev.kind is EventKind.ERROR:
                error = ev
            else:
                merged.append((t, i, j, ev))
    merged.sort(key=lambda item: (item[0], item[1], item[2]))
    out = [(t, ev) for t, _, _, ev in merged]
    if error is not None:
        t_end = max(error.time, out[-1][0] if out else 0.0)
        out.append((t_end, dataclasses.replace(error, time=t_end)))
    return out
