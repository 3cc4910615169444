"""Hypothesis strategies for the suite: the public ones of ``rxagents.testing`` in one place."""

from __future__ import annotations

import itertools

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
    "splits",
    "sse_bodies",
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


#: Bytes an SSE line may hold: anything but CR and LF (invalid UTF-8 included; the reader hands data on as bytes).
_line_bytes = st.binary(max_size=12).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
_line_ends = st.sampled_from([b"\n", b"\r\n", b"\r"])


@st.composite
def sse_bodies(draw: st.DrawFn) -> tuple[bytes, list[bytes]]:
    """A valid SSE body and the data of the events it carries, in order.

    Events have one or more ``data`` lines (``data: x``, ``data:x``, a bare ``data``), mixed with comments, ``id``,
    ``retry``, ``event`` and unknown fields; lines end with LF, CRLF or CR at random; blank lines (and events with
    no data) between events dispatch nothing.
    """
    body: list[bytes] = []
    expected: list[bytes] = []
    end = draw(_line_ends) if draw(st.booleans()) else None  # one line end for the whole body, or any per line

    def line(content: bytes) -> None:
        ending = end if end is not None else draw(_line_ends)
        if not content and ending == b"\n" and body and body[-1].endswith(b"\r"):
            ending = b"\r\n"  # CR then an empty line ended by LF would read as one CRLF line end
        body.append(content + ending)

    for _ in range(draw(st.integers(0, 6))):
        data: list[bytes] = []
        for _ in range(draw(st.integers(0, 3))):
            kind = draw(st.sampled_from(["data: ", "data:", "bare", "comment", "id", "retry", "event", "other"]))
            value = draw(_line_bytes)
            if kind in ("data: ", "data:"):
                line(kind.encode() + value)
                data.append(value[1:] if kind == "data:" and value[:1] == b" " else value)
            elif kind == "bare":
                line(b"data")
                data.append(b"")
            elif kind == "comment":
                line(b":" + value)
            else:
                line(kind.encode() + b": " + value.replace(b":", b""))
        line(b"")  # the blank line that dispatches it
        if data:
            expected.append(b"\n".join(data))
    return b"".join(body), expected


@st.composite
def splits(draw: st.DrawFn, body: bytes) -> list[bytes]:
    """``body`` cut at arbitrary byte positions (between CR and LF, inside a field name...), empty chunks included."""
    cuts = draw(st.lists(st.integers(0, len(body)), max_size=10)) if body else []
    bounds = [0, *sorted(cuts), len(body)]
    return [body[a:b] for a, b in itertools.pairwise(bounds)]
