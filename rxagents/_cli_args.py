"""Argument types shared by the ``rxagents`` subcommands: a bad value is a usage error at parsing.

Each type raises :class:`argparse.ArgumentTypeError` with what the value must be and the value given, so
argparse prints the subcommand's usage and ``rxagents CMD: error: argument --port: must be an integer from 0
to 65535 (0: any free port), got '99999'`` and exits with status 2, before anything is printed or started.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["EXIT_STATUS", "integer", "non_empty", "port", "seconds", "task"]

#: The exit statuses of every ``rxagents`` subcommand (the epilog of their ``--help``).
EXIT_STATUS = """\
exit status:
  0    success
  1    the run failed (model error, connection, timeout) or stdout was closed; a server could not listen;
       doctor found a failure
  2    usage or configuration error: a bad option or value, an empty task, an unknown model, a bad endpoint
  130  interrupted (Ctrl-C)
"""


def add_listen_options(parser: argparse.ArgumentParser, default_port: int) -> None:
    """``--host`` (default 127.0.0.1, local only) and ``--port`` (0 to 65535, 0: any free port) of a server command."""
    parser.add_argument("--host", type=non_empty, default="127.0.0.1",
                        help="interface to bind (default: 127.0.0.1, local only)")  # fmt: skip
    parser.add_argument("--port", type=port, default=default_port,
                        help=f"TCP port, 0 to 65535 (default {default_port}; 0: any free port)")  # fmt: skip


def port(text: str) -> int:
    """A TCP port: an integer from 0 to 65535, 0 meaning any free port (the command prints the one it got)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be an integer from 0 to 65535 (0: any free port), got {text!r}")
    return value


def integer(minimum: int) -> Callable[[str], int]:
    """An integer ``>= minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {text!r}")
        return value

    parse.__name__ = f"integer >= {minimum}"
    return parse


def seconds(*, positive: bool = False) -> Callable[[str], float]:
    """A finite number of seconds, ``>= 0`` (or ``> 0`` when ``positive``)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            bound = "> 0" if positive else ">= 0"
            raise argparse.ArgumentTypeError(f"must be a finite number of seconds {bound}, got {text!r}")
        return value

    parse.__name__ = "seconds"
    return parse


def non_empty(text: str) -> str:
    """A non-blank string (names, hosts, URLs), kept as given."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"must be a non-empty string, got {text!r}")
    return text


def task(max_chars: int | None = None) -> Callable[[str], str]:
    """A task: a non-blank string (of at most ``max_chars`` characters), kept as given."""

    def parse(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"must be a non-empty task, got {text!r}")
        if max_chars is not None and len(text) > max_chars:
            raise argparse.ArgumentTypeError(f"must be at most {max_chars} characters, got {len(text)}")
        return text

    parse.__name__ = "task"
    return parse
