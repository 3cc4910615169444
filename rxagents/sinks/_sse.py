"""Server-Sent Events: serve agent or workflow runs to browsers, with a live dashboard page.

:func:`serve_sse` wraps anything with a cold ``stream(task)`` (an :class:`~rxagents.Agent`, a workflow) or a
function ``task -> Observable[TokenEvent]`` in a small aiohttp server::

    GET  /                     the dashboard page (one lane per agent; no external assets)
    POST /runs                 {"task": "..."} -> 201 {"run_id", "events_url", "agents", ...}: creates a run
                               (no task: the server's; an empty task, another field, not an object: 400)
    GET  /runs/{id}            the run's status as JSON
    GET  /runs/{id}/events     text/event-stream of the run; resumes after Last-Event-ID

With a run source (``serve_sse(BusRuns(bus, spec))``, see :mod:`rxagents.sinks._sse_source`) the runs live
elsewhere (on a bus): ``POST /runs`` creates one there and every server of the source serves every run by its id.

Each SSE message is ``id: N`` (the event's 1-based position in the run's merged stream: unique across the
agents of a workflow), ``event: <kind>`` and ``data: <TokenEvent.to_dict() as JSON>``; the last one is
``event: complete``. A run starts when its first subscriber connects and is shared by all of them; its
last ``replay`` messages are kept, so a reconnecting client (``Last-Event-ID`` header, or ``?lastEventId=N``)
gets exactly the messages after ``N``. A run nobody listens to for ``idle_grace`` seconds is cancelled (its
model HTTP streams are closed); a finished run is forgotten ``keep_finished`` seconds after it ended.
See ``docs/servers-sse.md``.

Size: at about 600 lines this module is past the project's ~500-line guide, knowingly: it is one concept, the
HTTP endpoints of one server and the lifecycle of the runs they share (start on first subscriber, idle
cancellation, forgetting), whose handlers read and change the same run table under one lock. What stands apart
already is apart: the run record (:mod:`~rxagents.sinks._sse_runs`), run sources (:mod:`~rxagents.sinks._sse_source`),
Host/Origin rules (:mod:`~rxagents.sinks._origin`) and the page.
"""

from __future__ import annotations

import asyncio
import functools
import html
import json
import re
import secrets
import threading
from collections.abc import Awaitable, Callable, Sequence
from importlib import resources
from typing import Any

from aiohttp import web
from reactivex import Observable

from rxagents._loop_thread import LoopThread
from rxagents._web import listen
from rxagents.errors import RxAgentsError
from rxagents.events import TokenEvent
from rxagents.operators._bridge import to_async_iter
from rxagents.sinks._origin import host_refusal, origin_refusal
from rxagents.sinks._sse_runs import RunInfo, RunStatus, SharedRun
from rxagents.sinks._sse_source import RunSource, stream_source

__all__ = ["DEFAULT_TASK", "FIRST_SUBSCRIBER_GRACE", "MAX_TASK_CHARS", "RunInfo", "RunStatus", "SSEServer", "serve_sse"]

Factory = Callable[[str], Observable[TokenEvent]]

#: The longest task ``POST /runs`` accepts (413 beyond).
MAX_TASK_CHARS = 8_000
#: The largest ``POST /runs`` body read (413 beyond): room for a task of MAX_TASK_CHARS characters each written
#: as a JSON surrogate-pair escape (12 bytes).
MAX_BODY_BYTES = 128 * 1024
#: A created run waits at least this many seconds for its first subscriber, whatever ``idle_grace`` says.
FIRST_SUBSCRIBER_GRACE = 10.0
#: How long (ms) a browser waits before reconnecting a dropped stream (sent as ``retry:``).
RETRY_MS = 1_000
_SSE_HEADERS = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",  # nginx: do not buffer the stream
}
_PAGE_HEADERS = {
    # Everything is inline; nothing may be loaded from elsewhere; the page talks to this server only.
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
    "connect-src 'self'; img-src data:; base-uri 'none'; form-action 'self'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
DEFAULT_TASK = "Explain why streaming agent output as Observables makes it composable and testable."


class _Busy(Exception):
    pass


@functools.cache
def _page_template() -> str:
    return resources.files(__package__ or "rxagents.sinks").joinpath("_page.html").read_text("utf-8")


def _last_event_id(request: web.Request) -> int:
    raw = request.headers.get("Last-Event-ID") or request.query.get("lastEventId") or "0"
    if not raw.isdigit():
        raise ValueError(f"Last-Event-ID must be a non-negative integer (an SSE message id), got {raw[:40]!r}")
    return int(raw)


def _json_error(status: int, message: str, field: str | None = None) -> web.Response:
    """``{"error": message}``, plus ``"field"``: the body's field at fault, when one is."""
    body = {"error": message} if field is None else {"error": message, "field": field}
    return web.json_response(body, status=status)


def _json_type(value: object) -> str:
    """The JSON name of a decoded value's type, for error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _run_body(body: object, default_task: str) -> tuple[str, None] | tuple[None, web.Response]:
    """The task of a ``POST /runs`` body, or the error response saying what is wrong with it.

    The body is a JSON object with one optional field, ``task``: a non-empty string (omitted: the default task).
    """
    if not isinstance(body, dict):
        return None, _json_error(400, f'the body must be a JSON object like {{"task": "..."}}, got {_json_type(body)}')
    unknown = sorted(set(body) - {"task"})
    if unknown:
        return None, _json_error(
            400, f'unknown field {unknown[0]!r} in the body; POST /runs takes {{"task": "..."}} only', unknown[0]
        )
    if "task" not in body:
        return default_task, None
    task = body["task"]
    if not isinstance(task, str) or not task.strip():
        got = repr(task) if isinstance(task, str) else _json_type(task)
        return None, _json_error(
            400, f"task must be a non-empty string (omit it to run the default task), got {got}", "task"
        )
    if len(task) > MAX_TASK_CHARS:
        return None, _json_error(413, f"task has {len(task)} characters; the limit is {MAX_TASK_CHARS}", "task")
    return task, None


class SSEServer:
    """An HTTP server streaming runs as Server-Sent Events; build it with :func:`serve_sse`.

    Start it on the current loop with ``async with`` (or :meth:`astart`/:meth:`aclose`), or on a background
    thread with its own loop with ``with`` (or :meth:`start`/:meth:`close`). Runs execute on the server's
    loop. :meth:`run_info` and :meth:`runs` may be called from any thread.
    """

    def __init__(
        self,
        factory: Factory | None,
        *,
        host: str,
        port: int,
        replay: int,
        idle_grace: float,
        keep_finished: float,
        max_runs: int,
        heartbeat: float,
        title: str,
        agents: Sequence[str],
        task: str,
        run_source: RunSource | None = None,
    ) -> None:
        self._factory = factory
        self._run_source = run_source
        self.host = host
        self.replay = replay
        self.idle_grace = idle_grace
        self.keep_finished = keep_finished
        self.max_runs = max_runs
        self.heartbeat = heartbeat
        self.title = title
        self.agents = list(agents)
        self.task = task
        self._requested_port = port
        self._address: tuple[str, int] | None = None
        self._runs: dict[str, SharedRun] = {}
        self._pending: dict[str, Observable[TokenEvent]] = {}  # runs created, not yet subscribed to
        self._lock = threading.Lock()  # guards _runs for readers on other threads
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: LoopThread | None = None  # serving from a thread of its own (start)
        self._closing = False

    def __repr__(self) -> str:
        where = self.url if self._address else "not started"
        return f"SSEServer({where}, title={self.title!r}, agents={self.agents!r})"

    # --- where -----------------------------------------------------------------------------------------------
    @property
    def address(self) -> tuple[str, int]:
        """The bound ``(host, port)`` of the listening socket."""
        if self._address is None:
            raise RuntimeError("SSEServer is not started: use `async with serve_sse(...)` or `with serve_sse(...)`")
        return self._address

    @property
    def url(self) -> str:
        """``http://HOST:PORT`` (no trailing slash); the page is at ``url + "/"``."""
        host, port = self.address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    # --- lifecycle on the current loop -----------------------------------------------------------------------
    async def astart(self) -> SSEServer:
        """Listen on the running loop; returns once bound. Raises ``OSError`` if the port is taken."""
        if self._runner is not None or self._thread is not None:
            raise RuntimeError("SSEServer already started")
        return await self._astart()

    async def _astart(self) -> SSEServer:
        self._loop = asyncio.get_running_loop()
        self._closing = False
        app = web.Application(middlewares=[self._guard], client_max_size=MAX_BODY_BYTES)
        app.router.add_get("/", self._index)
        app.router.add_post("/runs", self._create)
        app.router.add_get("/runs/{run_id}", self._status)
        app.router.add_get("/runs/{run_id}/events", self._events)
        # handler_cancellation: a client disconnect cancels its handler at once, even while it waits for events
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        self._address = await listen(runner, self.host, self._requested_port)
        self._runner = runner
        return self

    async def aclose(self) -> None:
        """Cancel every run not yet ended (subscribers get ``complete`` with status ``cancelled``), end every
        stream and stop listening. Idempotent."""
        runner, self._runner = self._runner, None
        if runner is None:
            return
        self._closing = True
        runs = list(self._runs.values())
        pumps = [run.pump for run in runs if run.pump is not None and not run.pump.done()]
        for run in runs:
            if not run.ended:
                run.reason = "server closed"
                if run.pump is None:
                    self._end(run, "cancelled")
                else:
                    run.pump.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        for run in runs:
            for timer in (run.idle, run.forget):
                if timer is not None:
                    timer.cancel()
            run.wake()
        await runner.cleanup()
        with self._lock:
            self._runs.clear()
        self._pending.clear()
        self._address = None

    async def __aenter__(self) -> SSEServer:
        return await self.astart()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- lifecycle on a background thread --------------------------------------------------------------------
    def start(self) -> SSEServer:
        """Serve from a daemon thread running its own event loop; returns once listening."""
        if self._runner is not None or self._thread is not None:
            raise RuntimeError("SSEServer already started")
        self._thread = LoopThread("rxagents-sse").start(self._astart(), timeout=30)
        return self

    def close(self, timeout: float = 10.0) -> None:
        """Stop a server started with :meth:`start` (as :meth:`aclose`) and join its thread. Idempotent."""
        worker, self._thread = self._thread, None
        if worker is None:
            if self._runner is not None:
                raise RuntimeError("this SSEServer runs on your event loop: use `await server.aclose()`")
            return
        worker.stop(self.aclose, timeout)

    def __enter__(self) -> SSEServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- observing ---------------------------------------------------------------------------------------------
    def run_info(self, run_id: str) -> RunInfo:
        """A snapshot of one run; ``KeyError`` if there is no such run (any more)."""
        with self._lock:
            return self._runs[run_id].info()

    def runs(self) -> list[RunInfo]:
        """Snapshots of every run the server holds, oldest first."""
        with self._lock:
            return [run.info() for run in self._runs.values()]

    # --- runs (on the loop) ------------------------------------------------------------------------------------
    def _create_run(self, task: str) -> SharedRun:
        assert self._factory is not None
        observable = self._factory(task)  # may raise: a bad task is the client's error
        if not isinstance(observable, Observable):
            raise TypeError(f"the factory must return an Observable[TokenEvent], got {type(observable).__name__}")
        with self._lock:
            finished = [run for run in self._runs.values() if run.ended]
            while len(self._runs) >= self.max_runs and finished:
                self._forget(finished.pop(0))
            if len(self._runs) >= self.max_runs:
                raise _Busy(f"{self.max_runs} runs are in progress (max_runs={self.max_runs}); try again later")
            run = SharedRun(secrets.token_urlsafe(9), task, self.replay)
            self._runs[run.run_id] = run
        self._pending[run.run_id] = observable
        self._watch_idle(run, max(self.idle_grace, FIRST_SUBSCRIBER_GRACE))  # nobody is subscribed yet
        return run

    def _start(self, run: SharedRun) -> None:
        """Subscribe to the run's Observable: called once, by the run's first subscriber."""
        observable = self._pending.pop(run.run_id)
        assert self._loop is not None
        run.status = "running"
        run.pump = self._loop.create_task(self._pump(run, observable))
        run.pump.add_done_callback(functools.partial(self._pump_done, run))

    async def _pump(self, run: SharedRun, observable: Observable[TokenEvent]) -> None:
        async with to_async_iter(observable) as events:
            async for event in events:
                run.append(event.kind.value, event.to_dict())

    def _pump_done(self, run: SharedRun, pump: asyncio.Task[None]) -> None:
        if pump.cancelled():  # our own cancellation: idle subscribers, or the server closing
            self._end(run, "cancelled")
        elif (error := pump.exception()) is not None:
            run.reason = f"{type(error).__name__}: {error}"
            self._end(run, "failed")
        else:
            self._end(run, "completed")

    def _end(self, run: SharedRun, status: RunStatus) -> None:
        """Close the run's stream with ``complete``, and forget the run ``keep_finished`` seconds later."""
        self._pending.pop(run.run_id, None)
        events = run.last_id
        run.status = status
        run.append("complete", {
            "type": "complete", "run_id": run.run_id, "status": status, "reason": run.reason, "events": events,
        })  # fmt: skip
        if run.idle is not None:
            run.idle.cancel()
        if self._loop is not None and not self._closing:
            run.forget = self._loop.call_later(self.keep_finished, self._forget_locked, run)

    def _watch_idle(self, run: SharedRun, grace: float) -> None:
        if run.subscribers == 0 and not run.ended and self._loop is not None:
            run.idle = self._loop.call_later(grace, self._abandon, run, grace)

    def _abandon(self, run: SharedRun, grace: float) -> None:
        if run.subscribers or run.ended:
            return
        run.reason = f"no subscribers for {grace:g} s"
        if run.pump is None:
            self._end(run, "cancelled")  # never started: nothing to cancel
        else:
            run.pump.cancel()

    def _forget(self, run: SharedRun) -> None:  # call with _lock held
        if self._runs.get(run.run_id) is run:
            del self._runs[run.run_id]
        if run.forget is not None:
            run.forget.cancel()

    def _forget_locked(self, run: SharedRun) -> None:
        with self._lock:
            self._forget(run)

    # --- HTTP --------------------------------------------------------------------------------------------------
    @web.middleware
    async def _guard(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        """On a loopback bind, only loopback Host headers: a web page cannot DNS-rebind its way in."""
        refusal = host_refusal(self.host, request.host)
        if refusal is not None:
            return _json_error(403, refusal)
        return await handler(request)

    async def _index(self, request: web.Request) -> web.Response:
        values = {
            "TITLE": html.escape(self.title),
            "TASK": html.escape(self.task),
            "AGENTS": html.escape(json.dumps(self.agents)),
        }
        page = re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], _page_template())
        return web.Response(text=page, content_type="text/html", headers=_PAGE_HEADERS)

    def _run_json(self, run: SharedRun) -> dict[str, Any]:
        info = run.info()
        return {
            "run_id": info.run_id, "task": info.task, "status": info.status, "reason": info.reason,
            "events": info.events, "agents": self.agents, "events_url": f"/runs/{info.run_id}/events",
        }  # fmt: skip

    async def _create(self, request: web.Request) -> web.Response:
        refusal = origin_refusal(request.headers.get("Origin"), request.host)  # only the dashboard's own page
        if refusal is not None:
            return _json_error(403, refusal)
        if request.content_type != "application/json":
            return _json_error(415, 'POST /runs takes a JSON body: {"task": "..."}')
        try:
            body = await request.json()
        except ValueError:
            return _json_error(400, "the body is not valid JSON")
        except web.HTTPRequestEntityTooLarge:
            return _json_error(413, f"the body is larger than the limit of {MAX_BODY_BYTES} bytes (a task is at "
                               f"most {MAX_TASK_CHARS} characters)")  # fmt: skip
        task, refused = _run_body(body, self.task)
        if refused is not None:
            return refused
        assert task is not None
        if self._run_source is not None:
            return await self._create_at_source(task)
        try:
            run = self._create_run(task)
        except _Busy as exc:
            return _json_error(503, str(exc))
        except ValueError as exc:  # the source refused the task (ConfigurationError is a ValueError)
            return _json_error(400, f"{type(exc).__name__}: {exc}")
        return web.json_response(self._run_json(run), status=201, headers={"Location": f"/runs/{run.run_id}"})

    async def _create_at_source(self, task: str) -> web.Response:
        assert self._run_source is not None
        try:
            run_id = await self._run_source.create(task)
        except ValueError as exc:  # the source refused the task (ConfigurationError is a ValueError)
            return _json_error(400, f"{type(exc).__name__}: {exc}")
        except RxAgentsError as exc:  # the source is unreachable
            return _json_error(503, f"{type(exc).__name__}: {exc}")
        body = {"run_id": run_id, "task": task, "status": "pending", "reason": None, "events": 0,
                "agents": self.agents, "events_url": f"/runs/{run_id}/events"}  # fmt: skip
        return web.json_response(body, status=201, headers={"Location": f"/runs/{run_id}"})

    async def _source_status(self, run_id: str) -> web.Response:
        assert self._run_source is not None
        try:
            info = await self._run_source.info(run_id)
        except RxAgentsError as exc:
            return _json_error(503, f"{type(exc).__name__}: {exc}")
        if info is None:
            return _json_error(404, "no such run (it may not have started yet, or it expired)")
        body = {"run_id": run_id, "task": "", "status": "running", "reason": None,
                "events": int(info.get("last_seq", -1)) + 1} | info  # fmt: skip
        return web.json_response(body | {"agents": self.agents, "events_url": f"/runs/{run_id}/events"})

    async def _status(self, request: web.Request) -> web.Response:
        if self._run_source is not None:
            return await self._source_status(request.match_info["run_id"])
        run = self._runs.get(request.match_info["run_id"])
        if run is None:
            return _json_error(404, "no such run (it may have finished and been forgotten)")
        return web.json_response(self._run_json(run))

    async def _events(self, request: web.Request) -> web.StreamResponse:
        if self._run_source is not None:
            try:
                last = _last_event_id(request)
            except ValueError as exc:
                return _json_error(400, str(exc))
            run_id = request.match_info["run_id"]
            return await stream_source(self._run_source, run_id, last, request, _SSE_HEADERS, RETRY_MS, self.heartbeat)
        run = self._runs.get(request.match_info["run_id"])
        if run is None:
            return _json_error(404, "no such run (it may have finished and been forgotten)")
        try:
            last = _last_event_id(request)
        except ValueError as exc:
            return _json_error(400, str(exc))
        if last > run.last_id:
            return _json_error(400, f"Last-Event-ID {last} is ahead of this run (its last id is {run.last_id})")
        if run.ended and last == run.last_id:
            return web.Response(status=204)  # all seen: 204 tells EventSource to stop reconnecting
        response = web.StreamResponse(headers=_SSE_HEADERS)
        run.subscribers += 1
        if run.idle is not None:
            run.idle.cancel()
            run.idle = None
        if run.status == "pending":
            self._start(run)
        if last:
            run.resumes.append(last)
        try:
            await response.prepare(request)
            await response.write(f"retry: {RETRY_MS}\n\n".encode())
            while True:
                changed = run.changed
                chunk, last = run.since(last)
                if chunk:
                    await response.write(chunk)
                if (run.ended and last >= run.last_id) or self._closing:
                    break
                try:
                    async with asyncio.timeout(self.heartbeat):
                        await changed.wait()
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
            await response.write_eof()
        except ConnectionError:  # the client left while we were writing
            pass
        finally:
            run.subscribers -= 1
            self._watch_idle(run, self.idle_grace)
        return response


def _source(source: object) -> tuple[Factory | None, list[str], str]:
    """The factory, agent names and title of a ``source``: something with ``.stream(task)``, or a function
    (a :class:`RunSource` has no factory: its runs live elsewhere)."""
    if isinstance(source, RunSource):
        names = getattr(source, "agent_names", [])
        return None, [str(n) for n in names], str(getattr(source, "name", None) or "rxagents")
    stream = getattr(source, "stream", None)
    if callable(stream):
        names = getattr(source, "agent_names", None)
        if names is None:
            name = getattr(source, "agent_name", None)
            names = [name] if isinstance(name, str) else []
        title = getattr(source, "name", None) or getattr(source, "agent_name", None) or "rxagents"

        def factory(task: str) -> Observable[TokenEvent]:
            observable: Observable[TokenEvent] = stream(task)
            return observable

        return factory, [str(n) for n in names], str(title)
    if callable(source):
        return source, [], "rxagents"
    raise TypeError(
        "source must be an Agent or a workflow (anything with .stream(task)), a function "
        f"task -> Observable[TokenEvent], or a RunSource (e.g. BusRuns); got {type(source).__name__}"
    )


def serve_sse(
    source: object,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    replay: int = 10_000,
    idle_grace: float = 10.0,
    keep_finished: float = 300.0,
    max_runs: int = 32,
    heartbeat: float = 15.0,
    title: str | None = None,
    agents: Sequence[str] | None = None,
    task: str | None = None,
) -> SSEServer:
    """Serve runs of ``source`` as Server-Sent Events, with a live dashboard page at ``/``.

    Nothing happens until the server is started (``async with``/``with``). Each ``POST /runs`` calls
    ``source.stream(task)`` once; the first client of the run id subscribes to it (the run starts) and every
    later client shares that one run.

    .. code-block:: text

        run:       s1--a--b----------c--f|           (TokenEvents of all agents, merged)
        messages:  1---2--3----------4--5--6:complete      id = position in the run's stream
        client A:  1---2--3-X                        disconnects after id 3
        client A':               (Last-Event-ID: 3)  4--5--6|   exactly the rest: no gap, no duplicate

    Args:
        source: an Agent or a workflow (anything with a cold ``stream(task)``), a function
            ``task -> Observable[TokenEvent]``, or a :class:`RunSource` whose runs live elsewhere
            (:class:`rxagents.bus.BusRuns`: runs on a bus, served by every server of the bus).
        host: the interface to bind; loopback by default. On a loopback bind, requests whose ``Host``
            header is not a loopback name are refused (DNS-rebinding guard).
        port: the TCP port; 0 picks a free one (see :attr:`SSEServer.url`).
        replay: messages kept per run for reconnecting clients (the oldest are dropped beyond it; a
            client asking for dropped messages gets an ``event: gap`` then what is left). Memory per
            run is at most ``replay`` encoded messages, whatever the number or speed of clients.
        idle_grace: seconds a running run may have no subscriber before it is cancelled (covers a page
            reload or a network blip; its model HTTP streams are closed on cancel). A new run waits at
            least :data:`FIRST_SUBSCRIBER_GRACE` (10 s) for its first subscriber.
        keep_finished: seconds a finished run stays available for late or reconnecting clients.
        max_runs: runs held at once; finished runs are forgotten first, then ``POST /runs`` gets 503.
        heartbeat: seconds of silence after which a ``: keep-alive`` comment is sent (keeps proxies open).
        title: the page title (default: the workflow's ``name`` or the agent's name).
        agents: lane names shown before any event (default: the workflow's agents, or the agent).
        task: the task the page suggests and ``POST /runs`` uses when none is given.

    Returns:
        An unstarted :class:`SSEServer`.

    Example::

        async with serve_sse(ConcurrentWorkflow(agents=[a, b])) as server:
            print(f"open {server.url}/")
            await asyncio.Event().wait()
    """
    factory, names, default_title = _source(source)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be an int from 0 to 65535 (0: any free port), got {port!r}")
    if isinstance(replay, bool) or not isinstance(replay, int) or replay < 1:
        raise ValueError(f"replay must be an int >= 1 (messages kept per run), got {replay!r}")
    if isinstance(max_runs, bool) or not isinstance(max_runs, int) or max_runs < 1:
        raise ValueError(f"max_runs must be an int >= 1, got {max_runs!r}")
    for name, value in (("idle_grace", idle_grace), ("keep_finished", keep_finished)):
        if not isinstance(value, int | float) or value < 0:
            raise ValueError(f"{name} must be >= 0 seconds, got {value!r}")
    if not isinstance(heartbeat, int | float) or heartbeat <= 0:
        raise ValueError(f"heartbeat must be > 0 seconds, got {heartbeat!r}")
    if task is not None and (not isinstance(task, str) or not task.strip() or len(task) > MAX_TASK_CHARS):
        raise ValueError(f"task must be a non-empty string of at most {MAX_TASK_CHARS} characters, got {task!r}")
    return SSEServer(
        factory, host=host, port=port, replay=replay, idle_grace=float(idle_grace),
        keep_finished=float(keep_finished), max_runs=max_runs, heartbeat=float(heartbeat),
        title=title or default_title, agents=list(agents) if agents is not None else names,
        task=task or DEFAULT_TASK, run_source=source if isinstance(source, RunSource) else None,
    )  # fmt: skip
