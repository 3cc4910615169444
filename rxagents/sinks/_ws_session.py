"""One WebSocket connection's stream: the run, consumed on the server's loop, feeding the connection's outbox.

The run is iterated with :func:`rxagents.operators.to_async_iter` (which hands signals from other threads to the
server's loop, in order). Each event becomes a message in the :class:`~rxagents.sinks._ws_outbox.Outbox`, and a
send task writes the messages out; the stream's end queues the final ``complete`` or ``error`` message and picks
the close code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING, Any

import reactivex

from rxagents._core.partial import PartialText
from rxagents.events import EventKind, TokenEvent
from rxagents.operators._bridge import to_async_iter
from rxagents.sinks._ws_outbox import Outbox, Pending

if TYPE_CHECKING:
    from websockets.asyncio.server import ServerConnection

    from rxagents.sinks._websocket import _Counters

__all__ = [
    "CLOSE_BAD_REQUEST",
    "CLOSE_BINARY_REQUEST",
    "CLOSE_STREAM_FAILED",
    "CLOSE_TOO_SLOW",
    "Session",
    "close_reason",
]

log = logging.getLogger("rxagents")

CLOSE_BINARY_REQUEST = 1003  #: the request was a binary message
CLOSE_BAD_REQUEST = 1008  #: the request was not valid (JSON, fields, factory refused it) or never came
CLOSE_STREAM_FAILED = 1011  #: the stream ended with an error (the last message says which)
CLOSE_TOO_SLOW = 1013  #: the client read too slowly (``on_slow="disconnect"``, or past ``max_buffer_bytes``)
# Sent by the websockets library itself: 1009 (request larger than max_message_size), 1001 (server stopping).


def close_reason(text: str) -> str:
    """A close reason fits in 123 bytes."""
    return text if len(text.encode()) <= 123 else text.encode()[:120].decode(errors="ignore") + "..."


class Session:
    """One connection's stream: a task consuming the run, and the bounded outbox to the client.

    Everything runs on the server's loop.
    """

    def __init__(self, ws: ServerConnection, outbox: Outbox, counters: _Counters) -> None:
        self.ws = ws
        self.counters = counters
        self.outbox = outbox
        self.blocked = False  # the sender is inside ws.send: waiting for the client to read
        self.ready = asyncio.Event()
        self.ended = False  # the final message is queued, or the stream was stopped: ignore further signals
        self.outcome: str | None = None
        self.close_code = 1000
        self.close_reason = ""
        self.sender: asyncio.Task[None] | None = None
        self.texts = PartialText()  # what each run said so far; a retry event voids its run's text
        self.held_error: TokenEvent | None = None

    # --- on the server's loop ------------------------------------------------------------------------------
    def _event(self, event: object) -> None:
        if self.ended:
            return
        if not isinstance(event, TokenEvent):
            self._failed(TypeError(f"the stream must emit TokenEvent items, got {type(event).__name__}"))
            return
        if self.held_error is not None:  # an agent failed, but the stream goes on (e.g. a race)
            self._flush_held_error()
        if event.kind is EventKind.ERROR:
            self.held_error = event  # the stream's own failure if on_error follows, else an agent_error
            return
        self.texts.add(event)
        self._enqueue(Pending(event.to_dict()))

    def _flush_held_error(self) -> None:
        held, self.held_error = self.held_error, None
        if held is not None:
            message = held.to_dict()
            message["type"] = "agent_error"
            message["message"] = str(held.error) if held.error is not None else "the run failed"
            self._enqueue(Pending(message))

    def _content(self) -> str:
        return "\n\n".join(self.texts.by_run().values())

    def _completed(self, _: object = None) -> None:
        if self.ended:
            return
        self._flush_held_error()
        message: dict[str, Any] = {"type": "complete", "content": self._content()}
        runs = self.texts.by_run()
        if len({key[0] for key in runs if key is not None}) > 1:
            by_agent: dict[str, list[str]] = {}
            for key, text in runs.items():
                if key is not None:
                    by_agent.setdefault(key[0], []).append(text)
            message["texts"] = {agent: "\n\n".join(runs) for agent, runs in by_agent.items()}
        self._finish(message, "completed", 1000, "complete")

    def _failed(self, error: BaseException) -> None:
        if self.ended:
            return
        held, self.held_error = self.held_error, None
        message: dict[str, Any] = {
            "type": "error",
            "code": "stream_failed",
            "error": type(error).__name__,
            "message": str(error) or type(error).__name__,
            "partial_text": self._content(),
        }
        if held is not None:
            message.update(agent=held.agent, run_id=held.run_id, seq=held.seq)
        self._finish(message, "failed", CLOSE_STREAM_FAILED, f"stream failed: {type(error).__name__}")

    def _finish(self, message: dict[str, Any], outcome: str, code: int, reason: str) -> None:
        self._enqueue(Pending(message, final=True))
        self.ended = True
        self.outcome = outcome
        self.close_code, self.close_reason = code, reason

    def _enqueue(self, item: Pending) -> None:
        slow = self.outbox.put(item, behind=self.blocked)
        if slow is not None:
            self._too_slow(slow)
        else:
            self.ready.set()

    def _too_slow(self, reason: str) -> None:
        log.info("websocket client disconnected: %s", reason)
        self.counters.slow_disconnects += 1
        self.ended = True  # the consumer stops, which disposes the subscription
        self.outcome = "slow"
        self.close_code, self.close_reason = CLOSE_TOO_SLOW, reason
        self.outbox.clear()
        if self.sender is not None:
            self.sender.cancel()

    async def _consume(self, observable: reactivex.Observable[TokenEvent]) -> None:
        """Feed the run's events to the outbox until it ends or the session does; leaving disposes the run."""
        try:
            async with to_async_iter(observable) as events:
                async for event in events:
                    self._event(event)
                    if self.ended:
                        return
        except Exception as error:  # the stream failed (or its subscribe raised)
            self._failed(error)
        else:
            self._completed()

    async def _send_loop(self) -> None:
        counters = self.counters
        while True:
            while not self.outbox:
                self.ready.clear()
                await self.ready.wait()
            item = self.outbox.pop()
            self.blocked = True  # still True when another callback runs: send is waiting for the client
            try:
                await self.ws.send(item.encode())
            finally:
                self.blocked = False
            counters.messages_sent += 1
            if item.final:
                return

    async def _read_until_closed(self) -> None:
        """Further client messages are ignored; this ends when the client closes or disconnects."""
        from websockets.exceptions import ConnectionClosed

        with contextlib.suppress(ConnectionClosed):
            async for _ in self.ws:
                pass

    async def run(self, observable: reactivex.Observable[TokenEvent]) -> None:
        from websockets.exceptions import ConnectionClosed

        counters = self.counters
        counters.runs_started += 1
        self.sender = sender = asyncio.create_task(self._send_loop())
        reader = asyncio.create_task(self._read_until_closed())
        consumer = asyncio.create_task(self._consume(observable))
        try:
            await asyncio.wait({sender, reader}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self.ended = True
            self.outbox.clear()
            for task in (consumer, sender, reader):  # the consumer's cancellation disposes the run (and closes
                task.cancel()  # its HTTP stream) if it is still going; events still on their way are dropped
            for result in await asyncio.gather(consumer, sender, reader, return_exceptions=True):
                if isinstance(result, Exception) and not isinstance(result, ConnectionClosed):
                    log.error("websocket connection failed", exc_info=result)
            if self.outcome == "completed":
                counters.runs_completed += 1
            elif self.outcome == "failed":
                counters.runs_failed += 1
            else:
                counters.runs_cancelled += 1
            await self.ws.close(self.close_code, close_reason(self.close_reason))
