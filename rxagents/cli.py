"""The ``rxagents`` command.

    rxagents run "task" [--model M] [--json] [--agent-name NAME] [--max-loops N] [--max-tokens N] [--api-base URL]
    rxagents demo [--pace SECONDS]
    rxagents serve [--host H] [--port P] [--agents N] [--task T] [--model M] ...   (live SSE dashboard)
    rxagents serve-test-model [--host H] [--port P] [--tokens N] [--token-delay SECONDS] [--first-byte-delay S]
    rxagents doctor [--model M] [--api-base URL] [--timeout SECONDS]
    rxagents worker --bus URL [--concurrency N] [--group G] [--redeliver-after S] [--allow-api-base URL]
    rxagents submit --bus URL "task" [--spec JSON] [--run-id ID]
    rxagents cancel --bus URL RUN_ID [--reason TEXT]
    rxagents watch --bus URL [--poll S] [--exit-when-idle S] [--json]
    rxagents --version

Every option is checked while the arguments are parsed: a bad value prints the subcommand's usage and one
``rxagents CMD: error: argument --OPTION: must be ..., got 'VALUE'`` line, and exits with status 2 before
anything is printed or started. The exit statuses are in :data:`EXIT_STATUS` (shown by ``rxagents --help``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from reactivex import Observable, abc

from rxagents import _cli_args, _drive
from rxagents.agent import Agent
from rxagents.errors import ConfigurationError, ModelError, RunError, RxAgentsError
from rxagents.events import EventKind, TokenEvent
from rxagents.models import OfflineModel
from rxagents.sinks import ConsolePrinter

__all__ = ["EXIT_STATUS", "main"]

#: What each exit status means, for every subcommand.
EXIT_STATUS = _cli_args.EXIT_STATUS
DEMO_TASK = "Explain why streaming agent output as Observables makes it composable and testable."


def _version() -> str:
    import importlib.metadata

    try:
        return importlib.metadata.version("rxagents")
    except importlib.metadata.PackageNotFoundError:  # a checkout on sys.path, not installed
        import rxagents

        return str(getattr(rxagents, "__version__", "(unknown version)"))


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


# --- which model serves the run, shown before the answer ---------------------------------------------------------


def _serving(agent: Agent, requested: str | None) -> tuple[str, str]:
    """The backend serving ``agent``'s runs (``"offline"``, ``"litellm"``) and how the header names it."""
    if isinstance(agent.llm, OfflineModel):
        name = (requested or "").strip()
        if name and name != "offline" and not name.startswith("offline/"):  # a provider's name without its key
            return "offline", f"offline model (standing in for {name!r})"
        return "offline", "offline model"
    return agent.llm.name, f"model: {agent.model_name}"


class _Printer(ConsolePrinter):
    """The console printer, with the serving model in the header (``🤖 Agent: NAME | Loops: N | offline model``).

    A failure only ends the line: :func:`main` reports it once, on stderr.
    """

    def __init__(self, agent: Agent, label: str) -> None:
        super().__init__(agent.agent_name, agent.max_loops)
        self.label = label

    def header(self, *args: Any, **kwargs: Any) -> str:
        first, newline, rest = super().header(*args, **kwargs).partition("\n")
        return f"{first} | {self.label}{newline}{rest}"

    def __call__(self, event: TokenEvent) -> None:
        if event.kind is EventKind.ERROR:  # print what the printer holds and end the line, as at a finish
            event = dataclasses.replace(event, kind=EventKind.FINISH, error=None)
        super().__call__(event)


def _json_printer(backend: str) -> Callable[[TokenEvent], None]:
    """One JSON event per line; the ``start`` event also says which backend serves the run."""

    def emit(event: TokenEvent) -> None:
        record = event.to_dict()
        if event.kind is EventKind.START:
            record["backend"] = backend
        print(json.dumps(record, ensure_ascii=False), flush=True)

    return emit


def _consume(agent: Agent, task: str, printer: Callable[[TokenEvent], Any]) -> str:
    """``agent.run(task)`` through the same run driver, with the CLI's ``printer`` instead of ``Agent.run``'s
    callbacks and console output: it gets the events (it names the model, leaves the failure to :func:`main`)."""

    def source(scheduler: abc.SchedulerBase) -> Observable[TokenEvent]:
        return agent.stream(task, scheduler=scheduler)

    delivery = _drive.Delivery(agent.agent_name, [printer], on_callback_error="raise")  # printing fails: stop
    dispatcher = delivery.run(source)
    try:
        return _drive.answer(dispatcher)
    except RunError as error:
        if isinstance(error.__cause__, BrokenPipeError):  # stdout was closed: not the run's failure
            raise error.__cause__ from None
        raise


# --- subcommands ---------------------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    agent = Agent(
        agent_name=args.agent_name,
        model_name=args.model,
        max_loops=args.max_loops,
        max_tokens=args.max_tokens,
        api_base=args.api_base,
        print_on=False,
    )
    backend, label = _serving(agent, args.model)
    handler = _json_printer(backend) if args.json else _Printer(agent, label)
    try:
        _consume(agent, args.task, handler)
    except RunError as error:
        cause = error.__cause__
        if isinstance(cause, ConfigurationError):
            return _configuration_error(cause)
        reason = cause if isinstance(cause, RxAgentsError) else error
        retries = reason.retries if isinstance(reason, ModelError) else 0
        gave_up = f" (gave up after {retries} retr{'y' if retries == 1 else 'ies'})" if retries else ""
        print(f"rxagents: run failed: {type(reason).__name__}: {_one_line(reason)}{gave_up}", file=sys.stderr)
        if error.partial_text:
            where = "in the token events above" if args.json else "above"
            print(f"rxagents: the answer {where} is incomplete ({len(error.partial_text)} characters)", file=sys.stderr)
        return 1
    return 0


def _demo(args: argparse.Namespace) -> int:
    agent = Agent(agent_name="Demo-Agent", llm=OfflineModel(pace=args.pace, length=120), print_on=False)
    print("rxagents demo: streaming from the embedded offline model (no network, no API key).\n")
    text = _consume(agent, DEMO_TASK, _Printer(agent, "offline model"))
    print(f"\nrun() returned the answer: {len(text)} characters.")
    print('Next: rxagents run "your task" --json   (one JSON event per line)')
    return 0


def _doctor(args: argparse.Namespace) -> int:
    from rxagents._doctor import doctor_main

    return doctor_main(list(args.passthrough))


def _serve(args: argparse.Namespace) -> int:
    from rxagents._serve_cmd import serve_main

    return serve_main(list(args.passthrough))


def _serve_test_model(args: argparse.Namespace) -> int:
    from rxagents.testing._server import serve_main

    return serve_main(list(args.passthrough))


def _worker(args: argparse.Namespace) -> int:
    from rxagents._worker_cmd import worker_main

    return worker_main(list(args.passthrough))


def _submit(args: argparse.Namespace) -> int:
    from rxagents._worker_cmd import submit_main

    return submit_main(list(args.passthrough))


def _cancel(args: argparse.Namespace) -> int:
    from rxagents._worker_cmd import cancel_main

    return cancel_main(list(args.passthrough))


def _watch(args: argparse.Namespace) -> int:
    from rxagents._worker_cmd import watch_main

    return watch_main(list(args.passthrough))


def _configuration_error(error: ConfigurationError) -> int:
    print(f"rxagents: error: {_one_line(error)}", file=sys.stderr)
    return 2


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The top-level parser and each subcommand's parser (for a usage error in the subcommand's own words)."""
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="rxagents", description="Stream LLM agent output.", epilog=EXIT_STATUS, formatter_class=formatter
    )
    parser.add_argument("--version", action="version", version=f"rxagents {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run one task and stream the answer", epilog=EXIT_STATUS,
                         formatter_class=formatter,
                         description="Run one task on an agent and stream its answer to stdout.")  # fmt: skip
    run.add_argument("task", type=_cli_args.task(), help="the task (a non-empty string)")
    run.add_argument("--model", type=_cli_args.non_empty, default=None,
                     help="a litellm model name, or 'offline' (default: gpt-4o-mini with OPENAI_API_KEY, "
                     "else the offline model); the header names the model that serves the run")  # fmt: skip
    run.add_argument("--json", action="store_true",
                     help="print one JSON event per line instead of text; the start event's 'backend' says "
                     "which backend serves the run ('offline' or 'litellm')")  # fmt: skip
    run.add_argument("--agent-name", type=_cli_args.non_empty, default="Agent", help="default: Agent")
    run.add_argument("--max-loops", type=_cli_args.integer(1), default=1, help="refinement loops, >= 1 (default 1)")
    run.add_argument("--max-tokens", type=_cli_args.integer(1), default=None,
                     help="at most this many tokens per answer, >= 1 (default: the model's limit)")  # fmt: skip
    run.add_argument("--api-base", type=_cli_args.non_empty, default=None,
                     help="OpenAI-compatible endpoint, e.g. http://127.0.0.1:8000/v1")  # fmt: skip
    run.set_defaults(func=_run)

    demo = sub.add_parser("demo", help="a short showcase on the offline model",
                          description="Stream an answer from the embedded offline model (no network, no key).",
                          epilog=EXIT_STATUS, formatter_class=formatter)  # fmt: skip
    demo.add_argument("--pace", type=_cli_args.seconds(), default=0.02,
                      help="seconds between tokens, >= 0 (default 0.02)")  # fmt: skip
    demo.set_defaults(func=_demo)

    # These parse their own options (and --help): see rxagents._serve_cmd, rxagents.testing._server, _doctor.
    web = sub.add_parser("serve", help="serve a live SSE dashboard of a workflow in the browser", add_help=False)
    web.set_defaults(func=_serve)
    serve = sub.add_parser("serve-test-model", help="run the local OpenAI-compatible test model server", add_help=False)
    serve.set_defaults(func=_serve_test_model)
    doctor = sub.add_parser("doctor", help="check configuration, keys (never shown), endpoint, litellm", add_help=False)
    doctor.set_defaults(func=_doctor)
    worker = sub.add_parser("worker", help="take tasks from a bus (NATS, Redis), run them, publish their events",
                            add_help=False)  # fmt: skip
    worker.set_defaults(func=_worker)
    submit = sub.add_parser("submit", help="queue a task on a bus for a worker; print its run id", add_help=False)
    submit.set_defaults(func=_submit)
    cancel = sub.add_parser("cancel", help="stop a run on a bus, from any machine", add_help=False)
    cancel.set_defaults(func=_cancel)
    watch = sub.add_parser("watch", help="the terminal dashboard of every live run on a bus", add_help=False)
    watch.set_defaults(func=_watch)
    return parser, {"run": run, "demo": demo}


def _stdout_closed() -> int:
    """stdout was closed under us (``rxagents run ... | head``): stop quietly, as other command-line tools do."""
    # Point stdout at /dev/null, so the interpreter's last flush does not fail again (unless it is no real file).
    with contextlib.suppress(AttributeError, OSError, ValueError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``rxagents`` command; returns the exit status (usage errors exit with ``SystemExit(2)``)."""
    parser, commands = _parser()
    try:
        args, extra = parser.parse_known_args(argv)
        if args.func in (_serve, _serve_test_model, _doctor, _worker, _submit, _cancel, _watch):
            args.passthrough = extra  # these parse their own options (and --help)
        elif extra:
            commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
        code: int = args.func(args)
    except BrokenPipeError:
        return _stdout_closed()
    except ConfigurationError as error:
        return _configuration_error(error)
    except RxAgentsError as error:
        print(f"rxagents: run failed: {type(error).__name__}: {_one_line(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
