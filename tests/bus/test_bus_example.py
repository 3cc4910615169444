"""examples/distributed/run.py (tests/test_examples.py runs examples/*.py only): a broker, three worker processes,
tasks submitted and followed, the dashboard in another process; it ends by itself. Run with 6 tasks."""

from __future__ import annotations

import subprocess
import sys

from tests.bus.brokers import need
from tests.bus.processes import REPO, command_env


def test_the_distributed_example_runs_its_tasks_on_three_workers_and_ends_by_itself() -> None:
    need("nats")
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / "distributed" / "run.py")], capture_output=True, text=True,
        timeout=180, env=command_env({"RXAGENTS_EXAMPLE_TASKS": "6"}), cwd=REPO,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout + result.stderr
    assert "Traceback" not in out, out[-3000:]
    assert "6 of 6 runs finished" in out
    assert "6 run(s) watched" in out and "writer: done" in out
    assert out.count("rxagents worker: stopped;") == 3
    finished = sum(int(line.split("stopped; ")[1].split(" finished")[0]) for line in out.splitlines()
                   if "rxagents worker: stopped; " in line)  # fmt: skip
    assert finished == 6
