"""The run drivers: asyncio (run_events) and virtual time (play_virtual) execute one machine alike."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from reactivex.notification import OnError
from reactivex.testing import TestScheduler

from rxagents import _runtime
from rxagents._run import RetryPolicy, RunSpec, run_events, run_observable
from rxagents.errors import RxAgentsError, StallTimeout
from rxagents.events import EventKind, TokenEvent
from rxagents.models import Delta, ModelRequest, OfflineModel

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


class Paced:
    """Yields one token after each delay (None: never again), then the finish."""

    name = "paced"

    def __init__(self, delays: list[float | None]) -> None:
        self.delays = delays

    async def _deltas(self) -> AsyncIterator[Delta]:
        for i, delay in enumerate(self.delays):
            if delay is None:
                await asyncio.Event().wait()
            elif delay:
                await asyncio.sleep(delay)
            yield Delta(EventKind.TOKEN, text=f"t{i} ")
        yield Delta(EventKind.FINISH, finish_reason="stop")

    def stream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        return self._deltas()


def paced(delays: list[float | None], **run: Any) -> RunSpec:
    return RunSpec(agent="A", backend=Paced(delays), model="paced", **run)


async def text_of(spec: RunSpec, *, consumer_pause: float = 0.0) -> str:
    async def consume() -> str:
        parts = []
        async for event in run_events(spec, "t", asyncio.get_running_loop().time):
            parts.append(event.text if event.kind is EventKind.TOKEN else "")
            if consumer_pause:
                await asyncio.sleep(consumer_pause)
        return "".join(parts)

    return await asyncio.wait_for(consume(), 20)  # far beyond any limit below: a hang fails, never a slow machine


def test_a_run_longer_than_its_stall_limit_completes_while_each_delta_comes_within_it() -> None:
    text = asyncio.run(text_of(paced([0.04] * 8, stall_timeout=0.2, first_token_timeout=0.2)))
    assert text == "".join(f"t{i} " for i in range(8))


def test_a_stall_limit_shorter_than_the_first_token_limit_runs_from_each_delta() -> None:
    spec = paced([0, 0, None], first_token_timeout=30, stall_timeout=0.05)
    with pytest.raises(StallTimeout) as caught:
        asyncio.run(text_of(spec))
    assert caught.value.phase == "stall" and caught.value.partial_text == "t0 t1 "


def test_silence_before_the_first_token_fails_at_the_first_token_limit() -> None:
    with pytest.raises(StallTimeout) as caught:
        asyncio.run(text_of(paced([None], first_token_timeout=0.05, stall_timeout=30)))
    assert caught.value.phase == "first_token" and caught.value.partial_text == ""


def test_a_consumer_slower_than_the_stall_limit_is_not_a_silent_model() -> None:
    spec = paced([0] * 4, first_token_timeout=0.05, stall_timeout=0.05)
    assert asyncio.run(text_of(spec, consumer_pause=0.15)) == "t0 t1 t2 t3 "


def test_a_run_waiting_at_a_full_gate_is_not_a_silent_model() -> None:
    """A gated run (arun's) hands over an event, finds its consumer's buffer full and waits, suspended at its yield:
    no pull runs meanwhile, so a consumer slower than the stall limit never fails the run."""
    gate = _runtime.Gate(1)
    got: list[str] = []
    times: list[float] = []

    async def main() -> None:
        done = asyncio.get_running_loop().create_future()
        scheduler = _runtime.GatedScheduler(asyncio.get_running_loop(), gate)

        def on_next(event: TokenEvent) -> None:
            gate.handed_over()
            got.append(event.text if event.kind is EventKind.TOKEN else event.kind.value)
            times.append(asyncio.get_running_loop().time())

        run_observable(paced([0] * 4, first_token_timeout=0.05, stall_timeout=0.05), "t", scheduler).subscribe(
            on_next, done.set_exception, lambda: done.set_result(None)
        )
        while not done.done():  # the consumer: one event every 0.15 s, three stall limits
            await asyncio.sleep(0.15)
            gate.take()
        await done

    asyncio.run(asyncio.wait_for(main(), 20))
    assert got == ["start", "t0 ", "t1 ", "t2 ", "t3 ", "finish"]
    assert times[-1] - times[0] >= 0.5  # each event after the first waited for a take (0.15 s apart): it was held


def test_a_finished_run_leaves_no_timer_on_the_loop() -> None:
    async def main() -> list[asyncio.TimerHandle]:
        assert await text_of(paced([0, 0.01], first_token_timeout=30, stall_timeout=30)) == "t0 t1 "
        loop = asyncio.get_running_loop()
        return [h for h in getattr(loop, "_scheduled", []) if not h.cancelled()]

    assert asyncio.run(main()) == []


def _recorded_virtually(spec: RunSpec, record: list[TokenEvent]) -> list[TokenEvent]:
    scheduler = TestScheduler()
    results = scheduler.start(lambda: run_observable(spec, "t", scheduler, record=record))
    return [m.value.value for m in results.messages if m.value.kind == "N"]


def _recorded_on_the_loop(spec: RunSpec, record: list[TokenEvent]) -> list[TokenEvent]:
    async def main() -> list[TokenEvent]:
        got: list[TokenEvent] = []
        done = asyncio.Event()
        run_observable(spec, "t", record=record).subscribe(got.append, lambda _: done.set(), done.set)
        await done.wait()
        return got

    return asyncio.run(main())


@pytest.mark.parametrize("driver", [_recorded_virtually, _recorded_on_the_loop])
@pytest.mark.parametrize("name", ["clean, two loops", "fails after output"])
def test_a_run_keeps_its_events_in_the_record_it_is_given(name: str, driver: Any) -> None:
    record: list[TokenEvent] = []
    got = driver(spec(*SCENARIOS[name]), record)
    assert got and len(record) == len(got) and all(a is b for a, b in zip(record, got, strict=True))
