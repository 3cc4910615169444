"""The SSE dashboard page in headless Chromium, served from a bus by two servers behind one address (a tiny
proxy standing in for a load balancer): a run starts on the first server, the page reloads onto the second, and
resumes with Last-Event-ID — every agent's text whole, no gap, no duplicate."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.support.ui import WebDriverWait

from rxagents.bus import BusRuns, LocalNatsServer, Worker, connect_bus
from rxagents.sinks import serve_sse
from tests.bus.brokers import fresh_group, queue_names
from tests.sinks.test_browser import CHROMEDRIVER, CHROMIUM, TEXTS, browser, lanes, run_state  # noqa: F401

pytestmark = pytest.mark.skipif(
    not all(__import__("os").access(path, __import__("os").X_OK) for path in (CHROMIUM, CHROMEDRIVER)),
    reason=f"headless browser test needs {CHROMIUM} and {CHROMEDRIVER}",
)
SPEC = {"workflow": {"kind": "concurrent", "name": "Bus browser test", "agents": [
    {"agent_name": name, "offline": {"text": text, "pace": 0.04}} for name, text in TEXTS.items()
]}}  # fmt: skip


class Proxy:
    """One address in front of two servers: new connections go to ``target``; :meth:`switch` moves it and cuts
    the open connections. Records the first line of every request and the server it went to."""

    def __init__(self) -> None:
        self.target = 0
        self.requests: list[tuple[int, str]] = []
        self._open: set[asyncio.StreamWriter] = set()
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for writer in list(self._open):
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        target = self.target
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        self._open |= {writer, up_writer}

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter, log: bool) -> None:
            with contextlib.suppress(ConnectionError, OSError):
                while data := await source.read(65536):
                    if log:
                        for line in data.decode("latin-1").split("\r\n"):
                            if line.startswith(("GET ", "POST ")) or line.lower().startswith("last-event-id:"):
                                self.requests.append((target, line))
                    sink.write(data)
                    await sink.drain()
            with contextlib.suppress(Exception):
                sink.close()

        await asyncio.gather(pipe(reader, up_writer, True), pipe(up_reader, writer, False))
        self._open -= {writer, up_writer}

    def switch(self, target: int) -> None:
        self.target = target
        for writer in list(self._open):
            writer.transport.abort()


class Cluster(threading.Thread):
    """A worker and two SSE servers on one bus, and the proxy, on a loop of their own."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.proxy = Proxy()
        self.ports: list[int] = []
        self.ready = threading.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._done: asyncio.Event | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as error:  # surfaced by the test
            self.error = error
            self.ready.set()

    async def _main(self) -> None:
        self.loop, self._done = asyncio.get_running_loop(), asyncio.Event()
        names = queue_names("nats", fresh_group())
        async with connect_bus(self.url, **names) as first, connect_bus(self.url, **names) as second:
            worker = Worker(first, redeliver_after=5.0)
            working = asyncio.create_task(worker.run())
            async with serve_sse(BusRuns(first, SPEC)) as one, serve_sse(BusRuns(second, SPEC)) as two:
                self.ports = [one.address[1], two.address[1]]
                self.proxy.target = self.ports[0]
                await self.proxy.start()
                self.ready.set()
                await self._done.wait()
                await self.proxy.close()
            worker.stop(cancel_runs=True)
            await working

    def switch(self, index: int) -> None:
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.proxy.switch, self.ports[index])

    def close(self) -> None:
        if self.loop is not None and self._done is not None:
            self.loop.call_soon_threadsafe(self._done.set)
        self.join(30)


@pytest.fixture
def cluster(nats_server: LocalNatsServer) -> Iterator[Cluster]:
    running = Cluster(nats_server.url)
    running.start()
    assert running.ready.wait(30) and running.error is None, running.error
    try:
        yield running
    finally:
        running.close()


def test_a_reload_onto_the_other_server_resumes_the_run_from_the_bus(
    browser: webdriver.Chrome, cluster: Cluster  # noqa: F811
) -> None:
    wait = WebDriverWait(browser, 20, poll_frequency=0.02)
    browser.get(f"http://127.0.0.1:{cluster.proxy.port}/?task=Explain+resumable+streams")

    def all_started(driver: Any) -> dict[str, str]:
        texts = lanes(driver)
        return texts if all(texts.get(name) for name in TEXTS) else {}

    wait.until(all_started)
    run_id = run_state(browser)["runId"]
    cluster.switch(1)  # the first server "goes away": new connections reach the second
    before = lanes(browser)
    browser.refresh()
    done = WebDriverWait(browser, 30, poll_frequency=0.05).until(
        lambda driver: (state := run_state(driver))["state"] in ("completed", "failed", "cancelled") and state
    )
    final = lanes(browser)
    first, second = cluster.ports
    requests = list(cluster.proxy.requests)

    assert done["runId"] == run_id and done["state"] == "completed"
    for name, text in TEXTS.items():
        assert before[name] and len(before[name]) < len(text)  # the reload happened mid-run
        assert final[name] == text  # no token missing, none shown twice
    assert (done["duplicates"], done["gaps"]) == ("0", "0")
    events = f"GET /runs/{run_id}/events"
    assert any(port == first and line.startswith(events) for port, line in requests)
    resumed = [line for port, line in requests if port == second and line.startswith(events)]
    assert resumed and "lastEventId=" in resumed[0] and not resumed[0].startswith(f"{events}?lastEventId=0 ")
