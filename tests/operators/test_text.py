"""Tests of rxagents/operators/_text.py: running_text, collect_text, text_only, only, exclude."""

from __future__ import annotations

from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex.notification import Notification
from reactivex.testing import TestScheduler

from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, TokenEvent
from rxagents.operators._text import collect_text, exclude, only, running_text, text_only
from rxagents.testing._laws import Law, check_operator_laws
from rxagents.testing._marbles import MarbleValue, cold_events, events_of_trace, record

RETRY = TokenEvent(EventKind.RETRY, "", "", 0, text="retrying")
REASONING = TokenEvent(EventKind.REASONING, "", "", 0, text="hmm")
EMPTY = TokenEvent(EventKind.TOKEN, "", "", 0, text="")
CAT: dict[str, MarbleValue] = {"a": "The", "b": " cat", "c": " sat", "r": RETRY, "g": REASONING, "e": EMPTY}


def rendered(trace: list[tuple[float, Notification[Any]]]) -> list[tuple[float, Any]]:
    """(time, value) for on_next, (time, "|") for on_completed, (time, "#") for on_error."""
    out: list[tuple[float, Any]] = []
    for t, n in trace:
        out.append((t, n.value if n.kind == "N" else "|" if n.kind == "C" else "#"))
    return out


def run(marbles: str, operator: Any, error: BaseException | None = None) -> list[tuple[float, Any]]:
    scheduler = TestScheduler()
    source = cold_events(scheduler, marbles, CAT, error=error)
    return rendered(record(scheduler, source.pipe(operator)))


# --- running_text ------------------------------------------------------------------------------------


def test_running_text_emits_the_text_so_far_after_each_token() -> None:
    assert run("---a--b--c---|", running_text()) == [
        (3, "The"),
        (6, "The cat"),
        (9, "The cat sat"),
        (13, "|"),
    ]


def test_running_text_ignores_empty_tokens_and_other_kinds() -> None:
    assert run("-a-e-g-b-|", running_text()) == [(1, "The"), (7, "The cat"), (9, "|")]


def test_running_text_restarts_at_a_retry_event_and_clears_the_display() -> None:
    assert run("---a-r-a-b---|", running_text()) == [
        (3, "The"),
        (5, ""),
        (7, "The"),
        (9, "The cat"),
        (13, "|"),
    ]


def test_running_text_retry_before_any_text_emits_nothing() -> None:
    assert run("-r-a-|", running_text()) == [(3, "The"), (5, "|")]


def test_running_text_of_an_empty_stream_only_completes() -> None:
    assert run("---|", running_text()) == [(3, "|")]


def test_running_text_passes_the_error_through_unchanged() -> None:
    boom = ValueError("boom")
    scheduler = TestScheduler()
    trace = record(scheduler, cold_events(scheduler, "-a-#", CAT, error=boom).pipe(running_text()))
    assert rendered(trace) == [(1, "The"), (3, "#")]
    assert trace[-1][1].exception is boom  # type: ignore[attr-defined]


def test_running_text_subscriptions_are_independent() -> None:
    scheduler = TestScheduler()
    stream = cold_events(scheduler, "-a-b-|", CAT).pipe(running_text())
    first: list[str] = []
    second: list[str] = []
    stream.subscribe(first.append, scheduler=scheduler)
    stream.subscribe(second.append, scheduler=scheduler)
    scheduler.start()
    assert first == second == ["The", "The cat"]


# --- collect_text ------------------------------------------------------------------------------------


def test_collect_text_emits_the_whole_text_once_at_completion() -> None:
    assert run("---a--b--c---|", collect_text()) == [(13, "The cat sat"), (13, "|")]


def test_collect_text_of_a_stream_without_tokens_is_the_empty_string() -> None:
    assert run("-g-|", collect_text()) == [(3, ""), (3, "|")]


def test_collect_text_keeps_only_the_text_after_the_last_retry() -> None:
    assert run("-a-b-r-a-c-|", collect_text()) == [(11, "The sat"), (11, "|")]


def test_collect_text_joins_str_items_such_as_buffered_chunks() -> None:
    out: list[str] = []
    reactivex.of("The", " cat", " sat").pipe(collect_text()).subscribe(out.append)
    assert out == ["The cat sat"]


def test_collect_text_on_error_emits_nothing_and_passes_the_same_error() -> None:
    boom = ConnectionError("dropped")
    scheduler = TestScheduler()
    trace = record(scheduler, cold_events(scheduler, "-a-b-#", CAT, error=boom).pipe(collect_text()))
    assert rendered(trace) == [(5, "#")]
    assert trace[0][1].exception is boom  # type: ignore[attr-defined]


def test_collect_text_sends_no_completion_after_the_consumer_disposed() -> None:
    scheduler = TestScheduler()
    stream = cold_events(scheduler, "-a-|", CAT).pipe(collect_text())
    seen: list[str] = []
    subscription: list[Any] = []

    class Consumer(abc.ObserverBase[str]):
        def on_next(self, text: str) -> None:
            seen.append(text)
            subscription[0].dispose()

        def on_error(self, error: Exception) -> None:
            seen.append("error")

        def on_completed(self) -> None:
            seen.append("completed")

    assert isinstance(stream, Observable)
    subscription.append(stream._subscribe_core(Consumer(), scheduler))  # raw: no auto-detach safety net
    scheduler.start()
    assert seen == ["The"]


# --- text_only ---------------------------------------------------------------------------------------


def test_text_only_emits_the_deltas_of_token_events() -> None:
    assert run("---a--b--c-----|", text_only()) == [(3, "The"), (6, " cat"), (9, " sat"), (15, "|")]


def test_text_only_drops_empty_tokens_reasoning_and_retry() -> None:
    assert run("-a-e-g-r-b-|", text_only()) == [(1, "The"), (9, " cat"), (11, "|")]


def test_text_only_passes_the_error_through() -> None:
    boom = RuntimeError("x")
    scheduler = TestScheduler()
    trace = record(scheduler, cold_events(scheduler, "-a-#", CAT, error=boom).pipe(text_only()))
    assert rendered(trace) == [(1, "The"), (3, "#")]
    assert trace[-1][1].exception is boom  # type: ignore[attr-defined]


# --- only / exclude ----------------------------------------------------------------------------------


def kinds_of(marbles: str, operator: Any) -> list[str]:
    scheduler = TestScheduler()
    trace = record(scheduler, cold_events(scheduler, marbles, CAT).pipe(operator))
    return [event.kind.value for event in events_of_trace(trace)]


def test_only_keeps_the_given_kinds() -> None:
    assert kinds_of("-a-g-b-|", only(EventKind.TOKEN)) == ["token", "token"]


def test_only_accepts_kind_values_as_strings() -> None:
    assert kinds_of("-a-g-b-|", only("start", "finish")) == ["start", "finish"]


def test_exclude_drops_the_given_kinds() -> None:
    assert kinds_of("-a-g-b-|", exclude(EventKind.REASONING, "start")) == ["token", "token", "finish"]


def test_only_passes_events_through_unchanged() -> None:
    scheduler = TestScheduler()
    source = cold_events(scheduler, "-a-|", CAT)
    everything = events_of_trace(record(scheduler, source))
    scheduler = TestScheduler()
    kept = events_of_trace(record(scheduler, cold_events(scheduler, "-a-|", CAT).pipe(only("token"))))
    assert kept == [e for e in everything if e.kind is EventKind.TOKEN]


@pytest.mark.parametrize("factory", [only, exclude])
def test_filters_need_at_least_one_kind(factory: Any) -> None:
    with pytest.raises(ValueError, match=r"at least one event kind"):
        factory()


@pytest.mark.parametrize("factory", [only, exclude])
def test_filters_reject_an_unknown_kind_naming_the_valid_ones(factory: Any) -> None:
    name = factory.__name__
    message = rf"{name}\(\) kinds must be EventKind members or one of .*'token'.*, got 'tokens'"
    with pytest.raises(ConfigurationError, match=message):
        factory("tokens")


# --- laws ----------------------------------------------------------------------------------------------


def last_text(items: list[Any]) -> str:
    """The text a running-text stream stands for: its last frame."""
    return str(items[-1]) if items else ""


def test_running_text_obeys_the_laws() -> None:
    check_operator_laws(lambda s: running_text(), text_of=last_text)


def test_collect_text_obeys_the_laws() -> None:
    check_operator_laws(lambda s: collect_text())


def test_text_only_obeys_the_laws() -> None:
    check_operator_laws(lambda s: text_only())


def test_only_tokens_obeys_the_laws() -> None:
    check_operator_laws(lambda s: only(EventKind.TOKEN, EventKind.FINISH))


def test_only_without_tokens_obeys_the_laws_except_conservation() -> None:
    report = check_operator_laws(
        lambda s: only(EventKind.START, EventKind.USAGE, EventKind.FINISH),
        not_applicable={
            Law.CONSERVATION: "token events are filtered out on purpose, so no text comes through",
            Law.COMPLETION: "its text part cannot hold (no text comes through); the checker has no "
            "completion-only mode",
        },
    )
    assert Law.CONSERVATION not in report.checked


def test_exclude_obeys_the_laws() -> None:
    check_operator_laws(lambda s: exclude(EventKind.REASONING, EventKind.TOOL_CALL))
