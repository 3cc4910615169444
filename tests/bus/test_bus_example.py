"""examples/distributed/run.py (tests/test_examples.py runs examples/*.py only): a broker, three worker processes,
tasks submitted and followed, the dashboard in another process; it ends by itself. Run with 6 tasks."""

from __future__ import annotations

import re
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
    # the dashboard, in its own process, saw every run from its start to its end, once
    assert "rxagents watch: 6 run(s) watched: 6 finished, 0 failed, 0 cancelled, 0 unfinished" in out
    assert "0 duplicated, 0 missing events" in out
    assert out.count("writer: done") == 6
    assert "rxagents watch: watching the runs" in result.stderr  # the tasks were submitted after this
    assert out.count("rxagents worker: stopped;") == 3
    # the processes share one output: a line of one can run into another's, so search rather than split lines
    finished = sum(int(count) for count in re.findall(r"rxagents worker: stopped; (\d+) finished", out))
    assert finished == 6
