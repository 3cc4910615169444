"""watch: every live run on the bus, merged, each in order from its start; a failed run does not end it; with
exit_when_idle it ends by itself. ``rxagents watch`` shows them in the dashboard from another process."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import subprocess
import sys
import threading
from collections import defaultdict

import pytest

from rxagents.bus import Bus, LocalNatsServer, Worker, apublish, awatch, cancel, submit
from rxagents.events import EventKind, TokenEvent
from tests.bus.brokers import collect, fresh_run_id, make_bus, run_events, server_for
from tests.bus.processes import REPO, command_env, run_command
from tests.bus.test_bus_worker import TASK, check_run, local_text

pytestmark = pytest.mark.asyncio


async def test_watch_follows_every_live_run_and_ends_when_idle(queue_bus: tuple[Bus, str]) -> None:
    bus, group = queue_bus
    worker = Worker(bus, group=group, redeliver_after=3.0)
    working = asyncio.create_task(worker.run())
    watching = asyncio.create_task(collect(awatch(bus, poll=0.1, exit_when_idle=0.5)))
    spec = {"agent": {"agent_name": "writer", "offline": {"pace": 0.02, "length": 60}}}
    run_ids = [await submit(bus, f"{TASK} ({i})", spec) for i in range(3)]
    await asyncio.sleep(0.4)
    await cancel(bus, run_ids[0])
    events, error = await asyncio.wait_for(watching, 30)
    worker.stop()
    await working
    assert error is None
    runs: dict[str, list[TokenEvent]] = defaultdict(list)
    for event in events:
        runs[event.run_id].append(event)
    assert set(runs) == set(run_ids)
    for i, run_id in enumerate(run_ids):
        check_run(runs[run_id], run_id)
        if i == 0:
            assert runs[run_id][-1].kind is EventKind.ERROR
        else:
            text = "".join(e.text for e in runs[run_id] if e.kind is EventKind.TOKEN)
            assert text == await local_text(f"{TASK} ({i})", length=60)


async def test_rxagents_watch_shows_the_runs_in_the_dashboard() -> None:
    with server_for("nats") as server:  # a broker of its own: the command watches every run on it
        async with make_bus("nats", server.url) as bus:
            worker = Worker(bus, redeliver_after=3.0)
            working = asyncio.create_task(worker.run())
            spec = {"agent": {"agent_name": "watched-writer", "offline": {"pace": 0.05, "length": 40}}}
            await submit(bus, TASK, spec)
            team = [{"agent_name": name, "offline": {"pace": 0.05, "length": 20}} for name in ("ana", "bob")]
            await submit(bus, TASK, {"workflow": {"kind": "concurrent", "name": "team", "agents": team}})
            command = asyncio.to_thread(
                run_command, "watch", "--bus", server.url, "--poll", "0.1", "--exit-when-idle", "1"
            )
            result = await asyncio.wait_for(command, 60)
            worker.stop()
            await working
    assert result.returncode == 0, result.stderr
    assert "watched-writer: done" in result.stdout
    for lane in ("team", "ana", "bob"):  # the workflow run: its own lane and one per agent
        assert f"{lane}: done" in result.stdout
    assert "2 run(s) watched: 2 finished, 0 failed, 0 cancelled, 0 unfinished" in result.stdout
    assert "0 duplicated, 0 missing events" in result.stdout


async def test_watch_follows_a_run_that_started_and_ended_between_two_listings(queue_bus: tuple[Bus, str]) -> None:
    bus, _ = queue_bus
    old, slow, quick = fresh_run_id("old"), fresh_run_id("slow"), fresh_run_id("quick")
    await apublish(bus, run_events(old, 2))  # ended before the watch began: not shown
    slow_run = run_events(slow, 3)
    await apublish(bus, slow_run[:2])  # running when the watch begins
    ready = asyncio.Event()
    watching = asyncio.create_task(collect(awatch(bus, poll=0.3, exit_when_idle=0.5, on_ready=ready.set)))
    await asyncio.wait_for(ready.wait(), 10)
    await apublish(bus, run_events(quick, 3))  # starts and ends within one poll
    await apublish(bus, slow_run[2:])
    events, error = await asyncio.wait_for(watching, 30)
    assert error is None
    runs: dict[str, list[TokenEvent]] = defaultdict(list)
    for event in events:
        runs[event.run_id].append(event)
    assert set(runs) == {slow, quick}
    assert runs[slow] == slow_run
    assert runs[quick] == run_events(quick, 3)


async def test_on_a_terminal_rxagents_watch_still_says_on_its_stderr_when_it_is_watching(
    nats_server: LocalNatsServer,
) -> None:
    """A live dashboard replaces sys.stderr while it runs (to print above itself): the ready line must still reach
    the command's real stderr, where a script waits for it (examples/distributed/run.py does)."""
    primary, secondary = pty.openpty()
    watcher = subprocess.Popen(
        [sys.executable, "-m", "rxagents.cli", "watch", "--bus", nats_server.url, "--poll", "0.2"],
        stdin=subprocess.DEVNULL, stdout=secondary, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env=command_env({"TERM": "xterm-256color", "COLUMNS": "100", "LINES": "30"}),
    )  # fmt: skip
    os.close(secondary)
    drained = threading.Thread(target=drain, args=(primary,), daemon=True)  # the terminal must not fill up
    drained.start()
    try:
        assert watcher.stderr is not None
        first = await asyncio.wait_for(asyncio.to_thread(watcher.stderr.readline), 30)
        assert first.startswith("rxagents watch: watching the runs on nats://127.0.0.1:"), first
    finally:
        watcher.terminate()
        watcher.wait(30)
        if watcher.stderr is not None:
            watcher.stderr.close()


def drain(fd: int) -> None:
    with contextlib.suppress(OSError):
        while os.read(fd, 65536):
            pass
    os.close(fd)
