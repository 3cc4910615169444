"""A script that ran an agent through litellm exits promptly (the runtime loop shuts down first)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent(
    """
    from rxagents import Agent
    from rxagents.testing import LocalModelServer

    server = LocalModelServer().start()
    agent = Agent(model_name="m", api_base=server.url, api_key="sk-exit-12345", print_on=False)
    print(len(agent.run("hello")))
    server.stop()
    """
)


@pytest.mark.slow
def test_scripts_using_litellm_exit_without_hanging() -> None:
    # Before the runtime loop was shut down at exit, about 1 run in 6 hung in litellm's exit cleanup.
    for _ in range(6):
        result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr[-2000:]
        assert int(result.stdout.strip()) > 0
