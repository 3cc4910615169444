#!/usr/bin/env python
"""Load: N concurrent agent streams x T tokens in one process, every event checked to arrive exactly once, in order.

Two backends, each run once after a small unmeasured warm-up:

* **server**: N ``Agent`` s (litellm, real HTTP) against a :class:`LocalModelServer` in the same process, each with
  its own model name and a scripted reply of T distinct tokens (``" a<agent>t<k>"``). All N streams are open at once
  (one TCP connection each: the process holds 2N sockets, the client's and the server's).
* **offline**: N ``Agent`` s on the embedded offline model (``pace`` seconds between tokens, so all N runs are in
  flight together), same checks.

The N runs are merged with ``reactivex.merge`` (``--workflow``: a ``ConcurrentWorkflow``) and subscribed on one
asyncio loop. Every event is checked on arrival and at the end:

* exactly once: no (run_id, seq) twice, total = N x (T + 3) (start, T tokens, usage, finish);
* in order per run: seq 0, 1, 2, ... per run_id, no gap; each run's grammar is start, tokens, usage, finish;
* each agent's text is its own reply, complete; N distinct runs; one completion;
* (server) every response ended ``completed`` on the server's side, and no connection is left open.

Printed: wall time from subscription to completion, aggregate tokens/s (N x T / wall), process CPU time per token,
the most connections open at once (server), and the check results. Exit status 1 if a check fails.

Usage::

    python bench/bench_load.py [--agents 1000] [--tokens 100] [--backend server offline] [--pace 0.001] [--workflow]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import resource
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no network fetch
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import reactivex  # noqa: E402

from rxagents import Agent, EventKind, OfflineModel, TokenEvent  # noqa: E402
from rxagents.models._offline import tokenize  # noqa: E402
from rxagents.testing._faults import Reply  # noqa: E402
from rxagents.testing._server import LocalModelServer  # noqa: E402
from rxagents.workflows import ConcurrentWorkflow  # noqa: E402

TASK = "Load: stream your scripted answer."
KINDS = [EventKind.START, EventKind.TOKEN, EventKind.USAGE, EventKind.FINISH]


def tokens_of(agent: int, tokens: int) -> tuple[str, ...]:
    """Agent ``agent``'s reply: T distinct tokens, so a token delivered to the wrong run or twice is caught.

    Base-36 words of at most 6 characters, so the offline model also streams each as exactly one token."""
    if agent >= 36**3 or tokens > 36**2:
        raise SystemExit(f"at most {36**3} agents x {36**2} tokens")
    return tuple(f" {_b36(agent, 3)}t{_b36(k, 2)}" for k in range(tokens))


def _b36(n: int, width: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    for _ in range(width):
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out


@dataclass
class Checks:
    """What arrived, checked as it arrives (cheap: a dict update per event)."""

    agents: int
    tokens: int  # per run (for an offline run: the offline model's tokenization of its text)
    next_seq: dict[str, int] = field(default_factory=dict)
    agent_of: dict[str, str] = field(default_factory=dict)
    kinds: dict[str, list[EventKind]] = field(default_factory=lambda: collections.defaultdict(list))
    texts: dict[str, list[str]] = field(default_factory=lambda: collections.defaultdict(list))
    events: int = 0
    out_of_order: int = 0
    completions: int = 0
    first_event_at: float | None = None

    def on_next(self, event: TokenEvent) -> None:
        self.events += 1
        if self.first_event_at is None:
            self.first_event_at = time.perf_counter()
        expected = self.next_seq.get(event.run_id, 0)
        if event.seq != expected:  # a duplicate, a gap or a reordering
            self.out_of_order += 1
        self.next_seq[event.run_id] = max(expected, event.seq + 1)
        self.agent_of.setdefault(event.run_id, event.agent)
        kinds = self.kinds[event.run_id]
        if not kinds or kinds[-1] is not event.kind:
            kinds.append(event.kind)
        if event.kind is EventKind.TOKEN:
            self.texts[event.agent].append(event.text)

    def problems(self, expected_text: dict[str, str]) -> list[str]:
        found = []
        want = self.agents * (self.tokens + 3)
        if self.events != want:
            found.append(f"{self.events} events delivered, expected {want}")
        if self.out_of_order:
            found.append(f"{self.out_of_order} events out of order, duplicated or after a gap")
        if len(self.next_seq) != self.agents or len(set(self.agent_of.values())) != self.agents:
            found.append(f"{len(self.next_seq)} runs for {len(set(self.agent_of.values()))} agents, expected "
                         f"{self.agents} of each")  # fmt: skip
        bad_grammar = [r for r, kinds in self.kinds.items() if kinds != KINDS]
        if bad_grammar:
            example = self.kinds[bad_grammar[0]]
            found.append(f"{len(bad_grammar)} runs not start, tokens, usage, finish (e.g. {example})")
        bad_text = [a for a, text in expected_text.items() if "".join(self.texts.get(a, ())) != text]
        if bad_text:
            found.append(f"{len(bad_text)} agents' text lost, repeated or garbled (e.g. {bad_text[0]})")
        if self.completions != 1:
            found.append(f"{self.completions} completions, expected 1")
        return found


@dataclass(frozen=True)
class Result:
    backend: str
    agents: int
    tokens: int
    wall: float
    cpu: float
    first_event: float
    peak_connections: int
    problems: tuple[str, ...]

    @property
    def tokens_per_s(self) -> float:
        return self.agents * self.tokens / self.wall

    def report(self) -> str:
        total = self.agents * self.tokens
        lines = [
            f"{self.backend}: {self.agents} agents x {self.tokens} tokens = {total:,} tokens",
            f"  wall {self.wall:8.2f} s   {self.tokens_per_s:>10,.0f} tokens/s   cpu {self.cpu:8.2f} s "
            f"({self.cpu / total * 1e6:.0f} us/token, all threads)   first event after {self.first_event:.2f} s",
        ]
        if self.peak_connections:
            lines.append(f"  connections open at once (server): {self.peak_connections}")
        verdict = (
            "; ".join(self.problems)
            if self.problems
            else ("every event exactly once, in order per run (seq), grammar and text per agent correct")
        )
        lines.append(f"  check: {'FAIL' if self.problems else 'ok'}: {verdict}")
        return "\n".join(lines)


def _stream(agents: list[Agent], workflow: bool) -> reactivex.Observable[TokenEvent]:
    if workflow:
        return ConcurrentWorkflow(name="load", agents=agents).stream(TASK)
    return reactivex.merge(*(agent.stream(TASK) for agent in agents))


async def run_load(agents: list[Agent], tokens: int, expected_text: dict[str, str], *, workflow: bool = False,
                   server: LocalModelServer | None = None, backend: str = "server") -> Result:  # fmt: skip
    """Subscribe to all runs at once on the running loop; wait for completion; check everything."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()
    checks = Checks(len(agents), tokens)

    def on_completed() -> None:
        checks.completions += 1
        if not done.done():
            done.set_result(None)

    def on_error(error: Exception) -> None:
        if not done.done():
            done.set_exception(error)

    peak = 0

    async def watch() -> None:
        nonlocal peak
        while server is not None and not done.done():
            peak = max(peak, server.open_connections)
            await asyncio.sleep(0.05)

    watcher = loop.create_task(watch())
    cpu0, t0 = time.process_time(), time.perf_counter()
    subscription = _stream(agents, workflow).subscribe(checks.on_next, on_error, on_completed)
    try:
        await done
    finally:
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        subscription.dispose()
        await watcher
    problems = checks.problems(expected_text)
    if server is not None:
        ended = [r for r in server.closed_streams if r.model in {a.model_name.removeprefix("openai/") for a in agents}]
        not_completed = [r for r in ended if r.outcome != "completed"]
        if len(ended) != len(agents) or not_completed:
            problems.append(f"server: {len(ended)} responses ended, {len(not_completed)} not completed")
    first = (checks.first_event_at or t0) - t0
    return Result(backend, len(agents), tokens, wall, cpu, first, peak, tuple(problems))


#: The served load runs switch the Agent's silence timeouts off (``--library-timeouts`` keeps the defaults). With N
#: streams on one saturated loop, litellm reads a stream whose bytes are already buffered without yielding, so the loop
#: serves the streams in bursts and one stream can wait for the loop longer than ``stall_timeout`` (30 s); when its
#: timer and its socket become ready in the same loop iteration, the timer wins and the run fails with
#: ``StallTimeout`` although the server sent everything (measured at 1,000 x 100; see docs/reliability.md, "Load").
def served_agents(
    server: LocalModelServer, agents: int, tokens: int, prefix: str, *, library_timeouts: bool = False
) -> tuple[list[Agent], dict[str, str]]:
    """N agents, each with its own model name and scripted reply on ``server``."""
    out, expected = [], {}
    for i in range(agents):
        name, model = f"agent-{i}", f"{prefix}-{i}"
        reply = tokens_of(i, tokens)
        server.enqueue(Reply(tokens=reply), model=model)
        if library_timeouts:
            agent = Agent(agent_name=name, model_name=model, api_base=server.url, api_key="sk-test", print_on=False)
        else:
            agent = Agent(agent_name=name, model_name=model, api_base=server.url, api_key="sk-test", print_on=False,
                          first_token_timeout=None, stall_timeout=None)  # fmt: skip
        out.append(agent)
        expected[name] = "".join(reply)
    return out, expected


def offline_agents(agents: int, tokens: int, pace: float) -> tuple[list[Agent], dict[str, str]]:
    out, expected = [], {}
    for i in range(agents):
        text = "".join(tokens_of(i, tokens))
        assert len(tokenize(text)) == tokens, "each scripted token must be one offline-model token"
        out.append(Agent(agent_name=f"agent-{i}", llm=OfflineModel(text=text, pace=pace), print_on=False))
        expected[f"agent-{i}"] = text
    return out, expected


def raise_fd_limit(needed: int) -> int:
    """Raise this process's open-file limit towards ``needed`` (within the hard limit); the soft limit after."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    return soft


async def main_async(args: argparse.Namespace) -> bool:
    ok = True
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
        f"{'ConcurrentWorkflow' if args.workflow else 'reactivex.merge'} of agent.stream(task); litellm pool "
        f"limit {os.environ['AIOHTTP_CONNECTOR_LIMIT']}, per host {os.environ['AIOHTTP_CONNECTOR_LIMIT_PER_HOST']}"
    )
    if "server" in args.backend:
        limit = raise_fd_limit(2 * args.agents + 256)
        if limit < 2 * args.agents + 256:
            print(f"server: open-file limit {limit} is too low for {args.agents} concurrent connections (2 fds each)")
            return False
        with LocalModelServer() as server:
            warm, warm_text = served_agents(server, 4, 5, "warm")
            await run_load(warm, 5, warm_text, server=server)  # litellm imported, client created, pools warm
            agents, expected = served_agents(
                server, args.agents, args.tokens, "load", library_timeouts=args.library_timeouts
            )
            result = await run_load(agents, args.tokens, expected, workflow=args.workflow, server=server)
            print(result.report())
            leftover = server.open_connections
            ok &= not result.problems
        print(f"  connections left open after the run (server side, before stop): {leftover}")
    if "offline" in args.backend:
        warm, warm_text = offline_agents(4, 5, args.pace)
        await run_load(warm, 5, warm_text, backend="offline")
        agents, expected = offline_agents(args.agents, args.tokens, args.pace)
        backend = f"offline pace={args.pace:g}s"
        result = await run_load(agents, args.tokens, expected, workflow=args.workflow, backend=backend)
        print(result.report())
        ok &= not result.problems
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=100)
    parser.add_argument("--backend", nargs="+", choices=["server", "offline"], default=["server", "offline"])
    parser.add_argument("--pace", type=float, default=0.001, help="offline model: seconds between tokens")
    parser.add_argument("--workflow", action="store_true", help="merge with ConcurrentWorkflow, not reactivex.merge")
    parser.add_argument(
        "--library-timeouts",
        action="store_true",
        help="server: keep the Agent's default first_token_timeout/stall_timeout (see served_agents)",
    )
    args = parser.parse_args(argv)
    # litellm caps its aiohttp pool at 1,000 connections and 500 per host by default (read when litellm is first
    # imported, which is later): beyond that, streams wait for a slot and are not concurrent. Lift the caps to N.
    os.environ.setdefault("AIOHTTP_CONNECTOR_LIMIT", str(max(1000, args.agents)))
    os.environ.setdefault("AIOHTTP_CONNECTOR_LIMIT_PER_HOST", str(max(500, args.agents)))
    return 0 if asyncio.run(main_async(args)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
