"""The ``rxagents`` command.

    rxagents run "task" [--model M] [--json] [--max-tokens N] [--api-base URL]
    rxagents demo [--pace SECONDS]
    rxagents serve [--port P] [--agents N]   (live SSE dashboard in the browser)
    rxagents serve-test-model [--host H] [--port P]
    rxagents doctor [--model M] [--api-base URL]
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from rxagents.agent import Agent
from rxagents.errors import RxAgentsError
from rxagents.events import TokenEvent
from rxagents.models import OfflineModel

__all__ = ["main"]

DEMO_TASK = "Explain why streaming agent output as Observables makes it composable and testable."


def _event_json(event: TokenEvent) -> str:
    return json.dumps(event.to_dict(), ensure_ascii=False)


def _run(args: argparse.Namespace) -> int:
    agent = Agent(
        agent_name=args.agent_name,
        model_name=args.model,
        max_loops=args.max_loops,
        max_tokens=args.max_tokens,
        api_base=args.api_base,
        streaming_on=not args.json,
        print_on=not args.json,
    )
    def print_event(event: dict[str, object]) -> None:
        print(json.dumps(event, ensure_ascii=False), flush=True)

    if args.json:
        agent.stream_detailed = True
    try:
        agent.run(args.task, streaming_callback=print_event if args.json else None)
    except RxAgentsError as error:
        print(f"\nrxagents: run failed: {error}", file=sys.stderr)
        if error.partial_text:
            print(f"rxagents: partial text ({len(error.partial_text)} chars) was delivered above", file=sys.stderr)
        return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    print("rxagents demo: streaming from the embedded offline model (no network, no API key).\n")
    agent = Agent(
        agent_name="Demo-Agent",
        llm=OfflineModel(pace=args.pace, length=120),
        streaming_on=True,
        print_on=True,
    )
    text = agent.run(DEMO_TASK)
    print(f"\nrun() returned the answer: {len(text)} characters.")
    print('Next: rxagents run "your task" --json   (one JSON event per line)')
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from rxagents._doctor import doctor_main

    return doctor_main(list(args.passthrough))


def _serve(args: argparse.Namespace) -> int:
    from rxagents.sinks._sse_cli import serve_main

    return serve_main(list(args.passthrough))


def _serve_test_model(args: argparse.Namespace) -> int:
    from rxagents.testing._server import serve_main

    return serve_main(list(args.passthrough))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rxagents", description="Stream LLM agent output.")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run one task and stream the answer")
    run.add_argument("task")
    run.add_argument("--model", default=None, help="litellm model name, or 'offline' (default: offline without a key)")
    run.add_argument("--json", action="store_true", help="print one JSON event per line instead of text")
    run.add_argument("--agent-name", default="Agent")
    run.add_argument("--max-loops", type=int, default=1)
    run.add_argument("--max-tokens", type=int, default=None)
    run.add_argument("--api-base", default=None, help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")
    run.set_defaults(func=_run)

    demo = sub.add_parser("demo", help="a short showcase on the offline model")
    demo.add_argument("--pace", type=float, default=0.02, help="seconds between tokens (default 0.02)")
    demo.set_defaults(func=_demo)

    web = sub.add_parser("serve", help="serve a live SSE dashboard of a workflow in the browser", add_help=False)
    web.set_defaults(func=_serve)

    serve = sub.add_parser(
        "serve-test-model", help="run the local OpenAI-compatible test model server", add_help=False
    )
    serve.set_defaults(func=_serve_test_model)

    doctor = sub.add_parser("doctor", help="check configuration, keys (never shown), endpoint, litellm", add_help=False)
    doctor.set_defaults(func=_doctor)

    args, extra = parser.parse_known_args(argv)
    if args.func in (_serve, _serve_test_model, _doctor):
        args.passthrough = extra  # these parse their own options (and --help)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        code: int = args.func(args)
    except RxAgentsError as error:
        print(f"rxagents: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
