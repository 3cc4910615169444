"""Runs that live elsewhere, served over SSE: a :class:`RunSource` (a bus) instead of runs held by the server.

With a run source, :func:`~rxagents.sinks._sse.serve_sse` keeps no run of its own: ``POST /runs`` asks the source
to create one (a bus submits a task), ``GET /runs/{id}`` asks it for the run's state, and each
``GET /runs/{id}/events`` subscribes to the source's events of the run from where the client was. A message's
``id`` is the event's ``seq + 1`` (its 1-based position in the run), the same on every server of the source, so a
client that reconnects to *another* server with ``Last-Event-ID: N`` gets exactly the events from ``seq N`` on:
no gap, no duplicate. The last message is ``event: complete`` with id ``last seq + 2``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, Protocol, runtime_checkable

from aiohttp import web
from reactivex import Observable

from rxagents.events import TokenEvent
from rxagents.operators._bridge import to_async_iter
from rxagents.sinks._sse_runs import encode

__all__ = ["RunSource", "stream_source"]

_DONE = object()


@runtime_checkable
class RunSource(Protocol):
    """Where the runs of a server live (e.g. :class:`rxagents.bus.BusRuns`). Its methods run on the server's loop.

    - ``create(task)``: start a run of ``task`` and return its id;
    - ``info(run_id)``: the run's state as a dict (``status``: ``"pending"``, ``"running"``, ``"completed"``,
      ``"failed"`` or ``"cancelled"``; ``task``; ``last_seq``: the seq of its last event, -1 for none), None for
      a run the source does not know;
    - ``events(run_id, from_seq)``: a cold Observable of the run's events with ``seq >= from_seq``, which ends
      after the run's terminal event (failing with the run's error after an ``error`` event).
    """

    def create(self, task: str) -> Awaitable[str]: ...

    def info(self, run_id: str) -> Awaitable[dict[str, Any] | None]: ...

    def events(self, run_id: str, from_seq: int) -> Observable[TokenEvent]: ...


async def stream_source(
    source: RunSource, run_id: str, last: int, request: web.Request, headers: dict[str, str], retry_ms: int,
    heartbeat: float,
) -> web.StreamResponse:  # fmt: skip
    """The SSE response of ``run_id``'s events after id ``last`` (see the module docs)."""
    info = await source.info(run_id)
    ended = info is not None and info.get("status") in ("completed", "failed", "cancelled")
    if ended and info is not None and last >= int(info.get("last_seq", -1)) + 2:
        return web.Response(status=204)  # the client saw the run's complete: EventSource stops reconnecting
    response = web.StreamResponse(headers=headers)
    await response.prepare(request)
    await response.write(f"retry: {retry_ms}\n\n".encode())
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def pump() -> None:
        try:
            async with to_async_iter(source.events(run_id, last)) as events:
                async for event in events:
                    queue.put_nowait(event)
        except Exception as error:
            queue.put_nowait(error)
        else:
            queue.put_nowait(_DONE)

    task = asyncio.get_running_loop().create_task(pump())
    status, reason = "completed", None
    try:
        while True:
            try:
                async with asyncio.timeout(heartbeat):
                    item = await queue.get()
            except TimeoutError:
                await response.write(b": keep-alive\n\n")
                continue
            if item is _DONE:
                break
            if isinstance(item, Exception):
                kind = getattr(item, "type", type(item).__name__)
                status = "cancelled" if kind == "RunCancelled" else "failed"
                reason = f"{kind}: {getattr(item, 'message', item)}"
                break
            assert isinstance(item, TokenEvent)
            last = item.seq + 1
            await response.write(encode(item.kind.value, item.to_dict(), last))
        complete = {"type": "complete", "run_id": run_id, "status": status, "reason": reason, "events": last}
        await response.write(encode("complete", complete, last + 1))
        await response.write_eof()
    except ConnectionError:  # the client left while we were writing
        pass
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return response
