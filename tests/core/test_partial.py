"""PartialText: the answer text consumers hold, honouring retry events; AnswerText: a run's answer, made with it."""

from __future__ import annotations

from hypothesis import given

from rxagents._core.partial import AnswerText, PartialText, answer_of
from rxagents.errors import partial_text_of
from rxagents.events import EventKind, TokenEvent
from rxagents.testing._strategies import token_runs

T, R = EventKind.TOKEN, EventKind.RETRY


def ev(kind: EventKind, text: str = "", *, run: str = "r", agent: str = "A") -> TokenEvent:
    return TokenEvent(kind, agent, run, 0, text=text)


def test_a_retry_discards_the_text_of_its_run_only() -> None:
    text = PartialText(
        [ev(T, "a"), ev(T, "1", run="s", agent="B"), ev(T, "b"), ev(R), ev(T, "c"), ev(T, "2", run="s", agent="B")]
    )
    assert text.text == "1c2"
    assert text.by_run() == {("B", "s"): "12", ("A", "r"): "c"}


def test_interleaved_runs_keep_their_arrival_order() -> None:
    text = PartialText([ev(T, "a"), ev(T, "1", run="s"), ev(T, "b")])
    assert text.text == "a1b"


def test_text_of_no_run_is_never_discarded() -> None:
    text = PartialText()
    text.append(None, "x")
    text.add(ev(T, "a"))
    text.discard(None)
    text.add(ev(R))
    assert text.text == "x" and repr(text) == "PartialText('x')"
    text.clear()
    assert text.text == ""


def test_other_kinds_carry_no_answer_text() -> None:
    assert PartialText([ev(EventKind.REASONING, "thinking"), ev(EventKind.START)]).text == ""


@given(token_runs(retries=True))
def test_it_is_the_text_after_the_last_retry(run: list[TokenEvent]) -> None:
    last = max((i for i, e in enumerate(run) if e.kind is R), default=-1)
    expected = "".join(e.text for e in run[last + 1 :] if e.kind is T)
    assert PartialText(run).text == expected == partial_text_of(run)


@given(token_runs(retries=True))
def test_the_count_is_of_the_token_texts_a_retry_left(run: list[TokenEvent]) -> None:
    last = max((i for i, e in enumerate(run) if e.kind is R), default=-1)
    assert PartialText(run).count == sum(1 for e in run[last + 1 :] if e.kind is T)


def _loops(*pieces: tuple[EventKind, int, str]) -> list[TokenEvent]:
    return [TokenEvent(kind, "A", "r", seq, loop=loop, text=text) for seq, (kind, loop, text) in enumerate(pieces)]


def test_the_answer_is_the_latest_loops_text_after_the_last_retry() -> None:
    run = _loops((T, 1, "draft"), (T, 2, "better"), (R, 2, "cut"), (T, 1, "again"), (T, 2, "best"), (T, 2, "!"))
    assert answer_of(run) == "best!"
    assert answer_of(run[:4]) == "again"  # restarted, back in loop 1: what arrived since
    assert answer_of(run[:3]) == ""  # the retry discarded everything


def test_a_loop_without_text_is_an_empty_answer() -> None:
    assert answer_of(_loops((T, 1, "first"), (EventKind.FINISH, 2, ""))) == ""


def test_the_answer_followed_event_by_event_is_the_answer_of_the_events_so_far() -> None:
    run = _loops((T, 1, "a"), (T, 1, "b"), (T, 2, "c"), (R, 2, "cut"), (T, 1, "d"), (T, 2, "e"))
    answer = AnswerText()
    for i, event in enumerate(run):
        answer.add(event)
        assert answer.text == answer_of(run[: i + 1])
