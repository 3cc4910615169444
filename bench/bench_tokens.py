#!/usr/bin/env python
"""CPU cost per streamed token: raw httpx vs bare litellm vs ``rxagents.Agent.run``.

One :class:`rxagents.testing.LocalModelServer` on 127.0.0.1 serves the same N-token SSE stream to three
clients, and the script reports the CPU time (``time.process_time()``: all threads of this process) each
spends per token, median of ``--repeat`` runs after one unmeasured warm-up:

(a) httpx: a streaming POST, ``aiter_lines()``, ``json.loads`` per ``data:`` line (the baseline);
(b) litellm: ``litellm.acompletion(..., stream=True)``, concatenating ``delta.content``;
(c) rxagents: ``Agent(...).run(task, streaming_callback=no_op)``.

The server runs in this process too, so its CPU time is in every figure; on Linux it is also measured
separately (the server thread's own CPU clock) and subtracted to give the client-side cost. Every run checks
that the text it received equals the text served, so a broken variant cannot look fast. Finally the cost of
``import rxagents`` is measured in fresh subprocesses, and whether it imported litellm (it must not).

Usage::

    python bench/bench_tokens.py [--tokens 2000] [--repeat 5]

Nothing leaves 127.0.0.1; see bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# litellm's offline settings must be in the environment before it is imported (here or by rxagents).
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_MODE"] = "PRODUCTION"
# Never route the loopback traffic through a proxy configured in the environment.
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

MODEL = "bench-model"
API_KEY = "sk-bench"
TASK = "Benchmark: stream the scripted reply."


@dataclass(frozen=True, slots=True)
class Sample:
    cpu: float  # process CPU seconds (all threads)
    server_cpu: float | None  # CPU seconds of the server thread, if measurable
    wall: float


@dataclass(frozen=True, slots=True)
class Figures:
    name: str
    cpu: float
    client_cpu: float | None
    wall: float
    spread: float  # (max - min) / median of the process CPU samples: how noisy this machine was


def _thread_clock(thread_id: int | None) -> Callable[[], float] | None:
    """A CPU clock for another thread of this process (Linux/most POSIX), else None."""
    if thread_id is None or not hasattr(time, "pthread_getcpuclockid"):
        return None
    try:
        clock_id = time.pthread_getcpuclockid(thread_id)
        time.clock_gettime(clock_id)
    except (OSError, AttributeError):
        return None
    return lambda: time.clock_gettime(clock_id)


# --- the three variants -------------------------------------------------------------------------------------


async def raw_httpx(client: Any, url: str) -> str:
    """(a) Baseline: read the SSE stream with httpx and json.loads each data line."""
    body = {
        "model": MODEL,
        "messages": [{"role": "user", "content": TASK}],
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    parts: list[str] = []
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with client.stream("POST", f"{url}/chat/completions", json=body, headers=headers) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            chunk = json.loads(data)
            for choice in chunk.get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    parts.append(content)
    return "".join(parts)


async def bare_litellm(litellm: Any, url: str) -> str:
    """(b) litellm.acompletion streaming, concatenating delta.content."""
    response = await litellm.acompletion(
        model=f"openai/{MODEL}",
        messages=[{"role": "user", "content": TASK}],
        api_base=url,
        api_key=API_KEY,
        stream=True,
        stream_options={"include_usage": True},
        max_retries=0,
    )
    parts: list[str] = []
    async for chunk in response:
        if chunk.choices:
            content = chunk.choices[0].delta.content
            if content:
                parts.append(content)
    return "".join(parts)


def rxagents_run(url: str) -> str:
    """(c) Agent.run with a no-op streaming callback (events cross to this thread through its queue)."""
    from rxagents import Agent

    received: list[str] = []
    agent = Agent(model_name=MODEL, api_base=url, api_key=API_KEY, print_on=False)
    answer = agent.run(TASK, streaming_callback=received.append)
    # The callback only appends (the cheapest thing a callback can do); check it saw every token too.
    if "".join(received) != answer:
        raise AssertionError("rxagents: streaming_callback text differs from the returned answer")
    return answer


# --- measuring ----------------------------------------------------------------------------------------------


def measure(run: Callable[[], str], expected: str, server_clock: Callable[[], float] | None, name: str) -> Sample:
    gc.collect()
    server0 = server_clock() if server_clock else 0.0
    wall0 = time.perf_counter()
    cpu0 = time.process_time()
    text = run()
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    server_cpu = server_clock() - server0 if server_clock else None
    if text != expected:
        common = min(len(text), len(expected))
        first = next((i for i in range(common) if text[i] != expected[i]), common)
        raise AssertionError(
            f"{name}: received {len(text)} chars, expected {len(expected)}; they differ from char {first}: "
            f"got {text[first : first + 40]!r}, expected {expected[first : first + 40]!r}"
        )
    return Sample(cpu, server_cpu, wall)


def summarise(name: str, samples: list[Sample]) -> Figures:
    client = None
    if all(s.server_cpu is not None for s in samples):
        client = statistics.median(s.cpu - (s.server_cpu or 0.0) for s in samples)
    cpu = statistics.median(s.cpu for s in samples)
    spread = (max(s.cpu for s in samples) - min(s.cpu for s in samples)) / cpu if cpu else 0.0
    return Figures(name, cpu, client, statistics.median(s.wall for s in samples), spread)


@dataclass(frozen=True, slots=True)
class ImportCost:
    wall: float  # seconds of ``import rxagents`` beyond bare interpreter startup (median)
    cpu: float | None  # the same in child-process CPU time (user+sys), robust to a busy machine
    importtime: float | None  # ``-X importtime`` cumulative figure for the rxagents package (median)
    litellm_imported: bool


def _children_cpu() -> float | None:
    try:
        import resource
    except ImportError:  # not POSIX
        return None
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def import_cost(repeat: int = 5) -> ImportCost:
    """What ``import rxagents`` costs, measured in fresh subprocesses (median of ``repeat``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    env.pop("PYTHONDONTWRITEBYTECODE", None)

    def run(code: str, *flags: str) -> tuple[float, float | None, subprocess.CompletedProcess[str]]:
        cpu0, wall0 = _children_cpu(), time.perf_counter()
        done = subprocess.run(
            [sys.executable, *flags, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
        )
        wall, cpu1 = time.perf_counter() - wall0, _children_cpu()
        return wall, None if cpu0 is None or cpu1 is None else cpu1 - cpu0, done

    probe = "import sys, rxagents; print('litellm' in sys.modules)"
    run(probe)  # compile .pyc files once, not measured
    bare = [run("import sys") for _ in range(repeat)]
    full = [run(probe) for _ in range(repeat)]
    litellm_imported = any(done.stdout.strip() != "False" for _, _, done in full)

    cumulative: list[float] = []
    for _ in range(repeat):
        *_, done = run("import rxagents", "-X", "importtime")
        for line in done.stderr.splitlines():
            fields = [f.strip() for f in line.removeprefix("import time:").split("|")]
            if len(fields) == 3 and fields[2] == "rxagents":
                cumulative.append(int(fields[1]) / 1e6)

    def median_of(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if len(known) == len(values) else None

    bare_cpu, full_cpu = median_of([c for _, c, _ in bare]), median_of([c for _, c, _ in full])
    return ImportCost(
        wall=statistics.median(w for w, _, _ in full) - statistics.median(w for w, _, _ in bare),
        cpu=None if bare_cpu is None or full_cpu is None else full_cpu - bare_cpu,
        importtime=statistics.median(cumulative) if cumulative else None,
        litellm_imported=litellm_imported,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="CPU time per streamed token: raw httpx vs bare litellm vs rxagents Agent.run "
        "(see bench/README.md)."
    )
    parser.add_argument("--tokens", type=int, default=2000, help="tokens (SSE chunks) in the stream (default 2000)")
    parser.add_argument("--repeat", type=int, default=5, help="measured runs per variant; the median is shown")
    args = parser.parse_args(argv)
    if args.tokens < 1:
        parser.error(f"--tokens must be >= 1, got {args.tokens}")
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")

    started = time.perf_counter()
    # Measure the import first, before this process has anything cached that a subprocess could not.
    imports = import_cost()

    import httpx

    from rxagents.models._litellm import import_litellm
    from rxagents.testing._faults import Reply
    from rxagents.testing._server import LocalModelServer

    litellm = import_litellm()  # the same configured import rxagents uses
    tokens = tuple(f" t{i}" for i in range(args.tokens))
    expected = "".join(tokens)

    loop = asyncio.new_event_loop()  # one persistent loop: litellm caches its HTTP clients per loop
    server = LocalModelServer("127.0.0.1", default_tokens=args.tokens)
    before = set(threading.enumerate())
    with server:
        # The one thread start() added is the server's: its CPU clock lets us subtract the server's share.
        started_threads = [t for t in threading.enumerate() if t not in before]
        server_clock = _thread_clock(started_threads[0].ident if len(started_threads) == 1 else None)
        server.set_default(Reply(tokens=tokens))
        url = server.url
        client = httpx.AsyncClient(trust_env=False, timeout=30.0)
        variants: dict[str, Callable[[], str]] = {
            "a httpx": lambda: loop.run_until_complete(raw_httpx(client, url)),
            "b litellm": lambda: loop.run_until_complete(bare_litellm(litellm, url)),
            "c rxagents": lambda: rxagents_run(url),
        }
        samples: dict[str, list[Sample]] = {name: [] for name in variants}
        try:
            for name, run in variants.items():  # warm-up, not measured
                measure(run, expected, server_clock, name)
            for _ in range(args.repeat):  # interleaved, so drift affects all variants alike
                for name, run in variants.items():
                    samples[name].append(measure(run, expected, server_clock, name))
        finally:
            loop.run_until_complete(client.aclose())
            loop.close()
        requests = len(server.requests)

    figures = {name: summarise(name, s) for name, s in samples.items()}
    n = args.tokens
    us = 1e6 / n
    has_client = all(f.client_cpu is not None for f in figures.values())

    print(f"{n} tokens per stream, median of {args.repeat} runs (+1 warm-up each), {requests} requests served")
    print(
        f"python {sys.version.split()[0]}, litellm {_version('litellm')}, httpx {httpx.__version__}, "
        f"{os.cpu_count()} CPUs"
    )
    print()
    header = f"{'variant':<12} {'CPU µs/token':>13}"
    if has_client:
        header += f" {'client µs/token':>16}"
    header += f" {'spread':>7} {'wall ms/run':>12}"
    print(header)
    for f in figures.values():
        row = f"{f.name:<12} {f.cpu * us:>13.1f}"
        if has_client:
            row += f" {(f.client_cpu or 0.0) * us:>16.1f}"
        row += f" {f.spread:>7.0%} {f.wall * 1e3:>12.1f}"
        print(row)
    a, b, c = figures["a httpx"], figures["b litellm"], figures["c rxagents"]
    print()
    print(f"c/a = {c.cpu / a.cpu:.2f}x   c/b = {c.cpu / b.cpu:.2f}x   (process CPU)")
    if has_client:
        ca = (c.client_cpu or 0.0) / (a.client_cpu or 1.0)
        cb = (c.client_cpu or 0.0) / (b.client_cpu or 1.0)
        print(f"c/a = {ca:.2f}x   c/b = {cb:.2f}x   (client CPU: process minus server thread)")
    print()
    cpu = "" if imports.cpu is None else f"{imports.cpu * 1e3:.0f} ms CPU, "
    extra = "" if imports.importtime is None else f", -X importtime cumulative {imports.importtime * 1e3:.0f} ms"
    print(f"import rxagents: {cpu}{imports.wall * 1e3:.0f} ms wall over bare startup (median of 5{extra})")
    print(f"import rxagents imports litellm: {'YES (it must not)' if imports.litellm_imported else 'no'}")
    print(f"benchmark took {time.perf_counter() - started:.1f} s")
    return 1 if imports.litellm_imported else 0


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


if __name__ == "__main__":
    sys.exit(main())
