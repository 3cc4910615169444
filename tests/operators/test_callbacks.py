"""tap_safe: callbacks whose failures are isolated, counted and reported once."""

from __future__ import annotations

import asyncio
import logging
import re
import threading
from typing import Any

import pytest
import reactivex
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.recorded import Recorded

from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, TokenEvent
from rxagents.operators._buffer import buffer_tokens
from rxagents.operators._callbacks import CallbackStats, tap_safe
from rxagents.operators._errors import CallbackError
from rxagents.operators._text import collect_text
from rxagents.testing._laws import Law, check_operator_laws
from rxagents.testing._marbles import cold_events, record

# --- helpers ------------------------------------------------------------------------------------------------


def run_events(*texts: str, agent: str = "A", run_id: str = "r1", t0: float = 200.0) -> list[TokenEvent]:
    """start, one token per text, finish; event i stamped at t0 + 10 * (i + 1)."""
    events = [TokenEvent(EventKind.START, agent, run_id, 0, time=t0 + 10)]
    for i, text in enumerate(texts, start=1):
        events.append(TokenEvent(EventKind.TOKEN, agent, run_id, i, text=text, time=t0 + 10 * (i + 1)))
    events.append(
        TokenEvent(
            EventKind.FINISH, agent, run_id, len(texts) + 1, finish_reason="stop", time=t0 + 10 * (len(texts) + 2)
        )
    )
    return events


def cold(scheduler: TestScheduler, events: list[TokenEvent], error: Exception | None = None) -> Any:
    messages: list[Recorded[Any]] = [ReactiveTest.on_next(10 * (i + 1), e) for i, e in enumerate(events)]
    end = 10 * (len(events) + 1)
    messages.append(ReactiveTest.on_error(end, error) if error else ReactiveTest.on_completed(end))
    return scheduler.create_cold_observable(messages)


def values(messages: list[Recorded[Any]]) -> list[Any]:
    return [m.value.value for m in messages if isinstance(m.value, OnNext)]


def play(op: Any, events: list[TokenEvent], error: Exception | None = None) -> tuple[Any, Any]:
    scheduler = TestScheduler()
    source = cold(scheduler, events, error)
    results = scheduler.start(lambda: source.pipe(op))
    return results, source


# --- what the callback receives -----------------------------------------------------------------------------


def test_events_pass_through_unchanged() -> None:
    events = run_events("Hel", "lo")
    results, _ = play(tap_safe(lambda _: None), events)
    assert values(results.messages) == events
    assert isinstance(results.messages[-1].value, OnCompleted)


def test_text_payload_gets_token_deltas_only_by_default() -> None:
    seen: list[Any] = []
    play(tap_safe(seen.append), run_events("Hel", "lo"))
    assert seen == ["Hel", "lo"]


def test_dict_payload_gets_every_event_as_detailed_dict() -> None:
    seen: list[Any] = []
    events = run_events("Hi")
    play(tap_safe(seen.append, payload="dict"), events)
    assert seen == [e.to_dict() for e in events]
    assert seen[1]["content"] == "Hi"


def test_detailed_true_is_the_dict_payload() -> None:
    seen: list[Any] = []
    play(tap_safe(seen.append, detailed=True), run_events("Hi"))
    assert [d["type"] for d in seen] == ["start", "token", "finish"]


def test_event_payload_gets_the_events() -> None:
    seen: list[Any] = []
    events = run_events("a")
    play(tap_safe(seen.append, payload="event"), events)
    assert seen == events


def test_kinds_selects_the_events_the_callback_sees() -> None:
    seen: list[Any] = []
    play(tap_safe(seen.append, payload="event", kinds=("finish",)), run_events("a", "b"))
    assert [e.kind for e in seen] == [EventKind.FINISH]


def test_kinds_none_calls_for_every_event() -> None:
    seen: list[Any] = []
    play(tap_safe(seen.append, kinds=None), run_events("a"))
    assert seen == ["", "a", ""]


# --- text chunks (str items, e.g. after a buffer) ----------------------------------------------------------


def chunks(*texts: str, error: Exception | None = None) -> tuple[Any, Any]:
    """A cold observable of str chunks at 10, 20, ... and its scheduler."""
    scheduler = TestScheduler()
    messages: list[Recorded[Any]] = [ReactiveTest.on_next(10 * (i + 1), t) for i, t in enumerate(texts)]
    end = 10 * (len(texts) + 1)
    messages.append(ReactiveTest.on_error(end, error) if error else ReactiveTest.on_completed(end))
    return scheduler, scheduler.create_cold_observable(messages)


def play_chunks(op: Any, *texts: str, error: Exception | None = None) -> tuple[Any, Any]:
    scheduler, source = chunks(*texts, error=error)
    return scheduler.start(lambda: source.pipe(op)), source


def test_chunks_pass_through_unchanged_at_their_time() -> None:
    results, _ = play_chunks(tap_safe(lambda _: None), "Hel", "lo wor", "ld")
    assert [(m.time, m.value.value) for m in results.messages[:-1]] == [(210, "Hel"), (220, "lo wor"), (230, "ld")]
    assert isinstance(results.messages[-1].value, OnCompleted)


def test_text_payload_gets_each_chunk_as_is() -> None:
    seen: list[Any] = []
    play_chunks(tap_safe(seen.append), "Hel", "lo")
    assert seen == ["Hel", "lo"]


@pytest.mark.parametrize("payload", ["dict", "event"])
def test_dict_and_event_payloads_get_each_chunk_as_is(payload: Any) -> None:
    seen: list[Any] = []
    play_chunks(tap_safe(seen.append, payload=payload), "Hel", "lo")
    assert seen == ["Hel", "lo"]


def test_detailed_true_gets_each_chunk_as_is() -> None:
    seen: list[Any] = []
    play_chunks(tap_safe(seen.append, detailed=True), "ab")
    assert seen == ["ab"]


def test_kinds_does_not_filter_chunks() -> None:
    seen: list[Any] = []
    play_chunks(tap_safe(seen.append, kinds=("finish",)), "a", "b")
    assert seen == ["a", "b"]


def test_kinds_still_filters_the_events_of_a_mixed_stream() -> None:
    seen: list[Any] = []
    events = run_events("x", "y")
    mixed: list[Any] = [events[0], "chunk", *events[1:]]
    scheduler = TestScheduler()
    messages: list[Recorded[Any]] = [ReactiveTest.on_next(10 * (i + 1), e) for i, e in enumerate(mixed)]
    messages.append(ReactiveTest.on_completed(10 * (len(mixed) + 1)))
    source = scheduler.create_cold_observable(messages)
    results = scheduler.start(lambda: source.pipe(tap_safe(seen.append)))
    assert seen == ["chunk", "x", "y"]  # start and finish filtered out by the default kinds (token)
    assert values(results.messages) == mixed


def test_after_a_buffer_the_callback_gets_the_buffered_chunks() -> None:
    scheduler = TestScheduler()
    seen: list[str] = []
    source = cold_events(scheduler, "-a-b-c-d-e-|", {"a": "The", "b": " cat", "c": " sat", "d": " on", "e": " it"})
    trace = record(scheduler, source.pipe(buffer_tokens(2), tap_safe(seen.append), collect_text()))
    assert seen == ["The cat", " sat on", " it"]
    assert [(t, n.value) for t, n in trace if n.kind == "N"] == [(11.0, "The cat sat on it")]


def test_raising_callback_on_chunks_does_not_change_the_stream() -> None:
    stats = CallbackStats()
    results, _ = play_chunks(tap_safe(boom_on("b"), stats=stats), "a", "b", "c", "b")
    assert values(results.messages) == ["a", "b", "c", "b"]
    assert isinstance(results.messages[-1].value, OnCompleted)
    assert (stats.calls, stats.errors) == (4, 2)


def test_chunk_errors_reported_once_at_the_end(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rxagents")
    play_chunks(tap_safe(boom_on("b")), "a", "b", "b")
    records = [r for r in caplog.records if "tap_safe" in r.getMessage()]
    assert len(records) == 1 and "2 of 3 calls" in records[0].getMessage()


def test_raising_callback_on_chunks_never_reaches_the_producer() -> None:
    subject: Subject[str] = Subject()
    received: list[str] = []
    subject.pipe(tap_safe(boom_on("a"))).subscribe(received.append)
    subject.on_next("a")  # would raise here if the exception leaked
    subject.on_next("b")
    assert received == ["a", "b"]


def test_on_error_handler_gets_the_chunk() -> None:
    failures: list[tuple[str, Any]] = []
    play_chunks(
        tap_safe(boom_on("b"), on_error=lambda exc, item: failures.append((type(exc).__name__, item))), "a", "b"
    )
    assert failures == [("ValueError", "b")]


def test_on_error_raise_on_a_chunk_fails_with_the_text_delivered_so_far() -> None:
    results, source = play_chunks(tap_safe(boom_on("c"), on_error="raise"), "ab", " b", "c", "d")
    assert values(results.messages) == ["ab", " b"]  # no error event: a chunk stream has no run to end
    last = results.messages[-1]
    assert isinstance(last.value, OnError) and isinstance(last.value.exception, CallbackError)
    error = last.value.exception
    assert isinstance(error.original, ValueError) and error.event is None
    assert error.partial_text == "ab b"
    assert source.subscriptions[0].unsubscribe == last.time


def test_scheduler_runs_chunk_callbacks_there() -> None:
    callbacks = TestScheduler()
    seen: list[str] = []
    received: list[str] = []
    subject: Subject[str] = Subject()
    subject.pipe(tap_safe(seen.append, scheduler=callbacks)).subscribe(received.append)
    subject.on_next("ab")
    subject.on_next("cd")
    assert received == ["ab", "cd"] and seen == []
    callbacks.start()
    assert seen == ["ab", "cd"]


@pytest.mark.asyncio
async def test_async_callback_gets_the_chunks_in_order() -> None:
    seen: list[str] = []
    done = asyncio.Event()

    async def callback(chunk: str) -> None:
        seen.append(chunk)
        if chunk == "c":
            done.set()

    reactivex.from_iterable(["a", "b", "c"]).pipe(tap_safe(callback)).subscribe()
    await done.wait()
    assert seen == ["a", "b", "c"]


# --- isolation ---------------------------------------------------------------------------------------------


def boom_on(bad: str) -> Any:
    def callback(text: str) -> None:
        if text == bad:
            raise ValueError(f"cannot handle {text!r}")

    return callback


def test_raising_callback_does_not_change_the_stream() -> None:
    events = run_events("a", "b", "c")
    results, _ = play(tap_safe(boom_on("b")), events)
    assert values(results.messages) == events
    assert isinstance(results.messages[-1].value, OnCompleted)


def test_errors_are_counted_in_stats() -> None:
    stats = CallbackStats()
    play(tap_safe(boom_on("b"), stats=stats), run_events("a", "b", "c", "b"))
    assert (stats.calls, stats.errors) == (4, 2)
    assert isinstance(stats.first_error, ValueError)


def test_errors_reported_once_at_the_end_with_count_and_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rxagents")
    play(tap_safe(boom_on("b")), run_events("a", "b", "b", "c"))
    records = [r for r in caplog.records if "tap_safe" in r.getMessage()]
    assert len(records) == 1
    assert "2 of 4 calls" in records[0].getMessage()
    assert records[0].exc_info is not None and records[0].exc_info[0] is ValueError


def test_each_subscription_reports_its_own_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rxagents")
    op = tap_safe(boom_on("a"))
    play(op, run_events("a"))
    play(op, run_events("a"))
    assert len([r for r in caplog.records if "tap_safe" in r.getMessage()]) == 2


def test_no_report_without_errors(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rxagents")
    play(tap_safe(lambda _: None), run_events("a"))
    assert caplog.records == []


def test_report_on_dispose(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rxagents")
    subject: Subject[TokenEvent] = Subject()
    sub = subject.pipe(tap_safe(boom_on("a"))).subscribe()
    for event in run_events("a")[:2]:
        subject.on_next(event)
    assert caplog.records == []
    sub.dispose()
    assert "1 of 1 calls" in caplog.records[0].getMessage()


def test_raising_callback_never_reaches_the_producer() -> None:
    subject: Subject[TokenEvent] = Subject()
    received: list[TokenEvent] = []
    subject.pipe(tap_safe(boom_on("a"))).subscribe(received.append)
    events = run_events("a", "b")
    for event in events:
        subject.on_next(event)  # would raise here if the exception leaked
    assert received == events


def test_on_error_raise_ends_the_stream_with_callback_error() -> None:
    events = run_events("a", "b", "c")
    results, _ = play(tap_safe(boom_on("b"), on_error="raise"), events)
    got = values(results.messages)
    assert got[:2] == events[:2]  # the event the callback failed on is not passed on
    assert got[2].kind is EventKind.ERROR and got[2].seq == 2
    last = results.messages[-1].value
    assert isinstance(last, OnError) and isinstance(last.exception, CallbackError)
    assert isinstance(last.exception.original, ValueError)
    assert last.exception.__cause__ is last.exception.original
    assert last.exception.partial_text == "a"
    assert got[2].error is last.exception


def test_on_error_raise_disposes_upstream_at_the_failure() -> None:
    results, source = play(tap_safe(boom_on("b"), on_error="raise"), run_events("a", "b", "c"))
    assert source.subscriptions[0].unsubscribe == results.messages[-1].time


def test_on_error_handler_called_per_failure_instead_of_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rxagents")
    failures: list[tuple[str, int]] = []
    play(
        tap_safe(boom_on("b"), on_error=lambda exc, event: failures.append((type(exc).__name__, event.seq))),
        run_events("a", "b", "b"),
    )
    assert failures == [("ValueError", 2), ("ValueError", 3)]
    assert caplog.records == []


def test_on_error_handler_that_raises_is_isolated_and_warned_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rxagents")

    def handler(exc: Exception, event: TokenEvent) -> None:
        raise RuntimeError("handler broke")

    events = run_events("b", "b")
    results, _ = play(tap_safe(boom_on("b"), on_error=handler), events)
    assert values(results.messages) == events
    assert len([r for r in caplog.records if "on_error handler" in r.getMessage()]) == 1


# --- where callbacks run -----------------------------------------------------------------------------------


def test_scheduler_runs_callbacks_there_without_holding_events() -> None:
    callbacks = TestScheduler()
    seen: list[str] = []
    received: list[TokenEvent] = []
    subject: Subject[TokenEvent] = Subject()
    subject.pipe(tap_safe(seen.append, scheduler=callbacks)).subscribe(received.append)
    events = run_events("a", "b")
    for event in events:
        subject.on_next(event)
    assert received == events and seen == []  # events passed on; callbacks wait for their scheduler
    callbacks.start()
    assert seen == ["a", "b"]


def test_scheduler_callbacks_run_on_that_thread() -> None:
    threads: list[str] = []
    done = threading.Event()
    from reactivex.scheduler import NewThreadScheduler

    def callback(text: str) -> None:
        threads.append(threading.current_thread().name)
        if text == "b":
            done.set()

    reactivex.from_iterable(run_events("a", "b")).pipe(tap_safe(callback, scheduler=NewThreadScheduler())).subscribe()
    assert done.wait(5)
    assert threading.current_thread().name not in threads


# --- async callbacks ---------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_async_callbacks_run_in_order_without_blocking_the_stream() -> None:
    gate = asyncio.Event()
    finished = asyncio.Event()
    seen: list[str] = []

    async def callback(text: str) -> None:
        await gate.wait()
        seen.append(text)
        if text == "c":
            finished.set()

    subject: Subject[TokenEvent] = Subject()
    received: list[TokenEvent] = []
    subject.pipe(tap_safe(callback)).subscribe(received.append)
    events = run_events("a", "b", "c")
    for event in events:
        subject.on_next(event)
    assert received == events  # all delivered while every callback is still waiting
    gate.set()
    await finished.wait()
    assert seen == ["a", "b", "c"]


@pytest.mark.asyncio
async def test_async_callback_errors_are_isolated_and_reported(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rxagents")
    stats = CallbackStats()
    done = asyncio.Event()

    async def callback(text: str) -> None:
        if text == "c":
            done.set()
        if text != "c":
            raise KeyError(text)

    completed: list[bool] = []
    reactivex.from_iterable(run_events("a", "b", "c")).pipe(tap_safe(callback, stats=stats)).subscribe(
        on_completed=lambda: completed.append(True)
    )
    await done.wait()
    await asyncio.sleep(0)  # let the worker finish its loop turn
    assert completed == [True]
    assert stats.errors == 2
    assert "2 of 3 calls" in caplog.records[0].getMessage()


@pytest.mark.asyncio
async def test_lambda_returning_a_task_is_awaited_and_isolated() -> None:
    stats = CallbackStats()
    done = asyncio.Event()

    async def send(text: str) -> None:
        if text == "b":
            done.set()
            raise ConnectionError("socket closed")

    reactivex.from_iterable(run_events("a", "b")).pipe(
        tap_safe(lambda text: asyncio.create_task(send(text)), stats=stats)
    ).subscribe()
    await done.wait()
    for _ in range(3):
        await asyncio.sleep(0)
    assert stats.errors == 1 and isinstance(stats.first_error, ConnectionError)


@pytest.mark.asyncio
async def test_dispose_drops_pending_async_callbacks() -> None:
    stats = CallbackStats()
    started = asyncio.Event()

    async def callback(text: str) -> None:
        started.set()
        await asyncio.Event().wait()  # never finishes on its own

    subject: Subject[TokenEvent] = Subject()
    sub = subject.pipe(tap_safe(callback, stats=stats)).subscribe()
    for event in run_events("a", "b", "c"):
        subject.on_next(event)
    await started.wait()
    sub.dispose()
    for _ in range(3):
        await asyncio.sleep(0)
    assert stats.dropped == 3  # the running one cancelled, two never started (their coroutines closed)


@pytest.mark.asyncio
async def test_raise_mode_with_async_callback_holds_completion_then_fails() -> None:
    outcome: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()

    async def callback(text: str) -> None:
        if text == "b":
            raise ValueError("bad")

    reactivex.from_iterable(run_events("a", "b")).pipe(tap_safe(callback, on_error="raise")).subscribe(
        on_error=outcome.set_result, on_completed=lambda: outcome.set_result(None)
    )
    error = await outcome
    assert isinstance(error, CallbackError) and isinstance(error.original, ValueError)


@pytest.mark.asyncio
async def test_async_callbacks_from_a_foreign_thread_run_on_the_subscribers_loop() -> None:
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    loops: list[asyncio.AbstractEventLoop] = []

    async def callback(text: str) -> None:
        loops.append(asyncio.get_running_loop())
        if text == "b":
            done.set()

    subject: Subject[TokenEvent] = Subject()
    subject.pipe(tap_safe(callback)).subscribe()
    events = run_events("a", "b")

    def produce() -> None:
        for event in events:
            subject.on_next(event)

    thread = threading.Thread(target=produce)
    thread.start()
    await done.wait()
    thread.join()
    assert loops == [loop, loop]


@pytest.mark.asyncio
async def test_raise_mode_with_async_callback_from_a_foreign_thread_still_fails_the_stream() -> None:
    loop = asyncio.get_running_loop()
    outcome: asyncio.Future[BaseException | None] = loop.create_future()

    async def callback(text: str) -> None:
        if text == "b":
            raise ValueError("bad")

    def settle(value: BaseException | None) -> None:
        def resolve() -> None:
            if not outcome.done():
                outcome.set_result(value)

        loop.call_soon_threadsafe(resolve)

    subject: Subject[TokenEvent] = Subject()
    subject.pipe(tap_safe(callback, on_error="raise")).subscribe(on_error=settle, on_completed=lambda: settle(None))

    def produce() -> None:
        for event in run_events("a", "b"):
            subject.on_next(event)
        subject.on_completed()

    thread = threading.Thread(target=produce)
    thread.start()
    error = await outcome
    thread.join()
    assert isinstance(error, CallbackError)


# --- arguments ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"on_error": "ignore"}, ValueError, "on_error must be"),
        ({"payload": "json"}, ValueError, "payload must be"),
        ({"payload": "event", "detailed": True}, ValueError, "pass only one"),
        ({"kinds": ()}, ValueError, "at least one"),
        ({"kinds": ("tokens",)}, ValueError, "valid kinds"),
        ({"kinds": "token"}, TypeError, "collection"),
        ({"scheduler": "loop"}, TypeError, "scheduler"),
    ],
)
def test_bad_arguments_raise_at_construction(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        tap_safe(print, **kwargs)


def test_fn_must_be_callable() -> None:
    with pytest.raises(ConfigurationError, match=re.escape("fn must be a callable, got 'print'; pass the function")):
        tap_safe("print")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"on_error": "ignore"}, "on_error must be 'log', 'raise' or a callable(exception, event), got 'ignore'"),
        ({"payload": "json"}, "payload must be 'text' or 'dict' or 'event', got 'json'"),
        (
            {"payload": "text", "detailed": True},
            "payload must be 'dict' (or None) with detailed=True, got 'text'; pass only one of them",
        ),
        ({"detailed": "yes"}, "detailed must be True or False, got 'yes'"),
        ({"scheduler": "loop"}, "scheduler must be a reactivex scheduler or None, got str 'loop'"),
        ({"stats": {}}, "stats must be a CallbackStats or None, got {}; create one with CallbackStats()"),
    ],
)
def test_bad_arguments_name_the_parameter_value_and_fix(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        tap_safe(print, **kwargs)


def test_building_calls_nothing() -> None:
    calls: list[Any] = []
    op = tap_safe(calls.append)
    op(reactivex.from_iterable(run_events("a")))  # applied but not subscribed
    assert calls == []


def test_stats_repr_names_the_error_type_only() -> None:
    stats = CallbackStats()
    play(tap_safe(boom_on("a"), stats=stats), run_events("a"))
    assert repr(stats) == "CallbackStats(calls=1, errors=1, dropped=0, first_error=ValueError)"


# --- laws ---------------------------------------------------------------------------------------------------


def test_tap_safe_obeys_the_laws() -> None:
    report = check_operator_laws(lambda scheduler: tap_safe(lambda _: None))
    assert Law.CALLBACK_ISOLATION in report.checked and report.not_applicable == ()


def test_tap_safe_with_a_raising_callback_obeys_the_laws() -> None:
    def fails(text: str) -> None:
        raise RuntimeError("user bug")

    report = check_operator_laws(lambda scheduler: tap_safe(fails, kinds=None))
    assert Law.CALLBACK_ISOLATION in report.checked


def test_tap_safe_on_a_scheduler_obeys_the_laws() -> None:
    report = check_operator_laws(lambda scheduler: tap_safe(lambda _: None, scheduler=scheduler))
    assert len(report.checked) == len(Law)


def test_tap_safe_raise_mode_obeys_the_laws() -> None:
    stats = CallbackStats()

    def fails_on_e(text: str) -> None:
        if "e" in text:  # a letter the generated texts often hold, so the failure path runs
            raise RuntimeError("no e")

    report = check_operator_laws(
        lambda scheduler: tap_safe(fails_on_e, on_error="raise", stats=stats),
        not_applicable={
            Law.COMPLETION: "on_error='raise' turns a completed input into an error when the callback fails",
            Law.ERROR_TRANSPARENCY: "on_error='raise' may end the stream with CallbackError first",
        },
    )
    assert Law.CONSERVATION in report.checked
    assert stats.errors > 0


# --- laws on streams of text chunks -------------------------------------------------------------------------


def test_tap_safe_after_a_buffer_obeys_the_laws() -> None:
    seen: list[str] = []
    report = check_operator_laws(lambda s: lambda src: src.pipe(buffer_tokens(3), tap_safe(seen.append)))
    assert len(report.checked) == len(Law)
    assert seen and all(isinstance(chunk, str) for chunk in seen)


def test_tap_safe_after_a_buffer_with_a_raising_callback_obeys_the_laws() -> None:
    def fails(chunk: str) -> None:
        raise RuntimeError("user bug")

    report = check_operator_laws(lambda s: lambda src: src.pipe(buffer_tokens(3), tap_safe(fails, kinds=None)))
    assert Law.CALLBACK_ISOLATION in report.checked


def test_tap_safe_after_a_buffer_on_a_scheduler_obeys_the_laws() -> None:
    report = check_operator_laws(lambda s: lambda src: src.pipe(buffer_tokens(3), tap_safe(len, scheduler=s)))
    assert len(report.checked) == len(Law)


def test_tap_safe_raise_mode_after_a_buffer_obeys_the_laws() -> None:
    stats = CallbackStats()

    def fails_on_e(chunk: str) -> None:
        if "e" in chunk:
            raise RuntimeError("no e")

    report = check_operator_laws(
        lambda s: lambda src: src.pipe(buffer_tokens(2), tap_safe(fails_on_e, on_error="raise", stats=stats)),
        not_applicable={
            Law.COMPLETION: "on_error='raise' turns a completed input into an error when the callback fails",
            Law.ERROR_TRANSPARENCY: "on_error='raise' may end the stream with CallbackError first",
        },
    )
    assert Law.CONSERVATION in report.checked
    assert stats.errors > 0
