"""rxagents/_runtime.py: the backpressure Gate between stream readers and one consumer."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from rxagents._runtime import Gate


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
