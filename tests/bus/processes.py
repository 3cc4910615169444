"""Worker processes for the bus tests: ``rxagents worker`` subprocesses of this checkout, and other commands."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent


def command_env(extra: Mapping[str, str] = ()) -> dict[str, str]:  # type: ignore[assignment]
    """This checkout first on the path; no provider keys or endpoints unless ``extra`` sets them."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("OPENAI_")}
    path = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    env |= {"PYTHONPATH": path, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_MODE": "PRODUCTION"}
    return env | dict(extra)


class WorkerProcess:
    """``rxagents worker --bus URL ...`` in a subprocess; its output (stdout and stderr) is collected."""

    def __init__(self, url: str, *args: str, env: Mapping[str, str] = {}) -> None:
        self.command = [sys.executable, "-m", "rxagents.cli", "worker", "--bus", url, *args]
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
            if "taking tasks" in line:
                self._ready.set()
        self._ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 30.0) -> WorkerProcess:
        if not self._ready.wait(timeout) or self.process.poll() is not None:
            raise RuntimeError(f"the worker did not start:\n{self.output}")
        return self

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
        """SIGTERM (the worker finishes its runs), then wait; SIGKILL if it does not stop in time."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            code = self.process.wait(10)
        self._close()
        return code


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


__all__: Sequence[str] = ["WorkerProcess", "command_env", "run_command", "wait_for"]
