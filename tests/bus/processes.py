"""Worker processes for the bus tests: ``rxagents worker`` subprocesses of this checkout, and other commands."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Self

REPO = Path(__file__).resolve().parent.parent.parent


def command_env(extra: Mapping[str, str] = ()) -> dict[str, str]:  # type: ignore[assignment]
    """This checkout first on the path; no provider keys or endpoints unless ``extra`` sets them."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("OPENAI_")}
    path = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env |= {"PYTHONPATH": path, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MODE": "PRODUCTION"}
    return env | dict(extra)


class CommandProcess:
    """``rxagents ARGS`` in a subprocess; its output (stdout and stderr) is collected, line by line. It is ready
    once a line holds ``ready``."""

    def __init__(self, *args: str, ready: str, env: Mapping[str, str] = {}) -> None:
        self.command = [sys.executable, "-m", "rxagents.cli", *args]
        self.ready_text = ready
        self.process = subprocess.Popen(
            self.command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=command_env(env), cwd=REPO, text=True,
        )  # fmt: skip
        self.lines: list[str] = []
        self._ready = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if self.ready_text in line:
                self._ready.set()
        self._ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 30.0) -> Self:
        if not self._ready.wait(timeout) or self.process.poll() is not None:
            raise RuntimeError(f"{' '.join(self.command[2:4])} did not start:\n{self.output}")
        return self

    def wait(self, timeout: float) -> int:
        """Wait for it to end by itself (SIGKILL after ``timeout`` seconds); its exit status."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self._close()
        return code

    def kill(self) -> None:
        """SIGKILL: no cleanup, as if the machine died."""
        self.process.kill()
        self.process.wait(10)
        self._close()

    def _close(self) -> None:
        self._reader.join(5)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (a worker finishes its runs), then wait; SIGKILL if it does not stop in time."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.wait(timeout)


class WorkerProcess(CommandProcess):
    """``rxagents worker --bus URL ...`` in a subprocess."""

    def __init__(self, url: str, *args: str, env: Mapping[str, str] = {}) -> None:
        super().__init__("worker", "--bus", url, *args, ready="taking tasks", env=env)


class WatchProcess(CommandProcess):
    """``rxagents watch --bus URL ...`` in a subprocess: ready once its first look at the runs is done."""

    def __init__(self, url: str, *args: str) -> None:
        super().__init__("watch", "--bus", url, *args, ready="rxagents watch: watching the runs")


def run_command(
    *args: str, env: Mapping[str, str] = {}, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """``python -m rxagents.cli ARGS`` of this checkout, to its end."""
    return subprocess.run(
        [sys.executable, "-m", "rxagents.cli", *args], capture_output=True, text=True, timeout=timeout,
        env=command_env(env), cwd=REPO,
    )  # fmt: skip


def wait_for(predicate: object, timeout: float = 10.0, step: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(step)
    return False


__all__: Sequence[str] = ["CommandProcess", "WatchProcess", "WorkerProcess", "command_env", "run_command", "wait_for"]
