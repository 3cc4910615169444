#!/usr/bin/env python
"""rxagents' own CPU cost per token, entry point by entry point, with an in-process fake backend (no I/O).

The backend yields N prebuilt ``Delta`` objects (N tokens, then the finish), so nothing but rxagents' per-token
path shows: the run driver and its state machine, the ``TokenEvent``, the Observable bridge, the hand-off to the
callback thread. Each entry point is timed with ``time.process_time()`` (CPU of every thread of this process:
the rxagents runtime thread included), median of ``--repeat`` runs after one warm-up, in µs per token:

* **bare**: ``async for delta in backend.stream(request)`` — the floor, on a persistent asyncio loop;
* **astream**: ``async for event in agent.astream(task)`` on that loop;
* **arun**: ``await agent.arun(task, streaming_callback=no_op)`` on that loop;
* **subscribe**: ``agent.stream(task).subscribe(...)`` from a thread with no loop (the run executes on the
  rxagents runtime loop and delivers there); the main thread waits for completion;
* **run**: ``agent.run(task, streaming_callback=no_op)`` (the run executes on the runtime loop, the callback runs
  on the calling thread).

Two shapes of backend: **burst** yields every delta without suspending (the whole reply in one loop turn, as when
a socket read returns many chunks), **turn** suspends once after each delta (``await asyncio.sleep(0)``: one token
per loop turn, as when the model is slower than the client). The bare floor uses the same shape. Every run checks
the text it received, so a broken entry point cannot look fast.

Usage::

    python bench/bench_path.py [--tokens 2000] [--repeat 5] [--shape burst turn] [--floor 3.6] [--profile ENTRY]

``--floor``: a measured per-token cost of reading a real stream (µs), to project each entry point's cost as a
multiple of it (floor + the entry point's cost over bare). ``--profile run`` prints a ``cProfile`` of one run of that
entry point (every thread that runs rxagents code), top functions by own time. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import pstats
import statistics
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from rxagents import Agent, _runtime  # noqa: E402
from rxagents.events import EventKind, TokenEvent  # noqa: E402
from rxagents.models import Delta, ModelRequest  # noqa: E402

TASK = "Benchmark: stream the prebuilt deltas."
ENTRIES = ("bare", "astream", "arun", "subscribe", "run")


class FakeBackend:
    """Yields prebuilt deltas: ``tokens`` tokens, then the finish; ``turn``: suspends after each one."""

    name = "fake"

    def __init__(self, tokens: int, *, turn: bool) -> None:
        self.pieces = [f" t{i}" for i in range(tokens)]
        self.text = "".join(self.pieces)
        self.deltas = [Delta(EventKind.TOKEN, text=p) for p in self.pieces] + [
            Delta(EventKind.FINISH, finish_reason="stop")
        ]
        self.turn = turn

    def stream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        return self._burst() if not self.turn else self._turned()

    async def _burst(self) -> AsyncIterator[Delta]:
        for delta in self.deltas:
            yield delta

    async def _turned(self) -> AsyncIterator[Delta]:
        sleep = asyncio.sleep
        for delta in self.deltas:
            yield delta
            await sleep(0)


def _check(name: str, got: str, want: str) -> None:
    if got != want:
        raise SystemExit(f"{name}: received {len(got)} chars, expected {len(want)}: the entry point is broken")


class Bench:
    def __init__(self, backend: FakeBackend) -> None:
        self.backend = backend
        self.agent = Agent(llm=backend, print_on=False)
        self.loop = asyncio.new_event_loop()
        _runtime.runtime_loop()  # started before any measurement

    def close(self) -> None:
        self.loop.close()

    # each returns the text it received -------------------------------------------------------------------------
    def bare(self) -> str:
        async def go() -> str:
            parts = []
            async for delta in self.backend.stream(ModelRequest(model="fake", messages=[])):
                if delta.kind is EventKind.TOKEN:
                    parts.append(delta.text)
            return "".join(parts)

        return self.loop.run_until_complete(go())

    def astream(self) -> str:
        async def go() -> str:
            parts = []
            async for event in self.agent.astream(TASK):
                if event.kind is EventKind.TOKEN:
                    parts.append(event.text)
            return "".join(parts)

        return self.loop.run_until_complete(go())

    def arun(self) -> str:
        parts: list[str] = []
        answer = self.loop.run_until_complete(self.agent.arun(TASK, streaming_callback=parts.append))
        _check("arun answer", answer, "".join(parts))
        return answer

    def subscribe(self) -> str:
        parts: list[str] = []
        done = threading.Event()
        errors: list[Exception] = []

        def on_next(event: TokenEvent) -> None:
            if event.kind is EventKind.TOKEN:
                parts.append(event.text)

        def on_error(error: Exception) -> None:
            errors.append(error)
            done.set()

        self.agent.stream(TASK).subscribe(on_next, on_error, done.set)
        done.wait()
        if errors:
            raise errors[0]
        return "".join(parts)

    def run(self) -> str:
        parts: list[str] = []
        answer = self.agent.run(TASK, streaming_callback=parts.append)
        _check("run answer", answer, "".join(parts))
        return answer

    def entry(self, name: str) -> Callable[[], str]:
        fn: Callable[[], str] = getattr(self, name)
        return fn


def measure(bench: Bench, entries: list[str], repeat: int) -> dict[str, float]:
    """Median CPU µs per token of each entry point; runs interleaved, one warm-up each."""
    tokens = len(bench.backend.pieces)
    samples: dict[str, list[float]] = {name: [] for name in entries}
    for name in entries:
        _check(name, bench.entry(name)(), bench.backend.text)
    for _ in range(repeat):
        for name in entries:
            fn = bench.entry(name)
            gc.collect()
            cpu0 = time.process_time()
            text = fn()
            cpu = time.process_time() - cpu0
            _check(name, text, bench.backend.text)
            samples[name].append(cpu / tokens * 1e6)
    return {name: statistics.median(values) for name, values in samples.items()}


def profile(bench: Bench, name: str, top: int) -> str:
    """cProfile of one run of ``name`` on this thread and the runtime loop's thread (each its own profiler)."""
    fn = bench.entry(name)
    fn()  # warm
    here = cProfile.Profile(time.thread_time)
    there = cProfile.Profile(time.thread_time)
    runtime = _runtime.runtime_loop()
    asyncio.run_coroutine_threadsafe(_call(there.enable), runtime).result()
    here.enable()
    try:
        fn()
    finally:
        here.disable()
        asyncio.run_coroutine_threadsafe(_call(there.disable), runtime).result()
    out = io.StringIO()
    stats = pstats.Stats(here, stream=out)
    stats.add(there)
    stats.sort_stats("tottime").print_stats(top)
    return out.getvalue()


async def _call(action: Callable[[], Any]) -> None:
    action()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--tokens", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--shape", nargs="+", choices=("burst", "turn"), default=["burst", "turn"])
    parser.add_argument("--entry", nargs="+", choices=ENTRIES, default=list(ENTRIES))
    parser.add_argument("--floor", type=float, default=3.6, help="µs/token of reading a real stream (raw httpx)")
    parser.add_argument("--profile", choices=ENTRIES[1:], help="cProfile one run of this entry point")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args(argv)
    entries = ["bare"] + [e for e in args.entry if e != "bare"]
    print(
        f"{args.tokens} tokens per run, fake backend (no I/O), CPU µs/token (all threads), median of {args.repeat}; "
        f"python {sys.version.split()[0]}"
    )
    print(f"projected: (floor {args.floor} µs + entry - bare) / floor")
    for shape in args.shape:
        bench = Bench(FakeBackend(args.tokens, turn=shape == "turn"))
        try:
            figures = measure(bench, entries, args.repeat)
            bare = figures["bare"]
            print(f"\n{shape}:")
            for name in entries:
                value = figures[name]
                line = f"  {name:<10} {value:8.2f} µs/token  {value / bare:7.1f}x bare"
                if name != "bare":
                    projected = (args.floor + value - bare) / args.floor
                    line += f"   +{value - bare:6.2f} µs   projected {projected:5.2f}x floor"
                print(line)
            if args.profile:
                print(f"\ncProfile of one {args.profile} run ({shape}), by own time:")
                print(profile(bench, args.profile, args.top))
        finally:
            bench.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
