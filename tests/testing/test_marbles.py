"""Marble helpers: diagrams to well-formed runs, recording traces, grammar assertions."""

from __future__ import annotations

from typing import Any

import pytest
from reactivex import operators as ops
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.testing import TestScheduler
from reactivex.testing.recorded import Recorded

from rxagents.events import EventKind, TokenEvent, ToolCallDelta, Usage
from rxagents.testing._marbles import (
    assert_seq_contiguous,
    assert_well_formed_run,
    cold_events,
    events_from_marbles,
    events_of_trace,
    hot_events,
    record,
    schedule_messages,
    text_of_items,
    text_of_trace,
    token_run,
)

S, T, U, F, E, R = (
    EventKind.START,
    EventKind.TOKEN,
    EventKind.USAGE,
    EventKind.FINISH,
    EventKind.ERROR,
    EventKind.RETRY,
)


def value_of(message: Recorded[Any]) -> Any:
    notification = message.value
    assert isinstance(notification, OnNext), notification
    return notification.value


def ev(kind: EventKind, seq: int, text: str = "", run: str = "r", agent: str = "A") -> TokenEvent:
    return TokenEvent(kind, agent, run, seq, text=text)


# ---------------------------------------------------------------------------------------------
# events_from_marbles


def test_marbles_build_a_well_formed_run_with_seq_from_zero() -> None:
    msgs = events_from_marbles("-a-b-c-|", {"a": "Hel", "b": "lo", "c": "!"}, agent="A")
    events = [value_of(m) for m in msgs if isinstance(m.value, OnNext)]

    assert [e.kind for e in events] == [S, T, T, T, F]
    assert [e.seq for e in events] == [0, 1, 2, 3, 4]
    assert "".join(e.text for e in events) == "Hello!"
    assert_well_formed_run(events)


def test_marbles_place_events_on_their_frames() -> None:
    msgs = events_from_marbles("-a-b-|", timespan=0.5)

    assert [m.time for m in msgs] == [0.0, 0.5, 1.5, 2.5, 2.5]
    assert isinstance(msgs[-1].value, OnCompleted)


def test_marbles_stamp_agent_run_and_time() -> None:
    msgs = events_from_marbles("--a|", agent="writer", run_id="run-7")
    token = value_of(msgs[1])

    assert (token.agent, token.run_id, token.time) == ("writer", "run-7", 2.0)


def test_marbles_default_run_id_comes_from_the_agent() -> None:
    assert value_of(events_from_marbles("a|", agent="B")[0]).run_id == "run-B"


def test_hash_ends_the_run_with_an_error_event_and_on_error() -> None:
    boom = ConnectionError("reset")
    msgs = events_from_marbles("-a-#", error=boom)

    last_event = value_of(msgs[-2])
    assert last_event.kind is E and last_event.error is boom
    assert isinstance(msgs[-1].value, OnError) and msgs[-1].value.exception is boom
    assert msgs[-1].time == 3.0


def test_group_puts_events_at_the_same_time() -> None:
    msgs = events_from_marbles("-(ab)-|")

    assert [(m.time, value_of(m).text) for m in msgs[1:3]] == [(1.0, "a"), (1.0, "b")]
    assert msgs[-1].time == 6.0  # the group takes len("(ab)") frames


def test_values_can_be_usage_tool_calls_and_event_templates() -> None:
    usage = Usage(3, 2, 5)
    call = ToolCallDelta(0, "c1", "lookup", "{}")
    thinking = TokenEvent(EventKind.REASONING, "x", "x", 99, text="hmm")
    msgs = events_from_marbles("rtu|", {"r": thinking, "t": call, "u": usage})
    events = [value_of(m) for m in msgs if isinstance(m.value, OnNext)]

    assert [e.kind for e in events] == [S, EventKind.REASONING, EventKind.TOOL_CALL, U, F]
    assert events[1].seq == 1 and events[1].agent == "agent" and events[1].text == "hmm"
    assert events[2].tool_call == call and events[3].usage == usage
    assert_well_formed_run(events)


def test_a_diagram_without_an_end_never_completes() -> None:
    msgs = events_from_marbles("-a-b")

    assert all(isinstance(m.value, OnNext) for m in msgs)


def test_nothing_may_follow_the_end() -> None:
    with pytest.raises(ValueError, match="after the end"):
        events_from_marbles("-a-|-b")


def test_unclosed_group_is_rejected() -> None:
    with pytest.raises(ValueError, match="unclosed group"):
        events_from_marbles("-(ab-|")


def test_timespan_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timespan must be > 0, got 0"):
        events_from_marbles("a|", timespan=0)


def test_unknown_value_types_are_rejected() -> None:
    with pytest.raises(TypeError, match="got int"):
        events_from_marbles("a|", {"a": 3})  # type: ignore[dict-item]


# ---------------------------------------------------------------------------------------------
# token_run


def test_token_run_spaces_tokens_and_finishes() -> None:
    msgs = token_run(["Hel", "lo"], spacing=0.5, agent="A", usage=Usage(1, 2, 3))
    events = [value_of(m) for m in msgs if isinstance(m.value, OnNext)]

    assert [m.time for m in msgs] == [0.0, 0.5, 1.0, 1.5, 1.5, 1.5]
    assert [e.kind for e in events] == [S, T, T, U, F]
    assert_well_formed_run(events)


def test_token_run_with_error_ends_in_an_error() -> None:
    boom = TimeoutError("slow")
    msgs = token_run(["a"], error=boom)

    assert value_of(msgs[-2]).kind is E
    assert isinstance(msgs[-1].value, OnError) and msgs[-1].value.exception is boom


def test_token_run_rejects_negative_spacing() -> None:
    with pytest.raises(ValueError, match="spacing must be >= 0"):
        token_run(["a"], spacing=-1)


# ---------------------------------------------------------------------------------------------
# schedule_messages


def test_schedule_messages_completes_after_a_finish() -> None:
    msgs = schedule_messages([(0.0, ev(S, 0)), (2.0, ev(F, 1))])

    assert isinstance(msgs[-1].value, OnCompleted) and msgs[-1].time == 2.0


def test_schedule_messages_fails_after_an_error_event() -> None:
    boom = RuntimeError("x")
    error_event = TokenEvent(E, "A", "r", 1, error=boom)
    msgs = schedule_messages([(0.0, ev(S, 0)), (1.0, error_event)])

    assert isinstance(msgs[-1].value, OnError) and msgs[-1].value.exception is boom


def test_schedule_messages_can_leave_the_stream_open() -> None:
    msgs = schedule_messages([(0.0, ev(S, 0))], complete=False)

    assert len(msgs) == 1


# ---------------------------------------------------------------------------------------------
# cold / hot / record


def test_cold_events_replay_for_each_subscription() -> None:
    scheduler = TestScheduler()
    source = cold_events(scheduler, "-a-|")

    first = record(scheduler, source, subscribed=0.0)
    second = record(scheduler, source, subscribed=10.0)

    assert [t for t, _ in first] == [0.0, 1.0, 3.0, 3.0]
    assert [t for t, _ in second] == [10.0, 11.0, 13.0, 13.0]


def test_hot_events_are_missed_by_late_subscribers() -> None:
    scheduler = TestScheduler()
    source = hot_events(scheduler, "-a-b-|", offset=1.0)

    trace = record(scheduler, source, subscribed=3.0)

    assert text_of_trace(trace) == "b"


def test_record_disposes_at_the_given_time() -> None:
    scheduler = TestScheduler()
    source = cold_events(scheduler, "-a-b-c-|")

    trace = record(scheduler, source, subscribed=0.0, disposed=4.0)

    assert text_of_trace(trace) == "ab"
    assert not any(isinstance(n, OnCompleted) for _, n in trace)
    assert source.subscriptions[0].unsubscribe == 4


def test_record_until_bounds_an_endless_stream() -> None:
    scheduler = TestScheduler()

    trace = record(scheduler, cold_events(scheduler, "-a-b").pipe(ops.repeat()), until=10.0)

    assert len(trace) > 2
    assert all(t <= 10.0 for t, _ in trace)


def test_record_through_an_operator_in_virtual_time() -> None:
    scheduler = TestScheduler()
    source = cold_events(scheduler, "-a-b-|", {"a": "Hel", "b": "lo"})

    trace = record(scheduler, source.pipe(ops.delay(0.5, scheduler=scheduler)))

    assert text_of_trace(trace) == "Hello"
    assert trace[-1][0] == 5.5


def test_events_of_trace_keeps_only_on_next_values() -> None:
    scheduler = TestScheduler()
    trace = record(scheduler, cold_events(scheduler, "a|"))

    assert [e.kind for e in events_of_trace(trace)] == [S, T, F]


# ---------------------------------------------------------------------------------------------
# text_of_items


def test_text_of_items_reads_tokens_strings_and_lists() -> None:
    items = [ev(S, 0), ev(T, 1, "Hel"), "lo", [ev(T, 2, " wor"), ("ld",)], ev(EventKind.REASONING, 3, "x")]

    assert text_of_items(items) == "Hello world"


def test_text_of_items_retry_discards_the_runs_text_so_far() -> None:
    items = [ev(T, 1, "Hel"), ev(T, 1, "x", run="other"), ev(R, 2), ev(T, 1, "Hi")]

    assert text_of_items(items) == "xHi"


def test_text_of_items_rejects_other_types() -> None:
    with pytest.raises(TypeError, match="pass text_of"):
        text_of_items([1.5])


# ---------------------------------------------------------------------------------------------
# assertions


def test_seq_contiguous_accepts_interleaved_runs() -> None:
    assert_seq_contiguous([ev(S, 0, run="a"), ev(S, 0, run="b"), ev(T, 1, run="a"), ev(F, 1, run="b")])


def test_seq_contiguous_reports_a_gap() -> None:
    with pytest.raises(AssertionError, match="has seq 2, expected 1 \\(a gap\\)"):
        assert_seq_contiguous([ev(S, 0), ev(T, 2)])


def test_seq_contiguous_reports_a_repeat() -> None:
    with pytest.raises(AssertionError, match="a repeat"):
        assert_seq_contiguous([ev(S, 0), ev(T, 1), ev(T, 1)])


@pytest.mark.parametrize(
    ("events", "why"),
    [
        ([], "no events"),
        ([ev(T, 0), ev(F, 1)], "starts with a start"),
        ([ev(S, 0), ev(T, 1)], "ends with a finish or error"),
        ([ev(S, 0), ev(F, 1), ev(T, 2), ev(F, 3)], "cannot appear inside"),
        ([ev(S, 0), ev(S, 1), ev(F, 2)], "cannot appear inside"),
        ([ev(S, 0), ev(U, 1), ev(T, 2), ev(F, 3)], "usage comes at most once"),
        ([ev(S, 0), ev(U, 1), ev(U, 2), ev(F, 3)], "usage comes at most once"),
        ([ev(S, 0), ev(U, 1), TokenEvent(E, "A", "r", 2, error=RuntimeError())], "usage comes at most once"),
        ([ev(S, 0), ev(T, 2), ev(F, 3)], "a gap"),
        ([ev(S, 0), ev(T, 1, run="other"), ev(F, 2)], "run_id"),
        ([ev(S, 0), ev(T, 1, agent="B"), ev(F, 2)], "agent"),
    ],
)
def test_well_formed_run_rejects_broken_runs(events: list[TokenEvent], why: str) -> None:
    with pytest.raises(AssertionError, match=why):
        assert_well_formed_run(events)


def test_well_formed_run_accepts_every_body_kind() -> None:
    body = [ev(T, 1, "a"), ev(EventKind.REASONING, 2), ev(EventKind.TOOL_CALL, 3), ev(R, 4), ev(U, 5), ev(F, 6)]

    assert_well_formed_run([ev(S, 0), *body])
