"""The inputs of a law check: a timed run (or the interleaved runs of several agents) with the moments a
trial disposes, raises and subscribes again: fixed examples and a hypothesis strategy."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any, Literal

from hypothesis import strategies as st

from rxagents.events import EventKind, TokenEvent, Usage
from rxagents.testing._marbles import run_schedule
from rxagents.testing._strategies import AGENT_ALPHABETS, multi_agent_runs, timed_runs, token_runs

__all__ = ["Scenario", "explicit_scenarios", "scenarios"]


@dataclasses.dataclass(frozen=True)
class Scenario:
    schedule: tuple[tuple[float, TokenEvent], ...]
    alphabets: tuple[tuple[str, str], ...]  # (agent, alphabet) when several agents, else ()
    dispose_at: float
    dispose_on: int | None
    raise_on: int
    shift: float

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # hypothesis' pretty printer
        printer.text(repr(self))

    def __repr__(self) -> str:
        lines = [
            f"Scenario(dispose_at=+{self.dispose_at}, dispose_on={self.dispose_on}, "
            f"raise_on={self.raise_on}, second_subscription=+{self.shift}, input=["
        ]
        lines += [f"    {t:>8.3f}  {ev!r}" for t, ev in self.schedule]
        lines.append("])")
        return "\n".join(lines)


# Token texts come from pools (one hypothesis choice per token, so examples are cheap to generate
# and shrink): words, separators, multi-byte and astral characters, a combining mark split from its
# base, an emoji ZWJ sequence split in two, empty deltas.
_PIECES = (
    "Hel", "lo", " ", "wor", "ld", ".", "\n", "a", "b", "c", "é", "e", "\u0301", "中文", "🙂", "👩", "\u200d💻",
    "Ω", "!", "?", " and", "\t", "\r\n", "...", "1", "23", "", "Zß", " the", "ẞ",
)  # fmt: skip


def _agent_pieces(alphabet: str) -> tuple[str, ...]:
    return tuple(alphabet) + tuple(alphabet[i : i + 3] for i in range(0, len(alphabet) - 2, 3))


_SINGLE_TEXTS = st.lists(st.sampled_from(_PIECES), max_size=10)
_AGENT_TEXTS = tuple(st.lists(st.sampled_from(_agent_pieces(a)), max_size=5) for a in AGENT_ALPHABETS)


def _run(
    agent: str, texts: Sequence[str], *, start: float, step: float, error: Exception | None = None
) -> list[tuple[float, TokenEvent]]:
    usage = None if error is not None else Usage(7, len(texts), 7 + len(texts))
    return run_schedule(texts, spacing=step, start=start, agent=agent, error=error, usage=usage, model="")


def explicit_scenarios(multi: bool) -> list[Scenario]:
    """Examples run first on every check, whatever hypothesis draws: a clean run, a failing run,
    a burst in one instant (and two agents, one failing, when ORDER applies)."""
    words = ["Hel", "lo", ", ", "wor", "ld", "!", " ok"]
    clean = _run("A", words, start=0.0, step=0.1)
    failing = _run("A", words[:4], start=0.0, step=0.1, error=ConnectionError("connection reset"))
    burst = _run("A", ["a", "b", "c", "d", "e"], start=0.0, step=0.0)
    out = [
        Scenario(tuple(clean), (), 0.35, 3, 2, 0.25),
        Scenario(tuple(failing), (), 2.0, None, 3, 3.0),
        Scenario(tuple(burst), (), 0.0, 2, 1, 0.0),
    ]
    if multi:
        a = _run("A", ["ab", "c", "d"], start=0.0, step=0.2)
        b = _run("B", ["KL", "M", "N"], start=0.1, step=0.2)
        c = _run("C", ["12", "3"], start=0.05, step=0.2)
        err = TimeoutError("read timed out")
        merged = sorted(a + c + b[:-2], key=lambda pair: pair[0])
        t_end = merged[-1][0]
        merged.append((t_end, TokenEvent(EventKind.ERROR, "B", "run-B", len(b) - 2, error=err, time=t_end)))
        alphabets = tuple(zip(("A", "B", "C"), AGENT_ALPHABETS, strict=False))
        out.append(Scenario(tuple(merged), alphabets, 0.5, 4, 3, 0.25))
    return out


@st.composite
def scenarios(draw: st.DrawFn, multi: bool) -> Scenario:
    alphabets: tuple[tuple[str, str], ...] = ()
    if multi and draw(st.integers(0, 2)) == 0:
        schedule = draw(multi_agent_runs(agents=("A", "B", "C"), texts=_AGENT_TEXTS))
        agents = sorted({ev.agent for _, ev in schedule})
        alphabets = tuple(zip(agents, AGENT_ALPHABETS, strict=False))
    else:
        ending: Literal["finish", "error"] = "error" if draw(st.integers(0, 3)) == 3 else "finish"
        schedule = draw(timed_runs(token_runs(agent="A", run_id="run-A", texts=_SINGLE_TEXTS, ending=ending)))
    span = schedule[-1][0]
    times = sorted({t for t, _ in schedule} | {span + 1.0})
    dispose_at = draw(st.sampled_from(times)) + draw(st.sampled_from([0.0, 0.0005]))
    dispose_on = draw(st.one_of(st.none(), st.integers(1, 6)))
    raise_on = draw(st.integers(1, 6))
    shift = draw(st.sampled_from([0.0, 0.25, 3.0, span + 2.0]))
    return Scenario(tuple(schedule), alphabets, dispose_at, dispose_on, raise_on, shift)
