"""dashboard: one lane per agent, frames at a fixed rate from the scheduler, a clean final frame."""

from __future__ import annotations

import asyncio
import io
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.recorded import Recorded
from rich.console import Console
from rich.live import Live

from rxagents import Agent
from rxagents.errors import ModelError
from rxagents.events import EventKind, TokenEvent
from rxagents.models import OfflineModel
from rxagents.sinks._dashboard import Dashboard, LaneStatus, dashboard
from rxagents.sinks._terminal import TailBuffer, _stop_live_displays, tail_fit

RT: Any = ReactiveTest  # virtual times in seconds (floats)

# --- helpers ------------------------------------------------------------------------------------------------


def recording_console(*, width: int = 100, height: int = 60, terminal: bool = True) -> Console:
    return Console(
        record=True,
        force_terminal=terminal,
        width=width,
        height=height,
        file=io.StringIO(),
        _environ={"TERM": "xterm-256color"},
    )


def agents(n: int, *, pace: float = 0.1, length: int = 30, **model: Any) -> list[Agent]:
    return [
        Agent(agent_name=f"agent-{i:02d}", llm=OfflineModel(pace=pace, length=length, **model), print_on=False)
        for i in range(n)
    ]


def merged(team: list[Agent], ts: TestScheduler, task: str = "Explain streams") -> Observable[TokenEvent]:
    return reactivex.merge(*(a.stream(task, scheduler=ts) for a in team))


def names(team: list[Agent]) -> list[str]:
    return [a.agent_name for a in team]


def values(messages: list[Recorded[Any]]) -> list[Any]:
    return [m.value.value for m in messages if isinstance(m.value, OnNext)]


def frames_of(console: Console) -> list[str]:
    """Every panel frame drawn on a recording console, in order (each starts with the top border)."""
    text = console.export_text(clear=False)
    starts = [i for i, ch in enumerate(text) if ch == "╭"]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def final_frame(console: Console) -> str:
    return frames_of(console)[-1]


def raw(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def run_events(agent: str, texts: list[str], *, run_id: str | None = None, t0: float = 0.0, step: float = 0.1
               ) -> list[TokenEvent]:
    """start at t0, one token per text every ``step`` seconds, finish."""
    rid = run_id or f"run-{agent}"
    out = [TokenEvent(EventKind.START, agent, rid, 0, time=t0)]
    for i, text in enumerate(texts, start=1):
        out.append(TokenEvent(EventKind.TOKEN, agent, rid, i, text=text, time=t0 + step * i))
    out.append(TokenEvent(EventKind.FINISH, agent, rid, len(texts) + 1, finish_reason="stop",
                          time=t0 + step * len(texts)))
    return out


def cold(ts: TestScheduler, events: list[TokenEvent], error: Exception | None = None) -> Observable[TokenEvent]:
    """Each event at its own ``time`` (virtual seconds) after subscription."""
    messages: list[Recorded[Any]] = [RT.on_next(e.time + 0.001, e) for e in events]
    end = max((e.time for e in events), default=0.0) + 0.002
    messages.append(RT.on_error(end, error) if error else RT.on_completed(end))
    return ts.create_cold_observable(messages)


@pytest.fixture
def live_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Counts Live.refresh / Live.stop calls and the threads they ran on."""
    calls: dict[str, Any] = {"refresh": 0, "stop": 0, "threads": set()}
    refresh, stop = Live.refresh, Live.stop

    def counting_refresh(self: Live) -> None:
        calls["refresh"] += 1
        calls["threads"].add(threading.get_ident())
        refresh(self)

    def counting_stop(self: Live) -> None:
        if self.is_started:
            calls["stop"] += 1
        stop(self)

    monkeypatch.setattr(Live, "refresh", counting_refresh)
    monkeypatch.setattr(Live, "stop", counting_stop)
    yield calls


# --- pass-through -------------------------------------------------------------------------------------------


def test_events_pass_through_unchanged() -> None:
    ts = TestScheduler()
    events = run_events("A", ["Hel", "lo"])
    source = cold(ts, events)
    results = ts.start(lambda: source.pipe(dashboard("T", ["A"], console=recording_console(), scheduler=ts)))
    assert values(results.messages) == events
    assert isinstance(results.messages[-1].value, OnCompleted)


def test_building_the_operator_draws_nothing() -> None:
    console = recording_console()
    op = dashboard("T", ["A"], console=console)
    reactivex.empty().pipe(op)
    assert raw(console) == ""


# --- lanes and statuses: 20 agents on the offline model in virtual time ---------------------------------------


def test_twenty_agents_final_frame_has_every_lane_done() -> None:
    ts = TestScheduler()
    team = agents(20)
    console = recording_console(width=110, height=40)
    results = ts.start(lambda: merged(team, ts).pipe(dashboard("Market Analysis", names(team), console=console,
                                                               scheduler=ts)))
    assert isinstance(results.messages[-1].value, OnCompleted)
    final = final_frame(console)
    assert "Market Analysis" in final.splitlines()[0]
    for agent in team:
        lane = next(line for line in final.splitlines() if agent.agent_name in line)
        assert "✅" in lane and "done" in lane
    assert "20 done" in final
    tokens = sum(1 for e in values(results.messages) if e.kind is EventKind.TOKEN)
    assert f"{tokens:,} tokens" in final


def test_mid_run_frame_shows_waiting_streaming_and_done_lanes() -> None:
    ts = TestScheduler()
    fast, slow, late = agents(3, pace=0.1, length=20)
    slow.llm = OfflineModel(pace=1.0, length=20)
    source = reactivex.merge(
        fast.stream("t", scheduler=ts),
        slow.stream("t", scheduler=ts),
        late.stream("t", scheduler=ts).pipe(ops.delay_subscription(100.0, scheduler=ts)),
    )
    console = recording_console()
    snapshot: list[str] = []
    ts.schedule_absolute(215.0, lambda *_: snapshot.append(final_frame(console)))
    ts.start(lambda: source.pipe(dashboard("Team", names([fast, slow, late]), console=console, scheduler=ts)),
             disposed=10_000)
    frame = snapshot[0]

    def lane(name: str) -> str:
        return next(line for line in frame.splitlines() if name in line)

    assert "✅" in lane(fast.agent_name) and "done" in lane(fast.agent_name)
    assert "🔄" in lane(slow.agent_name) and "streaming" in lane(slow.agent_name)
    assert "⏳" in lane(late.agent_name) and "waiting" in lane(late.agent_name)


def test_lane_shows_the_tail_of_its_text_not_the_whole_text() -> None:
    ts = TestScheduler()
    words = [f" w{i:04d}" for i in range(3000)]
    console = recording_console(width=80)
    source = cold(ts, run_events("A", words, step=0.01))
    ts.start(lambda: source.pipe(dashboard("T", ["A"], console=console, scheduler=ts, compact=False)))
    final = final_frame(console)
    assert "w2999" in final  # the end is shown
    assert "w0000" not in final  # the start is not
    assert len(final.splitlines()) < 12


def test_tokens_per_second_come_from_event_times() -> None:
    board = Dashboard("T", ["A"], console=recording_console())
    for event in run_events("A", ["a"] * 10, step=0.5):  # 10 tokens over 5 virtual seconds
        board.on_event(event)
    (lane,) = board.lanes()
    assert lane.tokens == 10
    assert lane.rate == pytest.approx(2.0)
    assert lane.status is LaneStatus.DONE


def test_lane_updates_are_bounded_in_memory() -> None:
    board = Dashboard("T", ["A"], console=recording_console(width=80), tail_lines=2)
    for event in run_events("A", ["abcdefghij"] * 10_000):
        board.on_event(event)
    (lane,) = board.lanes()
    assert lane.tokens == 10_000
    assert len(lane.tail) <= 3 * 81
    assert lane.tail.endswith("abcdefghij")


def test_agents_not_listed_get_a_lane_when_they_appear() -> None:
    board = Dashboard("T", ["A"], console=recording_console())
    for event in run_events("B", ["x"]):
        board.on_event(event)
    assert [(lane.name, lane.status) for lane in board.lanes()] == [("A", LaneStatus.WAITING), ("B", LaneStatus.DONE)]


def test_a_second_run_of_an_agent_reuses_its_lane() -> None:
    board = Dashboard("T", ["A"], console=recording_console())
    for event in run_events("A", ["one"], run_id="r1") + run_events("A", ["two", "!"], run_id="r2", t0=5.0):
        board.on_event(event)
    (lane,) = board.lanes()
    assert (lane.runs, lane.tokens, lane.tail) == (2, 2, "two!")


def test_two_concurrent_runs_with_one_name_get_two_lanes() -> None:
    board = Dashboard("T", ["A"], console=recording_console())
    first = run_events("A", ["x"], run_id="r1")
    second = run_events("A", ["y"], run_id="r2")
    for event in [first[0], second[0], first[1], second[1]]:
        board.on_event(event)
    assert [(lane.name, lane.tail) for lane in board.lanes()] == [("A", "x"), ("A", "y")]


def test_a_retry_event_discards_the_lane_text() -> None:
    board = Dashboard("T", ["A"], console=recording_console())
    events = run_events("A", ["old"])[:2]
    events.append(TokenEvent(EventKind.RETRY, "A", "run-A", 2, text="ModelError: boom", time=0.3))
    events.append(TokenEvent(EventKind.TOKEN, "A", "run-A", 3, text="new", time=0.4))
    for event in events:
        board.on_event(event)
    (lane,) = board.lanes()
    assert (lane.tail, lane.tokens) == ("new", 1)


def workflow_run(*, ending: EventKind = EventKind.FINISH, error: Exception | None = None) -> list[TokenEvent]:
    """One run of workflow W as a bus worker publishes it: W's start, the agents' tokens, W's end."""
    tokens = [("a", "a1 "), ("b", "b1 "), ("a", "a2"), ("b", "b2")]
    events = [TokenEvent(EventKind.START, "W", "r1", 0, time=0.0)]
    events += [TokenEvent(EventKind.TOKEN, agent, "r1", i, text=text, time=i / 10) for i, (agent, text) in
               enumerate(tokens, start=1)]  # fmt: skip
    events.append(TokenEvent(ending, "W", "r1", 5, time=0.5, error=error))
    return events


def test_a_workflow_run_gets_a_lane_per_agent_and_its_end_ends_them_all() -> None:
    board = Dashboard("T", [], console=recording_console())
    for event in workflow_run():
        board.on_event(event)
    assert [(lane.name, lane.status, lane.tokens, lane.tail) for lane in board.lanes()] == [
        ("W", LaneStatus.DONE, 0, ""), ("a", LaneStatus.DONE, 2, "a1 a2"), ("b", LaneStatus.DONE, 2, "b1 b2"),
    ]  # fmt: skip


def test_a_failed_workflow_run_ends_its_agents_lanes_with_its_error() -> None:
    board = Dashboard("T", [], console=recording_console())
    events = workflow_run(ending=EventKind.ERROR, error=ModelError("boom"))
    for event in [*events[:3], events[-1]]:
        board.on_event(event)
    assert [(lane.name, lane.status, lane.error) for lane in board.lanes()] == [
        ("W", LaneStatus.ERROR, "ModelError: boom"), ("a", LaneStatus.ERROR, "ModelError: boom"),
        ("b", LaneStatus.ERROR, "ModelError: boom"),
    ]  # fmt: skip


def test_a_retry_of_a_workflow_run_restarts_every_agent_and_an_agents_retry_only_its_own() -> None:
    board = Dashboard("T", [], console=recording_console())
    events = workflow_run()
    for event in events[:5]:
        board.on_event(event)
    board.on_event(TokenEvent(EventKind.RETRY, "a", "r1", 5, text="ModelError: cut", time=0.5))
    assert [lane.tokens for lane in board.lanes()] == [0, 0, 2]
    board.on_event(TokenEvent(EventKind.RETRY, "W", "r1", 6, text="the run starts over", time=0.6))
    board.on_event(TokenEvent(EventKind.TOKEN, "b", "r1", 7, text="again", time=0.7))
    assert [(lane.tokens, lane.tail) for lane in board.lanes()] == [(0, ""), (0, ""), (1, "again")]


def test_not_a_terminal_each_agent_of_a_workflow_run_gets_its_own_text() -> None:
    console = recording_console(terminal=False)
    scheduler = TestScheduler()
    run = cold(scheduler, workflow_run())
    scheduler.start(lambda: run.pipe(dashboard("T", [], console=console, scheduler=scheduler)), created=0,
                    subscribed=0, disposed=100)  # fmt: skip
    out = raw(console)
    assert "✅ a: done · 2 tokens" in out and "    a1 a2\n" in out
    assert "✅ b: done · 2 tokens" in out and "    b1 b2\n" in out


def test_agents_can_be_given_as_agent_objects() -> None:
    team = agents(2)
    board = Dashboard("T", team, console=recording_console())
    assert [lane.name for lane in board.lanes()] == names(team)


# --- frame rate ---------------------------------------------------------------------------------------------


def test_frames_are_bounded_by_the_frame_rate_not_the_tokens(live_calls: dict[str, Any]) -> None:
    ts = TestScheduler()
    team = agents(20, pace=0.01, length=200)
    console = recording_console()
    results = ts.start(lambda: merged(team, ts).pipe(dashboard("T", names(team), console=console, scheduler=ts,
                                                               refresh_per_second=8)))
    events = values(results.messages)
    tokens = sum(1 for e in events if e.kind is EventKind.TOKEN)
    duration = max(e.time for e in events) - min(e.time for e in events)
    assert tokens >= 20 * 200
    # the first frame, one per 1/8 s at most, the final one (Live.stop refreshes once more)
    assert live_calls["refresh"] <= duration * 8 + 3
    assert live_calls["refresh"] < tokens / 50


def test_no_frame_is_drawn_when_nothing_changed() -> None:
    ts = TestScheduler()
    board = Dashboard("T", ["A"], console=recording_console(), refresh_per_second=10)
    board.start(ts)
    ts.advance_to(10.0)  # 100 ticks, no events
    assert board.ticks >= 100
    assert board.frames == 1  # the first frame only
    board.finish()


def test_the_timer_runs_on_the_scheduler_and_stops_at_the_end() -> None:
    ts = TestScheduler()
    board = Dashboard("T", ["A"], console=recording_console(), refresh_per_second=4)
    board.start(ts)
    for event in run_events("A", ["a", "b"]):
        board.on_event(event)
    ts.advance_to(1.0)
    ticks = board.ticks
    assert ticks == 5  # the first tick at 0, then 0.25, 0.5, 0.75, 1.0
    board.finish()
    ts.advance_to(10.0)
    assert board.ticks == ticks


# --- compact mode -------------------------------------------------------------------------------------------


def test_compact_is_chosen_by_the_number_of_agents_and_the_height() -> None:
    tall = recording_console(height=500)
    assert not Dashboard("T", [f"a{i}" for i in range(12)], console=tall).is_compact()
    assert Dashboard("T", [f"a{i}" for i in range(13)], console=tall).is_compact()
    assert Dashboard("T", ["a", "b", "c"], console=recording_console(height=10)).is_compact()
    assert not Dashboard("T", [f"a{i}" for i in range(60)], console=tall, compact=False).is_compact()
    assert Dashboard("T", ["a"], console=tall, compact=True).is_compact()


def test_sixty_agents_compact_frames_fit_the_terminal_with_one_line_per_agent() -> None:
    ts = TestScheduler()
    team = agents(60, pace=0.05, length=40)
    console = recording_console(width=100, height=30)
    ts.start(lambda: merged(team, ts).pipe(dashboard("Sixty", names(team), console=console, scheduler=ts)))
    frames = frames_of(console)
    *running, final = frames
    assert running
    for frame in running:
        assert len(frame.rstrip("\n").splitlines()) <= 30
    assert any("more (" in frame for frame in running)  # the lanes that do not fit are counted
    lane_lines = [line for line in final.splitlines() if "agent-" in line]
    assert len(lane_lines) == 60  # the final frame lists every agent, one line each
    assert all("✅" in line for line in lane_lines)


def test_compact_frames_keep_active_lanes_visible() -> None:
    board = Dashboard("T", [f"agent-{i:02d}" for i in range(40)], console=recording_console(height=12))
    for i in range(38):
        for event in run_events(f"agent-{i:02d}", ["x"]):
            board.on_event(event)
    board.on_event(run_events("agent-39", ["y"])[0])  # streaming, last in the list
    console = recording_console(height=12)
    console.print(board.build())
    frame = console.export_text()
    assert "agent-39" in frame
    assert "agent-38" in frame  # waiting: before done lanes
    assert "more (" in frame


# --- errors, dispose, final frame ------------------------------------------------------------------------------


def test_an_agent_error_shows_an_error_lane_and_passes_through(live_calls: dict[str, Any]) -> None:
    ts = TestScheduler()
    good = agents(2, pace=0.1, length=40)
    bad = Agent(agent_name="bad", llm=OfflineModel(pace=0.1, length=40, fail_after=5), print_on=False)
    console = recording_console()
    team = [*good, bad]
    results = ts.start(lambda: merged(team, ts).pipe(dashboard("T", names(team), console=console, scheduler=ts)))
    end = results.messages[-1].value
    assert isinstance(end, OnError) and isinstance(end.exception, ModelError)
    failed = [e for e in values(results.messages) if e.kind is EventKind.ERROR]
    assert failed and failed[0].error is end.exception  # the same exception, unchanged
    final = final_frame(console)
    bad_lane = final[final.index("bad"):]
    assert "❌" in final and "error" in bad_lane.splitlines()[0]
    assert "ModelError" in final
    assert final.count("⛔") == 2  # merge cancelled the others
    assert live_calls["stop"] == 1


def test_an_error_lane_among_finishing_agents() -> None:
    ts = TestScheduler()
    good = agents(2, pace=0.1, length=20)
    bad = Agent(agent_name="bad", llm=OfflineModel(pace=0.1, fail_after=3), print_on=False)
    console = recording_console()
    source = reactivex.merge(
        *(a.stream("t", scheduler=ts) for a in good),
        bad.stream("t", scheduler=ts).pipe(ops.catch(reactivex.empty())),  # a workflow that keeps going
    )
    results = ts.start(lambda: source.pipe(dashboard("T", names([*good, bad]), console=console, scheduler=ts)))
    assert isinstance(results.messages[-1].value, OnCompleted)
    final = final_frame(console)
    assert final.count("✅") == 2 and final.count("❌") == 1
    assert "2 done" in final and "1 error" in final


def test_dispose_draws_one_final_frame_with_cancelled_lanes(live_calls: dict[str, Any]) -> None:
    ts = TestScheduler()
    team = agents(3, pace=1.0, length=40)
    console = recording_console()
    ts.start(lambda: merged(team, ts).pipe(dashboard("T", names(team), console=console, scheduler=ts)),
             disposed=205.0)
    final = final_frame(console)
    assert final.count("⛔") == 3 and "cancelled" in final
    assert live_calls["stop"] == 1
    size = len(raw(console))
    ts.advance_to(1000.0)
    assert len(raw(console)) == size  # nothing drawn after the final frame


def test_completion_stops_the_live_exactly_once(live_calls: dict[str, Any]) -> None:
    ts = TestScheduler()
    team = agents(2)
    console = recording_console()
    ts.start(lambda: merged(team, ts).pipe(dashboard("T", names(team), console=console, scheduler=ts)))
    assert live_calls["stop"] == 1  # completion, then the auto-dispose and the test's dispose: one stop
    assert not getattr(console, "_live_stack", None) and getattr(console, "_live", None) is None


def test_a_failing_console_never_breaks_the_stream(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(io.StringIO):
        def write(self, s: str) -> int:
            raise OSError("disk full")

    ts = TestScheduler()
    console = Console(file=Broken(), force_terminal=True, width=80, height=30, _environ={"TERM": "xterm"})
    events = run_events("A", ["a", "b", "c"])
    source = cold(ts, events)
    results = ts.start(lambda: source.pipe(dashboard("T", ["A"], console=console, scheduler=ts)))
    assert values(results.messages) == events
    assert isinstance(results.messages[-1].value, OnCompleted)
    assert "drawing on the console failed" in caplog.text


# --- not a terminal -------------------------------------------------------------------------------------------


def test_not_a_terminal_prints_plain_lines() -> None:
    ts = TestScheduler()
    team = agents(3, pace=0.1, length=20)
    console = recording_console(terminal=False)
    ts.start(lambda: merged(team, ts).pipe(dashboard("Team", names(team), console=console, scheduler=ts)))
    out = raw(console)
    assert "\x1b" not in out  # no ANSI: no colours, no cursor movement
    assert "╭" not in out
    lines = out.splitlines()
    assert lines[0] == "[Team] 3 agents"
    for name in names(team):
        assert lines.count(f"[Team] 🔄 {name}: streaming") == 1
        done = [line for line in lines if line.startswith(f"[Team] ✅ {name}: done · ")]
        assert len(done) == 1 and "tokens" in done[0] and "tok/s" in done[0]
    assert sum("offline model" in line and line.startswith("    ") for line in lines) == 3  # the final texts
    assert lines[-1].startswith("[Team] finished · 3 agents · 3 done")


def test_not_a_terminal_without_final_text() -> None:
    ts = TestScheduler()
    console = recording_console(terminal=False)
    source = cold(ts, run_events("A", ["secret"]))
    ts.start(lambda: source.pipe(dashboard("T", ["A"], console=console, scheduler=ts, final_text=False)))
    assert "secret" not in raw(console)
    assert "[T] ✅ A: done" in raw(console)


def test_not_a_terminal_reports_errors_with_partial_text() -> None:
    ts = TestScheduler()
    console = recording_console(terminal=False)
    bad = Agent(agent_name="bad", llm=OfflineModel(pace=0.1, fail_after=4, text="one two three four five"),
                print_on=False)
    ts.start(lambda: bad.stream("t", scheduler=ts).pipe(dashboard("T", ["bad"], console=console, scheduler=ts)))
    out = raw(console)
    assert "[T] ❌ bad: error · 4 tokens · ModelError: offline model: injected failure" in out
    assert "    one two three four\n" in out


# --- two dashboards at once -----------------------------------------------------------------------------------


def test_two_dashboards_on_two_consoles_each_draw_their_own_live() -> None:
    ts = TestScheduler()
    left, right = agents(2), agents(2)
    for i, a in enumerate(right):
        a.agent_name = f"right-{i}"
    c1, c2 = recording_console(), recording_console()
    both = reactivex.merge(
        merged(left, ts).pipe(dashboard("Left", names(left), console=c1, scheduler=ts)),
        merged(right, ts).pipe(dashboard("Right", names(right), console=c2, scheduler=ts)),
    )
    ts.start(lambda: both)
    f1, f2 = final_frame(c1), final_frame(c2)
    assert "Left" in f1 and "agent-00" in f1 and "right-0" not in f1
    assert "Right" in f2 and "right-0" in f2 and "agent-00" not in f2
    assert "\x1b[" in raw(c1) and "\x1b[" in raw(c2)  # both live (cursor movement)


def test_a_second_dashboard_on_the_same_console_prints_lines_and_does_not_clash() -> None:
    ts = TestScheduler()
    first, second = agents(2, pace=0.2), agents(1, pace=0.1)
    second[0].agent_name = "other"
    console = recording_console()
    both = reactivex.merge(
        merged(first, ts).pipe(dashboard("First", names(first), console=console, scheduler=ts)),
        merged(second, ts).pipe(dashboard("Second", names(second), console=console, scheduler=ts)),
    )
    ts.start(lambda: both)
    text = console.export_text()
    assert "[Second] ✅ other: done" in text  # plain lines, placed above the first's live display
    assert "─ Second ─" not in text  # no second box
    assert "─ First ─" in text
    # the console is free again once both ended: a new dashboard draws live
    ts2 = TestScheduler()
    later = agents(1)
    ts2.start(lambda: merged(later, ts2).pipe(dashboard("Third", names(later), console=console, scheduler=ts2)))
    assert "─ Third ─" in console.export_text()


def test_a_console_with_a_users_live_display_gets_lines() -> None:
    ts = TestScheduler()
    console = recording_console()
    with Live("user's display", console=console, auto_refresh=False):
        source = cold(ts, run_events("A", ["hi"]))
        ts.start(lambda: source.pipe(dashboard("T", ["A"], console=console, scheduler=ts)))
    text = console.export_text()
    assert "[T] ✅ A: done" in text
    assert "─ T ─" not in text


def test_two_consoles_on_one_stream_share_it() -> None:
    stream = io.StringIO()
    ts = TestScheduler()
    c1 = Console(file=stream, force_terminal=True, width=80, height=30, _environ={"TERM": "xterm"})
    c2 = Console(file=stream, force_terminal=True, width=80, height=30, _environ={"TERM": "xterm"})
    both = reactivex.merge(
        cold(ts, run_events("A", ["a"])).pipe(dashboard("One", ["A"], console=c1, scheduler=ts)),
        cold(ts, run_events("B", ["b"])).pipe(dashboard("Two", ["B"], console=c2, scheduler=ts)),
    )
    ts.start(lambda: both)
    out = stream.getvalue()
    assert "[Two] ✅ B: done" in out and " One " in out and " Two " not in out


# --- on a real loop -------------------------------------------------------------------------------------------


@pytest.mark.asyncio
async def test_frames_are_drawn_on_the_runs_loop_thread(live_calls: dict[str, Any]) -> None:
    team = agents(3, pace=0.005, length=40)
    console = recording_console()
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    source = reactivex.merge(*(a.stream("t") for a in team)).pipe(
        dashboard("Loop", names(team), console=console, refresh_per_second=50)
    )
    source.subscribe(on_completed=lambda: done.set_result(None), on_error=done.set_exception)
    await done
    assert live_calls["threads"] == {threading.get_ident()}  # this loop's thread, never a worker thread
    assert live_calls["stop"] == 1
    assert final_frame(console).count("✅") == 3


# --- arguments ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"refresh_per_second": 0}, "refresh_per_second must be a number > 0 and <= 60, got 0"),
        ({"refresh_per_second": float("inf")}, "refresh_per_second must be"),
        ({"compact": "yes"}, "compact must be True, False or None"),
        ({"tail_lines": 0}, "tail_lines must be an int >= 1, got 0"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(")):
        dashboard("T", ["A"], **kwargs)


def test_agents_must_be_a_sequence_of_names() -> None:
    with pytest.raises(ValueError, match="agents must be a sequence of agent names"):
        dashboard("T", "abc")
    with pytest.raises(ValueError, match="non-empty names"):
        dashboard("T", [""])


# --- laws ------------------------------------------------------------------------------------------------------


def test_dashboard_obeys_the_operator_laws() -> None:
    from rxagents.testing._laws import check_operator_laws

    def make(scheduler: Any) -> Any:
        return dashboard("Laws", [], console=recording_console(width=60, height=20), scheduler=scheduler)

    check_operator_laws(make, max_examples=25)


def test_dashboard_obeys_the_operator_laws_without_a_terminal() -> None:
    from rxagents.testing._laws import check_operator_laws

    def make(scheduler: Any) -> Any:
        return dashboard("Laws", ["A"], console=recording_console(terminal=False), scheduler=scheduler)

    check_operator_laws(make, max_examples=15)


# --- helpers behind the lanes ---------------------------------------------------------------------------------


def test_tail_buffer_keeps_the_last_characters() -> None:
    tail = TailBuffer(limit=5)
    for piece in ["abc", "defg", "", "hi"]:
        tail.append(piece)
    assert (tail.text(), len(tail)) == ("efghi", 5)
    tail.clear()
    assert tail.text() == ""


def test_tail_fit_cuts_on_the_left_and_flattens_newlines() -> None:
    assert tail_fit("short", 10) == "short"
    assert tail_fit("line one\nline two", 10) == "… line two"
    assert tail_fit("日本語テキスト", 5) == "…スト"


def test_a_display_left_running_at_exit_gets_a_cancelled_final_frame() -> None:
    ts = TestScheduler()
    console = recording_console()
    board = Dashboard("Exit", ["A"], console=console)
    board.start(ts)
    ts.advance_to(0.5)
    board.on_event(run_events("A", ["x"])[0])
    _stop_live_displays()  # what atexit runs
    assert board.closed
    assert "⛔" in final_frame(console) and "cancelled" in final_frame(console)
    assert not getattr(console, "_live_stack", None)
