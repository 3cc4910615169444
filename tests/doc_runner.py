"""Run the ```python blocks of documentation pages; used by tests/test_docs.py (not a test module itself).

    python tests/doc_runner.py PLAN.json RESULTS.jsonl

PLAN.json: ``{"workdir": DIR, "block_timeout": SECONDS, "warm": BOOL, "pages": [{"path": ABS_PATH,
"blocks": [{"line": FENCE_LINE, "source": TEXT, "continues": BOOL}, ...]}, ...]}``. RESULTS.jsonl gets one JSON
object per block run: ``{"path", "line", "status": "passed" | "failed", "error", "stdout", "stderr", "seconds"}``.

This process imports rxagents and litellm once (``warm``; litellm takes seconds to import), then forks one child
per page, so every page starts from the same clean, warm interpreter: no runtime thread, event loop or display left
over from another page. A child runs its page's blocks in order, each in a fresh namespace (``__name__ ==
"__main__"``) unless it continues the block before it, with:

- its stdout and stderr captured at the file-descriptor level, one file per block: output written after a block
  returned (a subscription still streaming) lands in the next block's capture, not in its own;
- stdin at /dev/null (``input()`` raises ``EOFError`` instead of waiting);
- a per-block timeout (``SIGALRM`` raises :class:`BlockTimeout` in the block);
- a network guard (an audit hook): connecting to, or resolving, anything but a loopback address is refused, and
  the block fails naming the address, even if it caught the error.

A page's child that outlives the sum of its blocks' timeouts is killed; its unfinished blocks then have no result.
"""

from __future__ import annotations

import contextlib
import importlib
import ipaddress
import json
import os
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

# litellm imports these lazily on a first request (about 2.5 s): import them once, here
_FIRST_REQUEST_IMPORTS = (
    "litellm.proxy._types",
    "litellm.litellm_core_utils.default_encoding",
    "anyio._backends._asyncio",
)
BLOCKED: list[str] = []  # network attempts the guard refused, in this process
_LOCAL_NAMES = {"localhost", "localhost.localdomain", "ip6-localhost", "ip6-loopback"}


def _is_local(host: object) -> bool:
    if host is None:
        return True
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    host = str(host).strip("[]").split("%", 1)[0]
    if host.lower() in _LOCAL_NAMES or host == "":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _is_ip(host: object) -> bool:
    try:
        ipaddress.ip_address(host.decode() if isinstance(host, bytes) else str(host))
    except ValueError:
        return False
    return True


def _network_guard(event: str, args: tuple[Any, ...]) -> None:
    if event == "socket.connect":
        address = args[1]
        if isinstance(address, tuple) and not _is_local(address[0]):
            BLOCKED.append(f"connect to {address!r}")
            raise ConnectionRefusedError(f"documentation examples must not reach the network: connect to {address!r}")
    elif event == "socket.getaddrinfo" and not _is_local(args[0]) and not _is_ip(args[0]):  # a name: DNS
        BLOCKED.append(f"resolve {args[0]!r}")
        raise ConnectionRefusedError(f"documentation examples must not reach the network: resolve {args[0]!r}")


class BlockTimeout(Exception):
    pass


def _on_alarm(signum: int, frame: object) -> None:
    raise BlockTimeout("the block did not finish within its timeout (does it wait for Ctrl-C or a server?)")


def _redirect(fd: int, path: Path) -> None:
    target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(target, fd)
    os.close(target)


def _run_page(page: dict[str, Any], workdir: Path, block_timeout: float, results: Path) -> None:
    """In the forked child: run the page's blocks, append one result line per block, never return."""
    status = 1
    saved_stderr = os.dup(2)
    try:
        os.chdir(workdir)
        devnull = os.open(os.devnull, os.O_RDONLY)
        os.dup2(devnull, 0)
        os.close(devnull)
        signal.signal(signal.SIGALRM, _on_alarm)
        namespace: dict[str, Any] = {}
        previous_failed = False
        for index, block in enumerate(page["blocks"]):
            out, err = workdir / f"block-{index}.out", workdir / f"block-{index}.err"
            sys.stdout.flush()
            sys.stderr.flush()
            _redirect(1, out)
            _redirect(2, err)
            BLOCKED.clear()
            started = time.monotonic()
            error = ""
            if not block["continues"]:
                namespace = {"__name__": "__main__", "__builtins__": __builtins__}
            if block["continues"] and previous_failed:
                error = "not run: the block it continues failed"
            else:
                signal.setitimer(signal.ITIMER_REAL, block_timeout)
                try:
                    # blank lines before the source make tracebacks name the line in the Markdown file
                    exec(compile("\n" * block["line"] + block["source"], page["path"], "exec"), namespace)
                except SystemExit as exit_:
                    if exit_.code not in (None, 0):
                        error = f"SystemExit({exit_.code!r})"
                except BaseException as exc:  # the traceback from the block's own frame on
                    error = "".join(traceback.format_exception(exc.with_traceback(exc.__traceback__.tb_next)))
                finally:
                    signal.setitimer(signal.ITIMER_REAL, 0)
            if BLOCKED:
                error += "\nnetwork access refused: " + "; ".join(BLOCKED)
            previous_failed = bool(error)
            seconds = time.monotonic() - started
            sys.stdout.flush()
            sys.stderr.flush()
            _redirect(1, workdir / "after.out")  # what arrives later is the next block's (or nobody's)
            _redirect(2, workdir / "after.err")
            result = {
                "path": page["path"],
                "line": block["line"],
                "status": "failed" if error else "passed",
                "error": error,
                "stdout": out.read_text(errors="replace"),
                "stderr": err.read_text(errors="replace"),
                "seconds": round(seconds, 3),
            }
            with results.open("a", encoding="utf-8") as file:
                file.write(json.dumps(result) + "\n")
        status = 0
    except BaseException:
        os.write(saved_stderr, f"{page['path']}: the runner failed:\n{traceback.format_exc()}".encode())
    finally:
        os._exit(status)


def main(argv: list[str]) -> int:
    plan = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    results = Path(argv[1])
    block_timeout = float(plan["block_timeout"])
    sys.addaudithook(_network_guard)
    if plan.get("warm", True):  # litellm takes seconds to import: once here, not once per page
        import litellm  # noqa: F401

        import rxagents  # noqa: F401

        for name in _FIRST_REQUEST_IMPORTS:  # best effort
            with contextlib.suppress(ImportError):
                importlib.import_module(name)

    for page in plan["pages"]:
        workdir = Path(tempfile.mkdtemp(prefix="page-", dir=plan["workdir"]))
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _run_page(page, workdir, block_timeout, results)
        deadline = time.monotonic() + block_timeout * len(page["blocks"]) + 10
        while (status := os.waitpid(pid, os.WNOHANG)) == (0, 0):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                status = os.waitpid(pid, 0)
                print(f"{page['path']}: killed after {block_timeout * len(page['blocks']) + 10:.0f} s", file=sys.stderr)
                break
            time.sleep(0.02)
        if status[1]:
            print(f"{page['path']}: the page's process ended with wait status {status[1]}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
