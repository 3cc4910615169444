#!/usr/bin/env python
"""Print-mode cost per token (is it linear?) and the dashboard's CPU share.

1. **Per-token cost at 8,000 vs 1,000 tokens** (target: ratio <= 2; a redraw-everything panel is O(n²), so its
   ratio grows with n — swarms took 114 s for 8,000 tokens). The offline model (no network) streams the answer;
   output goes to ``os.devnull`` through a rich console that believes it is a terminal (so every frame is really
   rendered). Rows:

   * ``console printer (Agent.run)`` — ``Agent(streaming_on=True).run(task)`` with stdout on devnull, pace 0:
     the whole print path, run included.
   * ``console printer (sink only)`` — the printer fed the pre-recorded events: the sink alone.
   * ``panel, burst`` — ``agent.stream(task).pipe(panel(...))`` on an asyncio loop, pace 0.
   * ``panel, 20 tok/s virtual`` — the same in virtual time at 20 tokens/s with 8 frames/s, i.e. a frame every
     2.5 tokens, as in a real slow stream: the frames' cost is in the figure, and stays per-token constant only
     if a frame's cost does not grow with the text (tail frames; the full text once, in the final frame).
   * ``naive panel (spec's example)`` — for contrast, what the spec's "Custom Streaming Panel" does (print a
     Panel of the whole text per token), at smaller sizes (``--naive-tokens``): its ratio shows the O(n²).

2. **Dashboard CPU share**: 100 agents × 200 tokens concurrently on the offline model (``--pace`` seconds per
   token, default 0.01) on one asyncio loop, merged, with and without ``dashboard(...)`` at 8 frames/s on a
   devnull terminal console; share = (CPU with − CPU without) / CPU with. Also: wall time, aggregate tokens/s,
   frames drawn.

CPU time is ``time.process_time()`` (all threads of this process); figures are medians of ``--repeat`` runs
after one warm-up. Nothing is asserted: the numbers are printed.

Usage::

    python bench/bench_print.py [--repeat 3] [--agents 100] [--agent-tokens 200] [--pace 0.01]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_MODE"] = "PRODUCTION"

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import reactivex  # noqa: E402
from reactivex import Observable  # noqa: E402
from reactivex.testing import TestScheduler  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.live import Live  # noqa: E402
from rich.panel import Panel  # noqa: E402

from rxagents import Agent  # noqa: E402
from rxagents.events import EventKind, TokenEvent  # noqa: E402
from rxagents.models import OfflineModel  # noqa: E402
from rxagents.models._offline import tokenize  # noqa: E402
from rxagents.sinks._console import ConsolePrinter  # noqa: E402
from rxagents.sinks._dashboard import dashboard  # noqa: E402
from rxagents.sinks._panel import panel  # noqa: E402

TASK = "Benchmark: write a long answer about streams."


@contextlib.contextmanager
def devnull() -> Iterator[io.TextIOWrapper]:
    with open(os.devnull, "w", encoding="utf-8") as f:
        yield f


def terminal_console(file: Any, width: int = 100, height: int = 40) -> Console:
    return Console(file=file, force_terminal=True, width=width, height=height, _environ={"TERM": "xterm-256color"})


_TEXTS: dict[int, str] = {}


def answer_text(tokens: int) -> str:
    """An answer of exactly ``tokens`` offline-model tokens (the generated answer's ``length`` is approximate:
    it ends at a whole sentence), the same text for every sink measured."""
    if tokens not in _TEXTS:
        sentence = " Streams keep tokens in order, and operators compose them without blocking."
        per = len(tokenize(sentence))
        text = "[offline model] A long answer for the benchmark." + sentence * (tokens // per + 1)
        _TEXTS[tokens] = "".join(tokenize(text)[:tokens])
    return _TEXTS[tokens]


def agent(tokens: int, pace: float = 0.0, name: str = "Bench-Agent", print_on: bool = False) -> Agent:
    model = OfflineModel(pace=pace, text=answer_text(tokens))
    return Agent(agent_name=name, llm=model, streaming_on=True, print_on=print_on)


def recorded_events(tokens: int) -> list[TokenEvent]:
    ts = TestScheduler()
    events: list[TokenEvent] = []
    agent(tokens, pace=0.001).stream(TASK, scheduler=ts).subscribe(events.append)
    ts.start()
    return events


def count_tokens(events: list[TokenEvent]) -> int:
    return sum(1 for e in events if e.kind is EventKind.TOKEN)


def median_cpu(fn: Callable[[], int], repeat: int) -> tuple[float, int]:
    """(median CPU seconds per token, tokens) of ``fn`` (returns its token count), after a warm-up."""
    fn()
    samples = []
    tokens = 0
    for _ in range(repeat):
        start = time.process_time()
        tokens = fn()
        samples.append((time.process_time() - start) / max(tokens, 1))
    return statistics.median(samples), tokens


# --- print mode ---------------------------------------------------------------------------------------------


def printer_agent_run(n: int) -> Callable[[], int]:
    tokens = count_tokens(recorded_events(n))

    def measured() -> int:
        a = agent(n, print_on=True)
        with devnull() as f, contextlib.redirect_stdout(f):
            a.run(TASK)
        return tokens

    return measured


def printer_sink_only(n: int) -> Callable[[], int]:
    events = recorded_events(n)
    tokens = count_tokens(events)

    def measured() -> int:
        with devnull() as f:
            printer = ConsolePrinter("Bench-Agent", 1, file=f, width=80)
            for event in events:
                printer(event)
        return tokens

    return measured


def panel_burst(n: int) -> Callable[[], int]:
    tokens = count_tokens(recorded_events(n))

    def measured() -> int:
        async def main() -> None:
            with devnull() as f:
                done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                agent(n).stream(TASK).pipe(panel(console=terminal_console(f))).subscribe(
                    on_completed=lambda: done.set_result(None), on_error=done.set_exception
                )
                await done

        asyncio.run(main())
        return tokens

    return measured


def panel_virtual(n: int, rate: float = 20.0) -> Callable[[], int]:
    tokens = count_tokens(recorded_events(n))

    def measured() -> int:
        ts = TestScheduler()
        with devnull() as f:
            stream = agent(n, pace=1.0 / rate).stream(TASK, scheduler=ts)
            stream.pipe(panel(console=terminal_console(f), scheduler=ts, refresh_per_second=8)).subscribe()
            ts.start()
        return tokens

    return measured


def naive_panel(n: int) -> Callable[[], int]:
    """The spec's custom_panel_callback: clear, then print a Panel of the whole text, per token."""
    events = recorded_events(n)
    tokens = count_tokens(events)

    def measured() -> int:
        with devnull() as f:
            console = terminal_console(f)
            collected: list[str] = []
            for event in events:
                if event.kind is EventKind.TOKEN:
                    collected.append(event.text)
                    console.clear()
                    console.print(Panel("".join(collected), title="🤖 Agent Thinking...", border_style="blue"))
        return tokens

    return measured


def print_mode(repeat: int, small: int, large: int, naive_small: int, naive_large: int) -> None:
    print(f"Print mode: CPU per token, {small:,} vs {large:,} tokens (median of {repeat}; target ratio <= 2)")
    print(f"  {'':44} {'per token (small)':>18} {'per token (large)':>18} {'ratio':>7}")
    rows: list[tuple[str, Callable[[int], Callable[[], int]], int, int]] = [
        ("console printer (Agent.run)", printer_agent_run, small, large),
        ("console printer (sink only)", printer_sink_only, small, large),
        ("panel, burst (pace 0)", panel_burst, small, large),
        ("panel, 20 tok/s virtual, 8 fps", panel_virtual, small, large),
        ("naive panel (spec's example)", naive_panel, naive_small, naive_large),
    ]
    for name, make, lo, hi in rows:
        cost_lo, n_lo = median_cpu(make(lo), repeat)
        cost_hi, n_hi = median_cpu(make(hi), repeat)
        label = name if (lo, hi) == (small, large) else f"{name} [{lo:,} vs {hi:,}]"
        print(f"  {label:44} {cost_lo * 1e6:>13.1f} µs {cost_hi * 1e6:>13.1f} µs {cost_hi / cost_lo:>7.2f}"
              f"   ({n_lo:,} / {n_hi:,} tokens)")


# --- dashboard CPU share ------------------------------------------------------------------------------------


class FrameCounter:
    def __init__(self) -> None:
        self.frames = 0
        self._refresh = Live.refresh

    def __enter__(self) -> FrameCounter:
        counter = self
        original = self._refresh

        def refresh(live: Live) -> None:
            counter.frames += 1
            original(live)

        Live.refresh = refresh  # type: ignore[method-assign,assignment]
        return self

    def __exit__(self, *_: Any) -> None:
        Live.refresh = self._refresh  # type: ignore[method-assign]


def concurrent_run(agents: int, tokens: int, pace: float, with_dashboard: bool) -> tuple[float, float, int, int]:
    """(CPU s, wall s, tokens received, frames) for one concurrent run."""
    team = [agent(tokens, pace=pace, name=f"agent-{i:03d}") for i in range(agents)]
    received = 0

    def count(event: TokenEvent) -> None:
        nonlocal received
        if event.kind is EventKind.TOKEN:
            received += 1

    async def main() -> None:
        with devnull() as f:
            done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            merged: Observable[TokenEvent] = reactivex.merge(*(a.stream(TASK) for a in team))
            if with_dashboard:
                console = terminal_console(f, width=120, height=50)
                merged = merged.pipe(dashboard("Bench", [a.agent_name for a in team], console=console))
            merged.subscribe(count, on_completed=lambda: done.set_result(None), on_error=done.set_exception)
            await done

    with FrameCounter() as frames:
        cpu0, wall0 = time.process_time(), time.perf_counter()
        asyncio.run(main())
        cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    return cpu, wall, received, frames.frames


def dashboard_share(repeat: int, agents: int, tokens: int, pace: float) -> None:
    print(f"\nDashboard: {agents} agents × {tokens} tokens concurrently, offline model at {pace} s/token, "
          f"8 frames/s (median of {repeat})")
    concurrent_run(agents, tokens, pace, True)  # warm-up
    without = [concurrent_run(agents, tokens, pace, False) for _ in range(repeat)]
    with_ = [concurrent_run(agents, tokens, pace, True) for _ in range(repeat)]
    for name, runs in (("without dashboard", without), ("with dashboard", with_)):
        cpu = statistics.median(r[0] for r in runs)
        wall = statistics.median(r[1] for r in runs)
        received = runs[0][2]
        frames = statistics.median(r[3] for r in runs)
        print(f"  {name:18} CPU {cpu:6.2f} s   wall {wall:6.2f} s   {received:,} tokens   "
              f"{received / wall:>9,.0f} tok/s aggregate   frames {frames:.0f} ({frames / wall:.1f}/s)")
    cpu_without = statistics.median(r[0] for r in without)
    cpu_with = statistics.median(r[0] for r in with_)
    share = (cpu_with - cpu_without) / cpu_with
    print(f"  dashboard CPU share: {share * 100:.1f}% of the run's CPU "
          f"({(cpu_with - cpu_without) * 1000:.0f} ms over {statistics.median(r[1] for r in with_):.2f} s)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--small", type=int, default=1000)
    parser.add_argument("--large", type=int, default=8000)
    parser.add_argument("--naive-tokens", type=int, nargs=2, default=(250, 1000), metavar=("SMALL", "LARGE"))
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--agent-tokens", type=int, default=200)
    parser.add_argument("--pace", type=float, default=0.01)
    args = parser.parse_args()
    print_mode(args.repeat, args.small, args.large, *args.naive_tokens)
    dashboard_share(args.repeat, args.agents, args.agent_tokens, args.pace)


if __name__ == "__main__":
    main()
