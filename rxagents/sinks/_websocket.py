"""WebSocket server sink: serve a stream factory (an agent, a workflow) to WebSocket clients.

Built on the ``websockets`` library's asyncio API (imported when the server starts, so it is an optional
dependency). One connection is one stream:

.. code-block:: text

    client                                   server
    {"task": "..."}             ──►          factory(request) -> Observable, subscribed on the server's loop
                                ◄──          {"type": "start", ...}
                                ◄──          {"type": "token", "content": "Hel", "agent": ..., "seq": 1, ...}
                                ◄──          ... one message per event (TokenEvent.to_dict()) ...
                                ◄──          {"type": "complete", "content": "<full text>"}     close 1000
                                       or    {"type": "error", "message": ..., "partial_text": ...}   close 1011

The stream runs on the server's event loop as it produces, so every token is sent while the agent is still
generating (the spec's example sends none before "complete": its sync ``agent.run`` blocks the loop). A client
that disconnects disposes the subscription, which cancels the run and closes its HTTP stream. Each connection
has a bounded send buffer; a client that reads too slowly meets the ``on_slow`` policy instead of growing
server memory. Handshakes from web pages of other origins, or naming a foreign ``Host`` on a loopback bind, are
refused with HTTP 403. See ``docs/servers-websocket.md`` for the protocol reference.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hmac
import http
import json
import logging
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any, Protocol

import reactivex

from rxagents._validate import check_choice, check_int, check_seconds, check_str, fail
from rxagents.events import TokenEvent
from rxagents.sinks._origin import host_refusal, normalize_origins, origin_refusal
from rxagents.sinks._ws_outbox import OnSlow, Outbox, dumps
from rxagents.sinks._ws_session import (
    CLOSE_BAD_REQUEST,
    CLOSE_BINARY_REQUEST,
    CLOSE_STREAM_FAILED,
    CLOSE_TOO_SLOW,
    Session,
    close_reason,
)

if TYPE_CHECKING:
    from websockets.asyncio.server import Server, ServerConnection
    from websockets.http11 import Request, Response

__all__ = [
    "CLOSE_BAD_REQUEST",
    "CLOSE_BINARY_REQUEST",
    "CLOSE_STREAM_FAILED",
    "CLOSE_TOO_SLOW",
    "OnSlow",
    "StreamFactory",
    "WebSocketServer",
    "WebSocketStats",
    "serve_websocket",
]

log = logging.getLogger("rxagents")

#: Builds the stream for one request: ``lambda request: agent.stream(request["task"])``.
StreamFactory = Callable[[dict[str, Any]], reactivex.Observable[TokenEvent]]


class _HasStream(Protocol):
    """An ``Agent`` or a workflow: anything with a cold ``stream(task)``."""

    def stream(self, task: str) -> reactivex.Observable[TokenEvent]: ...


@dataclass(frozen=True, slots=True)
class WebSocketStats:
    """Counters of a :class:`WebSocketServer` (a snapshot; read ``server.stats`` again for new values).

    Attributes:
        connections: WebSocket connections accepted (after the handshake).
        active: connections open now.
        runs_started: requests whose stream was subscribed.
        runs_completed / runs_failed: streams that ended with ``complete`` / with ``error``.
        runs_cancelled: streams disposed before they ended (the client left, or was too slow).
        bad_requests: requests refused (too large, binary, not JSON, missing fields, refused by the factory,
            none within ``request_timeout``).
        forbidden: handshakes refused with HTTP 403: a page of an origin not allowed (``allowed_origins``), or,
            on a loopback bind, a ``Host`` that is not a loopback name (DNS rebinding).
        auth_rejected: handshakes refused with HTTP 401 (missing or wrong bearer token).
        messages_sent: messages written to clients.
        coalesced: event messages merged into an earlier pending message (``on_slow="coalesce"``).
        slow_disconnects: connections closed with 1013 because the client read too slowly.
        peak_buffered: the most messages waiting for one client at once.
        peak_buffered_bytes: the largest backlog of one client: bytes queued while it was behind and not yet
            sent. Never more than ``max_buffer_bytes``, unless one message alone was larger.
    """

    connections: int = 0
    active: int = 0
    runs_started: int = 0
    runs_completed: int = 0
    runs_failed: int = 0
    runs_cancelled: int = 0
    bad_requests: int = 0
    forbidden: int = 0
    auth_rejected: int = 0
    messages_sent: int = 0
    coalesced: int = 0
    slow_disconnects: int = 0
    peak_buffered: int = 0
    peak_buffered_bytes: int = 0


@dataclass(slots=True)
class _Counters:
    """The live counters behind :class:`WebSocketStats`, mutable (server's loop only). A frozen dataclass has no
    typed mutable twin, so both declare the fields; tests/sinks/test_websocket.py keeps them the same."""

    connections: int = 0
    active: int = 0
    runs_started: int = 0
    runs_completed: int = 0
    runs_failed: int = 0
    runs_cancelled: int = 0
    bad_requests: int = 0
    forbidden: int = 0
    auth_rejected: int = 0
    messages_sent: int = 0
    coalesced: int = 0
    slow_disconnects: int = 0
    peak_buffered: int = 0
    peak_buffered_bytes: int = 0


class WebSocketServer:
    """Serves a stream factory over WebSocket; made by :func:`serve_websocket` (see there for the arguments).

    Use it as an async context manager (``async with serve_websocket(...) as server``), or call
    :meth:`start` and :meth:`aclose`. It serves on the loop that started it; streams run on that loop.
    """

    def __init__(
        self,
        factory: StreamFactory,
        *,
        host: str,
        port: int,
        token: str | None,
        allowed_origins: frozenset[str],
        max_message_size: int,
        max_buffer: int,
        max_buffer_bytes: int,
        on_slow: OnSlow,
        request_timeout: float | None,
        required_fields: Sequence[str],
        write_limit: int,
        socket_send_buffer: int | None,
    ) -> None:
        self.factory = factory
        self.host = host
        self._requested_port = port
        self._token = token
        self.allowed_origins = allowed_origins
        self.max_message_size = max_message_size
        self.max_buffer = max_buffer
        self.max_buffer_bytes = max_buffer_bytes
        self.on_slow: OnSlow = on_slow
        self.request_timeout = request_timeout
        self.required_fields = tuple(required_fields)
        self.write_limit = write_limit
        self.socket_send_buffer = socket_send_buffer
        self._counters = _Counters()
        self._server: Server | None = None

    def __repr__(self) -> str:
        where = self.url if self._server is not None else f"{self.host}:{self._requested_port} (not started)"
        auth = "bearer token" if self._token is not None else "none"
        origins = f", allowed_origins={sorted(self.allowed_origins)}" if self.allowed_origins else ""
        return f"WebSocketServer({where}, on_slow={self.on_slow!r}, max_buffer={self.max_buffer}, auth={auth}{origins})"

    # --- lifecycle -----------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The bound TCP port (after :meth:`start`; useful with ``port=0``)."""
        if self._server is None:
            raise RuntimeError("the WebSocket server is not started: use 'async with' or await start()")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        """``ws://HOST:PORT`` for clients (after :meth:`start`)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"ws://{host}:{self.port}"

    @property
    def stats(self) -> WebSocketStats:
        """A snapshot of the counters (:class:`WebSocketStats`)."""
        return WebSocketStats(**dataclasses.asdict(self._counters))

    async def start(self) -> WebSocketServer:
        """Bind and start accepting connections on the running loop; returns ``self``."""
        if self._server is not None:
            raise RuntimeError("the WebSocket server is already started")
        try:
            from websockets.asyncio.server import serve
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "serve_websocket needs the 'websockets' package (>= 15): pip install 'websockets>=15'"
            ) from exc
        self._server = await serve(
            self._handle,
            self.host,
            self._requested_port,
            process_request=self._admit,
            max_size=self.max_message_size,
            write_limit=self.write_limit,
        )
        log.debug("websocket server listening on %s", self.url)
        return self

    async def aclose(self) -> None:
        """Stop accepting, close every connection (code 1001, cancelling their streams), and wait. Idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            await server.wait_closed()

    async def serve_forever(self) -> None:
        """Start (if needed) and serve until the awaiting task is cancelled; then close."""
        if self._server is None:
            await self.start()
        try:
            await asyncio.Future()
        finally:
            await self.aclose()

    async def __aenter__(self) -> WebSocketServer:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- handshake -----------------------------------------------------------------------------------------
    def _admit(self, connection: ServerConnection, request: Request) -> Response | None:
        """Before the upgrade: refuse a foreign ``Host`` or ``Origin`` (403), then a missing or wrong token (401)."""
        hosts, origins = request.headers.get_all("Host"), request.headers.get_all("Origin")
        refusal = host_refusal(self.host, hosts[0] if len(hosts) == 1 else None)
        if refusal is None and len(origins) > 1:
            refusal = "the handshake has several Origin headers"
        if refusal is None:
            refusal = origin_refusal(origins[0] if origins else None, hosts[0] if hosts else None, self.allowed_origins)
            if refusal is not None:
                refusal += "; to let a page connect, pass its origin in serve_websocket(allowed_origins=[...])"
        if refusal is not None:
            self._counters.forbidden += 1
            log.info("websocket handshake refused (403): %s", refusal)
            return connection.respond(http.HTTPStatus.FORBIDDEN, f"{refusal}\n")
        return None if self._token is None else self._authorize(connection, request)

    def _authorize(self, connection: ServerConnection, request: Request) -> Response | None:
        """Accept the handshake only with ``Authorization: Bearer <token>`` (compared in constant time)."""
        assert self._token is not None
        values = request.headers.get_all("Authorization")
        scheme, _, credentials = (values[0] if len(values) == 1 else "").partition(" ")
        given = credentials.strip().encode("utf-8", "surrogateescape")
        if scheme.lower() == "bearer" and hmac.compare_digest(given, self._token.encode()):
            return None
        self._counters.auth_rejected += 1
        response = connection.respond(
            http.HTTPStatus.UNAUTHORIZED, "Missing or invalid bearer token: send 'Authorization: Bearer <token>'.\n"
        )
        response.headers["WWW-Authenticate"] = 'Bearer realm="rxagents"'
        return response

    # --- one connection ------------------------------------------------------------------------------------
    async def _handle(self, ws: ServerConnection) -> None:
        counters = self._counters
        counters.connections += 1
        counters.active += 1
        if self.socket_send_buffer is not None:
            sock = ws.transport.get_extra_info("socket")
            if sock is not None:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, self.socket_send_buffer)
        try:
            request = await self._read_request(ws)
            if request is None:
                return
            try:
                observable = self.factory(request)
            except (ValueError, LookupError) as error:  # the factory refused the request
                await self._refuse(ws, f"bad request: {error}", CLOSE_BAD_REQUEST)
                return
            except Exception:
                log.exception("the websocket stream factory failed")
                await self._refuse(ws, "the server could not start the stream", CLOSE_STREAM_FAILED, "internal")
                return
            if not isinstance(observable, reactivex.Observable):
                log.error("the websocket stream factory returned %s, not an Observable", type(observable).__name__)
                await self._refuse(ws, "the server could not start the stream", CLOSE_STREAM_FAILED, "internal")
                return
            outbox = Outbox(max_buffer=self.max_buffer, max_buffer_bytes=self.max_buffer_bytes,
                            on_slow=self.on_slow, counters=self._counters)  # fmt: skip
            await Session(ws, outbox, self._counters).run(observable)
        finally:
            counters.active -= 1

    async def _read_request(self, ws: ServerConnection) -> dict[str, Any] | None:
        from websockets.exceptions import ConnectionClosed

        example = 'send one JSON object such as {"task": "..."}'
        try:
            async with asyncio.timeout(self.request_timeout):
                raw = await ws.recv()
        except TimeoutError:
            await self._refuse(ws, f"no request within {self.request_timeout} s: {example}", CLOSE_BAD_REQUEST)
            return None
        except ConnectionClosed as closed:
            if closed.sent is not None and closed.sent.code == 1009:  # over max_message_size
                self._counters.bad_requests += 1
            return None
        if isinstance(raw, bytes):
            await self._refuse(ws, f"the request must be a text message: {example}", CLOSE_BINARY_REQUEST)
            return None
        try:
            request = json.loads(raw)
        except ValueError as error:
            await self._refuse(ws, f"the request is not valid JSON ({error}): {example}", CLOSE_BAD_REQUEST)
            return None
        if not isinstance(request, dict):
            await self._refuse(ws, f"the request must be a JSON object: {example}", CLOSE_BAD_REQUEST)
            return None
        missing = [name for name in self.required_fields if not _non_empty(request.get(name))]
        if missing:
            fields = ", ".join(repr(name) for name in missing)
            await self._refuse(ws, f"the request needs a non-empty string for {fields}", CLOSE_BAD_REQUEST)
            return None
        return request

    async def _refuse(self, ws: ServerConnection, message: str, code: int, kind: str = "bad_request") -> None:
        from websockets.exceptions import ConnectionClosed

        if kind == "bad_request":
            self._counters.bad_requests += 1
        with contextlib.suppress(ConnectionClosed):
            await ws.send(dumps({"type": "error", "code": kind, "message": message, "partial_text": ""}))
            self._counters.messages_sent += 1
        await ws.close(code, close_reason(message))


def _task_factory(source: _HasStream) -> StreamFactory:
    """The factory serving ``source.stream(request["task"])``."""
    stream = source.stream

    def factory(request: dict[str, Any]) -> reactivex.Observable[TokenEvent]:
        return stream(request["task"])

    return factory


def _non_empty(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _check_fields(required_fields: object) -> None:
    """A sequence of key names (non-empty strings), not a lone string."""
    if (
        isinstance(required_fields, str)
        or not isinstance(required_fields, Iterable)
        or not all(isinstance(f, str) and f for f in required_fields)
    ):
        fail("required_fields", "a sequence of key names", required_fields, hint="e.g. ('task',)")


def serve_websocket(
    factory: StreamFactory | _HasStream,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    allowed_origins: Iterable[str] = (),
    max_message_size: int = 64 * 1024,
    max_buffer: int = 256,
    max_buffer_bytes: int = 1024 * 1024,
    on_slow: OnSlow = "coalesce",
    request_timeout: float | None = 10.0,
    required_fields: Sequence[str] = ("task",),
    write_limit: int = 32 * 1024,
    socket_send_buffer: int | None = None,
) -> WebSocketServer:
    """Serve ``factory``'s streams over WebSocket: one JSON request in, one JSON message per event out.

    A client connects, sends one request (``{"task": "..."}``), and receives one message per event of
    ``factory(request)`` — ``event.to_dict()``: ``{"type": "token", "content": ..., "agent": ..., "seq": ...}`` —
    as the stream produces them, then ``{"type": "complete", "content": <full text>}`` (close 1000) or
    ``{"type": "error", "message": ..., "partial_text": ...}`` (close 1011). The stream is subscribed on the
    server's loop, so tokens go out while the agent is still generating. Closing the connection disposes the
    subscription: the run is cancelled and its HTTP stream closed.

    .. code-block:: text

        stream:   -s--t1--t2--t3--u--f-|
        client:   -s--t1--t2--t3--u--f--complete(t1 t2 t3)-close 1000

        slow client, on_slow="coalesce", max_buffer=2 (t2 and t3 wait while the client does not read):
        client:   -s--t1--------------t2t3--u--f--complete(t1 t2 t3)-close 1000
        (t2t3: one token message, content t2+t3, "seq" of t2, "last_seq" of t3, "coalesced": 2)

        on_slow="disconnect":
        client:   -s--t1------- close 1013 (the run is cancelled)

    Slow clients: each connection has a send buffer (besides the websockets library's ``write_limit`` and
    the kernel's socket buffer). When ``max_buffer`` messages wait in it, adjacent text messages of the same
    run are merged into one (text concatenated: nothing is lost, there are fewer messages; counted in
    ``stats.coalesced``), or, with ``on_slow="disconnect"`` and a client that is behind (its connection's
    write buffer is full), the connection is closed with code 1013 (``stats.slow_disconnects``). Under
    both policies, a client whose *backlog* — bytes queued while it was behind, not yet sent — passes
    ``max_buffer_bytes`` is disconnected with 1013, so a connection's memory stays bounded. A burst the
    stream produces faster than the loop can send (all of a ``pace=0`` answer at once) is merged and sent,
    not refused, and one message larger than ``max_buffer_bytes`` (a huge token) reaches a reading client
    whole. The final message is always queued.

    Args:
        factory: builds the stream for one request (a dict parsed from the client's JSON), e.g.
            ``lambda request: agent.stream(request["task"])``; or anything with a cold ``stream(task)``
            (an ``Agent``, a workflow), served as ``source.stream(request["task"])``. Called on the server's
            loop; a ``ValueError`` or ``LookupError`` it raises is a bad request (error message, close 1008).
        host: interface to bind; ``127.0.0.1`` (default) accepts local clients only. On a loopback bind, a
            handshake whose ``Host`` header is not a loopback name is refused with HTTP 403 (DNS rebinding).
        port: TCP port; 0 (default) picks a free one (read it from ``server.port``/``server.url``).
        token: if set, clients must send ``Authorization: Bearer <token>`` in the handshake; others get HTTP 401.
            The token is compared in constant time and never logged or echoed.
        allowed_origins: the web pages allowed to connect besides the server's own origin, e.g.
            ``["http://localhost:5173"]`` (scheme, host and port exactly as the browser sends them in
            ``Origin``; ``"null"`` for pages opened from files). A browser handshake from any other page is
            refused with HTTP 403 before the upgrade, so a site the user visits cannot drive the agent. Clients
            that send no ``Origin`` (programs, not browsers) are not affected: use ``token`` to restrict them.
        max_message_size: the largest request in bytes; larger ones are refused with close code 1009.
        max_buffer: the number of waiting messages from which text messages are merged.
        max_buffer_bytes: the largest backlog a client may have: bytes queued for it while it was behind (not
            reading as fast as the stream produces) and not yet sent; one larger message is let through alone.
        on_slow: ``"coalesce"`` (default) or ``"disconnect"``, see above.
        request_timeout: seconds to wait for the request after connecting (``None``: no limit); then
            error message and close 1008.
        required_fields: request keys that must hold a non-empty string.
        write_limit: the websockets library's write buffer high-water mark in bytes.
        socket_send_buffer: the kernel's send buffer per connection in bytes (``SO_SNDBUF``); ``None``
            (default) keeps the OS default, which Linux auto-tunes up to ``net.ipv4.tcp_wmem`` (often 4 MiB).

    Returns:
        A :class:`WebSocketServer`, not yet listening: ``async with`` it, or ``await server.start()``.

    Example::

        agent = Agent(agent_name="Analyst", model_name="gpt-4o-mini", print_on=False)
        async with serve_websocket(lambda request: agent.stream(request["task"]), port=8765) as server:
            await asyncio.Future()  # serve until cancelled
    """
    if not callable(factory) and callable(getattr(factory, "stream", None)):  # an Agent or a workflow
        factory = _task_factory(factory)
    if not callable(factory):
        fail(
            "factory",
            "a callable taking the request dict and returning an Observable",
            factory,
            hint="e.g. lambda request: agent.stream(request['task']), or an Agent",
        )
    check_str("host", host, hint="e.g. '127.0.0.1'")
    check_int("port", port, minimum=0, maximum=65535, hint="0 = any free port")
    if token is not None and (not isinstance(token, str) or not token or token != token.strip()):
        fail("token", "None or a non-empty string without surrounding spaces", token, secret=True)
    for name, value in (
        ("max_message_size", max_message_size),
        ("max_buffer", max_buffer),
        ("max_buffer_bytes", max_buffer_bytes),
        ("write_limit", write_limit),
    ):
        check_int(name, value)
    check_int("socket_send_buffer", socket_send_buffer, none="(the OS default)")
    origins = normalize_origins(allowed_origins)
    check_choice("on_slow", on_slow, ("coalesce", "disconnect"))
    check_seconds("request_timeout", request_timeout, none="(no limit)")
    _check_fields(required_fields)
    return WebSocketServer(
        factory,
        host=host,
        port=port,
        token=token,
        allowed_origins=origins,
        max_message_size=max_message_size,
        max_buffer=max_buffer,
        max_buffer_bytes=max_buffer_bytes,
        on_slow=on_slow,
        request_timeout=request_timeout,
        required_fields=required_fields,
        write_limit=write_limit,
        socket_send_buffer=socket_send_buffer,
    )
