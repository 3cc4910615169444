"""RunGrammar: the run grammar, defined once, checked event by event over interleaved runs."""

from __future__ import annotations

import pytest
from hypothesis import given

from rxagents._core.grammar import RunGrammar
from rxagents.events import EventKind, TokenEvent, Usage
from rxagents.testing._strategies import multi_agent_runs, token_runs

S, T, U, F, E, R = (EventKind.START, EventKind.TOKEN, EventKind.USAGE, EventKind.FINISH, EventKind.ERROR,
                    EventKind.RETRY)  # fmt: skip


def ev(kind: EventKind, seq: int, *, run: str = "r", agent: str = "A", time: float = 0.0) -> TokenEvent:
    error = RuntimeError("boom") if kind is E else None
    return TokenEvent(kind, agent, run, seq, text="x" if kind is T else "", usage=Usage() if kind is U else None,
                      error=error, time=time)  # fmt: skip


def first_violation(*events: TokenEvent, cut: bool = True) -> str | None:
    grammar = RunGrammar(cut=cut)
    return next((v for v in map(grammar.check, events) if v is not None), None)


def test_every_body_kind_then_usage_then_finish_is_a_run() -> None:
    body = [ev(k, i) for i, k in enumerate([T, EventKind.REASONING, EventKind.TOOL_CALL, R], start=1)]
    assert first_violation(ev(S, 0), *body, ev(U, 5), ev(F, 6), cut=False) is None


@pytest.mark.parametrize(
    ("events", "message"),
    [
        ([ev(T, 0)], "begins with token #0: missing start"),
        ([ev(S, 1)], "starts at seq 1, expected 0"),
        ([ev(S, 0), ev(T, 2)], "a gap in seq: #2 after #0, expected #1"),
        ([ev(S, 0), ev(T, 1), ev(T, 1)], "duplicate or out-of-order seq: #1 after #1"),
        ([ev(S, 0), ev(S, 1)], "a second start (#1) cannot appear inside a run"),
        ([ev(S, 0), ev(F, 1), ev(T, 2)], "token #2 cannot appear inside a run after its terminal finish event"),
        ([ev(S, 0), ev(U, 1), ev(T, 2)], "token #2 after usage (usage comes at most once, right before finish)"),
        ([ev(S, 0), ev(U, 1), ev(U, 2)], "usage #2 after usage"),
        ([ev(S, 0, time=2), ev(T, 1, time=1)], "time went backwards at #1 (1 < 2)"),
        ([ev(S, 0), TokenEvent(E, "A", "r", 1)], "error event #1 carries no exception"),
    ],
)
def test_each_rule_names_the_run_and_the_event(events: list[TokenEvent], message: str) -> None:
    violation = first_violation(*events)
    assert violation is not None and violation.startswith("run 'r' of agent 'A'") and message in violation


def test_a_run_may_be_cut_after_its_usage_only_where_cut_is_allowed() -> None:
    events = [ev(S, 0), ev(U, 1), ev(E, 2)]
    assert first_violation(*events, cut=True) is None
    assert "error #2 after usage" in (first_violation(*events, cut=False) or "")


def test_runs_are_checked_apart_and_open_ones_listed_in_start_order() -> None:
    grammar = RunGrammar()
    for event in [ev(S, 0, run="x"), ev(S, 0, run="y", agent="B"), ev(T, 1, run="x"), ev(F, 1, run="y", agent="B")]:
        assert grammar.check(event) is None
    assert grammar.open_runs() == [("A", "x")]


def test_a_rejected_event_changes_nothing() -> None:
    grammar = RunGrammar()
    grammar.check(ev(S, 0))
    assert grammar.check(ev(T, 5)) is not None
    assert grammar.check(ev(T, 1)) is None


@given(token_runs())
def test_generated_runs_are_well_formed(run: list[TokenEvent]) -> None:
    assert first_violation(*run, cut=False) is None


@given(multi_agent_runs())
def test_generated_interleaved_runs_are_well_formed(schedule: list[tuple[float, TokenEvent]]) -> None:
    grammar = RunGrammar(cut=False)
    assert [grammar.check(e) for _, e in schedule] == [None] * len(schedule)
    assert grammar.open_runs() == []
