#!/usr/bin/env python
"""100 agents x 200 tokens at once: ``ConcurrentWorkflow`` on the offline model, with and without a dashboard.

For each pace (seconds between an agent's tokens) the script runs ``ConcurrentWorkflow(...).stream(task)``
on one asyncio loop, N agents of the embedded offline model each streaming the same T-token answer, and
reports the median of ``--repeat`` runs (after one unmeasured warm-up):

* wall time from subscription to completion, and aggregate tokens/s (N*T / wall);
* process CPU time (``time.process_time()``);
* the same with a live :class:`rxagents.sinks._dashboard.Dashboard` (100 lanes, compact mode, drawn at its
  frame rate on a recording rich console sized like a terminal): the CPU time spent in the dashboard itself
  (per-event lane updates + frame drawing), its share of the process CPU time, and frames drawn.

``pace=0`` is a burst (each run streams without yielding, so the runs hardly interleave); ``pace>0`` makes
every agent wait between tokens, so all runs are in flight together and frames are drawn while they stream.
Every run checks each agent's seq numbers (no gap, no duplicate) and text, so a broken merge cannot look fast.

Usage::

    python bench/bench_workflows.py [--agents 100] [--tokens 200] [--pace 0 0.002] [--repeat 3] [--fps 8]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402

from rxagents import Agent, EventKind, OfflineModel, TokenEvent, _runtime  # noqa: E402
from rxagents.models._offline import tokenize  # noqa: E402
from rxagents.workflows import ConcurrentWorkflow  # noqa: E402

TASK = "Benchmark: stream the fixed answer."


@dataclass(frozen=True, slots=True)
class Sample:
    wall: float
    cpu: float
    dashboard_cpu: float = 0.0
    drawing_cpu: float = 0.0
    frames: int = 0


def _answer(tokens: int) -> str:
    text = "".join(f" t{i}" for i in range(tokens)).lstrip()
    assert len(tokenize(text)) == tokens, "the answer must be exactly --tokens tokens"
    return text


def _timed_dashboard(title: str, names: list[str], fps: float) -> Any:
    """A Dashboard whose own work (event updates, frames) is timed with the thread CPU clock."""
    from rxagents.sinks._dashboard import Dashboard

    class TimedDashboard(Dashboard):
        updating = 0.0  # per-event lane updates
        drawing = 0.0  # timer ticks and the final frame

        def on_event(self, event: TokenEvent) -> None:
            t0 = time.thread_time()
            super().on_event(event)
            self.updating += time.thread_time() - t0

        def tick(self) -> None:
            t0 = time.thread_time()
            super().tick()
            self.drawing += time.thread_time() - t0

        def finish(self, error: BaseException | None = None, *, cancelled: bool = False) -> None:
            t0 = time.thread_time()
            super().finish(error, cancelled=cancelled)
            self.drawing += time.thread_time() - t0

    console = Console(file=io.StringIO(), force_terminal=True, width=120, height=60, color_system="truecolor")
    return TimedDashboard(title, names, console=console, refresh_per_second=fps)


async def run_once(agents: int, text: str, pace: float, *, with_dashboard: bool, fps: float) -> Sample:
    names = [f"agent-{i:03d}" for i in range(agents)]
    workflow = ConcurrentWorkflow(
        name="bench",
        agents=[Agent(agent_name=n, llm=OfflineModel(text=text, pace=pace), print_on=False) for n in names],
    )
    loop = asyncio.get_running_loop()
    scheduler = _runtime.loop_scheduler(loop)
    board = _timed_dashboard("bench", names, fps) if with_dashboard else None
    done: asyncio.Future[None] = loop.create_future()
    seqs: dict[str, int] = {}
    texts: dict[str, list[str]] = {n: [] for n in names}

    def on_next(event: TokenEvent) -> None:
        expected = seqs.get(event.run_id, 0)
        if event.seq != expected:
            raise AssertionError(f"{event.agent}: seq {event.seq}, expected {expected}")
        seqs[event.run_id] = expected + 1
        if event.kind is EventKind.TOKEN:
            texts[event.agent].append(event.text)
        if board is not None:
            board.on_event(event)

    def on_error(error: Exception) -> None:
        done.set_exception(error)

    def on_completed() -> None:
        if board is not None:
            board.finish()
        done.set_result(None)

    cpu0, t0 = time.process_time(), time.perf_counter()
    if board is not None:
        board.start(scheduler)
    workflow.stream(TASK, scheduler=scheduler).subscribe(on_next, on_error, on_completed)
    await done
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    bad = [n for n, parts in texts.items() if "".join(parts) != text]
    if bad or len(seqs) != agents:
        raise AssertionError(f"lost or garbled text for {len(bad)} agents ({len(seqs)} runs of {agents})")
    if board is None:
        return Sample(wall, cpu)
    return Sample(wall, cpu, board.updating + board.drawing, board.drawing, board.frames)


def median(samples: list[Sample], field: str) -> float:
    return statistics.median(getattr(s, field) for s in samples)


async def main_async(args: argparse.Namespace) -> None:
    text = _answer(args.tokens)
    total = args.agents * args.tokens
    print(f"ConcurrentWorkflow: {args.agents} agents x {args.tokens} tokens = {total:,} tokens, offline model, "
          f"median of {args.repeat} (python {sys.version.split()[0]})")
    for pace in args.pace:
        for with_dashboard in (False, True):
            await run_once(args.agents, text, pace, with_dashboard=with_dashboard, fps=args.fps)  # warm-up
            samples = [
                await run_once(args.agents, text, pace, with_dashboard=with_dashboard, fps=args.fps)
                for _ in range(args.repeat)
            ]
            wall, cpu = median(samples, "wall"), median(samples, "cpu")
            label = f"pace={pace:g}s" + (f" + dashboard@{args.fps:g}fps" if with_dashboard else "")
            line = (f"  {label:<32} wall {wall:7.3f} s   {total / wall:>11,.0f} tokens/s   "
                    f"cpu {cpu:6.3f} s ({cpu / total * 1e6:5.1f} us/token)")
            if with_dashboard:
                spent = median(samples, "dashboard_cpu")
                drawing, frames = median(samples, "drawing_cpu"), median(samples, "frames")
                line += (f"\n  {'':<32} dashboard cpu {spent:6.3f} s = {spent / cpu:5.1%} of the process "
                         f"(lane updates {spent - drawing:.3f} s, {frames:.0f} frames {drawing:.3f} s)")
            print(line)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=100)
    parser.add_argument("--tokens", type=int, default=200)
    parser.add_argument("--pace", type=float, nargs="+", default=[0.0, 0.002],
                        help="seconds between an agent's tokens (several values: one run each)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--fps", type=float, default=8.0, help="dashboard refresh_per_second")
    args = parser.parse_args(argv)
    asyncio.run(main_async(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
