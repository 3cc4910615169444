"""What the live views (:func:`~rxagents.sinks.panel`, :func:`~rxagents.sinks.dashboard`) share as sinks: the
checks of their arguments and the words of their status lines."""

from __future__ import annotations

import math
from collections.abc import Sequence

__all__ = ["agent_names", "check_dashboard", "check_panel", "check_refresh_rate", "count", "describe", "fmt_rate"]

_MAX_RATE = 60.0


def check_refresh_rate(refresh_per_second: object) -> float:
    """Validate a frame rate: a finite number in (0, 60]."""
    if (
        isinstance(refresh_per_second, bool)
        or not isinstance(refresh_per_second, int | float)
        or not math.isfinite(refresh_per_second)
        or not 0 < refresh_per_second <= _MAX_RATE
    ):
        raise ValueError(
            f"refresh_per_second must be a number > 0 and <= {_MAX_RATE:g}, got {refresh_per_second!r} "
            "(8 is smooth; lower it to spend less CPU on drawing)"
        )
    return float(refresh_per_second)


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def fmt_rate(rate: float | None) -> str:
    return "" if rate is None else f"{rate:,.1f} tok/s"


def describe(error: BaseException | None) -> str:
    if error is None:
        return "error"
    return f"{type(error).__name__}: {error}"


def agent_names(agents: object) -> tuple[str, ...]:
    if isinstance(agents, str | bytes) or not isinstance(agents, Sequence):
        raise ValueError(
            f"agents must be a sequence of agent names (or Agents), got {agents!r}; "
            "e.g. agents=['Researcher', 'Writer']"
        )
    names = []
    for agent in agents:
        name = getattr(agent, "agent_name", agent)
        if not isinstance(name, str) or not name:
            raise ValueError(f"agents must hold non-empty names (or Agents with agent_name), got {agent!r}")
        names.append(name)
    return tuple(names)


def check_dashboard(title: object, compact: object, tail_lines: object, refresh_per_second: object) -> float:
    if not isinstance(title, str):
        raise ValueError(f"title must be a string, got {title!r}")
    if compact is not None and not isinstance(compact, bool):
        raise ValueError(f"compact must be True, False or None (choose by size), got {compact!r}")
    if isinstance(tail_lines, bool) or not isinstance(tail_lines, int) or tail_lines < 1:
        raise ValueError(f"tail_lines must be an int >= 1, got {tail_lines!r}")
    return check_refresh_rate(refresh_per_second)


def check_panel(title: object, border_style: object, refresh_per_second: object) -> float:
    if title is not None and not isinstance(title, str):
        raise ValueError(f"title must be a string or None (default '🤖 AGENT'), got {title!r}")
    if not isinstance(border_style, str):
        raise ValueError(f"border_style must be a rich style string such as 'blue', got {border_style!r}")
    return check_refresh_rate(refresh_per_second)
