"""litellm's per-loop HTTP clients are closed when their loop shuts down: no ``unclosed transport``.

litellm caches one client per event loop and never closes it, so each ``asyncio.run(agent.arun(...))`` used to
leave a pooled connection behind (one more fd per run) and Python warned ``ResourceWarning: unclosed transport``
for each when it collected them.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import rxagents
from rxagents import _runtime
from rxagents.agent import Agent
from rxagents.testing._faults import Reply, words
from rxagents.testing._server import LocalModelServer

ROOT = Path(rxagents.__file__).resolve().parents[1]

# litellm 1.110.2 touches deprecated pydantic instance attributes on usage chunks (not ours to fix).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Accessing the 'model_(computed_)?fields' attribute on the instance is deprecated:DeprecationWarning"
)

RUNS = textwrap.dedent(
    """
    import asyncio, gc, json, os, sys
    from rxagents import Agent

    def fds():
        gc.collect()
        return len(os.listdir("/proc/self/fd"))

    agent = Agent(agent_name="Looped", model_name="loops", api_base=sys.argv[1], print_on=False)
    answers, counts = [], []
    for _ in range(20):
        answers.append(asyncio.run(agent.arun("hello")))
        counts.append(fds())
    print(json.dumps({"answers": len([a for a in answers if a]), "fds": counts}), flush=True)
    """
)


def test_twenty_asyncio_runs_leave_no_transport_and_no_fd(model_server: LocalModelServer) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MODE": "PRODUCTION"}
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-c", RUNS, model_server.url],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["answers"] == 20
    fds = report["fds"]
    assert fds[-1] == fds[0], f"open fds grew run after run: {fds}"
    assert "ResourceWarning" not in result.stderr and "unclosed" not in result.stderr, result.stderr[-3000:]


def test_a_loop_shutting_down_closes_only_its_own_clients(model_server: LocalModelServer) -> None:
    """The runtime loop's cached client survives another loop's shutdown and serves the next request."""
    agent = Agent(agent_name="Both", model_name="both-loops", api_base=model_server.url, print_on=False, retries=0)
    for _ in range(3):
        model_server.enqueue(Reply(tokens=words("still served")), model="both-loops")

    def on_runtime() -> str:
        return asyncio.run_coroutine_threadsafe(agent.arun("t"), _runtime.runtime_loop()).result(timeout=60)

    assert on_runtime() == "still served"  # a client cached for the runtime loop
    assert asyncio.run(agent.arun("t")) == "still served"  # another loop: its clients close when it ends
    assert on_runtime() == "still served"  # the runtime loop's client was not closed with them
