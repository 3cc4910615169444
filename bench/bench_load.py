#!/usr/bin/env python
"""Load: N concurrent runs x T tokens through a local server in another process, every token checked.

``rxagents serve-test-model --distinct-tokens`` runs in a **separate process** (its CPU is shown, not counted) and
answers each request with tokens that belong to that request only (``" <key>:<k>"``, ``key`` a CRC of the model
name and the task: :func:`rxagents.testing._faults.distinct_text`), ``--events-per-write`` SSE events per write, as
a busy server's TCP coalesces the events that are ready together, ``--write-delay`` seconds apart (default 0.05: a
reply of 200 tokens takes at least 1.25 s, so all N runs stream at the same time; without a delay the server writes
each reply in one burst and the runs hardly overlap). Each run's Agent has its own model name, so a token delivered
twice, lost, out of order or to another run shows.

Variants, each started the way a user starts many concurrent runs on one asyncio loop (``asyncio.run``), through
the direct backend (chosen by resolution for an ``api_base`` target: no litellm):

* **astream**: ``asyncio.gather`` of N ``async for event in agent.astream(task)``;
* **arun**: ``asyncio.gather`` of N ``agent.arun(task, streaming_callback=...)``, the callback keeping each token;
* **workflow**: one ``ConcurrentWorkflow`` of the N agents, ``async for event in workflow.astream(task)``;
* **merge**: ``reactivex.merge(*(agent.stream(task) for ...))`` subscribed on the loop (the Rx primitive);
* **aiohttp**: the floor without rxagents: the same pooled ``aiohttp`` session, a streaming POST per run, ``data:``
  lines split and parsed with ``json.loads``;
* **offline**: astream on the offline model (``--pace`` between tokens): no HTTP, rxagents' own cost.

Each variant runs ``--rounds`` rounds of N runs (after a small warm-up); per round it prints the wall time from the
first run's start to the last run's end, aggregate tokens/s (N x T / wall), this process's CPU (all its threads: its
share of the wall time, per token, and the tokens/s it would sustain with a core to itself) and the server process's
CPU (its share of the wall time: well under 100 % means the server did not limit the round), and the checks:

* **lost**: a (run, seq) that never arrived; **duplicated**: one that arrived more than once (events); for arun,
  a served token the callback never got, or got more than once;
* **disorder**: a run whose seq went other than 0, 1, 2, ... or whose events broke the grammar ``start token*
  usage finish``; **wrong text**: a run whose text is not exactly its reply (a token from another run shows here);
* **failed**: runs that raised.

Then the RSS growth per 1,000 runs (after the first round: what later rounds keep) and whether the target holds:
N x T at >= 50,000 tokens/s aggregate (median round), 0 lost, 0 duplicated. Exit status 1 if a check fails.

Usage::

    python bench/bench_load.py [--runs 1000] [--tokens 200] [--rounds 4] [--events-per-write 8] [--write-delay 0.05]
                               [--variant astream arun workflow merge aiohttp offline] [--profile VARIANT]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import cProfile
import gc
import json
import os
import pstats
import resource
import statistics
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # should anything import litellm: no network
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"  # loopback never through a proxy

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import reactivex  # noqa: E402
from _server_process import ServerProcess, server_process  # noqa: E402  (bench/ is on sys.path)

from rxagents import Agent, EventKind, OfflineModel, TokenEvent  # noqa: E402
from rxagents.models._http_pool import loop_session  # noqa: E402
from rxagents.models._tokenize import tokenize  # noqa: E402
from rxagents.testing._faults import distinct_text  # noqa: E402
from rxagents.workflows import ConcurrentWorkflow  # noqa: E402

TASK = "Load: stream your reply."
TARGET = 50_000  # tokens/s aggregate
VARIANTS = ("astream", "arun", "workflow", "merge", "aiohttp", "offline")
TARGETED = ("astream", "arun", "workflow", "merge")  # the floor and the offline model have no target
BY_CALLBACK = ("arun", "aiohttp")  # checked by the tokens a callback got (no events, no seq)
_TOKEN, _START, _USAGE, _FINISH = EventKind.TOKEN, EventKind.START, EventKind.USAGE, EventKind.FINISH


# --- what each run must receive, and what it did ---------------------------------------------------------------


@dataclass
class Run:
    """One run's expected reply and what arrived, checked as it arrives."""

    agent: Agent
    tokens: tuple[str, ...]  # the reply's tokens, in order
    text: str = ""
    received: list[str] = field(default_factory=list)  # token texts, in arrival order
    seqs: list[int] = field(default_factory=list)  # token events' seq
    events: int = 0
    disorder: int = 0  # seq not the next one, or a kind out of the grammar
    phase: int = 0  # 0 before start, 1 in tokens, 2 after usage, 3 finished
    failure: BaseException | None = None
    token_set: frozenset[str] = frozenset()
    first_at: float = 0.0  # perf_counter() at its first token
    ended_at: float = 0.0  # at its finish event (or its call's return)

    def __post_init__(self) -> None:
        self.text = "".join(self.tokens)
        self.token_set = frozenset(self.tokens)

    def on_event(self, event: TokenEvent) -> None:
        if event.seq != self.events:
            self.disorder += 1
        self.events += 1
        kind = event.kind
        if kind is _TOKEN:
            if self.phase != 1:
                self.disorder += 1
            if not self.received:
                self.first_at = time.perf_counter()
            self.received.append(event.text)
            self.seqs.append(event.seq)
        elif kind is _START:
            self.disorder += self.phase != 0
            self.phase = 1
        elif kind is _USAGE:
            self.disorder += self.phase != 1
            self.phase = 2
        elif kind is _FINISH:
            self.disorder += self.phase != 2
            self.phase = 3
            self.ended_at = time.perf_counter()
        else:
            self.disorder += 1

    def on_token(self, text: str) -> None:
        if not self.received:
            self.first_at = time.perf_counter()
        self.received.append(text)


@dataclass(frozen=True)
class Verdict:
    lost: int
    duplicated: int
    disorder: int  # runs
    wrong_text: int  # runs
    failed: int  # runs
    first_failure: str = ""

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.disorder or self.wrong_text or self.failed)

    def __str__(self) -> str:
        failure = f" (first: {self.first_failure})" if self.first_failure else ""
        return (f"lost {self.lost}, duplicated {self.duplicated}, runs out of order {self.disorder}, "
                f"wrong text {self.wrong_text}, failed {self.failed}{failure}")  # fmt: skip


def verdict(runs: Sequence[Run], by_events: bool) -> Verdict:
    lost = duplicated = disorder = wrong = failed = 0
    first = ""
    for run in runs:
        if run.failure is not None:
            failed += 1
            first = first or f"{type(run.failure).__name__}: {run.failure}"
        if by_events:  # exactly once per (run, seq): the seqs of the token events
            seen = set(run.seqs)
            duplicated += len(run.seqs) - len(seen)
            lost += max(0, len(run.tokens) - len(seen))  # offline: tokens of the text, see offline_runs
            disorder += bool(run.disorder) or (run.failure is None and run.phase != 3)
        else:  # the callback's texts: each served token is distinct
            counts = collections.Counter(run.received)
            duplicated += sum(n - 1 for n in counts.values() if n > 1)
            lost += sum(1 for token in run.tokens if token not in counts)
            firsts = [token for token in dict.fromkeys(run.received) if token in run.token_set]
            disorder += firsts != [token for token in run.tokens if token in counts]
        wrong += "".join(run.received) != run.text
    return Verdict(lost, duplicated, disorder, wrong, failed, first)


# --- the variants: N concurrent runs on the running loop ---------------------------------------------------------


async def _astream_one(run: Run) -> None:
    try:
        async for event in run.agent.astream(TASK):
            run.on_event(event)
    except Exception as exc:
        run.failure = exc


async def _arun_one(run: Run) -> None:
    try:
        answer = await run.agent.arun(TASK, streaming_callback=run.on_token)
    except Exception as exc:
        run.failure = exc
        return
    run.ended_at = time.perf_counter()
    if answer != run.text:
        run.failure = AssertionError(f"arun returned {len(answer)} characters, expected {len(run.text)}")


async def astream_all(runs: Sequence[Run]) -> None:
    await asyncio.gather(*(_astream_one(run) for run in runs))


async def arun_all(runs: Sequence[Run]) -> None:
    await asyncio.gather(*(_arun_one(run) for run in runs))


async def merge_all(runs: Sequence[Run]) -> None:
    by_agent = {run.agent.agent_name: run for run in runs}
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def on_next(event: TokenEvent) -> None:
        by_agent[event.agent].on_event(event)

    def on_error(error: Exception) -> None:
        for run in runs:
            run.failure = run.failure or error
        done.set_result(None)

    subscription = reactivex.merge(*(run.agent.stream(TASK) for run in runs)).subscribe(
        on_next, on_error, lambda: done.set_result(None)
    )
    try:
        await done
    finally:
        subscription.dispose()


async def workflow_all(runs: Sequence[Run]) -> None:
    by_agent = {run.agent.agent_name: run for run in runs}
    workflow = ConcurrentWorkflow(name="load", agents=[run.agent for run in runs])
    try:
        async for event in workflow.astream(TASK):
            by_agent[event.agent].on_event(event)
    except Exception as exc:
        for run in runs:
            run.failure = run.failure or exc


async def aiohttp_all(runs: Sequence[Run]) -> None:
    """The floor: one pooled aiohttp session, a streaming POST per run, ``data:`` lines split and parsed with
    ``json.loads``, each ``delta.content`` kept; no rxagents."""
    session = await loop_session()
    assert session is not None
    url = f"{runs[0].agent._api_base}/chat/completions"

    async def one(run: Run) -> None:
        body = {"model": run.agent.model_name, "messages": [{"role": "user", "content": TASK}], "stream": True,
                "stream_options": {"include_usage": True}}  # fmt: skip
        try:
            async with session.post(url, json=body, headers={"Authorization": "Bearer sk-load"}) as response:
                response.raise_for_status()
                pending = b""
                async for chunk in response.content.iter_any():
                    lines = (pending + chunk).split(b"\n")
                    pending = lines.pop()
                    for line in lines:
                        if line.startswith(b"data: ") and line != b"data: [DONE]":
                            for choice in json.loads(line[6:]).get("choices") or ():
                                content = (choice.get("delta") or {}).get("content")
                                if content:
                                    run.on_token(content)
            run.ended_at = time.perf_counter()
        except Exception as exc:
            run.failure = exc

    await asyncio.gather(*(one(run) for run in runs))


DRIVERS: dict[str, Callable[[Sequence[Run]], Awaitable[None]]] = {
    "astream": astream_all,
    "arun": arun_all,
    "workflow": workflow_all,
    "merge": merge_all,
    "aiohttp": aiohttp_all,
    "offline": astream_all,
}


def served_runs(url: str, count: int, tokens: int, round_: int) -> list[Run]:
    """``count`` agents on the server, each its own model name (so its own reply)."""
    runs = []
    for i in range(count):
        model = f"load-r{round_}-{i}"
        agent = Agent(agent_name=f"agent-{i}", model_name=model, api_base=url, api_key="sk-load", print_on=False)
        runs.append(Run(agent, distinct_text(model, TASK, tokens)))
    keys = {run.tokens[0] for run in runs}
    if len(keys) != count:
        raise SystemExit(f"two of the {count} runs share a reply key: rename the models")
    return runs


def offline_runs(count: int, tokens: int, pace: float, round_: int) -> list[Run]:
    runs = []
    for i in range(count):
        text = "".join(distinct_text(f"offline-r{round_}-{i}", TASK, tokens))
        agent = Agent(agent_name=f"agent-{i}", llm=OfflineModel(text=text, pace=pace), print_on=False)
        runs.append(Run(agent, tuple(tokenize(text))))  # what the offline model streams: its own tokenization
    return runs


# --- measuring --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Round:
    wall: float
    cpu: float  # this process, all threads
    server_cpu: float | None
    rss: int  # bytes, after the round and a collection
    at_once: int  # runs that had their first token before any run ended: streaming together
    tokens: int  # tokens delivered per the reply sizes (N x T served; offline: its tokenization)
    verdict: Verdict

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: the peak, which only grows
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


async def measure(variant: str, runs: list[Run], server: ServerProcess | None) -> Round:
    gc.collect()
    server0 = server.cpu() if server else None
    cpu0, wall0 = time.process_time(), time.perf_counter()
    await DRIVERS[variant](runs)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    server1 = server.cpu() if server else None
    result = verdict(runs, by_events=variant not in BY_CALLBACK)
    tokens = sum(len(run.tokens) for run in runs)
    first_end = min((run.ended_at for run in runs if run.ended_at), default=0.0)
    at_once = sum(1 for run in runs if run.first_at and run.first_at < first_end)
    del runs[:]
    gc.collect()
    server_cpu = None if server0 is None or server1 is None else server1 - server0
    return Round(wall, cpu, server_cpu, rss_bytes(), at_once, tokens, result)


def report(variant: str, rounds: list[Round], runs: int, tokens: int, extra: str) -> bool:
    streamed = rounds[0].tokens // runs  # the offline model streams its own tokenization of the reply
    each = f"{tokens} tokens" if streamed == tokens else f"{tokens} reply tokens ({streamed} streamed)"
    print(f"\n{variant}: {runs:,} concurrent runs x {each}{extra}")
    for n, r in enumerate(rounds, 1):
        server = "" if r.server_cpu is None else f", server {r.server_cpu:5.2f} s CPU ({r.server_cpu / r.wall:4.0%})"
        print(f"  round {n}: wall {r.wall:6.2f} s  {r.tokens_per_s:>9,.0f} tokens/s  client {r.cpu:6.2f} s CPU "
              f"({r.cpu / r.wall:4.0%}, {r.cpu / r.tokens * 1e6:5.1f} µs/token = {r.tokens / r.cpu:>7,.0f} tokens/s "
              f"per client CPU s){server}  RSS {r.rss / 2**20:6.1f} MiB")  # fmt: skip
        print(f"           {'ok' if r.verdict.ok else 'FAIL'}: {r.verdict}; {r.at_once:,} runs streaming at once")
    if len(rounds) > 1:
        mib = [r.rss / 2**20 for r in rounds]
        steady = ""
        if len(rounds) > 2:
            per_1000 = (mib[-1] - mib[1]) / ((len(rounds) - 2) * runs) * 1000
            steady = f", then {per_1000:+.2f} MiB per 1,000 runs over rounds 2-{len(rounds)}"
        print(f"  RSS growth: {mib[1] - mib[0]:+.2f} MiB from round 1 to 2{steady} "
              f"({' -> '.join(f'{m:.1f}' for m in mib)} MiB)")  # fmt: skip
    ok = all(r.verdict.ok for r in rounds)
    if variant in TARGETED:
        rate = statistics.median(r.tokens_per_s for r in rounds)
        lost, dup = sum(r.verdict.lost for r in rounds), sum(r.verdict.duplicated for r in rounds)
        verdict = "met" if ok and rate >= TARGET else "NOT met"
        print(f"  target {runs:,} x {tokens} >= {TARGET:,} tokens/s, 0 lost, 0 duplicated: {verdict} "
              f"(median {rate:,.0f} tokens/s, {lost} lost, {dup} duplicated)")  # fmt: skip
    return ok


async def run_variant(variant: str, args: argparse.Namespace, server: ServerProcess | None) -> bool:
    def make(count: int, round_: int) -> list[Run]:
        if variant == "offline":
            return offline_runs(count, args.tokens, args.pace, round_)
        assert server is not None
        return served_runs(server.url, count, args.tokens, round_)

    warm = make(min(20, args.runs), -1)
    await DRIVERS[variant](warm)  # imports, the pooled session, code paths warm; not measured
    if args.profile:  # a full round first, unprofiled, so the profiled one reuses the pool's connections
        await DRIVERS[variant](make(args.runs, 0))
        profiler = cProfile.Profile(time.process_time)
        runs = make(args.runs, 1)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        profiler.enable()
        await DRIVERS[variant](runs)
        profiler.disable()
        wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
        print(f"\ncProfile of one round of {variant}: {args.runs:,} x {args.tokens} in {wall:.2f} s, {cpu:.2f} s CPU "
              f"(profiled: slower); {verdict(runs, by_events=variant not in BY_CALLBACK)}")  # fmt: skip
        stats = pstats.Stats(profiler).strip_dirs()
        stats.sort_stats("tottime").print_stats(args.top)
        stats.sort_stats("cumulative").print_stats(args.top)
        return True
    rounds = [await measure(variant, make(args.runs, n), server) for n in range(args.rounds)]
    extra = f", offline pace {args.pace:g} s" if variant == "offline" else ""
    return report(variant, rounds, args.runs, args.tokens, extra)


def raise_fd_limit(needed: int) -> int:
    """Raise this process's open-file limit towards ``needed`` (within the hard limit); the soft limit after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1000, help="concurrent runs per round (default 1000)")
    parser.add_argument("--tokens", type=int, default=200, help="tokens per run (default 200)")
    parser.add_argument("--rounds", type=int, default=4, help="rounds of --runs runs per variant (default 4)")
    parser.add_argument("--events-per-write", type=int, default=8, help="server: SSE events per write (default 8)")
    parser.add_argument("--write-delay", type=float, default=0.05,
                        help="server: seconds between a response's writes (default 0.05)")  # fmt: skip
    parser.add_argument("--variant", nargs="+", choices=VARIANTS, default=["astream", "arun", "workflow"])
    parser.add_argument("--pace", type=float, default=0.001, help="offline: seconds between tokens (default 0.001)")
    parser.add_argument("--profile", choices=VARIANTS, help="cProfile one round of this variant instead")
    parser.add_argument("--top", type=int, default=30, help="--profile: functions shown (default 30)")
    args = parser.parse_args(argv)
    for name in ("runs", "tokens", "rounds", "events_per_write", "top"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if not args.write_delay >= 0:
        parser.error(f"--write-delay must be >= 0 seconds, got {args.write_delay}")
    variants = [args.profile] if args.profile else args.variant
    limit = raise_fd_limit(args.runs + 256)
    if limit < args.runs + 256:
        print(f"the open-file limit {limit} is too low for {args.runs} concurrent connections")
        return 1
    load = os.getloadavg()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} "
          f"{load[2]:.2f}; server: another process, {args.events_per_write} events per write, "
          f"{args.write_delay:g} s between writes")  # fmt: skip
    options = ["--tokens", str(args.tokens), "--distinct-tokens", "--events-per-write", str(args.events_per_write),
               "--token-delay", repr(args.write_delay)]  # fmt: skip
    ok = True
    with server_process(*options) as server:
        for variant in variants:
            ok &= asyncio.run(run_variant(variant, args, None if variant == "offline" else server))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
