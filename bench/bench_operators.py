#!/usr/bin/env python
"""CPU cost per token of a 5-operator pipeline, relative to the bare ``Agent.stream`` in the same run.

The pipeline is the one issue 3 names (buffer -> pace with zero interval -> tap_safe -> log_to_file -> collect)::

    agent.stream(task).pipe(
        buffer_tokens(20), pace(0), tap_safe(no_op), log_to_file(tmp_file), collect_text()
    )

on ``Agent(llm=OfflineModel(text=<N tokens of fixed text>), print_on=False)``; the baseline is
``agent.stream(task)`` consumed to completion with nothing in between. Both run on one persistent asyncio loop
(as a user's application would), alternating bare, pipeline, bare, pipeline, ... so a change in machine load
affects both alike; each is warmed up once, then measured ``--repeat`` times with ``time.process_time()`` (CPU
time of every thread of this process) around one whole run, and the median is reported in µs per token. Every
run checks its output: the bare run's token events must add up to the text, and the pipeline must collect
exactly the text (and log every chunk), so a broken variant cannot look fast.

A second line repeats the comparison in virtual time (``TestScheduler``, no asyncio): the same runs played by
the scheduler, which takes the event loop out of both sides and shows the operators' own cost more sharply.

Usage::

    python bench/bench_operators.py [--tokens 2000] [--repeat 21] [--profile]

``--profile`` adds a ``cProfile`` of the pipeline run (top functions by own time). See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import io
import os
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from reactivex import Observable  # noqa: E402
from reactivex.scheduler import VirtualTimeScheduler  # noqa: E402
from reactivex.testing import TestScheduler  # noqa: E402

from rxagents import Agent  # noqa: E402
from rxagents.events import EventKind, TokenEvent  # noqa: E402
from rxagents.models import OfflineModel  # noqa: E402
from rxagents.models._offline import tokenize  # noqa: E402
from rxagents.operators import buffer_tokens, collect_text, log_to_file, pace, tap_safe  # noqa: E402

TASK = "Benchmark: stream the fixed text."
TARGET = 1.3  # the target for pipeline / bare
#: Words of at most 6 letters: one offline-model token each (with the leading space).
_SENTENCE = (
    "tokens flow from the model to the reader while small steps buffer pace log and gather them "
    "with no stall on the socket so each chunk comes in order and none is lost at the end or on error"
)
_WORDS = _SENTENCE.split(" ")


def fixed_text(tokens: int) -> str:
    """A fixed text of exactly ``tokens`` offline-model tokens: words with their leading space, and a full
    stop closing every sentence of twelve words."""
    pieces: list[str] = []
    i = 0
    while len(pieces) < tokens:
        word = _WORDS[i % len(_WORDS)]
        pieces.append(word.capitalize() if not pieces or pieces[-1] == "." else f" {word}")
        if i % 12 == 11 and len(pieces) < tokens:
            pieces.append(".")
        i += 1
    text = "".join(pieces)
    count = len(tokenize(text))
    if count != tokens:
        raise AssertionError(f"fixed_text: built {count} tokens, wanted {tokens}")
    return text


def _no_op(_: object) -> None:
    """The tap_safe callback: the cheapest thing a callback can do."""


def pipeline(source: Observable[TokenEvent], log_path: str, **clock: Any) -> Observable[str]:
    return source.pipe(
        buffer_tokens(20),
        pace(0, **clock),
        tap_safe(_no_op),
        log_to_file(log_path, mode="w", **clock),
        collect_text(),
    )


# --- asyncio: one persistent loop ------------------------------------------------------------------------------


async def _consume(observable: Observable[Any]) -> list[Any]:
    """Subscribe on the running loop (the run executes there) and wait for the completion."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    items: list[Any] = []
    observable.subscribe(items.append, done.set_exception, lambda: done.set_result(None))
    await done
    return items


def _virtual(observable: Observable[Any], scheduler: TestScheduler) -> list[Any]:
    """Subscribe at virtual time 0 and play the scheduler until nothing is left."""
    items: list[Any] = []
    failed: list[Exception] = []
    observable.subscribe(items.append, failed.append, scheduler=scheduler)
    VirtualTimeScheduler.start(scheduler)  # not TestScheduler.start, which subscribes at 200 by itself
    if failed:
        raise failed[0]
    return items


# --- checking what came out ------------------------------------------------------------------------------------


def check_bare(items: list[Any], expected: str, tokens: int) -> None:
    texts = [e.text for e in items if e.kind is EventKind.TOKEN]
    if len(texts) != tokens or "".join(texts) != expected:
        raise AssertionError(f"bare: {len(texts)} token events, text {'ok' if ''.join(texts) == expected else 'WRONG'}")
    if items[-1].kind is not EventKind.FINISH:
        raise AssertionError(f"bare: the run ended with {items[-1].kind.value}, not finish")


def check_pipeline(items: list[Any], expected: str, log_path: str, tokens: int) -> None:
    if items != [expected]:
        got = items[0] if len(items) == 1 else items
        raise AssertionError(f"pipeline: collect_text gave {str(got)[:60]!r}..., not the full text")
    with open(log_path, encoding="utf-8") as log:
        lines = sum(1 for line in log if " chunk " in line)
    if lines != -(-tokens // 20):
        raise AssertionError(f"pipeline: {lines} chunk lines logged, expected {-(-tokens // 20)}")


# --- measuring -------------------------------------------------------------------------------------------------


def measure(run: Callable[[], list[Any]], check: Callable[[list[Any]], None]) -> float:
    """CPU seconds of one run (all threads), after a garbage collection; the output is checked afterwards."""
    gc.collect()
    cpu0 = time.process_time()
    items = run()
    cpu = time.process_time() - cpu0
    check(items)
    return cpu


def compare(
    bare: Callable[[], list[Any]],
    piped: Callable[[], list[Any]],
    check_b: Callable[[list[Any]], None],
    check_p: Callable[[list[Any]], None],
    repeat: int,
) -> tuple[list[float], list[float]]:
    measure(bare, check_b)  # warm-up, not measured
    measure(piped, check_p)
    a: list[float] = []
    b: list[float] = []
    for _ in range(repeat):  # interleaved, so drift affects both alike
        a.append(measure(bare, check_b))
        b.append(measure(piped, check_p))
    return a, b


def spread(samples: list[float]) -> float:
    middle = statistics.median(samples)
    return (max(samples) - min(samples)) / middle if middle else 0.0


def report(label: str, bare: list[float], piped: list[float], tokens: int) -> float:
    us = 1e6 / tokens
    b, p = statistics.median(bare), statistics.median(piped)
    ratio = p / b
    verdict = "ok" if ratio <= TARGET else "OVER TARGET"
    print(
        f"{label:<30} bare {b * us:7.2f} µs/token (spread {spread(bare):4.0%})   "
        f"pipeline {p * us:7.2f} µs/token (spread {spread(piped):4.0%})   "
        f"ratio {ratio:.2f}x  (target <= {TARGET}x: {verdict})"
    )
    return ratio


def profile(run: Callable[[], list[Any]], top: int = 25) -> None:
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    run()
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(top)
    print(out.getvalue())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="CPU per token of buffer -> pace(0) -> tap_safe -> log_to_file -> collect_text on an offline "
        "Agent stream, relative to the bare stream (see bench/README.md)."
    )
    parser.add_argument("--tokens", type=int, default=2000, help="tokens in the fixed answer (default 2000)")
    parser.add_argument("--repeat", type=int, default=21, help="measured runs of each side; the median is shown")
    parser.add_argument("--profile", action="store_true", help="also print a cProfile of one pipeline run")
    args = parser.parse_args(argv)
    if args.tokens < 20:
        parser.error(f"--tokens must be >= 20, got {args.tokens}")
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")

    tokens = args.tokens
    text = fixed_text(tokens)
    agent = Agent(agent_name="Bench", llm=OfflineModel(text=text), print_on=False)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rxagents-bench-") as tmp:
        log_path = os.path.join(tmp, "pipeline.log")

        def check_b(items: list[Any]) -> None:
            check_bare(items, text, tokens)

        def check_p(items: list[Any]) -> None:
            check_pipeline(items, text, log_path, tokens)

        loop = asyncio.new_event_loop()  # one persistent loop for every asyncio run
        try:

            def bare_async() -> list[Any]:
                return loop.run_until_complete(_consume(agent.stream(TASK)))

            def piped_async() -> list[Any]:
                return loop.run_until_complete(_consume(pipeline(agent.stream(TASK), log_path)))

            asyncio_samples = compare(bare_async, piped_async, check_b, check_p, args.repeat)
            if args.profile:
                print("cProfile of one pipeline run on the asyncio loop (own time, process CPU clock):")
                profile(piped_async)
        finally:
            loop.close()

        def bare_virtual() -> list[Any]:
            scheduler = TestScheduler()
            return _virtual(agent.stream(TASK, scheduler=scheduler), scheduler)

        def piped_virtual() -> list[Any]:
            scheduler = TestScheduler()
            return _virtual(pipeline(agent.stream(TASK, scheduler=scheduler), log_path, scheduler=scheduler), scheduler)

        virtual_samples = compare(bare_virtual, piped_virtual, check_b, check_p, args.repeat)
        if args.profile:
            print("cProfile of one pipeline run in virtual time:")
            profile(piped_virtual)

    print(
        f"{tokens} tokens per run (OfflineModel, fixed text), median of {args.repeat} runs (+1 warm-up) each, "
        f"interleaved; python {sys.version.split()[0]}, {os.cpu_count()} CPUs"
    )
    print("pipeline = buffer_tokens(20) -> pace(0) -> tap_safe(no-op) -> log_to_file(tmp) -> collect_text()")
    ratio = report("asyncio (one loop):", *asyncio_samples, tokens)
    report("virtual time (TestScheduler):", *virtual_samples, tokens)
    print(f"benchmark took {time.perf_counter() - started:.1f} s")
    return 0 if ratio <= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
