"""Workers as real processes on real brokers: a worker killed with SIGKILL mid-run (the run completes on another,
after a retry event), cancel from a third process (the model's HTTP stream closes, as the server sees it), no
provider key or broker password on the broker or in the worker's output, and many runs on three workers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest

from rxagents import Agent, OfflineModel
from rxagents.bus import Bus, LocalNatsServer, LocalRedisServer, RemoteRunError, aattach, submit
from rxagents.events import EventKind, TokenEvent
from rxagents.operators import collect_text, to_async_iter
from rxagents.testing._faults import default_text
from rxagents.testing._server import LocalModelServer
from tests.bus.brokers import BROKERS, collect, make_bus, server_for
from tests.bus.processes import CommandProcess, WatchProcess, WorkerProcess, run_command
from tests.bus.test_bus_worker import TASK, check_run, local_text

pytestmark = pytest.mark.asyncio


@pytest.fixture(params=BROKERS)
def own_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, LocalNatsServer | LocalRedisServer]]:
    """A broker of each kind for this test alone (the workers use the default queue names)."""
    kind: str = request.param
    with server_for(kind) as server:
        yield kind, server


def answer_text(events: list[TokenEvent]) -> str:
    """The answer a consumer keeps: the token text after the last retry event."""
    text: list[str] = []
    for event in events:
        if event.kind is EventKind.RETRY:
            text.clear()
        elif event.kind is EventKind.TOKEN:
            text.append(event.text)
    return "".join(text)


async def test_a_worker_killed_mid_run_the_run_completes_on_another_after_a_retry(
    own_server: tuple[str, LocalNatsServer | LocalRedisServer],
) -> None:
    kind, server = own_server
    first = WorkerProcess(server.url, "--redeliver-after", "1.5").wait_ready()
    second: WorkerProcess | None = None
    try:
        async with make_bus(kind, server.url) as bus:
            spec = {"agent": {"agent_name": "writer", "offline": {"pace": 0.01, "length": 200}}}
            run_id = await submit(bus, TASK, spec)
            seen: list[TokenEvent] = []
            follower = aattach(bus, run_id)
            async for event in follower:
                seen.append(event)
                if len(seen) == 30:
                    break
            second = WorkerProcess(server.url, "--redeliver-after", "1.5").wait_ready()
            first.kill()
            events, error = await asyncio.wait_for(collect(aattach(bus, run_id)), 60)
        assert error is None, second.output
        check_run(events, run_id)
        assert events[: len(seen)] == seen  # the live consumer saw the same run
        retries = [e for e in events if e.kind is EventKind.RETRY]
        assert len(retries) == 1 and retries[0].seq >= 30
        assert "starts over" in retries[0].text
        assert answer_text(events) == await local_text(length=200)
        assert events[-1].kind is EventKind.FINISH
    finally:
        first.stop()
        if second is not None:
            assert second.stop() == 0, second.output
    assert "1 continued" in second.output


async def test_cancel_from_a_third_process_closes_the_models_http_stream(
    own_server: tuple[str, LocalNatsServer | LocalRedisServer],
) -> None:
    kind, server = own_server
    key = "sk-worker-only-0123456789abcdef"
    with LocalModelServer(default_tokens=400, token_delay=0.05) as model:
        worker = WorkerProcess(server.url, "--allow-api-base", model.url, "--verbose",
                               env={"OPENAI_API_KEY": key}).wait_ready()  # fmt: skip
        try:
            async with make_bus(kind, server.url) as bus:
                spec = {"agent": {"agent_name": "w", "model_name": "test-model", "api_base": model.url}}
                run_id = await submit(bus, TASK, spec)
                seen = 0
                async for event in aattach(bus, run_id):
                    seen += event.kind is EventKind.TOKEN
                    if seen == 5:
                        break
                assert model.active_streams == 1
                assert model.request_records[-1].api_key_present  # the worker's own key went to the model
                result = await asyncio.to_thread(run_command, "cancel", "--bus", server.url, run_id)
                assert result.returncode == 0, result.stderr
                closed = await asyncio.to_thread(
                    model.wait_until, lambda: model.active_streams == 0 and bool(model.closed_streams), 15.0
                )
                assert closed, model.closed_streams
                assert model.closed_streams[-1].outcome == "client_disconnected"
                assert model.closed_streams[-1].events_sent < 400
                events, error = await asyncio.wait_for(collect(aattach(bus, run_id)), 20)
                check_run(events, run_id)
                assert isinstance(error, RemoteRunError) and error.type == "RunCancelled"
                assert {run.run_id: run.status for run in await bus.runs()}[run_id] == "cancelled"
                everything = await broker_contents(kind, bus)
        finally:
            assert worker.stop() == 0, worker.output
    assert key.encode() not in everything and key not in worker.output
    assert run_id.encode() in everything  # the dump holds the run: the check above looked at real data


async def broker_contents(kind: str, bus: Bus) -> bytes:
    """Every message and value the broker holds, raw."""
    if kind == "nats":
        import nats

        nc = await nats.connect(bus.url)
        try:
            jsm = nc.jsm()
            chunks: list[bytes] = []
            for info in await jsm.streams_info():
                for seq in range(info.state.first_seq, info.state.last_seq + 1):
                    try:
                        raw = await jsm.get_msg(info.config.name, seq)
                    except nats.js.errors.NotFoundError:
                        continue
                    chunks.append(raw.data or b"")
                    chunks.append(repr(raw.headers).encode())
            return b"\n".join(chunks)
        finally:
            await nc.close()
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(bus.url)
    try:
        chunks = []
        async for key in client.scan_iter():
            kind_of = (await client.type(key)).decode()
            if kind_of == "stream":
                chunks += [repr(entry).encode() for entry in await client.xrange(key)]
            elif kind_of == "string":
                chunks.append(await client.get(key) or b"")
            elif kind_of == "zset":
                chunks += await client.zrange(key, 0, -1)
            chunks.append(key)
        return b"\n".join(chunks)
    finally:
        await client.aclose()


async def test_broker_credentials_never_show_in_a_workers_output() -> None:
    password = "broker-pass-7d41c9"
    with LocalNatsServer(args=("--user", "rx", "--pass", password)) as server:
        url = f"nats://rx:{password}@127.0.0.1:{server.port}"
        worker = WorkerProcess(url, "--verbose").wait_ready()
        async with make_bus("nats", url) as bus:
            run_id = await submit(bus, TASK, {"agent": {"agent_name": "w", "offline": {"length": 10}}})
            events, error = await asyncio.wait_for(collect(aattach(bus, run_id)), 30)
            assert error is None and events[-1].kind is EventKind.FINISH
        assert worker.stop() == 0
    assert "taking tasks from nats://127.0.0.1" in worker.output
    assert password not in worker.output


def model_for(kind: str, stack: contextlib.ExitStack, tokens: int) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The agent spec of a ``tokens``-token run on the offline model, or on the local test model server over real
    HTTP (started here in its own process), and the options a worker needs for it."""
    # Each run waits a second, then streams at full speed: the runs overlap, their tokens are coalesced on the way
    if kind == "offline":  # max_tokens cuts the answer to exactly ``tokens``
        offline = {"length": tokens + 40, "first_token_delay": 1.0}
        return {"agent_name": "writer", "max_tokens": tokens, "offline": offline}, ()
    server = CommandProcess("serve-test-model", "--port", "0", "--tokens", str(tokens), "--first-byte-delay", "1",
                            ready="test model at")  # fmt: skip
    stack.callback(server.stop)
    url = server.wait_ready().output.split("test model at ")[1].split()[0]
    return {"agent_name": "writer", "model_name": "test-model", "api_base": url}, ("--allow-api-base", url)


async def expected_text(model: str, task: str, tokens: int) -> str:
    """The answer the run of ``task`` must deliver."""
    if model == "offline":
        agent = Agent(agent_name="writer", llm=OfflineModel(length=tokens + 40), max_tokens=tokens, print_on=False)
        async with to_async_iter(agent.stream(task).pipe(collect_text())) as texts:
            return await anext(texts)
    return "".join(default_text(task, tokens))


@pytest.mark.parametrize("model", ["offline", "http"])
async def test_three_workers_a_hundred_runs_each_at_once_nothing_lost_nothing_duplicated_the_dashboard_sees_all(
    own_server: tuple[str, LocalNatsServer | LocalRedisServer], model: str
) -> None:
    """3 worker processes at concurrency 100, 300 runs of 200 tokens submitted at once, followed by this process
    and by ``rxagents watch`` in a fifth: every run once, with its exact text, in both, on both model kinds."""
    kind, server = own_server
    runs, tokens, concurrency = 300, 200, 100
    with contextlib.ExitStack() as stack:
        agent, options = model_for(model, stack, tokens)
        spec = {"agent": agent}
        workers = [WorkerProcess(server.url, "--concurrency", str(concurrency), *options) for _ in range(3)]
        watcher = WatchProcess(server.url, "--poll", "0.5", "--exit-when-idle", "1", "--json")
        for process in (*workers, watcher):
            stack.callback(process.stop)
        for process in (*workers, watcher):
            process.wait_ready()  # the dashboard is attached before the first submission
        started = time.monotonic()
        async with make_bus(kind, server.url) as bus:
            tasks = [f"{TASK} (run {i})" for i in range(runs)]
            run_ids = await asyncio.gather(*(submit(bus, task, spec) for task in tasks))
            results = await asyncio.wait_for(
                asyncio.gather(*(collect(aattach(bus, run_id, start_timeout=60)) for run_id in run_ids)), 180
            )
            elapsed = time.monotonic() - started
            listed = {run.run_id: run for run in await bus.runs()}
        answers = {task: await expected_text(model, task, tokens) for task in tasks}
        for task, run_id, (events, error) in zip(tasks, run_ids, results, strict=True):
            assert error is None, run_id
            check_run(events, run_id)
            assert not any(e.kind is EventKind.RETRY for e in events)
            assert answer_text(events) == answers[task]
            assert sum(e.kind is EventKind.TOKEN for e in events) == tokens
            assert listed[run_id].status == "finished"
            assert listed[run_id].tokens == tokens
        assert watcher.wait(60) == 0, watcher.output[-3000:]  # it ended by itself, once idle
        codes = [worker.stop() for worker in workers]
    assert codes == [0, 0, 0], [worker.output for worker in workers]
    stopped = [line for worker in workers for line in worker.lines if "stopped; " in line]
    assert sum(int(line.split("stopped; ")[1].split(" finished")[0]) for line in stopped) == runs  # each ran once
    peaks = [int(line.split("at most ")[1].split(" at once")[0]) for line in stopped]
    assert max(peaks) == concurrency and min(peaks) >= concurrency // 2, peaks  # the runs really overlapped
    # the dashboard's process saw every run whole, once, with its exact text
    seen = [json.loads(line) for line in watcher.lines if line.startswith("{")]
    assert sorted(record["run_id"] for record in seen) == sorted(run_ids)
    expected = {run_id: (task, len(events)) for task, run_id, (events, _) in zip(tasks, run_ids, results, strict=True)}
    for record in seen:
        task, events = expected[record["run_id"]]
        assert record["status"] == "finished" and record["tokens"] == tokens and record["events"] == events
        assert record["duplicates"] == record["missing"] == record["retries"] == 0
        assert record["text"] == answers[task]
    summary = f"{runs} run(s) watched: {runs} finished, 0 failed, 0 cancelled, 0 unfinished; {runs * tokens} tokens; "
    assert summary + "0 duplicated, 0 missing events" in watcher.output
    assert watcher.output.count(f"writer: done · {tokens} tokens") == runs  # the dashboard drew each run's end
    print(f"{kind}/{model}: {runs} runs x {tokens} tokens on 3 workers (peaks {peaks}) in {elapsed:.1f} s")
