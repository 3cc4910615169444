"""One pooled session per event loop, closed when the loop shuts down: no ``unclosed transport``, no fd left.

Each ``asyncio.run(agent.arun(...))`` is a new loop, so a new session; the loop's shutdown must close it (and
its keep-alive connection) or Python warns ``ResourceWarning: unclosed transport`` and the fd stays open.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from unittest import mock

from hypothesis import given
from hypothesis import strategies as st

import rxagents
from rxagents import _runtime
from rxagents.agent import Agent
from rxagents.models import OpenAICompatibleModel
from rxagents.models._http_pool import loop_session, proxy_for
from rxagents.testing._faults import Reply, words
from rxagents.testing._server import LocalModelServer

ROOT = Path(rxagents.__file__).resolve().parents[1]


def _child(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MODE": "PRODUCTION"}
    return subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


def _clean(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stderr[-3000:]
    for word in ("ResourceWarning", "nclosed", "Exception ignored"):
        assert word not in result.stderr, result.stderr[-3000:]


RUNS = """
    import asyncio, gc, json, os, sys
    from rxagents import Agent

    def fds():
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

    agent = Agent(agent_name="Looped", model_name="loops", api_base=sys.argv[1], print_on=False)
    assert agent.llm.name == "direct"
    answers, counts = [], []
    for _ in range(20):
        answers.append(asyncio.run(agent.arun("hello")))
        counts.append(fds())
    print(json.dumps({"answers": len([a for a in answers if a]), "fds": counts, "litellm": "litellm" in sys.modules}))
"""


def test_twenty_asyncio_runs_leave_no_transport_no_fd_and_no_litellm(model_server: LocalModelServer) -> None:
    result = _child(RUNS, model_server.url)
    _clean(result)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["answers"] == 20
    fds = report["fds"]
    assert fds[-1] == fds[0], f"open fds grew run after run: {fds}"
    assert report["litellm"] is False  # the direct backend never imports it


EXIT = """
    import sys, threading
    from rxagents import Agent

    agent = Agent(agent_name="Exiting", model_name="exit", api_base=sys.argv[1], print_on=False)
    done = threading.Event()
    tokens = []
    agent.stream("hello").subscribe(tokens.append, lambda e: done.set(), done.set)  # on the runtime loop
    assert done.wait(60) and tokens
    print("ok", flush=True)
"""


def test_the_runtime_loops_session_is_closed_at_interpreter_exit(model_server: LocalModelServer) -> None:
    before = model_server.open_connections
    result = _child(EXIT, model_server.url)
    _clean(result)
    assert result.stdout.strip() == "ok"
    assert model_server.wait_until(lambda: model_server.open_connections <= before, 5)


def test_one_session_per_loop_shared_by_its_runs() -> None:
    async def twice() -> tuple[object, object]:
        return await loop_session(), await loop_session()

    first, again = asyncio.run(twice())
    assert first is again and first is not None
    assert first.closed  # type: ignore[attr-defined]  # the loop that made it closed it when it shut down
    second, _ = asyncio.run(twice())
    assert second is not first


def test_a_loop_shutting_down_closes_only_its_own_session(model_server: LocalModelServer) -> None:
    """The runtime loop's pooled session survives another loop's shutdown and serves the next request."""
    agent = Agent(agent_name="Both", model_name="both-loops-direct", api_base=model_server.url, print_on=False,
                  retries=0)  # fmt: skip
    for _ in range(3):
        model_server.enqueue(Reply(tokens=words("still served")), model="both-loops-direct")

    def on_runtime() -> str:
        return asyncio.run_coroutine_threadsafe(agent.arun("t"), _runtime.runtime_loop()).result(timeout=60)

    assert on_runtime() == "still served"  # a session pooled on the runtime loop
    assert asyncio.run(agent.arun("t")) == "still served"  # another loop: its session closes when it ends
    assert on_runtime() == "still served"  # the runtime loop's session was not closed with it
    session = asyncio.run_coroutine_threadsafe(loop_session(), _runtime.runtime_loop()).result(timeout=10)
    assert session is not None and not session.closed


# --- proxies: read by name, as urllib reads them --------------------------------------------------------------
_PROXY_NAMES = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")
_VALUES = st.sampled_from([None, "", "http://p:1", "http://q:2"])
_BYPASS = st.sampled_from([None, "", "127.0.0.1", "host.test", "*", "other.test,.test"])


def _urllib_proxy(url: str, host: str) -> str | None:
    """What urllib's whole-environment scan gives (the implementation proxy_for replaced)."""
    proxies = urllib.request.getproxies_environment()
    proxy = proxies.get(url.split(":", 1)[0]) or proxies.get("all")
    if not proxy or urllib.request.proxy_bypass_environment(host, proxies):  # type: ignore[attr-defined]
        return None
    return proxy


@given(
    values=st.fixed_dictionaries({name: _VALUES for name in _PROXY_NAMES}),
    no_proxy=st.tuples(_BYPASS, _BYPASS),
    cgi=st.booleans(),
    scheme=st.sampled_from(["http", "https"]),
    host=st.sampled_from(["127.0.0.1", "host.test", "api.openai.com"]),
)
def test_proxy_for_reads_the_environment_as_urllib_does(
    values: dict[str, str | None], no_proxy: tuple[str | None, str | None], cgi: bool, scheme: str, host: str
) -> None:
    env = {**values, "no_proxy": no_proxy[0], "NO_PROXY": no_proxy[1], "REQUEST_METHOD": "GET" if cgi else None}
    url = f"{scheme}://{host}/v1/chat/completions"
    cleared = {name: value for name, value in os.environ.items() if not name.lower().endswith("_proxy")}
    cleared.pop("REQUEST_METHOD", None)
    with mock.patch.dict(os.environ, cleared, clear=True):
        os.environ.update({name: value for name, value in env.items() if value is not None})
        assert proxy_for(url, host) == _urllib_proxy(url, host)


# --- the pool's size: configurable per backend ------------------------------------------------------------------
def test_max_connections_bounds_the_streams_open_at_once(model_server: LocalModelServer) -> None:
    """12 gathered runs through a backend whose pool holds 4 connections: every run completes, with its own text,
    and the server never serves more than 4 at once (the others wait for a free connection)."""
    backend = OpenAICompatibleModel(max_connections=4)
    models = [f"pool-4-{os.getpid()}-{i}" for i in range(12)]
    for i, model in enumerate(models):
        model_server.enqueue(Reply(tokens=words(f"run {i} done"), token_delay=0.02), model=model)
    agents = [Agent(agent_name=f"P{i}", llm=backend, model_name=model, api_base=model_server.url, print_on=False)
              for i, model in enumerate(models)]  # fmt: skip

    async def main() -> list[str]:
        return await asyncio.wait_for(asyncio.gather(*(agent.arun("t") for agent in agents)), 60)

    assert asyncio.run(main()) == [f"run {i} done" for i in range(12)]
    records = [r for r in model_server.closed_streams if r.model in models]
    assert len(records) == 12 and {r.outcome for r in records} == {"completed"}
    edges = sorted([(r.ended_at, -1) for r in records] + [(r.started_at, 1) for r in records])  # ends first
    open_now = [sum(step for _, step in edges[: i + 1]) for i in range(len(edges))]
    assert max(open_now) <= 4
