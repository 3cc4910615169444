"""Public hypothesis strategies: what they generate is what they promise."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxagents.events import EventKind, TokenEvent
from rxagents.testing._marbles import assert_seq_contiguous, assert_well_formed_run, text_of_items
from tests.strategies import (
    AGENT_ALPHABETS,
    errors,
    gaps,
    multi_agent_runs,
    texts_split,
    timed_runs,
    token_runs,
)


@given(texts_split(min_pieces=1, max_pieces=5))
def test_texts_split_gives_non_empty_pieces_by_default(pieces: list[str]) -> None:
    assert 1 <= len(pieces) <= 5
    assert all(pieces)


@given(texts_split(allow_empty=True, min_pieces=3, max_pieces=3, max_piece_size=2))
def test_texts_split_respects_sizes(pieces: list[str]) -> None:
    assert len(pieces) == 3
    assert all(len(p) <= 2 for p in pieces)


@given(texts_split(alphabet="ab "))
def test_texts_split_draws_from_the_alphabet(pieces: list[str]) -> None:
    assert set("".join(pieces)) <= set("ab ")


@given(texts_split())
def test_texts_split_never_contains_surrogates(pieces: list[str]) -> None:
    "".join(pieces).encode("utf-8")  # raises on a lone surrogate


def test_texts_split_validates_its_arguments() -> None:
    with pytest.raises(ValueError, match="min_pieces <= max_pieces"):
        texts_split(min_pieces=3, max_pieces=1)
    with pytest.raises(ValueError, match="max_piece_size must be >= 1, got 0"):
        texts_split(max_piece_size=0)


@given(token_runs(retries=True))
def test_token_runs_are_well_formed(run: list[TokenEvent]) -> None:
    assert_well_formed_run(run)


@given(token_runs(ending="error"))
def test_token_runs_can_end_in_an_error_carrying_an_exception(run: list[TokenEvent]) -> None:
    assert run[-1].kind is EventKind.ERROR
    assert isinstance(run[-1].error, Exception)


@given(token_runs(ending="finish", reasoning=False, tool_calls=False, usage=False))
def test_token_runs_can_be_plain_text(run: list[TokenEvent]) -> None:
    assert {e.kind for e in run} <= {EventKind.START, EventKind.TOKEN, EventKind.FINISH}


@given(token_runs(agent="writer", run_id="r1", loop=2, model="m"))
def test_token_runs_stamp_identity(run: list[TokenEvent]) -> None:
    assert {(e.agent, e.run_id, e.loop, e.model) for e in run} == {("writer", "r1", 2, "m")}


@given(token_runs(texts=st.just(["Hel", "lo"])))
def test_token_runs_take_their_texts_from_the_given_strategy(run: list[TokenEvent]) -> None:
    assert text_of_items(run) == "Hello"


def test_token_runs_validate_the_ending() -> None:
    with pytest.raises(ValueError, match="ending must be"):
        token_runs(ending="maybe")  # type: ignore[arg-type]


@given(timed_runs())
def test_timed_runs_have_non_decreasing_times_stamped_on_the_events(schedule: list[tuple[float, TokenEvent]]) -> None:
    times = [t for t, _ in schedule]
    assert times == sorted(times)
    assert all(ev.time == t for t, ev in schedule)
    assert_well_formed_run([ev for _, ev in schedule])


@given(timed_runs(gap=st.just(0.5), start=2.0))
def test_timed_runs_use_the_given_gaps(schedule: list[tuple[float, TokenEvent]]) -> None:
    assert [t for t, _ in schedule] == [2.0 + 0.5 * i for i in range(len(schedule))]


@given(gaps((0.0, 1.0)))
def test_gaps_come_from_the_given_values(gap: float) -> None:
    assert gap in (0.0, 1.0)


def test_gaps_must_be_non_negative() -> None:
    with pytest.raises(ValueError, match="gap values"):
        gaps((-1.0,))


@given(errors())
def test_errors_are_fresh_exceptions(exc: Exception) -> None:
    assert isinstance(exc, ConnectionError | TimeoutError | RuntimeError | ValueError)


@given(multi_agent_runs())
def test_multi_agent_runs_interleave_complete_runs(schedule: list[tuple[float, TokenEvent]]) -> None:
    times = [t for t, _ in schedule]
    assert times == sorted(times)
    events = [ev for _, ev in schedule]
    assert_seq_contiguous(events)
    runs = {ev.run_id for ev in events}
    assert 2 <= len(runs) <= 3
    for run_id in runs:
        assert_well_formed_run([ev for ev in events if ev.run_id == run_id])
    assert all(ev.kind is not EventKind.ERROR for ev in events[:-1])


@given(multi_agent_runs(ending="error"))
def test_multi_agent_runs_end_with_the_one_error(schedule: list[tuple[float, TokenEvent]]) -> None:
    kinds = [ev.kind for _, ev in schedule]
    assert kinds[-1] is EventKind.ERROR and kinds.count(EventKind.ERROR) == 1


@given(multi_agent_runs())
def test_multi_agent_texts_can_be_told_apart_by_alphabet(schedule: list[tuple[float, TokenEvent]]) -> None:
    for i, agent in enumerate(("A", "B", "C")):
        text = text_of_items([ev for _, ev in schedule if ev.agent == agent])
        assert set(text) <= set(AGENT_ALPHABETS[i])


def test_agent_alphabets_are_disjoint() -> None:
    for i, a in enumerate(AGENT_ALPHABETS):
        for b in AGENT_ALPHABETS[i + 1 :]:
            assert not set(a) & set(b)


def test_multi_agent_runs_validate_arguments() -> None:
    with pytest.raises(ValueError, match="min_agents"):
        multi_agent_runs(min_agents=5)
