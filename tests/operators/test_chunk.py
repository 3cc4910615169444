"""Tests of rxagents/operators/_chunk.py: chunk_by."""

from __future__ import annotations

import itertools
import re
from typing import Any

import pytest
import reactivex
from hypothesis import given
from hypothesis import strategies as st
from reactivex import Observable, abc
from reactivex.notification import Notification
from reactivex.testing import TestScheduler

from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, TokenEvent
from rxagents.operators._chunk import chunk_by
from rxagents.testing._laws import check_operator_laws
from rxagents.testing._marbles import MarbleValue, cold_events, record

HELLO: dict[str, MarbleValue] = {"a": "Hel", "b": "lo wor", "c": "ld.\nBye", "d": "!"}


def rendered(trace: list[tuple[float, Notification[Any]]]) -> list[tuple[float, Any]]:
    """(time, value) for on_next, (time, "|") for on_completed, (time, "#") for on_error."""
    out: list[tuple[float, Any]] = []
    for t, n in trace:
        out.append((t, n.value if n.kind == "N" else "|" if n.kind == "C" else "#"))
    return out


def run(marbles: str, unit: Any, values: dict[str, MarbleValue] | None = None) -> list[tuple[float, Any]]:
    scheduler = TestScheduler()
    return rendered(record(scheduler, cold_events(scheduler, marbles, values or HELLO).pipe(chunk_by(unit))))


def tokens(*texts: str) -> Observable[TokenEvent]:
    events = [TokenEvent(EventKind.TOKEN, "agent", "run", i, text=t) for i, t in enumerate(texts)]
    return reactivex.from_iterable(events)


def units(unit: Any, *texts: str) -> list[str]:
    out: list[str] = []
    tokens(*texts).pipe(chunk_by(unit)).subscribe(out.append)
    return out


# --- the built-in units (the docstring's diagram) ---------------------------------------------------------


def test_words_are_emitted_with_their_whitespace_when_the_next_word_starts() -> None:
    assert run("---a---b---c---d---|", "word") == [
        (7, "Hello "),
        (11, "world.\n"),
        (19, "Bye!"),
        (19, "|"),
    ]


def test_a_line_is_emitted_as_soon_as_its_newline_arrives() -> None:
    assert run("---a---b---c---d---|", "line") == [(11, "Hello world.\n"), (19, "Bye!"), (19, "|")]


def test_sentences_end_at_terminal_punctuation_followed_by_whitespace() -> None:
    assert run("---a---b---c---d---|", "sentence") == [(11, "Hello world.\n"), (19, "Bye!"), (19, "|")]


def test_the_tail_is_emitted_before_the_error() -> None:
    boom = ConnectionError("dropped")
    scheduler = TestScheduler()
    trace = record(scheduler, cold_events(scheduler, "---a---b---#", HELLO, error=boom).pipe(chunk_by("word")))
    assert rendered(trace) == [(7, "Hello "), (11, "wor"), (11, "#")]
    assert trace[-1][1].exception is boom  # type: ignore[attr-defined]


def test_an_empty_stream_only_completes() -> None:
    assert run("--|", "sentence") == [(2, "|")]


def test_several_units_in_one_token_are_emitted_one_by_one() -> None:
    assert units("line", "one\ntwo\nthree\nfo", "ur") == ["one\n", "two\n", "three\n", "four"]


def test_sentence_keeps_closing_quotes_and_splits_at_line_breaks() -> None:
    assert units("sentence", 'He said "stop." Then', " left\nNext one") == [
        'He said "stop." ',
        "Then left\n",
        "Next one",
    ]


def test_sentence_does_not_split_a_decimal_number() -> None:
    assert units("sentence", "Pi is 3.14 roughly. ", "Yes") == ["Pi is 3.14 roughly. ", "Yes"]


def test_words_keep_leading_whitespace_of_the_stream_with_the_first_word() -> None:
    assert units("word", "  Hi", " there") == ["  Hi ", "there"]


def test_a_word_waits_while_its_whitespace_may_still_grow() -> None:
    out: list[str] = []
    subject: reactivex.subject.Subject[TokenEvent] = reactivex.subject.Subject()
    subject.pipe(chunk_by("word")).subscribe(out.append)
    subject.on_next(TokenEvent(EventKind.TOKEN, "a", "r", 0, text="Hi "))
    assert out == []
    subject.on_next(TokenEvent(EventKind.TOKEN, "a", "r", 1, text=" \nthere"))
    assert out == ["Hi  \n"]


def test_other_event_kinds_are_dropped() -> None:
    reasoning = TokenEvent(EventKind.REASONING, "", "", 0, text="think. ")
    assert run("-g-a-|", "sentence", {"g": reasoning, "a": "Done. "}) == [(5, "Done. "), (5, "|")]


# --- regular expressions ----------------------------------------------------------------------------------


def test_a_regex_string_ends_a_unit_where_its_match_ends() -> None:
    assert units(r"\n\n", "Para one.\n", "\nPara two.\n\nPara", " three") == [
        "Para one.\n\n",
        "Para two.\n\n",
        "Para three",
    ]


def test_a_compiled_regex_is_accepted() -> None:
    assert units(re.compile(r"[,;]\s*"), "a, b;", " c") == ["a, ", "b; ", "c"]


def test_a_regex_match_at_the_end_of_the_text_so_far_waits_for_more_text() -> None:
    out: list[str] = []
    subject: reactivex.subject.Subject[TokenEvent] = reactivex.subject.Subject()
    subject.pipe(chunk_by(r",\s*")).subscribe(out.append)
    subject.on_next(TokenEvent(EventKind.TOKEN, "a", "r", 0, text="one,"))
    assert out == []  # ", " might follow
    subject.on_next(TokenEvent(EventKind.TOKEN, "a", "r", 1, text=" two"))
    assert out == ["one, "]


def test_a_zero_width_regex_splits_before_its_position() -> None:
    assert units(r"(?=#)", "# One\n", "text\n# Two\n") == ["# One\ntext\n", "# Two\n"]


def test_a_regex_matching_the_empty_string_emits_no_empty_unit() -> None:
    out = units(r"x*", "ab", "c")
    assert "" not in out
    assert "".join(out) == "abc"


# --- splitting does not depend on where the tokens were cut ----------------------------------------------

_TEXT = st.text(alphabet="ab .!?\n\"'", max_size=40)


@st.composite
def split_text(draw: st.DrawFn) -> tuple[str, list[str]]:
    text = draw(_TEXT)
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(text) - 1)), max_size=8)))
    bounds = [0, *[c for c in cuts if c < len(text)], len(text)]
    return text, [text[i:j] for i, j in itertools.pairwise(bounds) if j > i]


@given(split_text())
def test_words_match_a_whole_text_split(case: tuple[str, list[str]]) -> None:
    text, pieces = case
    expected = re.findall(r"\s*\S+\s*|\s+\Z", text)
    assert units("word", *pieces) == expected


@given(split_text())
def test_lines_match_a_whole_text_split(case: tuple[str, list[str]]) -> None:
    text, pieces = case
    assert units("line", *pieces) == re.findall(r"[^\n]*\n|[^\n]+\Z", text)


@given(split_text())
def test_sentences_do_not_depend_on_token_boundaries(case: tuple[str, list[str]]) -> None:
    text, pieces = case
    assert units("sentence", *pieces) == units("sentence", text)
    assert "".join(units("sentence", *pieces)) == text


@given(split_text())
def test_a_regex_does_not_depend_on_token_boundaries(case: tuple[str, list[str]]) -> None:
    text, pieces = case
    assert units(r"[.!?]+\s*", *pieces) == units(r"[.!?]+\s*", text)


# --- disposal ----------------------------------------------------------------------------------------------


def test_dispose_inside_on_next_stops_the_remaining_units_and_the_completion() -> None:
    seen: list[str] = []
    subscription: list[Any] = []

    class Consumer(abc.ObserverBase[str]):
        def on_next(self, unit: str) -> None:
            seen.append(unit)
            subscription[0].dispose()

        def on_error(self, error: Exception) -> None:
            seen.append("error")

        def on_completed(self) -> None:
            seen.append("completed")

    subject: reactivex.subject.Subject[TokenEvent] = reactivex.subject.Subject()
    stream = subject.pipe(chunk_by("line"))
    assert isinstance(stream, Observable)
    subscription.append(stream._subscribe_core(Consumer()))  # raw: no auto-detach safety net
    subject.on_next(TokenEvent(EventKind.TOKEN, "a", "r", 0, text="one\ntwo\nthree"))
    subject.on_completed()
    assert seen == ["one\n"]


# --- validation -----------------------------------------------------------------------------------------

_UNIT = "unit must be 'word', 'line', 'sentence', a regular expression (str) or an re.Pattern"


def test_an_unknown_unit_name_is_rejected_with_the_fix() -> None:
    with pytest.raises(
        ConfigurationError,
        match=re.escape(f"{_UNIT}, got 'words'; to split after the literal text 'words', pass re.compile('words')"),
    ):
        chunk_by("words")


def test_an_invalid_regex_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match=re.escape(f"{_UNIT}, got '(unclosed'; it is not a valid regular")):
        chunk_by("(unclosed")


def test_an_empty_unit_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match=re.escape(f"{_UNIT}, got ''; an empty pattern would match")):
        chunk_by("")


def test_a_bytes_pattern_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("unit must be an re.Pattern of str, got re.compile(b")):
        chunk_by(re.compile(b"\n"))  # type: ignore[arg-type]


def test_a_unit_of_another_type_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match=re.escape(f"{_UNIT}, got 3")):
        chunk_by(3)  # type: ignore[arg-type]


# --- laws ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("unit", ["word", "line", "sentence", r"[ab]+\s*"])
def test_chunk_by_obeys_the_laws(unit: str) -> None:
    check_operator_laws(lambda s: chunk_by(unit))
