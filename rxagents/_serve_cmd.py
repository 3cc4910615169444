"""``rxagents serve``: a live browser dashboard of N agents answering one task at once, over SSE.

    rxagents serve [--host H] [--port P] [--agents N] [--task T] [--model offline|NAME] [--pace S] [--bus URL]

Builds a :class:`~rxagents.workflows.ConcurrentWorkflow` of ``N`` agents (each with its own role, so their
answers differ) and serves it with :func:`~rxagents.sinks._sse.serve_sse` until Ctrl-C. Offline by default.
With ``--bus URL`` the runs live on a bus: ``POST /runs`` submits the workflow as a task for the bus's workers
(``rxagents worker``), and every server on that bus serves every run (a reload may land on any of them).
A command of the CLI layer: it puts agents, a workflow and a sink together, so it sits above all three.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence
from typing import Any

from rxagents import _cli_args
from rxagents.agent import Agent
from rxagents.models import OfflineModel
from rxagents.sinks._sse import DEFAULT_TASK, MAX_TASK_CHARS, SSEServer, serve_sse
from rxagents.workflows import ConcurrentWorkflow

__all__ = ["serve_main"]

_ROLES = ("Researcher", "Analyst", "Critic", "Writer", "Planner", "Reviewer", "Engineer", "Historian")


def serve_main(argv: Sequence[str] | None = None) -> int:
    """``rxagents serve``: a ConcurrentWorkflow of N agents behind the SSE dashboard. Returns the exit status."""
    parser = argparse.ArgumentParser(
        prog="rxagents serve",
        description="Serve a live browser dashboard (Server-Sent Events) of N agents answering one task at once.",
        epilog=_cli_args.EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _cli_args.add_listen_options(parser, default_port=8000)
    parser.add_argument("--agents", type=_cli_args.integer(1), default=3, help="number of agents, >= 1 (default 3)")
    parser.add_argument("--task", type=_cli_args.task(MAX_TASK_CHARS), default=DEFAULT_TASK,
                        help="the task the page starts with")  # fmt: skip
    parser.add_argument("--model", type=_cli_args.non_empty, default="offline",
                        help="'offline' (default) or a litellm model name")  # fmt: skip
    parser.add_argument("--api-base", type=_cli_args.non_empty, default=None,
                        help="OpenAI-compatible endpoint for --model")  # fmt: skip
    parser.add_argument("--pace", type=_cli_args.seconds(), default=0.05,
                        help="offline model: seconds between tokens, >= 0 (default 0.05)")  # fmt: skip
    parser.add_argument("--length", type=_cli_args.integer(1), default=150,
                        help="offline model: tokens per answer, >= 1 (default 150)")  # fmt: skip
    parser.add_argument("--exit-after", type=_cli_args.seconds(), default=None,
                        help="stop after this many seconds (default: run until Ctrl-C)")  # fmt: skip
    parser.add_argument("--bus", type=_cli_args.non_empty, default=None,
                        help="serve the runs of a bus (nats://..., redis://...): runs are submitted to its "
                        "workers and any server of the bus serves any run")  # fmt: skip
    args = parser.parse_args(None if argv is None else list(argv))
    if args.bus is not None:
        return _serve_bus(args)

    agents = []
    for role in _roles(args.agents):
        prompt = _prompt(role)
        if args.model == "offline":
            llm = OfflineModel(pace=args.pace, length=args.length)
            agents.append(Agent(agent_name=role, system_prompt=prompt, llm=llm, print_on=False))
        else:
            agents.append(Agent(agent_name=role, system_prompt=prompt, model_name=args.model,
                                api_base=args.api_base, print_on=False))  # fmt: skip
    workflow = ConcurrentWorkflow(name="rxagents serve", agents=agents)
    server = serve_sse(workflow, host=args.host, port=args.port, task=args.task)

    model = "the offline model" if args.model == "offline" else f"model {args.model!r}"

    async def main() -> int:
        return await _serve(server, args, f"{args.agents} agents on {model}")

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0


async def _serve(server: SSEServer, args: argparse.Namespace, what: str) -> int:
    """Listen, say where, and serve until Ctrl-C (or ``--exit-after`` seconds); the exit status."""
    try:
        await server.astart()
    except OSError as exc:
        print(f"rxagents serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    try:
        print(f"rxagents serve: dashboard at {server.url}/ ({what})", flush=True)
        if args.exit_after is None:
            print("Press Ctrl-C to stop.", flush=True)
            await asyncio.Event().wait()
        else:
            await asyncio.sleep(args.exit_after)
    finally:
        await server.aclose()
    return 0


def _prompt(role: str) -> str:
    return f"You are the {role}. Answer from the {role.lower()}'s point of view."


def _roles(count: int) -> list[str]:
    return [_ROLES[i % len(_ROLES)] + (f"-{i // len(_ROLES) + 1}" if i >= len(_ROLES) else "") for i in range(count)]


def _spec(args: argparse.Namespace) -> dict[str, Any]:
    """The workflow spec ``POST /runs`` submits: the same agents as without a bus."""
    agents: list[dict[str, Any]] = []
    for role in _roles(args.agents):
        agent: dict[str, Any] = {"agent_name": role, "system_prompt": _prompt(role)}
        if args.model == "offline":
            agent["offline"] = {"pace": args.pace, "length": args.length}
        else:
            agent["model_name"] = args.model
            if args.api_base is not None:
                agent["api_base"] = args.api_base
        agents.append(agent)
    return {"workflow": {"kind": "concurrent", "name": "rxagents serve", "agents": agents}}


def _serve_bus(args: argparse.Namespace) -> int:
    from rxagents.bus import BusRuns, connect_bus
    from rxagents.errors import RxAgentsError

    async def main() -> int:
        async with connect_bus(args.bus) as bus:
            server = serve_sse(BusRuns(bus, _spec(args)), host=args.host, port=args.port, task=args.task)
            return await _serve(server, args, f"runs on {bus.url}; start workers with rxagents worker --bus URL")

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0
    except RxAgentsError as error:
        print(f"rxagents serve: {type(error).__name__}: {' '.join(str(error).split())}", file=sys.stderr)
        return 2 if isinstance(error, ValueError) else 1
