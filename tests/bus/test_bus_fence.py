"""Fencing stale attempts, on every adapter: once a newer attempt at a run began (its task was delivered again
while the first worker stalled or lost the broker), the broker refuses the older attempt's writes, so attached
consumers see one well-formed run (``start ... retry`` then the new attempt only) with the new attempt's text,
and a worker whose attempt is fenced stops its run instead of going on."""

from __future__ import annotations

import asyncio

import pytest
import reactivex

from rxagents.bus import AttemptFenced, Bus, Fence, Worker, aattach, apublish, publish, submit
from rxagents.bus._attempt import continue_run
from rxagents.errors import ConfigurationError
from rxagents.events import EventKind, TokenEvent
from rxagents.testing import assert_well_formed_run
from tests.bus.brokers import collect, fresh_run_id

pytestmark = pytest.mark.asyncio


def attempt_events(run_id: str, words: list[str], t0: float) -> list[TokenEvent]:
    """One attempt's run: start, a token per word, finish (times increasing from ``t0``)."""
    events = [TokenEvent(EventKind.START, "A", run_id, 0, time=t0, model="m")]
    events += [TokenEvent(EventKind.TOKEN, "A", run_id, i + 1, text=w, time=t0 + i + 1, model="m")
               for i, w in enumerate(words)]  # fmt: skip
    events.append(TokenEvent(EventKind.FINISH, "A", run_id, len(words) + 1, finish_reason="stop",
                             time=t0 + len(words) + 1, model="m"))  # fmt: skip
    return events


def continued(events: list[TokenEvent], last: object, now: float) -> list[TokenEvent]:
    out: list[TokenEvent] = []
    continue_run(last, "started over", lambda: now)(reactivex.from_iterable(events)).subscribe(out.append)  # type: ignore[arg-type]
    return out


@pytest.mark.parametrize("coalesce", [False, True])
async def test_a_stale_attempt_resuming_after_a_newer_one_began_is_refused(bus: Bus, coalesce: bool) -> None:
    run_id = fresh_run_id("fence")
    old = attempt_events(run_id, ["old0 ", "old1 ", "old2 ", "old3 ", "old4 "], 1.0)
    first = await bus.begin_attempt(run_id)
    assert await apublish(bus, old[:3], fence=first, coalesce=coalesce) == 3  # then it stalls

    second = await bus.begin_attempt(run_id)  # its task went to another worker
    with pytest.raises(AttemptFenced) as refused:  # the first worker comes back before the new one wrote
        await apublish(bus, old[3:5], fence=first, coalesce=coalesce)
    assert refused.value.run_id == run_id and refused.value.unpublished == tuple(old[3:5])
    last = await bus.last_message(run_id)  # read after the fence: what the new attempt continues
    assert last is not None and last.last == 2
    new = continued(attempt_events(run_id, ["new0 ", "new1 ", "new2 "], 20.0), last, 19.0)
    assert await apublish(bus, new[:2], fence=second, coalesce=coalesce) == 2
    with pytest.raises(AttemptFenced):  # and keeps publishing after the new attempt started
        await apublish(bus, old[3:], fence=first, coalesce=coalesce)
    assert await apublish(bus, new[2:], fence=second, coalesce=coalesce) == len(new) - 2

    events, error = await asyncio.wait_for(collect(aattach(bus, run_id)), 20)
    assert error is None
    assert_well_formed_run(events)
    assert events == old[:3] + new
    after_retry = events[3:]
    assert after_retry[0].kind is EventKind.RETRY and not any("old" in e.text for e in after_retry)
    assert "".join(e.text for e in after_retry if e.kind is EventKind.TOKEN) == "new0 new1 new2 "
    [info] = [run for run in await bus.runs() if run.run_id == run_id]
    assert (info.status, info.last_seq, info.tokens) == ("finished", new[-1].seq, 5)


async def test_the_publish_operator_of_a_fenced_attempt_fails_and_disposes_its_source(bus: Bus) -> None:
    run_id = fresh_run_id("fence-op")
    first = await bus.begin_attempt(run_id)
    source: reactivex.subject.Subject[TokenEvent] = reactivex.subject.Subject()
    done: asyncio.Future[BaseException | None] = asyncio.get_running_loop().create_future()
    source.pipe(publish(bus, fence=first)).subscribe(
        on_error=lambda e: done.set_result(e), on_completed=lambda: done.set_result(None)
    )
    events = attempt_events(run_id, [f"w{i} " for i in range(50)], 1.0)
    source.on_next(events[0])
    await asyncio.sleep(0.2)
    await bus.begin_attempt(run_id)
    for event in events[1:-1]:
        source.on_next(event)
        await asyncio.sleep(0)
        if done.done():
            break
    error = await asyncio.wait_for(done, 10)
    assert isinstance(error, AttemptFenced)
    assert not source.observers  # the source (a model's stream) is disposed
    last = await bus.last_message(run_id)
    assert last is not None and last.last == 0  # nothing after the newer attempt began


async def test_a_fence_must_be_a_fence(bus: Bus) -> None:
    with pytest.raises(ConfigurationError, match=r"fence must be a Fence from await bus.begin_attempt"):
        publish(bus, fence=3)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="fence must be a Fence"):
        await apublish(bus, [], fence="x")  # type: ignore[arg-type]
    one, two = await bus.begin_attempt("r"), await bus.begin_attempt("r")
    assert isinstance(one, Fence) and one.run_id == "r" and two.token > one.token


async def test_a_worker_whose_attempt_was_taken_over_stops_its_run(queue_bus: tuple[Bus, str]) -> None:
    bus, group = queue_bus
    worker = Worker(bus, group=group, redeliver_after=30.0)
    working = asyncio.create_task(worker.run())
    spec = {"agent": {"agent_name": "writer", "model_name": "offline", "offline": {"pace": 0.05, "length": 400}}}
    run_id = await submit(bus, "write at length", spec)
    seen = 0
    stream = aattach(bus, run_id)
    async for event in stream:
        seen += event.kind is EventKind.TOKEN
        if seen == 3:
            break
    await stream.aclose()  # type: ignore[attr-defined]
    await bus.begin_attempt(run_id)  # another worker took the task over
    for _ in range(200):
        if run_id not in worker.running:
            break
        await asyncio.sleep(0.05)
    assert run_id not in worker.running  # stopped long before its 400 tokens at 20/s
    assert (worker.stats.fenced, worker.stats.finished, worker.stats.unacknowledged) == (1, 0, 0)
    stored = await bus.last_message(run_id)
    await asyncio.sleep(0.5)
    assert await bus.last_message(run_id) == stored  # it writes nothing more
    assert stored is not None and not stored.events[-1].is_terminal  # left for the new attempt to end
    worker.stop()
    await asyncio.wait_for(working, 10)
