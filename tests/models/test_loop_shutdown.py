"""Clean-ups registered on a loop run when it shuts down: once each, all of them, on that loop only."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from rxagents.models._loop_shutdown import at_loop_shutdown


def _recorder(ran: list[tuple[str, asyncio.AbstractEventLoop]], name: str) -> Callable[[], Awaitable[None]]:
    async def cleanup() -> None:
        ran.append((name, asyncio.get_running_loop()))

    return cleanup


def test_each_named_cleanup_runs_once_on_its_loop_when_the_loop_shuts_down() -> None:
    ran: list[tuple[str, asyncio.AbstractEventLoop]] = []

    async def main() -> asyncio.AbstractEventLoop:
        assert await at_loop_shutdown("a", _recorder(ran, "a"))
        assert await at_loop_shutdown("a", _recorder(ran, "a-again"))  # the first one registered stays
        assert await at_loop_shutdown("b", _recorder(ran, "b"))
        assert ran == []  # nothing runs before the loop shuts down
        return asyncio.get_running_loop()

    loop = asyncio.run(main())
    assert ran == [("a", loop), ("b", loop)]


def test_a_failing_cleanup_does_not_stop_the_others() -> None:
    ran: list[tuple[str, asyncio.AbstractEventLoop]] = []

    async def fails() -> None:
        raise RuntimeError("boom")

    async def main() -> None:
        await at_loop_shutdown("fails", fails)
        await at_loop_shutdown("works", _recorder(ran, "works"))

    asyncio.run(main())
    assert [name for name, _ in ran] == ["works"]


def test_the_watcher_is_not_a_task() -> None:
    async def main() -> int:
        await at_loop_shutdown("nothing", _recorder([], "nothing"))
        return len(asyncio.all_tasks())

    assert asyncio.run(main()) == 1  # only main(): nothing looks like work left behind
