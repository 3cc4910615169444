"""What a workflow run produced (rxagents/workflows/_results.py): the answer of a run followed as its events pass."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rxagents.events import EventKind, TokenEvent
from rxagents.workflows._results import AgentOutput, AnswerText

_texts = st.lists(st.text(alphabet="ab ", max_size=3), max_size=3)


@st.composite
def finished_runs(draw: st.DrawFn) -> list[TokenEvent]:
    """A finished run of 1 to 3 loops, whose earlier attempts were restarted (``retry``) in any loop."""
    loops = draw(st.integers(1, 3))
    restarted_in = draw(st.lists(st.integers(1, loops), max_size=2))  # the loop each restarted attempt reached
    events: list[TokenEvent] = []

    def add(kind: EventKind, loop: int, text: str = "") -> None:
        events.append(TokenEvent(kind, "A", "run-1", len(events), loop=loop, text=text))

    add(EventKind.START, 1)
    for reached in [*restarted_in, loops]:
        for loop in range(1, reached + 1):
            for text in draw(_texts):
                add(EventKind.TOKEN, loop, text)
            if draw(st.booleans()):
                add(EventKind.REASONING, loop, "hm")
        add(EventKind.RETRY, reached, "cut")
    events[-1] = TokenEvent(EventKind.FINISH, "A", "run-1", len(events) - 1, loop=loops, finish_reason="stop")
    return events


@given(run=finished_runs())
def test_the_followed_answer_of_a_finished_run_is_its_outputs_text(run: list[TokenEvent]) -> None:
    answer = AnswerText()
    for event in run:
        answer.add(event)
    assert answer.text == AgentOutput.from_run(run).text


def test_a_retry_starts_the_answer_over_and_a_new_loop_replaces_it() -> None:
    answer = AnswerText()
    for kind, loop, text in [(EventKind.TOKEN, 1, "old"), (EventKind.RETRY, 1, "cut"), (EventKind.TOKEN, 1, "a"),
                             (EventKind.TOKEN, 2, "b"), (EventKind.TOKEN, 2, "c")]:
        answer.add(TokenEvent(kind, "A", "run-1", 0, loop=loop, text=text))
    assert answer.text == "bc"


def test_a_run_stopped_after_a_restart_keeps_the_text_of_its_attempt_since() -> None:
    """Its latest loop is the one it restarted in: the text of the loops of the attempt before does not hide it."""
    kinds = [(EventKind.START, 1, ""), (EventKind.TOKEN, 1, "old"), (EventKind.TOKEN, 2, "older"),
             (EventKind.RETRY, 2, "cut"), (EventKind.TOKEN, 1, "new")]
    run = [TokenEvent(kind, "A", "run-1", seq, loop=loop, text=text) for seq, (kind, loop, text) in enumerate(kinds)]
    output = AgentOutput.from_run(run)
    answer = AnswerText()
    for event in run:
        answer.add(event)
    assert output.status == "cancelled" and output.text == "new" == answer.text
    assert output.tokens == 1 and output.partial_text == "new"
