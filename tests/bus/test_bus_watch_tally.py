"""RunTally: what ``rxagents watch`` reports of each run it saw (its --json lines and summary line)."""

from __future__ import annotations

import doctest

from rxagents.bus import RemoteRunError, _watch_tally
from rxagents.bus._watch_tally import RunTally
from rxagents.events import EventKind, TokenEvent
from tests.bus.brokers import run_events


def test_the_examples_in_its_docs_hold() -> None:
    assert doctest.testmod(_watch_tally).failed == 0


def test_a_whole_run_gives_one_record_with_its_tokens_and_text() -> None:
    tally = RunTally(keep_text=True)
    records = [tally.add(event) for event in run_events("r1", 4)]
    assert records[:-1] == [None] * 5
    assert records[-1] == {"run_id": "r1", "agent": "A", "status": "finished", "events": 6, "tokens": 4,
                           "retries": 0, "duplicates": 0, "missing": 0, "text": "t0 t1 t2 t3 "}  # fmt: skip


def test_duplicated_and_missing_seqs_are_counted_and_a_duplicate_changes_nothing() -> None:
    events = run_events("r1", 4)
    tally = RunTally(keep_text=True)
    for event in [events[0], events[1], events[1], events[3], events[4], events[2], events[5]]:
        record = tally.add(event)
    assert record is not None
    assert (record["duplicates"], record["missing"], record["tokens"]) == (2, 1, 3)
    assert record["text"] == "t0 t2 t3 "  # a late seq counts as seen twice: readers drop it
    assert tally.summary().endswith("; 3 tokens; 2 duplicated, 1 missing events")


def test_a_retry_starts_the_answer_again_and_errors_are_failed_or_cancelled() -> None:
    tally = RunTally(keep_text=True)
    first = run_events("r1", 2, ending="none")
    retry = TokenEvent(EventKind.RETRY, "A", "r1", 3, text="the run starts over")
    again = [TokenEvent(EventKind.TOKEN, "A", "r1", 4, text="x"), TokenEvent(EventKind.FINISH, "A", "r1", 5)]
    records = [tally.add(event) for event in [*first, retry, *again]]
    assert records[-1] is not None
    assert (records[-1]["retries"], records[-1]["tokens"], records[-1]["text"]) == (1, 1, "x")
    failed = tally.add(TokenEvent(EventKind.ERROR, "B", "r2", 0, error=ValueError("boom")))
    cancelled = tally.add(TokenEvent(EventKind.ERROR, "B", "r3", 0, error=RemoteRunError("RunCancelled", "stop")))
    tally.add(TokenEvent(EventKind.START, "C", "r4", 0))
    assert failed is not None and (failed["status"], failed["error"]) == ("failed", "ValueError: boom")
    assert cancelled is not None and (cancelled["status"], cancelled["error"]) == ("cancelled", "RunCancelled: stop")
    assert tally.summary() == ("4 run(s) watched: 1 finished, 1 failed, 1 cancelled, 1 unfinished; 1 tokens; "
                               "0 duplicated, 0 missing events")  # fmt: skip


def test_records_carry_no_text_unless_asked() -> None:
    tally = RunTally()
    record = [tally.add(event) for event in run_events("r1", 2)][-1]
    assert record is not None and "text" not in record and record["tokens"] == 2
