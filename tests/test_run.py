"""The run drivers: asyncio (run_events) and virtual time (play_virtual) execute one machine alike."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from reactivex.notification import OnError
from reactivex.testing import TestScheduler

from rxagents._run import RetryPolicy, RunSpec, run_events, run_observable
from rxagents.errors import RxAgentsError
from rxagents.events import TokenEvent
from rxagents.models import OfflineModel

SCENARIOS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "clean, two loops": ({"length": 6}, {"max_loops": 2}),
    "fails before output, retried": ({"fail_after": 0, "fail_times": 1}, {"retry": RetryPolicy(backoff=0.01)}),
    "fails after output": ({"fail_after": 3}, {"retry": RetryPolicy(backoff=0.01)}),
    "restarts after output": (
        {"fail_after": 3, "fail_times": 1},
        {"retry": RetryPolicy(backoff=0.01, after_tokens="restart"), "max_loops": 2},
    ),
    "retries run out": ({"fail_after": 0}, {"retry": RetryPolicy(retries=2, backoff=0.01)}),
    "not retryable": ({"fail_after": 0, "error_status": 400}, {"retry": RetryPolicy(backoff=0.01)}),
    "stalls mid-stream": ({"stall_after": 2}, {"stall_timeout": 0.05}),
    "silent from the start": ({"stall_after": 0}, {"first_token_timeout": 0.05, "retry": RetryPolicy(backoff=0)}),
}


def spec(model: dict[str, Any], run: dict[str, Any]) -> RunSpec:
    return RunSpec(agent="A", backend=OfflineModel(**({"length": 5} | model)), model="offline", **run)


def shape(events: list[TokenEvent]) -> list[tuple[str, int, int, str]]:
    return [(e.kind.value, e.seq, e.loop, e.text) for e in events]


def virtual(spec: RunSpec) -> tuple[list[TokenEvent], BaseException | None]:
    scheduler = TestScheduler()
    results = scheduler.start(lambda: run_observable(spec, "Explain drivers", scheduler), disposed=10**6)
    events = [m.value.value for m in results.messages if m.value.kind == "N"]
    last = results.messages[-1].value
    return events, last.exception if isinstance(last, OnError) else None


async def on_the_loop(spec: RunSpec) -> tuple[list[TokenEvent], BaseException | None]:
    loop = asyncio.get_running_loop()
    events: list[TokenEvent] = []
    try:
        async for event in run_events(spec, "Explain drivers", loop.time):
            events.append(event)
    except RxAgentsError as error:
        return events, error
    return events, None


@pytest.mark.parametrize("name", SCENARIOS)
def test_both_drivers_give_the_same_run(name: str) -> None:
    model, run = SCENARIOS[name]
    expected, expected_error = virtual(spec(model, run))
    got, error = asyncio.run(on_the_loop(spec(model, run)))
    assert shape(got) == shape(expected)
    assert type(error) is type(expected_error)
    if isinstance(error, RxAgentsError) and isinstance(expected_error, RxAgentsError):
        assert error.partial_text == expected_error.partial_text
        assert str(error) == str(expected_error)


def test_a_network_backend_in_virtual_time_is_refused_with_the_fix() -> None:
    class Network:
        name = "network"

        def stream(self, request: Any) -> Any:
            raise AssertionError("never called")

    scheduler = TestScheduler()
    network = RunSpec(agent="A", backend=Network(), model="gpt-x")
    results = scheduler.start(lambda: run_observable(network, "t", scheduler))
    error = results.messages[-1].value.exception
    assert "needs a scripted backend" in str(error) and "Use an asyncio scheduler" in str(error)
