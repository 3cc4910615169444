"""``rxagents serve-test-model`` in a child process, for the benchmarks that must not count the server's CPU.

:func:`server_process` starts it on a free 127.0.0.1 port with the options given and yields a
:class:`ServerProcess` (its base URL and process id); :meth:`ServerProcess.cpu` reads the child's CPU time so far,
to show that the server was not what limited a measurement.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REPO", "ServerProcess", "server_process"]

REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True, slots=True)
class ServerProcess:
    url: str  # the OpenAI base URL: http://127.0.0.1:PORT/v1
    pid: int

    def cpu(self) -> float | None:
        """The server process's CPU seconds so far (user + system, all threads); None where ``/proc`` is absent."""
        try:
            with open(f"/proc/{self.pid}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


@contextmanager
def server_process(*options: str) -> Iterator[ServerProcess]:
    """``rxagents serve-test-model --port 0 OPTIONS...`` in a child process, stopped on exit."""
    code = "import sys; from rxagents.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    process = subprocess.Popen(
        [sys.executable, "-c", code, "serve-test-model", "--port", "0", *options],
        stdout=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if " at http://127.0.0.1:" not in line:
            raise RuntimeError(f"the test model server did not start: {line!r}")
        yield ServerProcess(line.rsplit(" ", 1)[1].strip(), process.pid)
    finally:
        process.terminate()
        process.wait(30)
        if process.stdout is not None:
            process.stdout.close()
