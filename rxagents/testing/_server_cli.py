"""``rxagents serve-test-model``: the local test model server in the foreground, until Ctrl-C."""

from __future__ import annotations

import argparse
import sys
import threading

__all__ = ["serve_main"]


def serve_main(argv: list[str] | None = None) -> int:
    """CLI: serve a :class:`LocalModelServer` in the foreground until Ctrl-C; returns the exit status."""
    from rxagents import _cli_args
    from rxagents.testing._faults import Reply, SlowFirstByte
    from rxagents.testing._server import LocalModelServer

    parser = argparse.ArgumentParser(
        prog="rxagents serve-test-model",
        description="Local OpenAI-compatible streaming test model: deterministic replies, no network, "
        "not a real language model.",
        epilog=_cli_args.EXIT_STATUS,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _cli_args.add_listen_options(parser, default_port=8765)
    parser.add_argument("--tokens", type=_cli_args.integer(1), default=20,
                        help="chunks in the default reply, >= 1 (default 20)")  # fmt: skip
    parser.add_argument("--token-delay", type=_cli_args.seconds(), default=0.0,
                        help="seconds between writes, >= 0 (default 0)")  # fmt: skip
    parser.add_argument("--events-per-write", type=_cli_args.integer(1), default=1,
                        help="SSE events written together in one write, >= 1 (default 1: each alone)")  # fmt: skip
    parser.add_argument("--distinct-tokens", action="store_true",
                        help="the default reply's tokens are ' <key>:<k>', key a CRC of the model and the last "
                        "user message: unique to each run (for load tests)")  # fmt: skip
    parser.add_argument("--first-byte-delay", type=_cli_args.seconds(), default=0.0,
                        help="seconds each reply waits before its first byte, >= 0 (default 0): with "
                        "--token-delay 0, many slow-starting replies streamed in bursts")  # fmt: skip
    args = parser.parse_args(argv)
    server = LocalModelServer(args.host, args.port, default_tokens=args.tokens, token_delay=args.token_delay,
                              distinct_tokens=args.distinct_tokens, events_per_write=args.events_per_write)  # fmt: skip
    if args.first_byte_delay:
        server.set_default(Reply(fault=SlowFirstByte(args.first_byte_delay)))
    try:
        server.start()
    except OSError as exc:
        print(f"cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    print(f"Local OpenAI-compatible test model at {server.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
