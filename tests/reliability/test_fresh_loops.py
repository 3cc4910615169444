"""A pytest module whose async tests each get a fresh event loop leaves no transport and no fd behind.

pytest-asyncio's default gives every async test a loop of its own, closed after it (``asyncio.Runner``: async
generators shut down, then the loop closed). Each such loop opens its own HTTP clients (the direct backend's
aiohttp session, litellm's cached httpx client); they must be closed when the loop shuts down
(:mod:`rxagents.models._loop_shutdown`), or every test leaves a connection open and Python warns
``ResourceWarning: unclosed transport`` when it collects it. The module below runs in a child pytest, with
``-W error::ResourceWarning``, against this session's local server, on both backends, ``arun`` and ``astream``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import rxagents
from rxagents.testing._server import LocalModelServer

ROOT = Path(rxagents.__file__).resolve().parents[1]

INNER = textwrap.dedent(
    '''
    import asyncio, gc, os

    import pytest

    from rxagents import Agent, EventKind

    URL = os.environ["RXAGENTS_FRESH_LOOPS_URL"]
    BACKENDS = ("direct", "litellm")
    loops: list[asyncio.AbstractEventLoop] = []  # every test's loop: each must be new
    baseline: list[int] = []


    def open_fds() -> int:
        gc.collect()
        return len(os.listdir("/proc/self/fd"))


    def agent(backend: str) -> Agent:
        made = Agent(agent_name="Fresh", model_name="fresh-loops", api_base=URL, api_key="sk-test",
                     backend=backend, print_on=False)
        assert made.llm.name == backend
        return made


    def fresh_loop() -> None:
        loop = asyncio.get_running_loop()
        assert all(loop is not seen for seen in loops), "this test shares a loop with an earlier one"
        loops.append(loop)


    @pytest.mark.asyncio
    @pytest.mark.parametrize("backend", BACKENDS)
    async def test_warm_up(backend: str) -> None:  # imports litellm and whatever a process keeps once
        fresh_loop()
        assert await agent(backend).arun("warm up")


    def test_baseline() -> None:
        baseline.append(open_fds())


    @pytest.mark.asyncio
    @pytest.mark.parametrize("backend", BACKENDS)
    @pytest.mark.parametrize("turn", range(3))
    async def test_arun(backend: str, turn: int) -> None:
        fresh_loop()
        assert await agent(backend).arun(f"arun {turn}")


    @pytest.mark.asyncio
    @pytest.mark.parametrize("backend", BACKENDS)
    @pytest.mark.parametrize("turn", range(3))
    async def test_astream(backend: str, turn: int) -> None:
        fresh_loop()
        kinds = [event.kind async for event in agent(backend).astream(f"astream {turn}")]
        assert EventKind.TOKEN in kinds and kinds[-1] is EventKind.FINISH


    def test_open_fds_are_back_to_the_baseline() -> None:
        assert len(loops) == 2 + 2 * 2 * 3
        assert open_fds() == baseline[0]
    '''
)

INI = textwrap.dedent(
    """
    [pytest]
    asyncio_mode = strict
    asyncio_default_fixture_loop_scope = function
    asyncio_default_test_loop_scope = function
    """
)


def test_tests_on_fresh_loops_leave_no_transport_and_no_fd(model_server: LocalModelServer, tmp_path: Path) -> None:
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "pytest.ini").write_text(INI)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "LITELLM_MODE": "PRODUCTION",
        "RXAGENTS_FRESH_LOOPS_URL": model_server.url,
    }
    result = subprocess.run(
        [sys.executable, "-X", "dev", "-W", "error::ResourceWarning", "-m", "pytest", "-p", "no:cacheprovider",
         "-p", "no:randomly", "-W", "error::ResourceWarning",
         "-W", "error::pytest.PytestUnraisableExceptionWarning", "-q", "test_inner.py"],
        capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "16 passed" in output, output[-4000:]
    for word in ("ResourceWarning", "nclosed", "Exception ignored"):
        assert word not in output, output[-4000:]
