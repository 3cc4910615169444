"""Pages in headless Chromium: the SSE dashboard (text grows live per agent; a reload resumes with no gap or
duplicate), and WebSocket clients of several origins (only the allowed one is served).

Needs the Debian packages ``chromium`` and ``chromium-driver`` (installed by ``.ci/run``); skipped only when their
binaries are absent. Selenium is pointed at them explicitly, so selenium-manager never downloads anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.server
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

from rxagents import Agent, ConcurrentWorkflow
from rxagents._loop_thread import LoopThread
from rxagents.models import OfflineModel
from rxagents.models._offline import tokenize
from rxagents.sinks._sse import serve_sse
from rxagents.sinks._websocket import WebSocketServer, WebSocketStats, serve_websocket

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

pytestmark = pytest.mark.skipif(
    not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)),
    reason=f"headless browser test needs {CHROMIUM} and {CHROMEDRIVER} (apt-get install chromium chromium-driver)",
)

PACE = 0.04  # seconds between tokens: each answer takes about 2 s, long enough to watch and to reload mid-run
TEXTS = {
    "Researcher": (
        "Streams of tokens are values. A dashboard subscribes, a logger subscribes, and each sees the same events "
        "in the same order, because every run is a cold observable with its own sequence numbers."
    ),
    "Analyst": (
        "Resuming is bookkeeping: the browser remembers the id of the last message it applied, and the server "
        "replays exactly the messages after it, so nothing is lost and nothing is shown twice."
    ),
    "Critic": (
        "A reload is the hardest case for a live page. The text restored from session storage and the id stored "
        "with it must match exactly, or the resumed stream would repeat or skip a token."
    ),
}

LANES_JS = """
const out = {};
for (const lane of document.querySelectorAll("section.lane")) {
  out[lane.dataset.agent] = lane.querySelector("[data-role=text]").textContent;
}
return out;
"""
RUN_JS = "return Object.assign({}, document.getElementById('run').dataset);"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
        "--disable-quic", "--no-proxy-server", "--window-size=1280,900", f"--user-data-dir={tmp_path / 'profile'}",
    ):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def lanes(driver: Any) -> dict[str, str]:
    texts: dict[str, str] = driver.execute_script(LANES_JS)
    return texts


def run_state(driver: Any) -> dict[str, str]:
    state: dict[str, str] = driver.execute_script(RUN_JS)
    return state


def test_the_texts_take_a_couple_of_seconds_to_stream() -> None:  # what the browser test below relies on
    assert all(40 <= len(tokenize(text)) <= 70 for text in TEXTS.values())


def test_page_shows_text_growing_per_agent_and_a_reload_resumes_without_gaps(browser: webdriver.Chrome) -> None:
    agents = [
        Agent(agent_name=name, llm=OfflineModel(text=text, pace=PACE), print_on=False) for name, text in TEXTS.items()
    ]
    workflow = ConcurrentWorkflow(name="Browser test", agents=agents)
    wait = WebDriverWait(browser, 15, poll_frequency=0.02)

    with serve_sse(workflow) as server:
        browser.get(f"{server.url}/?task=Explain+resumable+streams")

        def all_started(driver: Any) -> dict[str, str]:  # {} (falsy) keeps WebDriverWait polling
            texts = lanes(driver)
            return texts if set(texts) == set(TEXTS) and all(texts.values()) else {}

        first = wait.until(all_started)

        def all_grown(driver: Any) -> dict[str, str]:
            texts = lanes(driver)
            return texts if all(len(texts[name]) > len(first[name]) for name in TEXTS) else {}

        grown = wait.until(all_grown)
        live = run_state(browser)
        run_id = live["runId"]
        assert live["state"] == "streaming"
        assert server.run_info(run_id).status == "running"  # so the reload below happens mid-run
        for name, text in TEXTS.items():  # text appears incrementally: growing prefixes of the answer
            assert 0 < len(first[name]) < len(grown[name]) < len(text)
            assert text.startswith(grown[name])

        before_reload = lanes(browser)
        browser.refresh()
        restored = run_state(browser)
        restored_texts = lanes(browser)
        done = WebDriverWait(browser, 20, poll_frequency=0.05).until(
            lambda driver: (
                (state := run_state(driver))["state"] in ("completed", "failed", "cancelled", "disconnected") and state
            )
        )
        final = lanes(browser)
        info = server.run_info(run_id)
        runs = server.runs()

    assert restored["runId"] == run_id and restored["restored"] == "1"  # the same run, state from sessionStorage
    for name, text in TEXTS.items():
        assert restored_texts[name].startswith(before_reload[name]) and text.startswith(restored_texts[name])
    assert done["state"] == "completed"
    assert final == TEXTS  # no token missing, none shown twice
    assert (done["duplicates"], done["gaps"]) == ("0", "0")
    assert [r.run_id for r in runs] == [run_id]  # the reload re-attached instead of starting a second run
    assert len(info.resumes) == 1 and 0 < info.resumes[0] < info.events  # resumed mid-run after Last-Event-ID
    assert done["lastEventId"] == str(info.events)


# --- WebSocket: which pages may connect ------------------------------------------------------------------------

WS_PAGE = b"""<!doctype html><meta charset="utf-8"><title>client</title><pre id="out"></pre><script>
const result = window.wsResult = {opened: false, messages: [], closed: null, error: false};
const ws = new WebSocket(new URLSearchParams(location.search).get("ws"));
ws.onopen = () => { result.opened = true; ws.send(JSON.stringify({task: "Explain origins"})); };
ws.onmessage = (e) => {
  const m = JSON.parse(e.data);
  result.messages.push(m);
  if (m.type === "token") document.getElementById("out").textContent += m.content;
};
ws.onerror = () => { result.error = true; };
ws.onclose = (e) => { result.closed = e.code; };
</script>"""


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(WS_PAGE)))
        self.end_headers()
        self.wfile.write(WS_PAGE)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def page_server() -> Iterator[int]:
    """Serve the WebSocket client page on 127.0.0.1 (any path); yields the port. Its origin is its own."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    thread = threading.Thread(target=server.serve_forever, name="page-server", daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@contextlib.contextmanager
def websocket_thread(source: Any, **kwargs: Any) -> Iterator[tuple[WebSocketServer, asyncio.AbstractEventLoop]]:
    """``serve_websocket(source, **kwargs)`` on its own loop in a thread, for a synchronous (Selenium) test."""
    server = serve_websocket(source, **kwargs)
    worker = LoopThread("websocket-server").start(server.start(), timeout=30)
    try:
        yield server, worker.loop
    finally:
        worker.stop(server.aclose, timeout=10)


def stats_of(server: WebSocketServer, loop: asyncio.AbstractEventLoop) -> WebSocketStats:
    """The server's stats, read on its own loop."""

    async def read() -> WebSocketStats:
        return server.stats

    return asyncio.run_coroutine_threadsafe(read(), loop).result(10)


def ws_result(driver: Any, url: str) -> dict[str, Any]:
    """Open the client page at ``url`` and wait until its WebSocket closed; what the page saw."""
    driver.get(url)
    result: dict[str, Any] = WebDriverWait(driver, 20, poll_frequency=0.05).until(
        lambda d: d.execute_script("return window.wsResult && window.wsResult.closed !== null && window.wsResult")
    )
    return result


def test_websocket_serves_the_allowed_page_and_refuses_pages_of_other_origins(browser: webdriver.Chrome) -> None:
    text = TEXTS["Researcher"]
    agent = Agent(agent_name="Researcher", llm=OfflineModel(text=text, pace=0.005), print_on=False)
    with page_server() as app_port, page_server() as other_port:
        app = f"http://127.0.0.1:{app_port}"
        with websocket_thread(agent, allowed_origins=[app]) as (server, loop):
            query = f"/?ws={server.url}"
            # Another port is another origin, and so is another name for the same port: both refused.
            foreign = [ws_result(browser, f"http://127.0.0.1:{other_port}{query}"),
                       ws_result(browser, f"http://localhost:{app_port}{query}")]  # fmt: skip
            after_foreign = stats_of(server, loop)
            served = ws_result(browser, f"{app}{query}")
            shown = browser.find_element("id", "out").text
            stats = stats_of(server, loop)

    for seen in foreign:
        assert (seen["opened"], seen["messages"], seen["error"], seen["closed"]) == (False, [], True, 1006)
    assert (after_foreign.forbidden, after_foreign.connections, after_foreign.runs_started) == (2, 0, 0)

    assert served["opened"] and not served["error"] and served["closed"] == 1000
    tokens = [m["content"] for m in served["messages"] if m["type"] == "token"]
    assert len(tokens) == len(tokenize(text))  # one message per token, as they were generated
    assert "".join(tokens) == text
    assert shown == text.strip()
    assert served["messages"][-1] == {"type": "complete", "content": text}
    assert (stats.forbidden, stats.connections, stats.runs_completed) == (2, 1, 1)
