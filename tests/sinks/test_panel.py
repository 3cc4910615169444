"""panel: the running text in a rich Panel; tail frames at the frame rate, the full text in the final frame."""

from __future__ import annotations

import io
import re
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import reactivex
from hypothesis import given
from hypothesis import strategies as st
from reactivex import Observable
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.recorded import Recorded
from rich.cells import cell_len
from rich.console import Console
from rich.live import Live

from rxagents import Agent
from rxagents.errors import ConfigurationError, ModelError
from rxagents.events import EventKind, TokenEvent
from rxagents.models import OfflineModel
from rxagents.sinks._panel import StreamPanel, panel
from rxagents.sinks._terminal import WrappedTail

RT: Any = ReactiveTest  # virtual times in seconds (floats)

# --- helpers ------------------------------------------------------------------------------------------------


def recording_console(*, width: int = 60, height: int = 12, terminal: bool = True) -> Console:
    return Console(
        record=True,
        force_terminal=terminal,
        width=width,
        height=height,
        file=io.StringIO(),
        _environ={"TERM": "xterm-256color"},
    )


def writer(*, pace: float = 0.05, length: int = 60, **model: Any) -> Agent:
    return Agent(agent_name="Writer", llm=OfflineModel(pace=pace, length=length, **model), print_on=False)


def values(messages: list[Recorded[Any]]) -> list[Any]:
    return [m.value.value for m in messages if isinstance(m.value, OnNext)]


def text_of(events: list[TokenEvent]) -> str:
    return "".join(e.text for e in events if e.kind is EventKind.TOKEN)


def frames_of(console: Console) -> list[str]:
    text = console.export_text(clear=False)
    starts = [i for i, ch in enumerate(text) if ch == "╭"]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


def inner_text(frame: str) -> str:
    """The text inside a panel frame, without borders and whitespace."""
    rows = frame.strip("\n").splitlines()[1:-1]
    return "".join("".join(row.strip().strip("│").split()) for row in rows)


def raw(console: Console) -> str:
    file = console.file
    assert isinstance(file, io.StringIO)
    return file.getvalue()


def run_events(agent: str, texts: list[str], *, run_id: str = "r1", t0: float = 0.0, step: float = 0.1
               ) -> list[TokenEvent]:
    out = [TokenEvent(EventKind.START, agent, run_id, 0, time=t0)]
    for i, text in enumerate(texts, start=1):
        out.append(TokenEvent(EventKind.TOKEN, agent, run_id, i, text=text, time=t0 + step * i))
    out.append(TokenEvent(EventKind.FINISH, agent, run_id, len(texts) + 1, finish_reason="stop",
                          time=t0 + step * len(texts)))
    return out


def cold(ts: TestScheduler, events: list[TokenEvent]) -> Observable[TokenEvent]:
    messages: list[Recorded[Any]] = [RT.on_next(e.time + 0.001, e) for e in events]
    messages.append(RT.on_completed(max(e.time for e in events) + 0.002))
    return ts.create_cold_observable(messages)


@pytest.fixture
def live_calls(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
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


# --- behaviour ------------------------------------------------------------------------------------------------


def test_events_pass_through_unchanged() -> None:
    ts = TestScheduler()
    events = run_events("A", ["Hel", "lo"])
    source = cold(ts, events)
    results = ts.start(lambda: source.pipe(panel(console=recording_console(), scheduler=ts)))
    assert values(results.messages) == events
    assert isinstance(results.messages[-1].value, OnCompleted)


def test_the_final_frame_holds_the_full_text() -> None:
    ts = TestScheduler()
    agent = writer(length=400)
    console = recording_console()
    results = ts.start(lambda: agent.stream("Write a creative story", scheduler=ts).pipe(
        panel(console=console, scheduler=ts)), disposed=100_000)
    full = text_of(values(results.messages))
    final = frames_of(console)[-1]
    assert len(final.splitlines()) > 12  # taller than the screen: the whole text, once
    assert inner_text(final) == "".join(full.split())
    assert "🤖 Writer" in final.splitlines()[0]
    assert "done" in final.splitlines()[-2] or "done" in final.strip().splitlines()[-1]


def test_streaming_frames_show_the_tail_that_fits_the_screen() -> None:
    ts = TestScheduler()
    words = [f" w{i:04d}" for i in range(2000)]
    console = recording_console(width=60, height=12)
    ts.start(lambda: cold(ts, run_events("A", words, step=0.01)).pipe(panel(console=console, scheduler=ts)),
             disposed=100_000)
    *streaming, final = frames_of(console)
    late = streaming[-1]
    assert len(late.strip("\n").splitlines()) <= 12  # bounded by the screen, not by the text
    assert "w0000" not in late and "w19" in late  # the end of the text, not its start
    assert "w0000" in final and "w1999" in final


def test_renders_are_bounded_by_frames_not_tokens(live_calls: dict[str, Any]) -> None:
    ts = TestScheduler()
    agent = writer(pace=0.01, length=3000)
    console = recording_console()
    results = ts.start(lambda: agent.stream("t", scheduler=ts).pipe(
        panel(console=console, scheduler=ts, refresh_per_second=8)), disposed=100_000)
    events = values(results.messages)
    tokens = sum(1 for e in events if e.kind is EventKind.TOKEN)
    duration = events[-1].time - events[0].time
    assert tokens >= 3000
    assert live_calls["refresh"] <= duration * 8 + 3
    assert live_calls["refresh"] < tokens / 10
    assert live_calls["stop"] == 1


def test_the_panel_counts_tokens_and_rate_from_event_times() -> None:
    view = StreamPanel(console=recording_console())
    for event in run_events("A", ["a"] * 8, step=0.25):  # 8 tokens in 2 virtual seconds
        view.on_event(event)
    assert (view.tokens, view.status, view.text) == (8, "done", "a" * 8)
    assert view.rate == pytest.approx(4.0)


def test_title_defaults_to_the_agent_name_and_can_be_set() -> None:
    view = StreamPanel(console=recording_console())
    assert view.heading == "🤖 Agent"
    view.on_event(run_events("Story-Agent", [])[0])
    assert view.heading == "🤖 Story-Agent"
    assert StreamPanel("🤖 Agent Thinking...", console=recording_console()).heading == "🤖 Agent Thinking..."


def test_an_error_shows_in_the_final_frame_and_passes_through() -> None:
    ts = TestScheduler()
    agent = writer(pace=0.1, fail_after=5, text="one two three four five six seven")
    console = recording_console()
    results = ts.start(lambda: agent.stream("t", scheduler=ts).pipe(panel(console=console, scheduler=ts)))
    end = results.messages[-1].value
    assert isinstance(end, OnError) and isinstance(end.exception, ModelError)
    final = frames_of(console)[-1]
    assert "one two three four five" in final
    assert "error" in final and "ModelError" in final


def test_dispose_leaves_a_cancelled_final_frame(live_calls: dict[str, Any]) -> None:
    ts = TestScheduler()
    agent = writer(pace=1.0, text="alpha beta gamma delta")
    console = recording_console()
    ts.start(lambda: agent.stream("t", scheduler=ts).pipe(panel(console=console, scheduler=ts)), disposed=202.5)
    final = frames_of(console)[-1]
    assert "alpha beta" in final and "cancelled" in final and "gamma" not in final
    assert live_calls["stop"] == 1


def test_a_retry_event_discards_the_text_so_far() -> None:
    view = StreamPanel(console=recording_console())
    view.on_event(TokenEvent(EventKind.START, "A", "r", 0))
    view.on_event(TokenEvent(EventKind.TOKEN, "A", "r", 1, text="old"))
    view.on_event(TokenEvent(EventKind.RETRY, "A", "r", 2, text="ModelError: boom"))
    view.on_event(TokenEvent(EventKind.TOKEN, "A", "r", 3, text="new"))
    assert (view.text, view.tokens) == ("new", 1)


def test_runs_one_after_another_are_separated() -> None:
    ts = TestScheduler()
    first = run_events("Researcher", ["facts"], run_id="r1")
    second = run_events("Writer", ["story"], run_id="r2", t0=1.0)
    console = recording_console()
    ts.start(lambda: cold(ts, first + second).pipe(panel(console=console, scheduler=ts)))
    body = frames_of(console)[-1].split("\n", 1)[1]
    assert body.index("facts") < body.index("── 🤖 Writer ──") < body.index("story")


def test_not_a_terminal_writes_plain_text() -> None:
    ts = TestScheduler()
    agent = writer(pace=0.1, text="Plain text for logs.")
    console = recording_console(terminal=False)
    results = ts.start(lambda: agent.stream("t", scheduler=ts).pipe(panel(console=console, scheduler=ts)))
    out = raw(console)
    assert "\x1b" not in out and "╭" not in out
    lines = out.splitlines()
    assert lines[0] == "🤖 Writer"
    assert lines[1] == text_of(values(results.messages)) == "Plain text for logs."
    assert lines[2].startswith("── done · 5 tokens · ") and lines[2].endswith(" ──")


def test_a_second_panel_on_the_same_console_writes_plain_text() -> None:
    ts = TestScheduler()
    console = recording_console()
    both = reactivex.merge(
        cold(ts, run_events("A", ["first"], run_id="a")).pipe(panel(console=console, scheduler=ts)),
        cold(ts, run_events("B", ["second"], run_id="b")).pipe(panel(console=console, scheduler=ts)),
    )
    ts.start(lambda: both)
    text = console.export_text()
    assert "🤖 B\nsecond\n── done" in text
    assert "─ 🤖 A ─" in text


def test_building_the_operator_draws_nothing() -> None:
    console = recording_console()
    reactivex.empty().pipe(panel(console=console))
    assert raw(console) == ""


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"refresh_per_second": -1}, "refresh_per_second must be a number > 0 and <= 60, got -1"),
        ({"title": 3}, "title must be a string, or None (default '🤖 AGENT'), got 3"),
        ({"border_style": None}, "border_style must be a rich style string such as 'blue', got None"),
        ({"scheduler": "loop"}, "scheduler must be a reactivex scheduler or None, got str 'loop'"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        panel(**kwargs)


def test_panel_obeys_the_operator_laws() -> None:
    from rxagents.testing._laws import check_operator_laws

    def make(scheduler: Any) -> Any:
        return panel(console=recording_console(), scheduler=scheduler)

    check_operator_laws(make, max_examples=25)


# --- the wrapped tail behind streaming frames ------------------------------------------------------------------


def test_wrapped_tail_keeps_the_last_lines_word_wrapped() -> None:
    tail = WrappedTail(width=10, lines=2)
    for piece in ["The", " quick", " brown", " fox", " jumps", " over", " the", " lazy", " dog"]:
        tail.append(piece)
    assert tail.text() == "the lazy\ndog"  # The quick / brown fox / jumps over / the lazy / dog


def test_wrapped_tail_breaks_words_longer_than_the_width_and_keeps_newlines() -> None:
    tail = WrappedTail(width=4, lines=5)
    tail.append("abcdefghij\nxy")
    assert tail.text() == "abcd\nefgh\nij\nxy"


def test_wrapped_tail_counts_wide_characters_as_two_cells() -> None:
    tail = WrappedTail(width=4, lines=3)
    tail.append("日本語テキスト")
    assert tail.text() == "語テ\nキス\nト"  # 日本 / 語テ / キス / ト: the last three lines


@given(
    pieces=st.lists(st.text(alphabet="ab \n日", max_size=12), max_size=40),
    width=st.integers(1, 12),
    lines=st.integers(1, 6),
)
def test_wrapped_tail_shows_the_end_of_the_text_within_the_width(pieces: list[str], width: int, lines: int) -> None:
    tail = WrappedTail(width, lines)
    for piece in pieces:
        tail.append(piece)
    shown = tail.text().split("\n") if tail.text() else []
    assert len(shown) <= lines
    assert all(cell_len(line) <= width or len(line) == 1 for line in shown)  # (a 2-cell char in 1 column)
    squeeze = "".join("".join(pieces).split())
    assert squeeze.endswith("".join(tail.text().split()))  # nothing reordered or invented
