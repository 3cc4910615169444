"""rxagents/_runtime.py: the backpressure Gate between stream readers and one consumer; the loop clock."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rxagents._runtime import Gate, clock, loop_clock, loop_scheduler


@pytest.mark.parametrize("size", [0, -1, 1.5, True, None])
def test_gate_size_must_be_a_positive_int(size: Any) -> None:
    with pytest.raises(ValueError, match="size must be an int >= 1"):
        Gate(size)


def test_readers_wait_while_the_gate_is_full_and_resume_when_the_consumer_takes() -> None:
    async def main() -> list[str]:
        gate = Gate(2)
        log: list[str] = []

        async def reader(name: str) -> None:
            gate.handed_over()
            await gate.wait()
            log.append(name)

        await reader("r1")  # one item waits: room, returns at once
        first, second = asyncio.ensure_future(reader("r2")), asyncio.ensure_future(reader("r3"))
        for _ in range(10):
            await asyncio.sleep(0)
        assert gate.full and log == ["r1"]  # three items wait for a consumer of size 2: both readers wait
        gate.take()  # still two waiting: full
        for _ in range(10):
            await asyncio.sleep(0)
        assert log == ["r1"]
        gate.take()  # one waiting: room for both readers
        await asyncio.gather(first, second)
        return log

    assert asyncio.run(main()) == ["r1", "r2", "r3"]


def test_the_loop_clock_reads_the_schedulers_seconds_from_the_loops_time() -> None:
    loop = asyncio.new_event_loop()
    try:
        scheduler = loop_scheduler(loop)
        before = clock(scheduler)
        now = loop_clock(loop)
        readings = [now() for _ in range(1000)]
        after = clock(scheduler)
        # the same clock (epoch seconds, as scheduler.now), within what the two clocks may drift apart meanwhile
        assert before - 0.5 <= readings[0] and readings[-1] <= after + 0.5
        assert readings == sorted(readings)  # never backwards: the loop's clock is monotonic
    finally:
        loop.close()
