"""track_progress: a rich Progress task driven by token events, exactly 100% at finish."""

from __future__ import annotations

import io
import logging
from typing import Any

import pytest
from reactivex.notification import OnCompleted, OnNext
from reactivex.subject import Subject
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.recorded import Recorded
from rich.console import Console
from rich.progress import Progress, Task

from rxagents.events import EventKind, TokenEvent
from rxagents.operators._progress import progress_columns, track_progress
from rxagents.testing._laws import Law, check_operator_laws

# --- helpers ------------------------------------------------------------------------------------------------


def run_events(*texts: str, agent: str = "Writer", dt: float = 0.5) -> list[TokenEvent]:
    events = [TokenEvent(EventKind.START, agent, "r1", 0, time=100.0)]
    for i, text in enumerate(texts, start=1):
        events.append(TokenEvent(EventKind.TOKEN, agent, "r1", i, text=text, time=100.0 + i * dt))
    n = len(texts) + 1
    events.append(TokenEvent(EventKind.FINISH, agent, "r1", n, finish_reason="stop", time=100.0 + n * dt))
    return events


def new_progress() -> Progress:
    return Progress(*progress_columns(), console=Console(file=io.StringIO()), auto_refresh=False)


def only_task(progress: Progress) -> Task:
    assert len(progress.tasks) == 1
    return progress.tasks[0]


def play(op: Any, events: list[TokenEvent], error: Exception | None = None) -> Any:
    scheduler = TestScheduler()
    messages: list[Recorded[Any]] = [ReactiveTest.on_next(10 * (i + 1), e) for i, e in enumerate(events)]
    end = 10 * (len(events) + 1)
    messages.append(ReactiveTest.on_error(end, error) if error else ReactiveTest.on_completed(end))
    source = scheduler.create_cold_observable(messages)
    return scheduler.start(lambda: source.pipe(op))


def feed(progress: Progress, events: list[TokenEvent], **kwargs: Any) -> tuple[Subject[TokenEvent], Any]:
    subject: Subject[TokenEvent] = Subject()
    sub = subject.pipe(track_progress(progress, **kwargs)).subscribe()
    for event in events:
        subject.on_next(event)
    return subject, sub


# --- behaviour ----------------------------------------------------------------------------------------------


def test_events_pass_through_unchanged() -> None:
    events = run_events("a", "b")
    results = play(track_progress(new_progress()), events)
    assert [m.value.value for m in results.messages if isinstance(m.value, OnNext)] == events
    assert isinstance(results.messages[-1].value, OnCompleted)


def test_advances_one_per_token_event() -> None:
    progress = new_progress()
    feed(progress, run_events("a", "b", "c")[:3], total=10)
    task = only_task(progress)
    assert (task.completed, task.total, task.fields["tokens"]) == (2, 10, 2)


def test_reaches_exactly_100_percent_at_finish_below_the_total() -> None:
    progress = new_progress()
    play(track_progress(progress, total=100), run_events(*"abc"))
    task = only_task(progress)
    assert task.completed == task.total == 3
    assert task.percentage == 100.0 and task.finished
    assert task.fields["status"] == "done"


def test_estimate_grows_ahead_so_100_percent_only_at_finish() -> None:
    progress = new_progress()
    events = run_events(*"abcdefg")
    subject, _ = feed(progress, events[:-1], estimate=2)
    task = only_task(progress)
    assert task.completed == 7 and task.total is not None and task.total > 7
    subject.on_next(events[-1])
    assert task.completed == task.total == 7


def test_total_reached_before_finish_grows() -> None:
    progress = new_progress()
    feed(progress, run_events(*"abcd")[:-1], total=3)
    task = only_task(progress)
    assert task.completed == 4 and task.total is not None and task.total > 4


def test_empty_answer_still_ends_at_100_percent() -> None:
    progress = new_progress()
    play(track_progress(progress), run_events())
    task = only_task(progress)
    assert task.percentage == 100.0 and task.fields["tokens"] == 0


def test_rate_from_event_times_not_wall_clock() -> None:
    progress = new_progress()
    feed(progress, run_events(*"abcd", dt=0.25)[:5])  # 4 tokens in 1.0 s of event time
    assert only_task(progress).fields["rate"] == pytest.approx(4.0)


def test_description_defaults_to_the_agent_name() -> None:
    progress = new_progress()
    feed(progress, run_events("a", agent="Researcher")[:1])
    assert only_task(progress).description == "Researcher"


def test_explicit_description_kept() -> None:
    progress = new_progress()
    feed(progress, run_events("a")[:1], description="Report")
    assert only_task(progress).description == "Report"


def test_error_marks_failed_and_leaves_the_bar_where_it_was() -> None:
    progress = new_progress()
    error = ConnectionError("dropped")
    events = [*run_events("a", "b")[:3], TokenEvent(EventKind.ERROR, "Writer", "r1", 3, error=error, time=102.0)]
    play(track_progress(progress, total=10), events, error)
    task = only_task(progress)
    assert task.description == "Writer — failed (ConnectionError)"
    assert (task.completed, task.total, task.fields["status"]) == (2, 10, "failed")


def test_on_error_without_error_event_marks_failed() -> None:
    progress = new_progress()
    play(track_progress(progress, total=10), run_events("a")[:2], ValueError("x"))
    assert only_task(progress).fields["status"] == "failed"


def test_dispose_marks_cancelled() -> None:
    progress = new_progress()
    _, sub = feed(progress, run_events("a")[:2], total=10)
    sub.dispose()
    task = only_task(progress)
    assert task.fields["status"] == "cancelled" and task.completed == 1


def test_each_subscription_adds_its_own_task() -> None:
    progress = new_progress()
    op = track_progress(progress)
    assert progress.tasks == []  # building adds nothing
    play(op, run_events("a"))
    play(op, run_events("a", "b"))
    assert [t.completed for t in progress.tasks] == [1, 2]


def test_task_id_reuses_and_resets_a_task() -> None:
    progress = new_progress()
    task_id = progress.add_task("mine", total=5, completed=3)
    play(track_progress(progress, task_id=task_id), run_events("a", "b"))
    task = only_task(progress)
    assert task.id == task_id and task.completed == task.total == 2 and task.description == "mine"


def test_display_failure_reported_once_and_stream_unaffected(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="rxagents")

    class Broken(Progress):
        def update(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("terminal gone")

    events = run_events("a", "b")
    results = play(track_progress(Broken(console=Console(file=io.StringIO()))), events)
    assert [m.value.value for m in results.messages if isinstance(m.value, OnNext)] == events
    assert len(caplog.records) == 1


def test_columns_render_the_fields() -> None:
    out = io.StringIO()
    progress = Progress(*progress_columns(), console=Console(file=io.StringIO()), auto_refresh=False)
    play(track_progress(progress, description="Writer"), run_events(*"abcd", dt=0.5))
    Console(file=out, width=120).print(progress.get_renderable())
    rendered = out.getvalue()
    assert "100%" in rendered and "4 tokens" in rendered and "2.0 tok/s" in rendered


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"total": 0}, ValueError, "total"),
        ({"total": 2.5}, ValueError, "total"),
        ({"estimate": 0}, ValueError, "estimate"),
        ({"growth": 1.0}, ValueError, "growth"),
        ({"description": 3}, TypeError, "description"),
    ],
)
def test_bad_arguments_raise_at_construction(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        track_progress(new_progress(), **kwargs)


def test_progress_must_be_a_progress() -> None:
    with pytest.raises(TypeError, match=r"rich\.progress\.Progress"):
        track_progress(object())  # type: ignore[arg-type]


# --- laws ---------------------------------------------------------------------------------------------------


def test_track_progress_obeys_the_laws() -> None:
    progress = new_progress()
    report = check_operator_laws(lambda scheduler: track_progress(progress))
    assert len(report.checked) == len(Law) and progress.tasks
