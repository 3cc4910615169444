"""With default settings a stuck run surfaces at the time docs/reliability.md documents — exactly, in virtual time.

The documented values are read from the timeouts table of docs/reliability.md, so the code, the table and these
tests cannot drift apart.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from typing import Any

import pytest
from reactivex.testing import TestScheduler

from rxagents import Agent
from rxagents._run import RetryPolicy, retryable
from rxagents.errors import ModelError, ProviderUnavailable, StallTimeout, StreamCutError
from rxagents.events import EventKind, TokenEvent
from rxagents.models import OfflineModel
from rxagents.models._litellm import DEFAULT_CONNECT_TIMEOUT

RELIABILITY = Path(__file__).parents[2] / "docs" / "reliability.md"
SUBSCRIBED = 200.0  # TestScheduler.start subscribes at 200 (virtual seconds)


def documented_default(parameter: str) -> float:
    """The default column of the timeouts table row for ``parameter`` (e.g. ``60 s``), in seconds."""
    for line in RELIABILITY.read_text(encoding="utf-8").splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1] == f"`{parameter}`":
            found = re.fullmatch(r"(\d+(?:\.\d+)?) s", cells[2])
            assert found, f"default of {parameter} in docs/reliability.md is not 'N s': {cells[2]!r}"
            return float(found.group(1))
    raise AssertionError(f"docs/reliability.md has no timeouts table row for `{parameter}`")


def _default(parameter: str) -> Any:
    return inspect.signature(Agent.__init__).parameters[parameter].default


def _virtual(agent: Agent) -> tuple[list[TokenEvent], Any]:
    scheduler = TestScheduler()
    results = scheduler.start(lambda: agent.stream("task", scheduler=scheduler))
    messages: list[Any] = list(results.messages)
    return [m.value.value for m in messages if m.value.kind == "N"], messages[-1]


@pytest.mark.parametrize("parameter", ["first_token_timeout", "stall_timeout"])
def test_the_table_documents_the_agents_defaults(parameter: str) -> None:
    assert documented_default(parameter) == _default(parameter)


def test_the_table_has_the_connect_whole_run_and_retry_rows() -> None:
    text = RELIABILITY.read_text(encoding="utf-8")
    section = text[text.index("## Timeouts: when a stuck run surfaces") : text.index("## Fault matrix")]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| phase")]
    phases = [row.split("|")[1].strip() for row in rows]
    assert [p.split(" ")[0] for p in phases] == ["connect", "first", "between", "waiting", "whole"]
    assert f"| {DEFAULT_CONNECT_TIMEOUT:g} s |" in rows[0] and "ProviderUnreachable" in rows[0]
    assert "2 retries" in rows[3] and f"max_wait={RetryPolicy().max_wait:g}" in rows[3]
    assert "| none | no limit |" in rows[4]


def test_a_stall_mid_stream_surfaces_at_the_documented_stall_timeout() -> None:
    stall = documented_default("stall_timeout")
    agent = Agent(agent_name="V", llm=OfflineModel(pace=1.0, text="a b c d", stall_after=2), print_on=False)
    events, end = _virtual(agent)
    assert [e.kind for e in events] == [EventKind.START, EventKind.TOKEN, EventKind.TOKEN, EventKind.ERROR]
    assert end.value.kind == "E" and end.time == SUBSCRIBED + 2 + stall  # last token at 202, then the limit
    error = end.value.exception
    assert isinstance(error, StallTimeout) and error.phase == "stall" and error.seconds == stall
    assert error.partial_text == "a b" and error.retries == 0


def test_silence_before_the_first_token_surfaces_at_the_documented_first_token_timeout() -> None:
    first = documented_default("first_token_timeout")
    model = OfflineModel(pace=1.0, text="a b", stall_after=0)
    events, end = _virtual(Agent(agent_name="V", llm=model, print_on=False))
    assert end.value.kind == "E" and end.time == SUBSCRIBED + first  # one limit, not one per retry
    error = end.value.exception
    assert isinstance(error, StallTimeout) and error.phase == "first_token" and error.seconds == first
    assert error.retries == 0 and model.requests == 1
    assert [e.kind for e in events] == [EventKind.START, EventKind.ERROR]


def test_a_slow_first_token_inside_the_documented_limit_is_an_answer() -> None:
    first = documented_default("first_token_timeout")
    model = OfflineModel(pace=1.0, first_token_delay=first - 1, text="a b")
    events, end = _virtual(Agent(agent_name="V", llm=model, print_on=False))
    assert end.value.kind == "C"
    assert "".join(e.text for e in events if e.kind is EventKind.TOKEN) == "a b"


def test_retrying_a_first_token_timeout_is_an_opt_in() -> None:
    assert not retryable(StallTimeout("silent", seconds=60, phase="first_token"))
    assert retryable(StallTimeout("silent", seconds=30, phase="stall"))
    assert retryable(ProviderUnavailable("busy", status_code=503)) and retryable(StreamCutError("cut"))
    assert not retryable(ModelError("bad request", status_code=400))
    assert RetryPolicy().retry_on is retryable
