"""ConsolePrinter / console_printer: the spec's header, a rule, each token written once, plain text."""

from __future__ import annotations

import io
import os
import re
import select
import sys
from typing import Any

import pytest
import reactivex
from hypothesis import given
from hypothesis import strategies as st
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.recorded import Recorded
from rich.cells import cell_len

from rxagents import Agent
from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, TokenEvent
from rxagents.models import OfflineModel
from rxagents.sinks._console import FRAME_SECONDS, ConsolePrinter, console_printer
from tests.sinks.test_wrap import inserted_breaks
from tests.strategies import texts_split


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
    [
        ({"max_loops": 0}, "max_loops must be an int >= 1, or None (leave the loop count out), got 0"),
        ({"width": 0}, "width must be an int >= 1, or None (the terminal's width), got 0"),
        ({"wrap": "no"}, "wrap must be True, False or None (wrap on a terminal), got 'no'"),
        ({"scheduler": 5}, "scheduler must be a reactivex scheduler or None, got int 5"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        console_printer(**kwargs)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("", 1), "agent_name must be a non-empty string, or None (each run's agent name from its events), got ''"),
        ((None, 1.0), "max_loops must be an int >= 1, or None (leave the loop count out), got 1.0"),
    ],
)
def test_a_printer_checks_its_arguments(args: tuple[Any, ...], message: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(message)):
        ConsolePrinter(*args)


def test_console_printer_obeys_the_operator_laws() -> None:
    from rxagents.testing._laws import check_operator_laws

    def make(scheduler: Any) -> Any:
        return console_printer(file=io.StringIO())

    check_operator_laws(make, max_examples=25)


# --- word wrapping on a terminal -------------------------------------------------------------------------
class FakeTTY(io.StringIO):
    """A terminal as far as the printer can tell (its width is given with ``width=``)."""

    def isatty(self) -> bool:
        return True


def body(out: str, printer: ConsolePrinter, agent: str = "A") -> str:
    """The output after the header."""
    header = printer.header(agent)
    assert out.startswith(header)
    return out[len(header) :]


def test_on_a_terminal_words_are_not_split_at_the_line_end() -> None:
    out = FakeTTY()
    printer = ConsolePrinter("A", 1, file=out, width=20)
    texts = ["Quantum", " computing", " is", " hard to", " expl", "ain", " in", " a few", " words."]
    for event in run_events("A", texts):
        printer(event)
    assert body(out.getvalue(), printer) == "Quantum computing \nis hard to explain \nin a few words.\n"


def test_off_a_terminal_the_text_is_written_as_it_arrives() -> None:
    out = CountingFile()
    printer = ConsolePrinter("A", 1, file=out, width=20)
    texts = ["Quantum", " computing", " is", " hard to", " expl", "ain", " in", " a few", " words."]
    for event in run_events("A", texts):
        printer(event)
    assert body(out.getvalue(), printer) == "".join(texts) + "\n"
    assert [w for w in out.writes if w in texts] == texts  # one write per token, as before


def test_wrap_false_turns_wrapping_off_on_a_terminal() -> None:
    out = FakeTTY()
    printer = ConsolePrinter("A", 1, file=out, width=8, wrap=False)
    for event in run_events("A", ["one two three"]):
        printer(event)
    assert body(out.getvalue(), printer) == "one two three\n"


def test_a_held_word_start_is_written_by_the_next_token_or_the_end_of_the_run() -> None:
    out = FakeTTY()
    printer = ConsolePrinter("A", 1, file=out, width=20)
    events = run_events("A", ["Hello", " wor"])
    for event in events[:-1]:
        printer(event)
    assert body(out.getvalue(), printer) == "Hello "  # "wor" may not fit: held
    assert printer.hold_episode is not None
    printer(events[-1])  # finish
    assert body(out.getvalue(), printer) == "Hello wor\n" and printer.hold_episode is None


@pytest.mark.parametrize(
    "end",
    [
        TokenEvent(EventKind.ERROR, "A", "r1", 3, error=RuntimeError("boom")),
        TokenEvent(EventKind.RETRY, "A", "r1", 3, text="reset"),
    ],
)
def test_an_error_or_retry_writes_the_held_word_start_first(end: TokenEvent) -> None:
    out = FakeTTY()
    printer = ConsolePrinter("A", 1, file=out, width=20)
    for event in [*run_events("A", ["Hello", " wor"])[:-1], end]:
        printer(event)
    assert body(out.getvalue(), printer).startswith("Hello wor\n[")


def test_flush_writes_the_held_word_start() -> None:
    out = FakeTTY()
    printer = ConsolePrinter("A", 1, file=out, width=20)
    for event in run_events("A", ["Hello", " wor"])[:-1]:
        printer(event)
    printer.flush()
    assert body(out.getvalue(), printer) == "Hello wor"


@given(texts_split(alphabet="abcé界 \n", max_pieces=25, max_piece_size=8), st.integers(1, 30))
def test_terminal_output_is_the_text_with_line_breaks_between_words(pieces: list[str], width: int) -> None:
    out = FakeTTY()
    printer = ConsolePrinter("A", 1, file=out, width=width)
    for event in run_events("A", pieces):
        printer(event)
    printed = body(out.getvalue(), printer)
    text = "".join(pieces)
    assert inserted_breaks(printed, text) is not None, (printed, text)  # nothing lost, reordered or added
    for line in printed.split("\n"):  # no line too wide, except one holding a single longer word
        assert cell_len(line) <= width or " " not in line, (line, width)


def test_operator_writes_a_held_word_start_after_a_frame() -> None:
    ts = TestScheduler()
    out = FakeTTY()
    a = run_events("A", ["Please", " expl", "ain"])
    source = ts.create_hot_observable(
        ReactiveTest.on_next(201, a[0]), ReactiveTest.on_next(202, a[1]), ReactiveTest.on_next(203, a[2]),
        ReactiveTest.on_next(210, a[3]), ReactiveTest.on_next(211, a[4]), ReactiveTest.on_completed(212),
    )
    seen: dict[float, str] = {}
    for t in (203.0, 203 + FRAME_SECONDS / 2, 203 + FRAME_SECONDS * 1.5):
        ts.schedule_absolute(t + 0.001, lambda *_, t=t: seen.__setitem__(t, out.getvalue()))
    results = ts.start(lambda: source.pipe(console_printer(file=out, width=20, scheduler=ts)))
    printer = ConsolePrinter(None, None, width=20)
    assert [body(seen[t], printer) for t in sorted(seen)] == ["Please ", "Please ", "Please expl"]
    assert body(out.getvalue(), printer) == "Please explain\n"
    assert values(results.messages) == a


@pytest.mark.parametrize("ending", ["error", "completed", "disposed"])
def test_operator_writes_the_held_word_start_when_the_stream_ends_or_is_disposed(ending: str) -> None:
    ts = TestScheduler()
    out = FakeTTY()
    a = run_events("A", ["Please", " expl"])
    messages = [ReactiveTest.on_next(201, a[0]), ReactiveTest.on_next(202, a[1]), ReactiveTest.on_next(203, a[2])]
    if ending == "error":
        messages.append(ReactiveTest.on_error(204, RuntimeError("cut")))
    elif ending == "completed":
        messages.append(ReactiveTest.on_completed(204))
    source = ts.create_hot_observable(*messages)
    operator = console_printer(file=out, width=20, scheduler=TestScheduler())  # its frame timer never runs
    ts.start(lambda: source.pipe(operator), disposed=205)
    assert body(out.getvalue(), ConsolePrinter(None, None, width=20)) == "Please expl"


def test_wrap_is_validated() -> None:
    with pytest.raises(ValueError, match="wrap must be True, False or None"):
        console_printer(wrap="yes")  # type: ignore[arg-type]


def test_console_printer_on_a_terminal_obeys_the_operator_laws() -> None:
    from rxagents.testing._laws import check_operator_laws

    def make(scheduler: Any) -> Any:
        return console_printer(file=FakeTTY(), width=7, scheduler=scheduler)

    check_operator_laws(make, max_examples=25)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs a Linux pseudo-terminal")
def test_a_real_terminal_is_wrapped_at_its_own_width() -> None:
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 16, 0, 0))  # 24 rows, 16 columns
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR  # no \r added before each \n
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    with os.fdopen(slave, "w", encoding="utf-8") as tty:
        printer = ConsolePrinter("A", None, file=tty)
        for event in run_events("A", ["Wrapping", " happens", " between", " words"]):
            printer(event)
    received = b""
    while select.select([master], [], [], 2.0)[0]:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the other end is closed: all read
            break
        if not chunk:
            break
        received += chunk
    os.close(master)
    text = received.decode()
    assert text.endswith("\n\nWrapping \nhappens between \nwords\n"), text
