#!/usr/bin/env python
"""Client CPU per streamed token, and time to first token: the raw floor vs rxagents' backends and entry points.

``rxagents serve-test-model`` runs in a **separate process** (its CPU is not counted) and serves the same N-token
SSE stream to every client. Each variant reads it once per run; the figure is this process's CPU time
(``time.process_time()``: all its threads) per token, median of ``--repeat`` runs after one unmeasured warm-up:

* **raw httpx (floor)**: a streaming POST, ``aiter_lines()``, ``json.loads`` per ``data:`` line;
* **raw aiohttp**: the same with an ``aiohttp.ClientSession``, reading lines with ``response.content``;
* **direct backend alone**: ``OpenAICompatibleModel().stream(request)``, no Agent;
* **direct Agent.run + callback**: ``Agent(model_name=..., api_base=...).run(task, streaming_callback=append)``;
* **direct astream**: ``async for event in agent.astream(task)``;
* **direct stream().subscribe**: ``agent.stream(task).subscribe(on_next, ...)`` from a plain thread;
* **litellm Agent.run + callback**: the same Agent with ``model_name="litellm/..."``;
* **bare litellm.acompletion**: ``litellm.acompletion(..., stream=True)``, concatenating ``delta.content``.

Every run checks that the text it received is the text served, so a broken variant cannot look fast. Then the
cost of ``import rxagents`` is measured in fresh subprocesses, and whether it imported litellm (it must not).
``--profile VARIANT`` runs one variant under cProfile and prints where its time goes.

Usage::

    python bench/bench_tokens.py [--tokens 2000] [--repeat 5] [--profile "direct Agent.run + callback"]

Nothing leaves 127.0.0.1; see bench/README.md for what the figures mean.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import json
import os
import pstats
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

from _server_process import server_process  # noqa: E402  (bench/, the script's directory, is on sys.path)

MODEL = "bench-model"
API_KEY = "sk-bench"
TASK = "Benchmark: stream the default reply."
FLOOR = "raw httpx (floor)"


@dataclass(frozen=True, slots=True)
class Sample:
    cpu: float  # process CPU seconds (all threads of this process)
    wall: float
    ttft: float  # seconds from the start of the run to the first token in the client's hands


@dataclass(frozen=True, slots=True)
class Figures:
    name: str
    cpu: float
    wall: float
    ttft: float
    spread: float  # (max - min) / median of the CPU samples: how noisy this machine was


class First:
    """Notes when the first token arrived (perf_counter), relative to :meth:`start`."""

    def __init__(self) -> None:
        self.started = self.at = 0.0

    def start(self) -> None:
        self.started, self.at = time.perf_counter(), 0.0

    def token(self) -> None:
        if not self.at:
            self.at = time.perf_counter()

    @property
    def ttft(self) -> float:
        return self.at - self.started


# --- the variants -------------------------------------------------------------------------------------------


async def raw_httpx(client: Any, url: str, first: First) -> str:
    """The floor: read the SSE stream with httpx and json.loads each data line."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": TASK}], "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
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
            for choice in json.loads(data).get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    first.token()
                    parts.append(content)
    return "".join(parts)


async def raw_aiohttp(session: Any, url: str, first: First) -> str:
    """The floor's loop over aiohttp (the client the direct backend uses): lines, json.loads."""
    body = {"model": MODEL, "messages": [{"role": "user", "content": TASK}], "stream": True,
            "stream_options": {"include_usage": True}}  # fmt: skip
    parts: list[str] = []
    headers = {"Authorization": f"Bearer {API_KEY}"}
    async with session.post(f"{url}/chat/completions", json=body, headers=headers) as response:
        response.raise_for_status()
        async for raw in response.content:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                break
            for choice in json.loads(data).get("choices") or ():
                content = (choice.get("delta") or {}).get("content")
                if content:
                    first.token()
                    parts.append(content)
    return "".join(parts)


async def direct_alone(url: str, first: First) -> str:
    from rxagents.events import EventKind
    from rxagents.models import ModelRequest, OpenAICompatibleModel

    request = ModelRequest(model=MODEL, messages=[{"role": "user", "content": TASK}], api_base=url, api_key=API_KEY)
    parts: list[str] = []
    async for delta in OpenAICompatibleModel().stream(request):
        if delta.kind is EventKind.TOKEN:
            first.token()
            parts.append(delta.text)
    return "".join(parts)


def agent_run(agent: Any, first: First) -> str:
    received: list[str] = []

    def callback(text: str) -> None:
        first.token()
        received.append(text)

    answer: str = agent.run(TASK, streaming_callback=callback)
    if "".join(received) != answer:
        raise AssertionError("streaming_callback text differs from the returned answer")
    return answer


async def agent_astream(agent: Any, first: First) -> str:
    from rxagents.events import EventKind

    parts: list[str] = []
    async for event in agent.astream(TASK):
        if event.kind is EventKind.TOKEN:
            first.token()
            parts.append(event.text)
    return "".join(parts)


def agent_subscribe(agent: Any, first: First) -> str:
    from rxagents.events import EventKind

    parts: list[str] = []
    errors: list[Exception] = []
    done = threading.Event()

    def on_next(event: Any) -> None:
        if event.kind is EventKind.TOKEN:
            first.token()
            parts.append(event.text)

    def on_error(error: Exception) -> None:
        errors.append(error)
        done.set()

    agent.stream(TASK).subscribe(on_next, on_error, done.set)
    if not done.wait(120):
        raise AssertionError("stream().subscribe: the run never ended")
    if errors:
        raise errors[0]
    return "".join(parts)


async def bare_litellm(litellm: Any, url: str, first: First) -> str:
    response = await litellm.acompletion(
        model=f"openai/{MODEL}", messages=[{"role": "user", "content": TASK}], api_base=url, api_key=API_KEY,
        stream=True, stream_options={"include_usage": True}, max_retries=0,
    )  # fmt: skip
    parts: list[str] = []
    async for chunk in response:
        if chunk.choices:
            content = chunk.choices[0].delta.content
            if content:
                first.token()
                parts.append(content)
    return "".join(parts)


# --- measuring ----------------------------------------------------------------------------------------------


def measure(run: Callable[[First], str], expected: str, name: str) -> Sample:
    gc.collect()
    first = First()
    cpu0 = time.process_time()
    first.start()
    text = run(first)
    wall = time.perf_counter() - first.started
    cpu = time.process_time() - cpu0
    if text != expected:
        common = min(len(text), len(expected))
        at = next((i for i in range(common) if text[i] != expected[i]), common)
        raise AssertionError(
            f"{name}: received {len(text)} chars, expected {len(expected)}; they differ from char {at}: "
            f"got {text[at : at + 40]!r}, expected {expected[at : at + 40]!r}"
        )
    return Sample(cpu, wall, first.ttft)


def summarise(name: str, samples: list[Sample]) -> Figures:
    cpu = statistics.median(s.cpu for s in samples)
    spread = (max(s.cpu for s in samples) - min(s.cpu for s in samples)) / cpu if cpu else 0.0
    return Figures(name, cpu, statistics.median(s.wall for s in samples), statistics.median(s.ttft for s in samples),
                   spread)  # fmt: skip


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


def profile(run: Callable[[First], str], runs: int, name: str) -> None:
    """``run`` ``runs`` times under cProfile (this thread only); the top functions by own time."""
    profiler = cProfile.Profile(time.process_time)
    profiler.enable()
    for _ in range(runs):
        run(First())
    profiler.disable()
    print(f"\ncProfile of {runs} runs of {name!r} (process CPU clock; own time, then cumulative):")
    stats = pstats.Stats(profiler).strip_dirs()
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)


def _verdict(value: float, target: float) -> str:
    return f"target <= {target:g}: {'met' if value <= target else 'NOT met'}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Client CPU per streamed token and time to first token, "
                                     "floor vs rxagents (see bench/README.md).")  # fmt: skip
    parser.add_argument("--tokens", type=int, default=2000, help="tokens (SSE chunks) in the stream (default 2000)")
    parser.add_argument("--repeat", type=int, default=5, help="measured runs per variant; the median is shown")
    parser.add_argument("--profile", metavar="VARIANT", help="cProfile this variant instead of measuring")
    parser.add_argument("--pin", type=int, metavar="CPU",
                        help="run this process's threads on CPU number CPU only, the server on every CPU: "
                        "what the second core costs Agent.run (its run and callback are two threads)")  # fmt: skip
    args = parser.parse_args(argv)
    if args.tokens < 1:
        parser.error(f"--tokens must be >= 1, got {args.tokens}")
    if args.repeat < 1:
        parser.error(f"--repeat must be >= 1, got {args.repeat}")
    if args.pin is not None and args.pin not in os.sched_getaffinity(0):
        parser.error(f"--pin must be one of this process's CPUs {sorted(os.sched_getaffinity(0))}, got {args.pin}")

    started = time.perf_counter()
    imports = None if args.profile else import_cost()  # before this process has anything cached

    import aiohttp
    import httpx

    from rxagents import Agent
    from rxagents.models._litellm import import_litellm
    from rxagents.testing._faults import default_text

    litellm = import_litellm()  # the same configured import rxagents uses
    expected = "".join(default_text(TASK, args.tokens))
    loop = asyncio.new_event_loop()  # one persistent loop for the async variants (litellm caches clients per loop)
    with server_process("--tokens", str(args.tokens)) as server:
        if args.pin is not None:  # after the server started, so it is not pinned; later threads inherit it
            for task in os.listdir("/proc/self/task"):
                os.sched_setaffinity(int(task), {args.pin})
        url = server.url
        client = httpx.AsyncClient(trust_env=False, timeout=30.0)

        async def new_session() -> aiohttp.ClientSession:
            return aiohttp.ClientSession()

        session = loop.run_until_complete(new_session())
        direct = Agent(model_name=MODEL, api_base=url, api_key=API_KEY, print_on=False)
        via_litellm = Agent(model_name=f"litellm/{MODEL}", api_base=url, api_key=API_KEY, print_on=False)
        assert (direct.llm.name, via_litellm.llm.name) == ("direct", "litellm")
        variants: dict[str, Callable[[First], str]] = {
            FLOOR: lambda f: loop.run_until_complete(raw_httpx(client, url, f)),
            "raw aiohttp": lambda f: loop.run_until_complete(raw_aiohttp(session, url, f)),
            "direct backend alone": lambda f: loop.run_until_complete(direct_alone(url, f)),
            "direct Agent.run + callback": lambda f: agent_run(direct, f),
            "direct astream": lambda f: loop.run_until_complete(agent_astream(direct, f)),
            "direct stream().subscribe": lambda f: agent_subscribe(direct, f),
            "litellm Agent.run + callback": lambda f: agent_run(via_litellm, f),
            "bare litellm.acompletion": lambda f: loop.run_until_complete(bare_litellm(litellm, url, f)),
        }
        try:
            if args.profile:
                if args.profile not in variants:
                    parser.error(f"--profile must be one of {sorted(variants)}, got {args.profile!r}")
                variants[args.profile](First())  # warm-up
                profile(variants[args.profile], args.repeat, args.profile)
                return 0
            samples: dict[str, list[Sample]] = {name: [] for name in variants}
            for name, run in variants.items():  # warm-up, not measured
                measure(run, expected, name)
            for _ in range(args.repeat):  # interleaved, so drift affects all variants alike
                for name, run in variants.items():
                    samples[name].append(measure(run, expected, name))
        finally:
            loop.run_until_complete(client.aclose())
            loop.run_until_complete(session.close())
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    figures = {name: summarise(name, s) for name, s in samples.items()}
    n, floor = args.tokens, figures[FLOOR]
    print(f"{n} tokens per stream, median of {args.repeat} runs (+1 warm-up each), interleaved; the server runs in "
          f"another process (its CPU is not counted)")  # fmt: skip
    print(f"python {sys.version.split()[0]}, litellm {_version('litellm')}, httpx {httpx.__version__}, "
          f"aiohttp {_version('aiohttp')}, {os.cpu_count()} CPUs")  # fmt: skip
    print()
    print(f"{'variant':<30} {'CPU µs/token':>12} {'x floor':>8} {'spread':>7} {'TTFT ms':>8} {'TTFT - floor':>13}")
    for f in figures.values():
        print(f"{f.name:<30} {f.cpu * 1e6 / n:>12.2f} {f.cpu / floor.cpu:>7.2f}x {f.spread:>7.0%} "
              f"{f.ttft * 1e3:>8.2f} {(f.ttft - floor.ttft) * 1e3:>+10.2f} ms")  # fmt: skip
    run_ratio = figures["direct Agent.run + callback"].cpu / floor.cpu
    astream_ratio = figures["direct astream"].cpu / floor.cpu
    lite_ratio = figures["litellm Agent.run + callback"].cpu / figures["bare litellm.acompletion"].cpu
    print()
    print(f"{'direct Agent.run + callback / floor':<42} = {run_ratio:5.2f}x    ({_verdict(run_ratio, 2)})")
    print(f"{'direct astream / floor':<42} = {astream_ratio:5.2f}x    ({_verdict(astream_ratio, 1.5)})")
    for name in ("direct astream", "direct stream().subscribe", "direct Agent.run + callback"):
        over = (figures[name].ttft - floor.ttft) * 1e3
        print(f"{name + ' TTFT - floor':<42} = {over:+5.2f} ms ({_verdict(over, 1)})")
    print(f"{'litellm Agent.run / bare litellm':<42} = {lite_ratio:5.2f}x    ({_verdict(lite_ratio, 1.05)})")
    assert imports is not None
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
