"""The local test model server's chat-completion responses: a rendered reply written as HTTP, faults included.

:class:`~rxagents.testing._faults.OpenAIReply` renders a :class:`~rxagents.testing._faults.Reply` as OpenAI
JSON; the functions here write it out on an aiohttp request - as ``text/event-stream`` (:func:`stream`) or one
JSON body (:func:`complete`) - pacing the events and playing the reply's fault (a slow first byte, an HTTP error,
a dropped connection, a malformed chunk, a stall, a missing ``[DONE]``, raw bytes). They run on the server's
loop, and leave as soon as the client is gone (:class:`Conn`), raising :class:`ClientGone`; what they wrote is
counted in a :class:`Progress`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, Literal

from aiohttp import web

from rxagents.testing._faults import (
    DropAfter,
    EmptyStream,
    HttpError,
    MalformedAfter,
    NoDone,
    OpenAIReply,
    RawBody,
    SlowFirstByte,
    StallAfter,
    compact_json,
    wants_usage,
)

__all__ = ["ClientGone", "Conn", "Outcome", "Progress", "complete", "error_response", "pause", "raw_stream", "stream"]

Outcome = Literal["completed", "client_disconnected", "fault", "server_stopped"]


class Conn:
    """One TCP connection. ``gone`` is set when the client disconnects and when the server stops."""

    __slots__ = ("gone", "lost_at", "transport")

    def __init__(self, transport: asyncio.Transport | None) -> None:
        self.gone = asyncio.Event()
        self.lost_at: float | None = None
        self.transport = transport


class ClientGone(Exception):
    """The client disconnected, or the server is stopping, while a response was being produced."""


@dataclass(slots=True)
class Progress:
    """What one response wrote, and how it ended (a :class:`ClientGone` leaves ``client_disconnected``)."""

    outcome: Outcome = "client_disconnected"
    events: int = 0


async def pause(conn: Conn, delay: float | None) -> None:
    """Sleep ``delay`` seconds (``None``: until woken); raise :class:`ClientGone` once the client goes."""
    if conn.gone.is_set():
        raise ClientGone
    if delay is not None and delay <= 0:
        return
    try:
        async with asyncio.timeout(delay):
            await conn.gone.wait()
    except TimeoutError:
        return
    raise ClientGone


async def stream(
    request: web.BaseRequest,
    conn: Conn,
    render: OpenAIReply,
    delay: float,
    progress: Progress,
    per_write: int = 1,
) -> web.StreamResponse:
    """``text/event-stream``: the reply's ``data:`` events, then ``data: [DONE]``.

    The events go out ``per_write`` at a time, each group in one write (as a real server's TCP coalesces events
    that are ready together), ``delay`` seconds apart; ``[DONE]`` goes with the last group (with ``per_write=1``:
    in a write of its own, right after the last event). A fault's position still counts events: the events
    before it are written first.
    """
    fault = render.reply.fault
    if isinstance(fault, SlowFirstByte):
        await pause(conn, fault.delay)
    if isinstance(fault, HttpError):
        progress.outcome = "fault"
        return error_response(fault)
    if isinstance(fault, RawBody):
        return await raw_stream(request, conn, fault, delay, progress)
    usage = wants_usage(render.body)
    if isinstance(fault, EmptyStream):
        events = [compact_json(event) for event in render.empty_events(include_usage=usage)] if fault.finish else []
    else:
        events = render.encoded_events(include_usage=usage)
    at = min(fault.after, len(events)) if isinstance(fault, DropAfter | MalformedAfter | StallAfter) else -1
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    group: list[bytes] = []  # events not written yet

    async def flush() -> None:
        if group:
            await response.write(b"".join(group))
            progress.events += len(group) - (group[-1] == _DONE)
            group.clear()

    try:
        await response.prepare(request)
        for position in range(len(events) + 1):
            if position == at:
                await flush()
                if isinstance(fault, DropAfter):  # abort: no terminating chunk, no [DONE]
                    progress.outcome = "fault"
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                if isinstance(fault, StallAfter):
                    await pause(conn, None)
                if isinstance(fault, MalformedAfter):
                    await response.write(b"data: " + _malformed(render.chunk({"content": "x"}), fault) + b"\n\n")
            if position == len(events):
                break
            if not group:
                await pause(conn, delay if position else 0)
            group.append(b"data: " + events[position] + b"\n\n")
            if len(group) >= per_write:
                await flush()
        if not isinstance(fault, NoDone):
            group.append(_DONE)
        await flush()
        await response.write_eof()
    except ConnectionError as exc:  # a write found the connection closed
        raise ClientGone from exc
    progress.outcome = "completed"
    return response


_DONE = b"data: [DONE]\n\n"


async def raw_stream(
    request: web.BaseRequest, conn: Conn, fault: RawBody, delay: float, progress: Progress
) -> web.StreamResponse:
    """:class:`RawBody`: SSE headers, then exactly ``fault.chunks``, one write each (counted in events)."""
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    try:
        await response.prepare(request)
        for position, chunk in enumerate(fault.chunks):
            await pause(conn, delay if position else 0)
            await response.write(chunk)
            progress.events += 1
        await response.write_eof()
    except ConnectionError as exc:
        raise ClientGone from exc
    progress.outcome = "completed"
    return response


async def complete(request: web.BaseRequest, conn: Conn, render: OpenAIReply, progress: Progress) -> web.StreamResponse:
    """A non-streaming request: one ``chat.completion`` JSON body."""
    fault = render.reply.fault
    if isinstance(fault, SlowFirstByte):
        await pause(conn, fault.delay)
    if isinstance(fault, StallAfter):
        await pause(conn, None)
    if isinstance(fault, HttpError):
        progress.outcome = "fault"
        return error_response(fault)
    if isinstance(fault, DropAfter):
        progress.outcome = "fault"
        if request.transport is not None:
            request.transport.abort()
        return web.Response()
    if isinstance(fault, RawBody):
        progress.outcome, progress.events = "completed", 1
        return web.Response(body=b"".join(fault.chunks), content_type="application/json")
    payload = compact_json(render.completion(empty=isinstance(fault, EmptyStream)))
    if isinstance(fault, MalformedAfter):
        payload = _malformed(render.completion(empty=False), fault, cut=len(payload) // 2)
    progress.outcome, progress.events = "completed", 1
    return web.Response(body=payload, content_type="application/json")


_NOT_UTF8 = b"\xff\xfe"  # never valid in UTF-8


def _malformed(obj: dict[str, Any], fault: MalformedAfter, cut: int = 40) -> bytes:
    """``obj`` spoiled as :class:`MalformedAfter` says: its JSON cut after ``cut`` bytes or, with
    ``invalid_utf8``, complete JSON with bytes that are not UTF-8 at the start of its first ``content`` text."""
    data = compact_json(obj)
    if not fault.invalid_utf8:
        return data[:cut]
    return data.replace(b'"content":"', b'"content":"' + _NOT_UTF8, 1)


def error_response(fault: HttpError) -> web.Response:
    """An OpenAI-style error: ``{"error": {"message", "type", "param", "code"}}`` plus ``Retry-After``."""
    status = fault.status
    if status == 429:
        kind, code = "rate_limit_error", "rate_limit_exceeded"
    elif status >= 500:
        kind, code = "server_error", "server_error"
    else:
        kind, code = "invalid_request_error", "not_found" if status == 404 else "invalid_request"
    error = {
        "message": fault.message or f"Local test server injected HTTP {status}",
        "type": fault.error_type or kind,
        "param": None,
        "code": fault.code or code,
    }
    headers: dict[str, str] = {}
    retry = fault.retry_after
    if isinstance(retry, str):
        headers["Retry-After"] = retry
    elif retry is not None:
        headers["Retry-After"] = str(int(retry)) if float(retry).is_integer() else str(retry)
    return web.json_response({"error": error}, status=status, headers=headers)
