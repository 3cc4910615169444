"""ConsolePrinter / console_printer: the spec's header, a rule, each token written once, plain text."""

from __future__ import annotations

import io
from typing import Any

import pytest
import reactivex
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.testing import TestScheduler
from reactivex.testing.recorded import Recorded

from rxagents import Agent
from rxagents.events import EventKind, TokenEvent
from rxagents.models import OfflineModel
from rxagents.sinks._console import ConsolePrinter, console_printer


def run_events(agent: str, texts: list[str], *, run_id: str = "r1", loop: int = 1, first_seq: int = 0
               ) -> list[TokenEvent]:
    out = [TokenEvent(EventKind.START, agent, run_id, first_seq)]
    for i, text in enumerate(texts, start=first_seq + 1):
        out.append(TokenEvent(EventKind.TOKEN, agent, run_id, i, loop=loop, text=text))
    out.append(TokenEvent(EventKind.FINISH, agent, run_id, first_seq + len(texts) + 1, finish_reason="stop"))
    return out


def values(messages: list[Recorded[Any]]) -> list[Any]:
    return [m.value.value for m in messages if isinstance(m.value, OnNext)]


class CountingFile(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[str] = []

    def write(self, s: str) -> int:
        self.writes.append(s)
        return super().write(s)


def test_printer_writes_the_spec_header_then_the_text() -> None:
    out = io.StringIO()
    printer = ConsolePrinter("Streaming-Agent", 1, file=out, width=10)
    for event in run_events("Streaming-Agent", ["Neural", " networks"]):
        printer(event)
    assert out.getvalue() == "🤖 Agent: Streaming-Agent | Loops: 1\n" + "━" * 10 + "\n\nNeural networks\n"


def test_each_token_is_written_once_never_redrawn() -> None:
    out = CountingFile()
    printer = ConsolePrinter("A", 1, file=out, width=10)
    texts = [f"t{i} " for i in range(1000)]
    for event in run_events("A", texts):
        printer(event)
    token_writes = [w for w in out.writes if w.startswith("t")]
    assert token_writes == texts  # one write per token, its own text only
    assert len(out.getvalue()) == len(printer.header()) + len("".join(texts)) + 1


def test_a_new_loop_is_marked() -> None:
    out = io.StringIO()
    printer = ConsolePrinter("A", 2, file=out, width=4)
    events = [*run_events("A", ["one"])[:2], TokenEvent(EventKind.TOKEN, "A", "r1", 2, loop=2, text="two")]
    for event in events:
        printer(event)
    assert out.getvalue().endswith("one\n\n── loop 2 ──\ntwo")


def test_an_error_is_printed_on_its_own_line() -> None:
    out = io.StringIO()
    printer = ConsolePrinter("A", 1, file=out, width=4)
    printer(TokenEvent(EventKind.START, "A", "r", 0))
    printer(TokenEvent(EventKind.TOKEN, "A", "r", 1, text="partial"))
    printer(TokenEvent(EventKind.ERROR, "A", "r", 2, error=RuntimeError("boom")))
    assert out.getvalue().endswith("partial\n[error] RuntimeError: boom\n")


def test_output_is_plain_text_without_ansi() -> None:
    out = io.StringIO()
    printer = ConsolePrinter("A", 1, file=out)
    for event in run_events("A", ["x"]):
        printer(event)
    assert "\x1b" not in out.getvalue()


def test_operator_passes_events_through_and_prints() -> None:
    out = io.StringIO()
    events = run_events("A", ["Hel", "lo"])
    got: list[TokenEvent] = []
    reactivex.from_iterable(events).pipe(console_printer(max_loops=1, file=out, width=5)).subscribe(got.append)
    assert got == events
    assert out.getvalue() == "🤖 Agent: A | Loops: 1\n━━━━━\n\nHello\n"


def test_operator_prints_a_header_per_run_of_a_chain() -> None:
    out = io.StringIO()
    chain = run_events("Researcher", ["facts"], run_id="r1") + run_events("Writer", ["story"], run_id="r2")
    reactivex.from_iterable(chain).pipe(console_printer(file=out, width=3)).subscribe()
    assert out.getvalue() == "🤖 Agent: Researcher\n━━━\n\nfacts\n🤖 Agent: Writer\n━━━\n\nstory\n"


def test_operator_marks_interleaved_agents() -> None:
    out = io.StringIO()
    a, b = run_events("A", ["a1", "a2"], run_id="ra"), run_events("B", ["b1"], run_id="rb")
    interleaved = [a[0], a[1], b[0], b[1], a[2], a[3], b[2]]
    reactivex.from_iterable(interleaved).pipe(console_printer(file=out, width=3)).subscribe()
    assert out.getvalue().endswith("b1\n[A] a2\n")


def test_operator_in_virtual_time_with_an_agent() -> None:
    ts = TestScheduler()
    out = io.StringIO()
    agent = Agent(agent_name="Story", llm=OfflineModel(pace=0.1, text="Once upon a time."), print_on=False)
    results = ts.start(lambda: agent.stream("t", scheduler=ts).pipe(console_printer(max_loops=1, file=out)))
    assert isinstance(results.messages[-1].value, OnCompleted)
    assert out.getvalue().startswith("🤖 Agent: Story | Loops: 1\n")
    assert out.getvalue().endswith("\n\nOnce upon a time.\n")


def test_a_failing_file_never_breaks_the_stream(caplog: pytest.LogCaptureFixture) -> None:
    class Closed(io.StringIO):
        def write(self, s: str) -> int:
            raise BrokenPipeError("closed")

    events = run_events("A", ["x", "y"])
    got: list[TokenEvent] = []
    done: list[bool] = []
    reactivex.from_iterable(events).pipe(console_printer(file=Closed())).subscribe(
        got.append, on_completed=lambda: done.append(True)
    )
    assert got == events and done == [True]
    assert "console_printer: writing failed" in caplog.text


def test_an_error_passes_through_unchanged() -> None:
    ts = TestScheduler()
    boom = RuntimeError("boom")
    source = reactivex.concat(reactivex.from_iterable(run_events("A", ["x"])[:2]), reactivex.throw(boom))
    results = ts.start(lambda: source.pipe(console_printer(file=io.StringIO())))
    end = results.messages[-1].value
    assert isinstance(end, OnError) and end.exception is boom


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"max_loops": 0}, "max_loops must be an int >= 1 or None, got 0"), ({"width": 0}, "width must be an int >= 1")],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        console_printer(**kwargs)


def test_console_printer_obeys_the_operator_laws() -> None:
    from rxagents.testing._laws import check_operator_laws

    def make(scheduler: Any) -> Any:
        return console_printer(file=io.StringIO())

    check_operator_laws(make, max_examples=25)
