"""``rxagents worker``, ``rxagents submit`` and ``rxagents cancel``: the work queue of a bus from the command line.

    rxagents worker --bus URL [--concurrency N] [--group NAME] [--redeliver-after S] [--allow-api-base URL]...
    rxagents submit --bus URL "task" [--spec JSON] [--run-id ID]       prints the run id
    rxagents cancel --bus URL RUN_ID [--reason TEXT]
    rxagents watch --bus URL [--poll S] [--exit-when-idle S] [--title T] [--json]   the dashboard of live runs

A worker takes tasks until SIGINT or SIGTERM: the first one stops it taking tasks and waits for the runs in
progress to end; a second one ends them now (each with an error event of RunCancelled). Provider keys come from
the worker's environment; the broker URL is shown without its credentials.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from rxagents import _cli_args
from rxagents.errors import ConfigurationError, RxAgentsError

__all__ = ["cancel_main", "submit_main", "watch_main", "worker_main"]

DEFAULT_SPEC = '{"agent": {"agent_name": "Agent", "model_name": "offline"}}'


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=_cli_args.EXIT_STATUS,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("--bus", type=_cli_args.non_empty, required=True,
                        help="the broker: nats://host:4222 or redis://host:6379/0 (credentials in the URL are "
                        "never shown)")  # fmt: skip
    return parser


def _spec(text: str) -> dict[str, Any]:
    """A task spec as JSON (checked by submit)."""
    try:
        value = json.loads(text)
    except ValueError as error:
        message = f"must be a JSON object such as {DEFAULT_SPEC}, got {text!r} ({error})"
        raise argparse.ArgumentTypeError(message) from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"must be a JSON object such as {DEFAULT_SPEC}, got {text!r}")
    return value


def _run(prog: str, main: Callable[[], Coroutine[Any, Any, int]]) -> int:
    try:
        return asyncio.run(main())
    except ConfigurationError as error:
        print(f"{prog}: error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    except RxAgentsError as error:
        print(f"{prog}: {type(error).__name__}: {' '.join(str(error).split())}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def worker_main(argv: Sequence[str] | None = None) -> int:
    """``rxagents worker``: take and run tasks from the bus until SIGINT/SIGTERM. Returns the exit status."""
    parser = _parser("rxagents worker", "Take tasks from a bus's work queue, run them, publish their events.")
    parser.add_argument("--concurrency", type=_cli_args.integer(1), default=8,
                        help="tasks run at once, >= 1 (default 8)")  # fmt: skip
    parser.add_argument("--group", type=_cli_args.non_empty, default="workers",
                        help="the workers sharing tasks (default: workers)")  # fmt: skip
    parser.add_argument("--redeliver-after", type=_cli_args.seconds(positive=True), default=30.0,
                        help="seconds after which the task of a worker that died goes to another (default 30)")
    parser.add_argument("--allow-api-base", action="append", default=[], type=_cli_args.non_empty, metavar="URL",
                        help="an OpenAI-compatible endpoint a task's spec may name (the worker sends its keys "
                        "there); repeat for several")  # fmt: skip
    parser.add_argument("--verbose", action="store_true", help="log what the worker does on stderr")
    args = parser.parse_args(None if argv is None else list(argv))
    if args.verbose:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logger = logging.getLogger("rxagents")
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)

    async def main() -> int:
        from rxagents.bus import Worker, connect_bus

        async with connect_bus(args.bus) as bus:
            worker = Worker(bus, concurrency=args.concurrency, group=args.group,
                            redeliver_after=args.redeliver_after, api_bases=args.allow_api_base)  # fmt: skip
            loop = asyncio.get_running_loop()
            signals = 0

            def on_signal() -> None:
                nonlocal signals
                signals += 1
                if signals == 1:
                    print("rxagents worker: stopping after the runs in progress (again to cancel them)", flush=True)
                worker.stop(cancel_runs=signals > 1)

            for number in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(number, on_signal)
            print(f"rxagents worker: {worker.name} taking tasks from {bus.url} (group {args.group!r}, "
                  f"concurrency {args.concurrency})", flush=True)  # fmt: skip
            await worker.run()
            stats = worker.stats
            print(f"rxagents worker: stopped; {stats.finished} finished, {stats.failed} failed, "
                  f"{stats.cancelled} cancelled, {stats.continued} continued; at most {stats.peak} at once",
                  flush=True)  # fmt: skip
        return 0

    return _run("rxagents worker", main)


def submit_main(argv: Sequence[str] | None = None) -> int:
    """``rxagents submit``: queue a task and print its run id. Returns the exit status."""
    parser = _parser("rxagents submit", "Queue a task on a bus for a worker; print its run id.")
    parser.add_argument("task", type=_cli_args.task(), help="the task (a non-empty string)")
    parser.add_argument("--spec", type=_spec, default=_spec(DEFAULT_SPEC),
                        help=f"what runs it, as JSON (default: {DEFAULT_SPEC})")  # fmt: skip
    parser.add_argument("--run-id", type=_cli_args.non_empty, default=None, help="the run id (default: a new one)")
    args = parser.parse_args(None if argv is None else list(argv))

    async def main() -> int:
        from rxagents.bus import connect_bus, submit
        from rxagents.bus._spec import check_spec

        check_spec(args.spec)  # before connecting: a bad spec is a usage error wherever the broker is
        async with connect_bus(args.bus) as bus:
            print(await submit(bus, args.task, args.spec, run_id=args.run_id), flush=True)
        return 0

    return _run("rxagents submit", main)


def cancel_main(argv: Sequence[str] | None = None) -> int:
    """``rxagents cancel``: ask for a run to stop, from any machine. Returns the exit status."""
    parser = _parser("rxagents cancel", "Stop a run on a bus: its worker ends it with an error event of RunCancelled.")
    parser.add_argument("run_id", type=_cli_args.non_empty, help="the run to stop")
    parser.add_argument("--reason", type=_cli_args.non_empty, default="cancelled on request",
                        help="why (shown in the run's error event)")  # fmt: skip
    args = parser.parse_args(None if argv is None else list(argv))

    async def main() -> int:
        from rxagents.bus import cancel, connect_bus

        async with connect_bus(args.bus) as bus:
            await cancel(bus, args.run_id, args.reason)
        print(f"rxagents cancel: asked run {args.run_id} to stop", flush=True)
        return 0

    return _run("rxagents cancel", main)


def watch_main(argv: Sequence[str] | None = None) -> int:
    """``rxagents watch``: the terminal dashboard of every live run on the bus. Returns the exit status."""
    parser = _parser("rxagents watch", "Show every live run on a bus in the terminal dashboard, one lane a run.")
    parser.add_argument("--poll", type=_cli_args.seconds(positive=True), default=1.0,
                        help="seconds between looks for new runs (default 1)")  # fmt: skip
    parser.add_argument("--exit-when-idle", type=_cli_args.seconds(positive=True), default=None,
                        help="stop once every run seen ended and none started for this many seconds "
                        "(default: watch until Ctrl-C)")  # fmt: skip
    parser.add_argument("--title", type=_cli_args.non_empty, default=None, help="the dashboard's title")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object a line on stdout as each run ends (run_id, agent, status, "
                        "events, tokens, retries, duplicates, missing, error, text); the dashboard goes to "
                        "stderr")  # fmt: skip
    args = parser.parse_args(None if argv is None else list(argv))
    # the files as they are now: a live dashboard replaces sys.stdout and sys.stderr while it runs (what is written
    # there goes above it, on its console), which would send the ready line and the JSON records to the terminal
    stdout, stderr = sys.stdout, sys.stderr
    out = stderr if args.json else stdout

    async def main() -> int:
        from rich.console import Console

        from rxagents.bus import connect_bus, watch
        from rxagents.bus._watch_tally import RunTally
        from rxagents.operators import to_async_iter
        from rxagents.sinks import dashboard

        async with connect_bus(args.bus) as bus:
            title = args.title or f"runs on {bus.url}"

            def ready() -> None:
                print(f"rxagents watch: watching the runs on {bus.url}", file=stderr, flush=True)

            console = Console(stderr=True) if args.json else None
            live = watch(bus, poll=args.poll, exit_when_idle=args.exit_when_idle, on_ready=ready)
            tally = RunTally(keep_text=args.json)
            async with to_async_iter(live.pipe(dashboard(title, [], console=console))) as events:
                async for event in events:
                    record = tally.add(event)
                    if record is not None and args.json:
                        print(json.dumps(record), file=stdout, flush=True)
        print(f"rxagents watch: {tally.summary()}", file=out, flush=True)
        return 0

    return _run("rxagents watch", main)
