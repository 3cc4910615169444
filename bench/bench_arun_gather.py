#!/usr/bin/env python
"""``asyncio.gather`` of many ``arun()`` calls: time, tokens/s, and every token checked to arrive once, in order.

Two variants against one :class:`LocalModelServer` in the same process (real HTTP through litellm), each agent with
its own model name and a scripted reply of T distinct tokens (``" <agent>t<k>"``):

* **arun**: ``await asyncio.gather(*(agent.arun(task, streaming_callback=cb) for agent in agents))``, N agents;
* **workflow**: the same N agents split into ``ConcurrentWorkflow`` s of ``--per-workflow`` agents, gathered
  ``workflow.arun(task, streaming_callback=cb)``.

The callbacks are plain functions appending each token to the agent's list (they run on the loop's thread). With
``--async-callback`` they are ``async def`` functions (awaited in order by each ``arun``). ``--executor-workers K``
gives the loop a default executor of K threads (2 shows that no run holds an executor thread: litellm's request
set-up needs it).

Printed per variant: wall time from the first ``arun`` to the last answer, aggregate tokens/s (N x T / wall), process
CPU time per token, and the check: tokens lost (expected but not delivered to the callback), tokens duplicated
(delivered more often than served), runs whose callback tokens are out of order, and answers that differ from the
served text. Exit status 1 if any check fails. No figure is asserted on: timings depend on the machine.

Usage::

    python bench/bench_arun_gather.py [--agents 1000] [--tokens 20] [--per-workflow 10] [--variant arun workflow]
                                      [--async-callback] [--executor-workers K]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import concurrent.futures
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")  # before litellm is imported: no network fetch
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from rxagents import Agent  # noqa: E402
from rxagents.testing._faults import Reply  # noqa: E402
from rxagents.testing._server import LocalModelServer  # noqa: E402
from rxagents.workflows import ConcurrentWorkflow  # noqa: E402

TASK = "Gather: stream your scripted answer."


def tokens_of(agent: int, tokens: int) -> tuple[str, ...]:
    """Agent ``agent``'s reply: T tokens no other agent has, so a token delivered twice or to the wrong run shows."""
    return tuple(f" {agent}t{k}" for k in range(tokens))


@dataclass(frozen=True)
class Result:
    variant: str
    agents: int
    tokens: int
    wall: float
    cpu: float
    lost: int
    duplicated: int
    out_of_order: int
    wrong_answers: int

    @property
    def ok(self) -> bool:
        return not (self.lost or self.duplicated or self.out_of_order or self.wrong_answers)

    def report(self) -> str:
        total = self.agents * self.tokens
        return "\n".join([
            f"{self.variant}: {self.agents} agents x {self.tokens} tokens = {total:,} tokens",
            f"  wall {self.wall:8.2f} s   {total / self.wall:>10,.0f} tokens/s   cpu {self.cpu:8.2f} s "
            f"({self.cpu / total * 1e6:.0f} us/token, all threads)",
            f"  check: {'ok' if self.ok else 'FAIL'}: lost {self.lost}, duplicated {self.duplicated}, "
            f"runs out of order {self.out_of_order}, wrong answers {self.wrong_answers}",
        ])


class Received:
    """Each agent's callback tokens, and the comparison with what was served."""

    def __init__(self, replies: dict[str, tuple[str, ...]], owner: dict[str, str]) -> None:
        self.replies = replies
        self.owner = owner  # token -> agent name
        self.tokens: dict[str, list[str]] = collections.defaultdict(list)

    def on_token(self, token: str) -> None:
        self.tokens[self.owner.get(token, "?")].append(token)

    def callback(self, asynchronous: bool) -> Callable[[str], Any]:
        if not asynchronous:
            return self.on_token

        async def on_token(token: str) -> None:
            self.on_token(token)

        return on_token

    def check(self, variant: str, wall: float, cpu: float, answers: dict[str, str]) -> Result:
        lost = duplicated = out_of_order = 0
        for name, reply in self.replies.items():
            got = self.tokens.get(name, [])
            served, delivered = collections.Counter(reply), collections.Counter(got)
            lost += sum((served - delivered).values())
            duplicated += sum((delivered - served).values())
            if served == delivered and got != list(reply):
                out_of_order += 1
        duplicated += len(self.tokens.get("?", []))  # tokens nobody was served
        wrong = sum(answers.get(name) != "".join(reply) for name, reply in self.replies.items())
        tokens = len(next(iter(self.replies.values())))
        return Result(variant, len(self.replies), tokens, wall, cpu, lost, duplicated, out_of_order, wrong)


def make_agents(server: LocalModelServer, count: int, tokens: int) -> tuple[list[Agent], dict[str, tuple[str, ...]]]:
    agents, replies = [], {}
    for i in range(count):
        name, model = f"A{i}", f"gather-{os.getpid()}-{time.monotonic_ns()}-{i}"
        replies[name] = tokens_of(i, tokens)
        server.enqueue(Reply(tokens=replies[name]), model=model)
        agents.append(Agent(agent_name=name, model_name=model, api_base=server.url, api_key="sk-bench", print_on=False))
    return agents, replies


async def gather_aruns(agents: list[Agent], received: Received, asynchronous: bool) -> dict[str, str]:
    callback = received.callback(asynchronous)
    answers = await asyncio.gather(*(agent.arun(TASK, streaming_callback=callback) for agent in agents))
    return {agent.agent_name: answer for agent, answer in zip(agents, answers, strict=True)}


async def gather_workflows(agents: list[Agent], per: int, received: Received, asynchronous: bool) -> dict[str, str]:
    callback = received.callback(asynchronous)
    workflows = [ConcurrentWorkflow(name=f"W{i}", agents=agents[i : i + per]) for i in range(0, len(agents), per)]
    results = await asyncio.gather(*(workflow.arun(TASK, streaming_callback=callback) for workflow in workflows))
    return {name: text for result in results for name, text in dict(result).items()}


async def measure(variant: str, args: argparse.Namespace, server: LocalModelServer) -> Result:
    agents, replies = make_agents(server, args.agents, args.tokens)
    received = Received(replies, {token: name for name, reply in replies.items() for token in reply})
    cpu0, t0 = time.process_time(), time.perf_counter()
    if variant == "arun":
        answers = await gather_aruns(agents, received, args.async_callback)
    else:
        answers = await gather_workflows(agents, args.per_workflow, received, args.async_callback)
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    return received.check(variant, wall, cpu, answers)


async def warm_up(server: LocalModelServer) -> None:
    """One unmeasured run: litellm's import and its HTTP client are set up once per process and loop."""
    agents, replies = make_agents(server, 1, 3)
    assert await agents[0].arun(TASK) == "".join(replies["A0"])


def main() -> int:
    # litellm's aiohttp pool holds at most 500 connections per host: with more runs at once the rest wait for a
    # slot, and litellm logs a "connection pool saturated" warning for each. Expected here; not printed.
    logging.getLogger("LiteLLM").setLevel(logging.ERROR)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--tokens", type=int, default=20)
    parser.add_argument("--per-workflow", type=int, default=10, help="agents per ConcurrentWorkflow")
    parser.add_argument("--variant", nargs="+", choices=("arun", "workflow"), default=["arun", "workflow"])
    parser.add_argument("--async-callback", action="store_true", help="async def callbacks instead of plain ones")
    parser.add_argument("--executor-workers", type=int, default=0, help="the loop's default executor size")
    args = parser.parse_args()
    callback = "async def" if args.async_callback else "plain"
    executor = args.executor_workers or "asyncio's default"
    print(f"gathered arun(): {callback} callbacks, default executor: {executor} workers, {os.cpu_count()} CPUs")
    failed = False
    with LocalModelServer() as server:
        for variant in args.variant:

            async def one(variant: str = variant) -> Result:
                if args.executor_workers:
                    executor = concurrent.futures.ThreadPoolExecutor(max_workers=args.executor_workers)
                    asyncio.get_running_loop().set_default_executor(executor)
                await warm_up(server)
                return await measure(variant, args, server)

            result = asyncio.run(one())
            print(result.report(), flush=True)
            failed |= not result.ok
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
