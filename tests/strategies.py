"""Hypothesis strategies for the suite: the public ones of ``rxagents.testing`` in one place."""

from __future__ import annotations

from hypothesis import strategies as st

from rxagents.events import EventKind, ToolCallDelta, Usage
from rxagents.models import Delta
from rxagents.testing._strategies import (
    AGENT_ALPHABETS,
    SEPARATORS,
    errors,
    gaps,
    multi_agent_runs,
    texts_split,
    timed_runs,
    token_runs,
)

__all__ = [
    "AGENT_ALPHABETS",
    "SEPARATORS",
    "errors",
    "gaps",
    "junk_values",
    "model_requests",
    "multi_agent_runs",
    "texts_split",
    "timed_runs",
    "token_runs",
]


def junk_values() -> st.SearchStrategy[object]:
    """Arbitrary argument values, valid or not, weighted towards near misses: numbers as strings, floats for
    ints, bools for numbers, NaN and infinities, huge and negative numbers, blank strings, containers, objects."""
    numbers = st.one_of(
        st.integers(), st.integers(min_value=-3, max_value=1_100), st.floats(), st.floats(min_value=-1, max_value=3)
    )
    return st.one_of(
        st.none(),
        st.booleans(),
        numbers,
        numbers.map(str),
        st.sampled_from([float("nan"), float("inf"), -float("inf"), 10**9, 10**30, 0.5, 1.5, "", "  ", "log", "raise"]),
        st.text(max_size=12),
        st.binary(max_size=4),
        st.lists(st.integers(), max_size=2),
        st.tuples(st.text(max_size=2)),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
        st.builds(object),
    )


#: How a model request ends in :func:`model_requests`: its deltas end, its silence limit passes, or it raises
#: a transient (503, a cut) or a fatal (400) error.
REQUEST_ENDINGS = ("end", "end", "end", "silent", "503", "cut", "400")

_BODY_DELTAS = st.one_of(
    st.text(max_size=3).map(lambda text: Delta(EventKind.TOKEN, text=text)),
    st.text(max_size=3).map(lambda text: Delta(EventKind.REASONING, text=text)),
    st.just(Delta(EventKind.TOOL_CALL, tool_call=ToolCallDelta(0, "call_1", "search", '{"q": 1}'))),
)
_USAGE = st.builds(Usage, st.integers(0, 9), st.integers(0, 9), st.integers(0, 18)).map(
    lambda usage: Delta(EventKind.USAGE, usage=usage)
)
_FINISH = st.sampled_from([None, "stop", "length"]).map(lambda reason: Delta(EventKind.FINISH, finish_reason=reason))


def model_requests() -> st.SearchStrategy[tuple[list[Delta], str]]:
    """One model request as a backend plays it: its deltas, then how it ends (one of ``REQUEST_ENDINGS``).

    Mostly well-behaved (body deltas, usage?, finish), sometimes any deltas in any order (a finish in the
    middle, usage twice, no finish at all).
    """
    tidy = st.tuples(
        st.lists(_BODY_DELTAS, max_size=4), st.lists(_USAGE, max_size=1), st.lists(_FINISH, min_size=1, max_size=1)
    ).map(lambda parts: [*parts[0], *parts[1], *parts[2]])
    wild = st.lists(st.one_of(_BODY_DELTAS, _USAGE, _FINISH), max_size=5)
    return st.tuples(st.one_of(tidy, tidy, wild), st.sampled_from(REQUEST_ENDINGS))
