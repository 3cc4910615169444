"""A local OpenAI-compatible chat-completions server for tests, with fault injection.

:class:`LocalModelServer` implements ``POST /v1/chat/completions`` (streaming SSE and plain JSON),
``GET /v1/models`` and ``GET /health`` well enough for real clients - litellm, the openai SDK, httpx - to talk
to it. It runs its own event loop on a daemon thread, so sync code and async tests can both use it::

    with LocalModelServer() as server:
        server.enqueue(Reply(tokens=("Hi", " there")))
        stream = await litellm.acompletion(model="openai/test-model", api_base=server.url, api_key="sk-x",
                                           messages=[...], stream=True, max_retries=0)

Unscripted requests get deterministic text derived from the last user message. Scripted :class:`Reply` values
(see :mod:`rxagents.testing._faults`) choose the exact chunks, reasoning, tool calls, usage, pacing and one
injected fault. The server reports what it saw - request bodies (never API keys), open TCP connections,
in-flight responses and how each one ended - so a test can prove that cancelling a client really closed the
connection on the server's side. Disconnects are detected from the transport's ``connection_lost``, so they
are seen at once even while a stream is stalled and nothing is being written.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from rxagents._loop_thread import LoopThread
from rxagents._validate import check_bool, check_int, check_seconds, check_str
from rxagents._web import listen
from rxagents.testing import _responses
from rxagents.testing._faults import HttpError, OpenAIReply, Reply
from rxagents.testing._responses import Outcome
from rxagents.testing._server_cli import serve_main

__all__ = ["LocalModelServer", "Outcome", "RequestRecord", "StreamRecord", "serve_main"]

_KEY_HEADERS = ("Authorization", "api-key", "x-api-key")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One ``POST /v1/chat/completions`` as received.

    ``body`` is the JSON body (an ``api_key`` field, should a client send one, is replaced by
    ``"<redacted>"``). API key headers are never stored: ``api_key_present`` only says whether one was sent.
    """

    index: int
    body: dict[str, Any]
    api_key_present: bool
    received_at: float  # time.monotonic()


@dataclass(frozen=True, slots=True)
class StreamRecord:
    """How one chat-completion response ended, as the server saw it.

    ``outcome``: ``"completed"`` (all written), ``"client_disconnected"`` (the client left first), ``"fault"``
    (an injected drop or HTTP error ended it) or ``"server_stopped"``. ``events_sent`` counts ``data:`` events
    written, ``[DONE]`` excluded (for a :class:`RawBody` reply: the chunks written). Times are
    ``time.monotonic()`` values, comparable with the test's own clock: ``disconnected_at`` is when the server's
    transport reported the client gone, so ``disconnected_at`` minus the moment the client closed is the
    detection latency.
    """

    request_index: int
    model: str
    stream: bool
    outcome: Outcome
    fault: str | None  # the fault's class name
    events_sent: int
    started_at: float
    ended_at: float
    disconnected_at: float | None

    @property
    def notice_delay(self) -> float | None:
        """Seconds the handler kept running after the transport saw the client go (``None``: it didn't go)."""
        return None if self.disconnected_at is None else max(0.0, self.ended_at - self.disconnected_at)


class _TrackingServer(web.Server):
    """aiohttp's low-level server, telling its owner the moment a connection opens or closes."""

    def __init__(self, owner: LocalModelServer) -> None:
        super().__init__(owner._handle, access_log=None)  # no access log: nothing about requests is logged
        self._owner = owner

    def connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self._owner._connection_made(handler, transport)

    def connection_lost(self, handler: RequestHandler, exc: BaseException | None = None) -> None:
        self._owner._connection_lost(handler)
        super().connection_lost(handler, exc)


class LocalModelServer:
    """An OpenAI-compatible streaming chat server on a background thread, for tests and demos.

    ``default_tokens``: chunks in the default reply (>= 1). ``token_delay``: default seconds between streamed
    writes (>= 0). ``port``: 0 to 65535, 0 for any free one. ``distinct_tokens``: the default reply is
    :func:`~rxagents.testing._faults.distinct_text` of the request's model and last user message (tokens that
    belong to that one run, for load tests that check every token's delivery) instead of words derived from the
    message. ``events_per_write``: streamed events written together, in one write (>= 1; ``token_delay`` is then
    between writes), as a real server's TCP coalesces the events that are ready at once. Bad values raise
    :class:`~rxagents.errors.ConfigurationError` here, not at ``start()``.
    ``start()`` returns once listening; ``stop()`` releases stalled responses, closes every connection and
    joins the thread. Usable as a context manager. All public methods are thread-safe.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        default_tokens: int = 20,
        token_delay: float = 0.0,
        distinct_tokens: bool = False,
        events_per_write: int = 1,
    ) -> None:
        self.host = check_str("host", host)
        self.default_tokens = check_int("default_tokens", default_tokens)
        self.token_delay = check_seconds("token_delay", token_delay, zero=True)
        self.distinct_tokens = check_bool("distinct_tokens", distinct_tokens)
        self.events_per_write = check_int("events_per_write", events_per_write, hint="1 writes each event alone")
        self._requested_port = check_int("port", port, minimum=0, maximum=65535, hint="0 picks a free port")
        self._port: int | None = None
        self._cond = threading.Condition()
        self._version = 0  # bumped on every observable state change, under _cond
        self._queues: dict[str | None, collections.deque[Reply]] = collections.defaultdict(collections.deque)
        self._default: Reply | None = None
        self._records: list[RequestRecord] = []
        self._closed: list[StreamRecord] = []
        self._conns: dict[RequestHandler, _responses.Conn] = {}
        self._active = 0
        self._ids = itertools.count(1)
        self._stopping_at: float | None = None  # set when stop() begins
        self._thread: LoopThread | None = None
        self._runner: web.ServerRunner | None = None

    # --- lifecycle

    @property
    def port(self) -> int:
        """The bound TCP port (after ``start()``)."""
        if self._port is None:
            raise RuntimeError("LocalModelServer is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL for OpenAI clients (``api_base``/``base_url``): ``http://HOST:PORT/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> LocalModelServer:
        """Serve on a daemon thread; returns once listening. Raises ``OSError`` if the port can't be bound."""
        if self._thread is not None:
            raise RuntimeError("LocalModelServer already started")
        self._stopping_at = None
        self._thread = LoopThread("rxagents-test-model").start(self._astart(), timeout=30)
        return self

    def stop(self, timeout: float = 10.0) -> None:
        """Stop listening, end every response and connection, and join the thread. Idempotent."""
        worker, self._thread = self._thread, None
        if worker is None:
            return
        try:
            worker.stop(self._ashutdown, timeout)
        finally:
            self._port = None

    def __enter__(self) -> LocalModelServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    async def _astart(self) -> None:
        runner = web.ServerRunner(_TrackingServer(self), shutdown_timeout=1.0)
        _, self._port = await listen(runner, self.host, self._requested_port)
        self._runner = runner

    async def _ashutdown(self) -> None:
        with self._cond:
            self._stopping_at = time.monotonic()
            conns = list(self._conns.values())
        for conn in conns:
            conn.gone.set()  # wakes stalled and paused handlers, which then abort their connection
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        with self._cond:  # and a connection accepted while stopping
            conns += self._conns.values()
        for conn in conns:
            if conn.transport is not None:
                conn.transport.abort()
        await asyncio.sleep(0)  # let the aborts run their callbacks

    # --- scripting

    def enqueue(self, reply: Reply, *, model: str | None = None) -> None:
        """Queue ``reply`` for the next request (FIFO); with ``model``, only for requests naming that model.

        A request takes from its model's queue first, then from the shared queue, so concurrent tests that
        each use their own model name never take each other's replies.
        """
        with self._cond:
            self._queues[model].append(reply)

    def set_default(self, reply: Reply | None) -> None:
        """The reply used when no queue has one; ``None`` restores the built-in default text."""
        with self._cond:
            self._default = reply

    def _next_reply(self, model: str) -> Reply:
        with self._cond:
            for key in (model, None):
                queue = self._queues.get(key)
                if queue:
                    return queue.popleft()
            return self._default or Reply()

    # --- observability

    @property
    def requests(self) -> list[dict[str, Any]]:
        """Copies of the chat-completion request bodies received so far, in arrival order."""
        with self._cond:
            return [copy.deepcopy(record.body) for record in self._records]

    @property
    def request_records(self) -> list[RequestRecord]:
        """Like :attr:`requests`, plus whether an API key was sent (never the key itself)."""
        with self._cond:
            return copy.deepcopy(self._records)

    @property
    def closed_streams(self) -> list[StreamRecord]:
        """One :class:`StreamRecord` per finished chat-completion response, in the order they ended."""
        with self._cond:
            return list(self._closed)

    @property
    def open_connections(self) -> int:
        """TCP connections currently open, as the server's transports see them."""
        with self._cond:
            return len(self._conns)

    @property
    def active_streams(self) -> int:
        """Chat-completion responses currently being produced (streaming or not)."""
        with self._cond:
            return self._active

    def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """Block until ``predicate()`` is true; False on timeout. For sync tests.

        Wakes on every server state change (and at least every 50 ms, for predicates about other things).
        The predicate runs without the server's lock held, so it may itself call the server.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._cond:
                seen = self._version
            if predicate():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            with self._cond:
                if self._version == seen:
                    self._cond.wait(min(remaining, 0.05))

    async def await_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> bool:
        """:meth:`wait_until` for async tests: re-checks ``predicate()`` every 5 ms with ``asyncio.sleep``."""
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.005)
        return True

    def _changed(self) -> None:
        """Call with ``_cond`` held after changing observable state."""
        self._version += 1
        self._cond.notify_all()

    # --- connection tracking (server thread)

    def _connection_made(self, handler: RequestHandler, transport: asyncio.Transport) -> None:
        with self._cond:
            self._conns[handler] = _responses.Conn(transport)
            self._changed()

    def _connection_lost(self, handler: RequestHandler) -> None:
        with self._cond:
            conn = self._conns.pop(handler, None)
            if conn is not None:
                conn.lost_at = time.monotonic()
                conn.gone.set()
            self._changed()

    # --- HTTP (server thread)

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        route = (request.method, request.path.removeprefix("/v1").rstrip("/"))
        if route == ("GET", "/health"):
            return web.json_response({"status": "ok"})
        if route == ("GET", "/models"):
            model = {"id": "test-model", "object": "model", "created": 0, "owned_by": "rxagents-local"}
            return web.json_response({"object": "list", "data": [model]})
        if route == ("POST", "/chat/completions"):
            return await self._chat(request)
        return _responses.error_response(HttpError(404, f"Unknown route {request.method} {request.path}"))

    async def _chat(self, request: web.BaseRequest) -> web.StreamResponse:
        try:
            body = await request.json()
        except ValueError:
            return _responses.error_response(HttpError(400, "Request body is not valid JSON"))
        if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
            return _responses.error_response(HttpError(400, "'messages' must be a list"))
        if "api_key" in body:
            body["api_key"] = "<redacted>"
        has_key = any(request.headers.get(name) for name in _KEY_HEADERS)
        model, stream = str(body.get("model", "")), bool(body.get("stream"))
        started = time.monotonic()
        with self._cond:
            index = len(self._records)
            self._records.append(RequestRecord(index, body, has_key, started))
            self._active += 1
            conn = self._conns.get(request.protocol)
            self._changed()
        if conn is None:  # the client left before we got here
            conn = _responses.Conn(None)
            conn.lost_at = started
            conn.gone.set()
        reply = self._next_reply(model)
        progress = _responses.Progress()
        try:
            render = OpenAIReply(
                body, reply, n=next(self._ids), default_tokens=self.default_tokens, distinct=self.distinct_tokens
            )
            if stream:
                delay = self.token_delay if reply.token_delay is None else reply.token_delay
                return await _responses.stream(request, conn, render, delay, progress, self.events_per_write)
            return await _responses.complete(request, conn, render, progress)
        except _responses.ClientGone:
            stop = self._stopping_at
            stopped = stop is not None and (conn.lost_at is None or conn.lost_at >= stop)
            progress.outcome = "server_stopped" if stopped else "client_disconnected"
            if request.transport is not None:  # stopping: cut the response so the client notices
                request.transport.abort()
            return web.Response()
        finally:
            fault = None if reply.fault is None else type(reply.fault).__name__
            record = StreamRecord(
                request_index=index,
                model=model,
                stream=stream,
                outcome=progress.outcome,
                fault=fault,
                events_sent=progress.events,
                started_at=started,
                ended_at=time.monotonic(),
                disconnected_at=conn.lost_at,
            )
            with self._cond:
                self._active -= 1
                self._closed.append(record)
                self._changed()


try:  # pytest is a test-only dependency: the fixture exists only where pytest does
    import pytest as _pytest
except ImportError:  # pragma: no cover
    _pytest = None  # type: ignore[assignment]

if _pytest is not None:

    @_pytest.fixture
    def local_model_server() -> Iterator[LocalModelServer]:
        """pytest fixture: a started :class:`LocalModelServer`, stopped after the test.

        Use it with ``from rxagents.testing._server import local_model_server`` in a conftest or test module.
        """
        with LocalModelServer() as server:
            yield server

    __all__ += ["local_model_server"]
