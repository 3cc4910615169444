"""Pipelined JetStream publishing: many messages on the wire, their acknowledgements collected as they come.

A JetStream publish is a request: the server answers on the message's reply subject with ``{"stream", "seq"}``
(stored, or ``"duplicate": true`` when it held the ``Nats-Msg-Id`` already) or ``{"error": {...}}``. nats-py's
``publish`` waits for each answer before the next message (one round trip a message), and its
``publish_async`` never resolves the future of a refused message (nats-py 2.16 raises inside its reply handler),
so a refusal looks like a lost acknowledgement. :class:`AckInbox` does it directly: one subscription on
``<inbox>.*`` per connection, each message published with its own reply token, each answer resolving the
future of that token. The caller bounds how many are on the wire (the publisher's ``max_in_flight``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

__all__ = ["AckInbox", "NoResponders"]

log = logging.getLogger("rxagents.bus")


_STORED: Mapping[str, Any] = {}


class NoResponders(Exception):
    """No JetStream stream listens on the subject (the stream is missing or the server is starting)."""


class AckInbox:
    """Publishes JetStream messages without waiting, one future a message (see the module docs). Use it on
    the connection's loop."""

    def __init__(self, nc: Client) -> None:
        self._nc = nc
        self._prefix = nc.new_inbox()
        self._futures: dict[str, asyncio.Future[Mapping[str, Any]]] = {}
        self._next = 0
        self._sub: Subscription | None = None
        self._starting: asyncio.Lock | None = None

    async def _start(self) -> None:
        if self._starting is None:
            self._starting = asyncio.Lock()
        async with self._starting:
            if self._sub is None:
                self._sub = await self._nc.subscribe(
                    f"{self._prefix}.*", cb=self._answer, pending_msgs_limit=0, pending_bytes_limit=0
                )

    async def publish(self, subject: str, payload: bytes, headers: dict[str, str]) -> asyncio.Future[Mapping[str, Any]]:
        """Put one message on the wire; the future gets the server's answer (a dict: ``{}`` when the message was
        stored or was a duplicate, else with ``error``) or :class:`NoResponders`. :meth:`forget` the futures
        given up on."""
        if self._sub is None:
            await self._start()
        token = str(self._next)
        self._next += 1
        future: asyncio.Future[Mapping[str, Any]] = asyncio.get_running_loop().create_future()
        self._futures[token] = future
        await self._nc.publish(subject, payload, reply=f"{self._prefix}.{token}", headers=headers)
        return future

    def forget(self, futures: list[asyncio.Future[Mapping[str, Any]]]) -> None:
        """Stop waiting for the answers of ``futures`` (cancelled; their answers, if they come, are ignored)."""
        waiting = {id(future) for future in futures if not future.done()}
        if waiting:
            for token, future in list(self._futures.items()):
                if id(future) in waiting:
                    del self._futures[token]
                    future.cancel()

    async def _answer(self, msg: Msg) -> None:
        future = self._futures.pop(msg.subject[len(self._prefix) + 1 :], None)
        if future is None or future.done():
            return
        if msg.headers and msg.headers.get("Status") == "503":
            future.set_exception(NoResponders())
            return
        data = msg.data
        if b'"error"' not in data:  # {"stream":...,"seq":...}: stored (or a duplicate)
            future.set_result(_STORED)
            return
        try:
            answer = json.loads(data)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            answer = {"error": {"code": 500, "description": f"not a JetStream answer: {data[:80]!r}"}}
        future.set_result(answer if "error" in answer else _STORED)

    async def close(self) -> None:
        """Stop listening; futures still waiting are cancelled."""
        futures, self._futures = list(self._futures.values()), {}
        for future in futures:
            future.cancel()
        sub, self._sub = self._sub, None
        if sub is not None:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
