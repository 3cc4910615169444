"""Hypothesis strategies for the suite: the public ones of ``rxagents.testing`` in one place."""

from __future__ import annotations

from rxagents.testing._strategies import (
    AGENT_ALPHABETS,
    SEPARATORS,
    errors,
    gaps,
    multi_agent_runs,
    texts_split,
    timed_runs,
    token_runs,
)

__all__ = [
    "AGENT_ALPHABETS",
    "SEPARATORS",
    "errors",
    "gaps",
    "multi_agent_runs",
    "texts_split",
    "timed_runs",
    "token_runs",
]
