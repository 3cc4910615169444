"""The run driver (rxagents/_drive.py): callback checks, the handlers of one output, dispatch and the outcome."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
import reactivex
from reactivex import abc
from reactivex import operators as ops

from rxagents import _drive
from rxagents.errors import ConfigurationError, ModelError, RunError
from rxagents.events import EventKind, TokenEvent


def _run(*texts: str, loop: int = 1, agent: str = "A", end: EventKind = EventKind.FINISH) -> list[TokenEvent]:
    kinds = [EventKind.START, *[EventKind.TOKEN] * len(texts), end]
    bodies = ["", *texts, ""]
    return [TokenEvent(k, agent, f"run-{agent}", i, loop=loop, text=t)
            for i, (k, t) in enumerate(zip(kinds, bodies, strict=True))]


def _source(events: list[TokenEvent], record: list[TokenEvent] | None = None) -> _drive.Source:
    """The events, recorded (when ``record``) before they are passed on, as a workflow's stream records them."""

    def source(scheduler: abc.SchedulerBase) -> reactivex.Observable[TokenEvent]:
        observable = reactivex.from_iterable(events)
        return observable if record is None else observable.pipe(ops.do_action(record.append))

    return source


# --- 1. check ------------------------------------------------------------------------------------------------------
def test_a_non_callable_callback_is_refused_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="agent 'A' streaming_callback must be callable"):
        _drive.check_callback("agent 'A' streaming_callback", "print")


def test_run_refuses_an_async_callback_naming_the_arun_of_its_owner() -> None:
    async def callback(token: str) -> None: ...

    _drive.check_callback("streaming_callback", callback)  # arun awaits it
    with pytest.raises(ConfigurationError, match=r"async function.*`await workflow\.arun\(task"):
        _drive.check_callback("streaming_callback", callback, awaiting=False, owner="workflow")


# --- 2. route ------------------------------------------------------------------------------------------------------
def test_the_log_comes_first_then_the_callback_and_the_printer_only_without_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    got: list[Any] = []
    printed: list[TokenEvent] = []
    events = _run("a", "b")
    text = _drive.Output(got.append, verbose=True, printer=printed.append).handlers(awaiting=False)
    detailed = _drive.Output(got.append, detailed=True).handlers(awaiting=False)
    printer = _drive.Output(printer=printed.append).handlers(awaiting=False)
    with caplog.at_level(logging.DEBUG, logger="rxagents"):
        for handler in text:
            for event in events:
                handler(event)
    assert len(text) == 2 and [r.getMessage() for r in caplog.records] == [repr(e) for e in events]
    assert got == ["a", "b"] and printed == []
    for event in events:
        detailed[0](event)
        printer[0](event)
    assert got[2:] == [e.to_dict() for e in events] and printed == events


# --- 3. dispatch and 4. outcome ------------------------------------------------------------------------------------
def test_run_delivers_on_this_thread_and_the_answer_is_the_last_loops_text() -> None:
    first, second = _run("x")[:-1], _run("y", loop=2)[1:]  # loop 1 answers "x", loop 2 "y", then the finish
    events = [*first, *(TokenEvent(e.kind, "A", "run-A", len(first) + i, loop=2, text=e.text)
                        for i, e in enumerate(second))]
    got: list[str] = []
    delivery = _drive.Delivery("A", _drive.Output(got.append).handlers(awaiting=False))
    assert _drive.answer(delivery.run(_source(events))) == "y"
    assert got == ["x", "y"]


def test_arun_awaits_what_a_handler_returns_and_gives_the_same_answer() -> None:
    got: list[str] = []

    async def callback(token: str) -> None:
        await asyncio.sleep(0)
        got.append(token)

    delivery = _drive.Delivery("A", _drive.Output(callback).handlers(awaiting=True))
    dispatcher = asyncio.run(delivery.arun(_source(_run("a", "b", "c"))))
    assert _drive.answer(dispatcher) == "abc" and got == ["a", "b", "c"]


def test_a_failure_is_a_run_error_naming_the_owner_and_the_type_with_the_partial_text() -> None:
    error = ModelError("the connection was cut")

    def source(scheduler: abc.SchedulerBase) -> reactivex.Observable[TokenEvent]:
        return reactivex.concat(reactivex.from_iterable(_run("par", "tial")[:-1]), reactivex.throw(error))

    dispatcher = _drive.Delivery("A").run(source)
    with pytest.raises(RunError, match=r"^agent 'A' run failed: ModelError: the connection was cut$") as info:
        _drive.answer(dispatcher)
    assert info.value.partial_text == "partial" and info.value.__cause__ is error
    assert [e.kind for e in info.value.events] == [EventKind.START, EventKind.TOKEN, EventKind.TOKEN]
    with pytest.raises(RunError, match=r"^workflow 'A' failed: ModelError"):
        _drive.delivered(dispatcher)


def test_a_run_error_is_raised_as_it_is() -> None:
    error = RunError("a workflow error", partial_text="p", events=())
    dispatcher = _drive.Delivery("W").run(lambda scheduler: reactivex.throw(error))
    with pytest.raises(RunError) as info:
        _drive.delivered(dispatcher)
    assert info.value is error


# --- events kept once -----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("asynchronous", [False, True])
def test_events_a_source_records_are_kept_there_only(asynchronous: bool) -> None:
    events = [*_run("a", "b"), *_run("c", agent="B")]
    record: list[TokenEvent] = []
    delivery = _drive.Delivery("W", record=record)
    source = _source(events, record)
    dispatcher = asyncio.run(delivery.arun(source)) if asynchronous else delivery.run(source)
    assert _drive.delivered(dispatcher) is record and record == events  # one list, each event once


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_fatal_callback_error_carries_the_delivered_events_not_those_only_recorded(asynchronous: bool) -> None:
    events = _run("a", "b", "c", "d")

    def callback(token: str) -> None:
        if token == "b":
            raise ValueError("bad token")

    record: list[TokenEvent] = []
    handlers = _drive.Output(callback).handlers(awaiting=asynchronous)
    delivery = _drive.Delivery("A", handlers, on_callback_error="raise", record=record)
    source = _source(events, record)  # records every event at once: ahead of the callback
    dispatcher = asyncio.run(delivery.arun(source)) if asynchronous else delivery.run(source)
    with pytest.raises(RunError) as info:
        _drive.delivered(dispatcher)
    assert info.value.partial_text == "ab" and list(info.value.events) == events[:3]
    assert isinstance(info.value.__cause__, ValueError)
