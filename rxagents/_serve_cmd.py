"""``rxagents serve``: a live browser dashboard of N agents answering one task at once, over SSE.

    rxagents serve [--host H] [--port P] [--agents N] [--task T] [--model offline|NAME] [--pace S]

Builds a :class:`~rxagents.workflows.ConcurrentWorkflow` of ``N`` agents (each with its own role, so their
answers differ) and serves it with :func:`~rxagents.sinks._sse.serve_sse` until Ctrl-C. Offline by default.
A command of the CLI layer: it puts agents, a workflow and a sink together, so it sits above all three.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from rxagents import _cli_args
from rxagents.agent import Agent
from rxagents.models import OfflineModel
from rxagents.sinks._sse import DEFAULT_TASK, MAX_TASK_CHARS, serve_sse
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
    parser.add_argument("--host", type=_cli_args.non_empty, default="127.0.0.1",
                        help="interface to bind (default: 127.0.0.1, local only)")  # fmt: skip
    parser.add_argument("--port", type=_cli_args.port, default=8000,
                        help="TCP port, 0 to 65535 (default 8000; 0: any free port)")  # fmt: skip
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
    args = parser.parse_args(None if argv is None else list(argv))

    agents = []
    for i in range(args.agents):
        role = _ROLES[i % len(_ROLES)] + (f"-{i // len(_ROLES) + 1}" if i >= len(_ROLES) else "")
        prompt = f"You are the {role}. Answer from the {role.lower()}'s point of view."
        if args.model == "offline":
            llm = OfflineModel(pace=args.pace, length=args.length)
            agents.append(Agent(agent_name=role, system_prompt=prompt, llm=llm, print_on=False))
        else:
            agents.append(Agent(agent_name=role, system_prompt=prompt, model_name=args.model,
                                api_base=args.api_base, print_on=False))  # fmt: skip
    workflow = ConcurrentWorkflow(name="rxagents serve", agents=agents)
    server = serve_sse(workflow, host=args.host, port=args.port, task=args.task)

    async def main() -> int:
        try:
            await server.astart()
        except OSError as exc:
            print(f"rxagents serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
            return 1
        try:
            model = "the offline model" if args.model == "offline" else f"model {args.model!r}"
            print(f"rxagents serve: dashboard at {server.url}/ ({args.agents} agents on {model})", flush=True)
            if args.exit_after is None:
                print("Press Ctrl-C to stop.", flush=True)
                await asyncio.Event().wait()
            else:
                await asyncio.sleep(args.exit_after)
        finally:
            await server.aclose()
        return 0

    try:
        return asyncio.run(main())
    except KeyboardInterrupt:
        return 0
