"""Hypothesis strategies for the suite: the public ones of ``rxagents.testing`` in one place."""

from __future__ import annotations

from hypothesis import strategies as st

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
