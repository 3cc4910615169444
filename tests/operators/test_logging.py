"""log_to_file and log_to: one line per event, file opened once, flushed per line, closed once."""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.recorded import Recorded

from rxagents import _runtime
from rxagents.errors import ModelError
from rxagents.events import EventKind, TokenEvent, ToolCallDelta, Usage
from rxagents.operators._buffer import buffer_tokens
from rxagents.operators._logging import format_event, log_to, log_to_file
from rxagents.operators._text import collect_text
from rxagents.testing._laws import Law, check_operator_laws
from rxagents.testing._marbles import cold_events, record

# --- helpers ------------------------------------------------------------------------------------------------


def run_events(*texts: str, agent: str = "A", run_id: str = "r1") -> list[TokenEvent]:
    events = [TokenEvent(EventKind.START, agent, run_id, 0, time=10.0, model="offline")]
    for i, text in enumerate(texts, start=1):
        events.append(TokenEvent(EventKind.TOKEN, agent, run_id, i, text=text, time=10.0 + i))
    n = len(texts) + 1
    events.append(TokenEvent(EventKind.FINISH, agent, run_id, n, finish_reason="stop", time=10.0 + n))
    return events


def play(op: Any, events: list[TokenEvent], error: Exception | None = None) -> tuple[Any, Any]:
    scheduler = TestScheduler()
    messages: list[Recorded[Any]] = [ReactiveTest.on_next(10 * (i + 1), e) for i, e in enumerate(events)]
    end = 10 * (len(events) + 1)
    messages.append(ReactiveTest.on_error(end, error) if error else ReactiveTest.on_completed(end))
    source = scheduler.create_cold_observable(messages)
    return scheduler.start(lambda: source.pipe(op)), source


def values(messages: list[Recorded[Any]]) -> list[Any]:
    return [m.value.value for m in messages if isinstance(m.value, OnNext)]


class CountingOpen:
    """Counts the os.open / os.close calls the operator makes for ``path``."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, path: Path) -> None:
        self.opens = 0
        self.closes = 0
        real_open, real_close = os.open, os.close
        ours: set[int] = set()

        def fake_open(name: Any, flags: int, mode: int = 0o777, **kwargs: Any) -> int:
            fd = real_open(name, flags, mode, **kwargs)
            if os.fspath(name) == os.fspath(path):
                self.opens += 1
                ours.add(fd)
            return fd

        def fake_close(fd: int) -> None:
            if fd in ours:
                ours.discard(fd)
                self.closes += 1
            real_close(fd)

        monkeypatch.setattr(os, "open", fake_open)
        monkeypatch.setattr(os, "close", fake_close)


# --- log_to_file ------------------------------------------------------------------------------------------


def test_one_line_per_event_and_events_pass_through(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    events = run_events("Hel", "lo")
    results, _ = play(log_to_file(path), events)
    assert values(results.messages) == events
    lines = path.read_text().splitlines()
    assert lines == [
        "1970-01-01T00:00:10.000000+00:00 A r1 #0 start model='offline'",
        "1970-01-01T00:00:11.000000+00:00 A r1 #1 token 'Hel'",
        "1970-01-01T00:00:12.000000+00:00 A r1 #2 token 'lo'",
        "1970-01-01T00:00:13.000000+00:00 A r1 #3 finish finish_reason='stop'",
    ]


def test_timestamp_comes_from_the_event_time(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    event = TokenEvent(EventKind.TOKEN, "A", "r1", 1, text="x", time=1_700_000_000.25)
    assert format_event(event, "{time}") == "2023-11-14T22:13:20.250000+00:00"
    play(log_to_file(path, fmt="{time}"), [event])
    assert path.read_text() == "2023-11-14T22:13:20.250000+00:00\n"


def test_text_with_line_breaks_stays_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    play(log_to_file(path, kinds=("token",)), run_events("line one\nline two\r\n"))
    lines = path.read_text().splitlines()
    assert lines == ["1970-01-01T00:00:11.000000+00:00 A r1 #1 token 'line one\\nline two\\r\\n'"]


def test_callable_fmt_output_is_kept_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    play(log_to_file(path, fmt=lambda e: f"{e.seq}:{e.text}", kinds=("token",)), run_events("a\nb"))
    assert path.read_text() == "1:a\\nb\n"


def test_file_opened_once_per_subscription_and_closed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CountingOpen(monkeypatch, tmp_path / "run.log")
    op = log_to_file(tmp_path / "run.log")
    assert counter.opens == 0  # building opens nothing
    play(op, run_events(*"abcdefgh"))
    assert (counter.opens, counter.closes) == (1, 1)
    play(op, run_events("x"))
    assert (counter.opens, counter.closes) == (2, 2)


def test_closed_once_on_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CountingOpen(monkeypatch, tmp_path / "run.log")
    results, _ = play(log_to_file(tmp_path / "run.log"), run_events("a")[:2], ValueError("x"))
    assert isinstance(results.messages[-1].value, OnError)
    assert counter.closes == 1


def test_closed_once_on_dispose(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CountingOpen(monkeypatch, tmp_path / "run.log")
    subject: Subject[TokenEvent] = Subject()
    sub = subject.pipe(log_to_file(tmp_path / "run.log")).subscribe()
    subject.on_next(run_events("a")[0])
    sub.dispose()
    sub.dispose()
    subject.on_completed()
    assert counter.closes == 1


def test_each_line_is_flushed_before_the_event_moves_on(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    seen_on_disk: list[int] = []
    subject: Subject[TokenEvent] = Subject()
    subject.pipe(log_to_file(path)).subscribe(lambda _: seen_on_disk.append(len(path.read_text().splitlines())))
    for event in run_events("a", "b"):
        subject.on_next(event)
    subject.on_completed()
    assert seen_on_disk == [1, 2, 3, 4]


def test_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    old = os.umask(0)
    try:
        play(log_to_file(path), run_events("a"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_append_mode_keeps_previous_lines(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    path.write_text("earlier\n")
    play(log_to_file(path, kinds=("finish",)), run_events("a"))
    assert path.read_text().splitlines()[0] == "earlier"
    assert len(path.read_text().splitlines()) == 2


def test_write_mode_truncates(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    path.write_text("earlier\n")
    play(log_to_file(path, mode="w", kinds=("finish",)), run_events("a"))
    assert len(path.read_text().splitlines()) == 1


def test_error_logged_as_type_and_message_only(tmp_path: Path) -> None:
    path = tmp_path / "run.log"

    class Leaky(Exception):
        def __repr__(self) -> str:
            return "Leaky(api_key='sk-secret')"

    error = Leaky("upstream failed")
    events = [*run_events("a")[:2], TokenEvent(EventKind.ERROR, "A", "r1", 2, error=error, time=13.0)]
    play(log_to_file(path), events, error)
    text = path.read_text()
    assert "error 'Leaky: upstream failed'" in text
    assert "sk-secret" not in text
    assert text.count("Leaky") == 1  # the on_error that follows the error event is not logged again


def test_on_error_without_error_event_is_logged(tmp_path: Path) -> None:
    path = tmp_path / "run.log"
    play(log_to_file(path), run_events("a")[:2], ModelError("dropped"))
    assert path.read_text().splitlines()[-1] == "1970-01-01T00:00:11.000000+00:00 on_error 'ModelError: dropped'"


def test_details_of_usage_and_tool_call_events() -> None:
    usage = TokenEvent(EventKind.USAGE, "A", "r1", 3, usage=Usage(5, 2, 7))
    call = TokenEvent(EventKind.TOOL_CALL, "A", "r1", 2, tool_call=ToolCallDelta(0, "c1", "search", '{"q":'))
    assert format_event(usage, "{detail}") == "prompt=5 completion=2 total=7"
    assert format_event(call, "{detail}") == "index=0 id='c1' name='search' arguments='{\"q\":'"


def test_unopenable_file_fails_the_stream_without_subscribing(tmp_path: Path) -> None:
    results, source = play(log_to_file(tmp_path / "missing-dir" / "run.log"), run_events("a"))
    assert isinstance(results.messages[0].value, OnError)
    assert isinstance(results.messages[0].value.exception, FileNotFoundError)
    assert source.subscriptions == []


def test_fmt_callable_failure_ends_the_stream_and_releases_upstream(tmp_path: Path) -> None:
    def bad(event: TokenEvent) -> str:
        raise RuntimeError("bad format")

    results, source = play(log_to_file(tmp_path / "run.log", fmt=bad), run_events("a"))
    assert isinstance(results.messages[-1].value, OnError)
    assert source.subscriptions[0].unsubscribe == results.messages[-1].time


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"mode": "r"}, ValueError, "mode must be"),
        ({"fmt": "{nope}"}, ValueError, "valid template"),
        ({"fmt": "{seq"}, ValueError, "valid template"),
        ({"fmt": 3}, TypeError, "template"),
        ({"kinds": ["tok"]}, ValueError, "valid kinds"),
        ({"kinds": []}, ValueError, "at least one"),
        ({"encoding": "klingon"}, ValueError, "encoding"),
    ],
)
def test_bad_arguments_raise_at_construction(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        log_to_file(tmp_path / "x.log", **kwargs)
    assert not (tmp_path / "x.log").exists()


def test_empty_path_rejected() -> None:
    with pytest.raises(ValueError, match="path"):
        log_to_file("")


# --- log_to_file on text chunks (str items, e.g. after a buffer) -------------------------------------------


def play_chunks(op: Any, *texts: str, error: Exception | None = None) -> tuple[Any, Any]:
    """str chunks at virtual 10, 20, ... after the subscription at 200; the operator gets scheduler=."""
    scheduler = TestScheduler()
    messages: list[Recorded[Any]] = [ReactiveTest.on_next(10 * (i + 1), t) for i, t in enumerate(texts)]
    end = 10 * (len(texts) + 1)
    messages.append(ReactiveTest.on_error(end, error) if error else ReactiveTest.on_completed(end))
    source = scheduler.create_cold_observable(messages)
    return scheduler.start(lambda: source.pipe(op(scheduler))), source


def test_one_line_per_chunk_timed_by_the_scheduler_and_chunks_pass_through(tmp_path: Path) -> None:
    path = tmp_path / "chunks.log"
    results, _ = play_chunks(lambda s: log_to_file(path, scheduler=s), "The cat", " sat")
    assert values(results.messages) == ["The cat", " sat"]
    assert isinstance(results.messages[-1].value, OnCompleted)
    assert path.read_text().splitlines() == [
        "1970-01-01T00:03:30.000000+00:00 chunk 'The cat'",
        "1970-01-01T00:03:40.000000+00:00 chunk ' sat'",
    ]


def test_chunk_with_line_breaks_stays_on_one_line(tmp_path: Path) -> None:
    path = tmp_path / "chunks.log"
    play_chunks(lambda s: log_to_file(path, scheduler=s), "one\ntwo\r\n")
    assert path.read_text() == "1970-01-01T00:03:30.000000+00:00 chunk 'one\\ntwo\\r\\n'\n"


def test_chunk_lines_never_read_the_wall_clock(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    def forbidden() -> float:
        raise AssertionError("time.time() called")

    monkeypatch.setattr(time, "time", forbidden)
    path = tmp_path / "chunks.log"
    results, _ = play_chunks(lambda s: log_to_file(path, scheduler=s), "a")
    assert isinstance(results.messages[-1].value, OnCompleted)
    assert path.read_text().startswith("1970-01-01T00:03:30.000000+00:00 chunk")


def test_default_clock_is_resolved_at_subscription_not_at_construction(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resolved: list[Any] = []
    virtual = TestScheduler()
    virtual.advance_to(42.5)

    def default_scheduler(scheduler: Any = None) -> Any:
        resolved.append(scheduler)
        return virtual

    monkeypatch.setattr(_runtime, "default_scheduler", default_scheduler)
    path = tmp_path / "chunks.log"
    op = log_to_file(path)
    assert resolved == []  # building resolves nothing
    subject: Subject[str] = Subject()
    subject.pipe(op).subscribe()
    assert resolved == [None]  # once, at subscription
    subject.on_next("x")
    subject.on_next("y")
    assert resolved == [None]
    assert path.read_text().splitlines() == [
        "1970-01-01T00:00:42.500000+00:00 chunk 'x'",
        "1970-01-01T00:00:42.500000+00:00 chunk 'y'",
    ]


def test_kinds_does_not_filter_chunks(tmp_path: Path) -> None:
    path = tmp_path / "chunks.log"
    play_chunks(lambda s: log_to_file(path, kinds=("finish",), scheduler=s), "a", "b")
    assert [line.split(" ", 1)[1] for line in path.read_text().splitlines()] == ["chunk 'a'", "chunk 'b'"]


def test_template_fields_of_a_chunk(tmp_path: Path) -> None:
    path = tmp_path / "chunks.log"
    fmt = "{timestamp} [{agent}|{run_id}|{seq:04d}|{model}] {kind} {text} {detail}"
    play_chunks(lambda s: log_to_file(path, fmt=fmt, scheduler=s), "a\nb")
    assert path.read_text() == "210.0 [|||] chunk 'a\\nb' 'a\\nb'\n"


def test_callable_fmt_gets_the_chunk_as_is(tmp_path: Path) -> None:
    path = tmp_path / "chunks.log"
    play_chunks(lambda s: log_to_file(path, fmt=lambda item: f"<{item}>", scheduler=s), "a\nb", "c")
    assert path.read_text().splitlines() == ["<a\\nb>", "<c>"]


def test_on_error_after_chunks_is_logged_at_the_last_chunk_time(tmp_path: Path) -> None:
    path = tmp_path / "chunks.log"
    results, _ = play_chunks(lambda s: log_to_file(path, scheduler=s), "a", error=ModelError("dropped"))
    assert isinstance(results.messages[-1].value, OnError)
    assert path.read_text().splitlines()[-1] == "1970-01-01T00:03:30.000000+00:00 on_error 'ModelError: dropped'"


def test_chunks_file_opened_once_and_closed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = CountingOpen(monkeypatch, tmp_path / "chunks.log")
    play_chunks(lambda s: log_to_file(tmp_path / "chunks.log", scheduler=s), "a", "b", "c")
    assert (counter.opens, counter.closes) == (1, 1)


def test_after_a_buffer_in_a_pipeline(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.log"
    scheduler = TestScheduler()
    source = cold_events(scheduler, "-a-b-c-|", {"a": "The", "b": " cat", "c": " sat"})
    pipeline = source.pipe(buffer_tokens(2), log_to_file(path, scheduler=scheduler), collect_text())
    trace = record(scheduler, pipeline)
    assert [n.value for _, n in trace if n.kind == "N"] == ["The cat sat"]
    assert path.read_text().splitlines() == [
        "1970-01-01T00:00:03.000000+00:00 chunk 'The cat'",
        "1970-01-01T00:00:07.000000+00:00 chunk ' sat'",
    ]


def test_bad_scheduler_rejected_at_construction(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="scheduler must be a reactivex scheduler or None, got str"):
        log_to_file(tmp_path / "x.log", scheduler="loop")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="scheduler must be a reactivex scheduler or None, got str"):
        log_to("app", scheduler="loop")  # type: ignore[arg-type]


# --- log_to -------------------------------------------------------------------------------------------------


def test_log_to_emits_one_record_per_event(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="app.agents")
    events = run_events("Hi")
    results, _ = play(log_to("app.agents"), events)
    assert values(results.messages) == events
    assert [r.getMessage() for r in caplog.records] == [
        "A r1 #0 start model='offline'",
        "A r1 #1 token 'Hi'",
        "A r1 #2 finish finish_reason='stop'",
    ]
    assert caplog.records[1].rxagents_event is events[1]  # type: ignore[attr-defined]


def test_log_to_error_events_use_error_level(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="app.agents")
    error = ValueError("x")
    events = [run_events()[0], TokenEvent(EventKind.ERROR, "A", "r1", 1, error=error)]
    play(log_to(logging.getLogger("app.agents"), logging.DEBUG), events, error)
    assert [r.levelno for r in caplog.records] == [logging.DEBUG, logging.ERROR]


def test_log_to_formats_nothing_when_disabled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="app.agents")
    calls: list[int] = []

    def fmt(event: TokenEvent) -> str:
        calls.append(event.seq)
        return "x"

    play(log_to("app.agents", logging.DEBUG, fmt=fmt), run_events("a"))
    assert calls == [] and caplog.records == []


def test_log_to_kinds_filter(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="app.agents")
    play(log_to("app.agents", kinds=("finish",)), run_events("a", "b"))
    assert len(caplog.records) == 1


def test_log_to_fmt_failure_ends_the_stream() -> None:
    def bad(event: TokenEvent) -> str:
        raise RuntimeError("bad")

    logging.getLogger("app.bad").setLevel(logging.INFO)
    results, source = play(log_to("app.bad", fmt=bad), run_events("a"))
    assert isinstance(results.messages[-1].value, OnError)
    assert source.subscriptions[0].unsubscribe == results.messages[-1].time


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        ((42,), {}, TypeError),
        (("app",), {"level": -1}, ValueError),
        (("app",), {"error_level": "ERROR"}, ValueError),
        (("app",), {"fmt": "{missing}"}, ValueError),
    ],
)
def test_log_to_bad_arguments(args: tuple[Any, ...], kwargs: dict[str, Any], error: type[Exception]) -> None:
    with pytest.raises(error):
        log_to(*args, **kwargs)


def test_log_to_logs_chunks_without_an_event(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="app.chunks")
    results, _ = play_chunks(lambda s: log_to("app.chunks", kinds=("finish",), scheduler=s), "Hel", "lo\n")
    assert values(results.messages) == ["Hel", "lo\n"]
    assert [r.getMessage() for r in caplog.records] == ["chunk 'Hel'", "chunk 'lo\\n'"]
    assert caplog.records[0].rxagents_event is None  # type: ignore[attr-defined]
    assert caplog.records[1].rxagents_chunk == "lo\n"  # type: ignore[attr-defined]


def test_log_to_chunk_time_field_comes_from_the_scheduler(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="app.chunks")
    play_chunks(lambda s: log_to("app.chunks", fmt="{time} {kind} {text}", scheduler=s), "a")
    assert [r.getMessage() for r in caplog.records] == ["1970-01-01T00:03:30.000000+00:00 chunk 'a'"]


def test_log_to_without_a_time_field_reads_no_clock(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    caplog.set_level(logging.INFO, logger="app.chunks")

    def default_scheduler(scheduler: Any = None) -> Any:
        raise AssertionError("no clock needed")

    monkeypatch.setattr(_runtime, "default_scheduler", default_scheduler)
    subject: Subject[str] = Subject()
    subject.pipe(log_to("app.chunks")).subscribe()
    subject.on_next("a")
    assert [r.getMessage() for r in caplog.records] == ["chunk 'a'"]


def test_log_to_formats_no_chunk_when_disabled(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="app.chunks")
    calls: list[Any] = []

    def fmt(item: Any) -> str:
        calls.append(item)
        return "x"

    play_chunks(lambda s: log_to("app.chunks", logging.DEBUG, fmt=fmt, scheduler=s), "a")
    assert calls == [] and caplog.records == []


def test_completion_passes_through(tmp_path: Path) -> None:
    results, _ = play(log_to_file(tmp_path / "a.log"), run_events("a"))
    assert isinstance(results.messages[-1].value, OnCompleted)


# --- laws ---------------------------------------------------------------------------------------------------


def test_log_to_file_obeys_the_laws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "laws.log"
    counter = CountingOpen(monkeypatch, path)
    report = check_operator_laws(lambda scheduler: log_to_file(path))
    assert len(report.checked) == len(Law)
    assert path.stat().st_size > 0
    assert counter.opens == counter.closes > 0  # every subscription's file closed, whatever the trial


def test_log_to_obeys_the_laws(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="app.laws")
    report = check_operator_laws(lambda scheduler: log_to("app.laws"))
    assert len(report.checked) == len(Law) and caplog.records


def test_log_to_file_after_a_buffer_obeys_the_laws(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "laws.log"
    counter = CountingOpen(monkeypatch, path)
    report = check_operator_laws(
        lambda s: lambda src: src.pipe(buffer_tokens(3), log_to_file(path, scheduler=s)),
    )
    assert len(report.checked) == len(Law)
    assert " chunk '" in path.read_text()
    assert counter.opens == counter.closes > 0


def test_log_to_after_a_buffer_obeys_the_laws(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="app.laws")
    report = check_operator_laws(
        lambda s: lambda src: src.pipe(buffer_tokens(3), log_to("app.laws", fmt="{time} {text}", scheduler=s))
    )
    assert len(report.checked) == len(Law)
    assert caplog.records and all(r.rxagents_event is None for r in caplog.records)  # type: ignore[attr-defined]
