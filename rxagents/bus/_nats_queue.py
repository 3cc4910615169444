"""The work queue on NATS JetStream.

- Tasks: the stream ``task_stream`` (work-queue retention, file storage) on the subject ``task_subject``; a task's
  ``Nats-Msg-Id`` is ``task:<run_id>``, so a task submitted twice (a client retrying) is queued once. Workers of a
  group share the durable pull consumer named after the group: explicit acks, ``ack_wait = redeliver_after``
  (a worker sends "in progress" to keep a task), no limit on redeliveries.
- Cancel requests: the stream ``cancel_stream`` (limits retention, one message per subject, the runs' ``max_age``)
  on ``<cancel_prefix>.<run token>``. Publishing there stores the marker and reaches every worker subscribed to
  ``<cancel_prefix>.>`` at once.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from rxagents.bus._base import Transient
from rxagents.bus._errors import BusError, BusUnavailable
from rxagents.bus._queue import Taken, TaskQueue

if TYPE_CHECKING:
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

    from rxagents.bus._nats import NatsBus

__all__ = ["NatsQueue"]


def _run_of(token: str) -> str:
    """The run id of a subject token (see :func:`rxagents.bus._nats.run_token`)."""
    if not token.startswith("="):
        return token
    padded = token[1:] + "=" * (-len(token[1:]) % 4)
    return base64.urlsafe_b64decode(padded).decode("utf-8", "surrogatepass")


class NatsQueue(TaskQueue):
    """The work queue of a :class:`~rxagents.bus.NatsBus` (see the module docs)."""

    def __init__(self, bus: NatsBus) -> None:
        self.bus = bus
        self._ready = False
        self._lock = asyncio.Lock()
        self._pull: JetStreamContext.PullSubscription | None = None

    def _nats(self) -> Any:
        from rxagents.bus._nats import _nats

        return _nats()

    def cancel_subject(self, run_id: str) -> str:
        from rxagents.bus._nats import run_token

        return f"{self.bus.cancel_prefix}.{run_token(run_id)}"

    async def _ensure(self) -> None:
        """Create the task and cancel streams if missing (once per connection)."""
        if self._ready:
            return
        async with self._lock:
            if self._ready:
                return
            nats = self._nats()
            api = nats.js.api
            nc, _ = self.bus._client()
            jsm = nc.jsm(timeout=self.bus._ack_timeout)
            configs = [
                api.StreamConfig(
                    name=self.bus.task_stream,
                    subjects=[self.bus.task_subject],
                    retention=api.RetentionPolicy.WORK_QUEUE,
                    storage=api.StorageType.FILE,
                    duplicate_window=self.bus.duplicate_window,
                    num_replicas=1,
                ),
                api.StreamConfig(
                    name=self.bus.cancel_stream,
                    subjects=[f"{self.bus.cancel_prefix}.>"],
                    retention=api.RetentionPolicy.LIMITS,
                    storage=api.StorageType.FILE,
                    discard=api.DiscardPolicy.OLD,
                    max_msgs_per_subject=1,
                    max_age=self.bus.max_age,
                    allow_direct=True,
                    num_replicas=1,
                ),
            ]
            try:
                for config in configs:
                    try:
                        await jsm.stream_info(config.name)
                    except nats.js.errors.NotFoundError:
                        await jsm.add_stream(config)
            except nats.js.errors.APIError as error:
                raise BusError(
                    f"JetStream at {self.bus.url} refused the stream {config.name!r}: {error.description or error}; "
                    f"give each deployment its own task_stream=/task_subject= and cancel_stream=/cancel_prefix="
                ) from None
            except (TimeoutError, nats.errors.Error, OSError) as error:
                raise BusUnavailable(
                    f"cannot set up the work queue on {self.bus.url}: {type(error).__name__}: {error}"
                ) from None
            self._ready = True

    async def put(self, run_id: str, payload: bytes) -> bool:
        nats = self._nats()
        await self._ensure()
        _, js = self.bus._client()
        try:
            ack = await js.publish(
                self.bus.task_subject, payload, headers={"Nats-Msg-Id": f"task:{run_id}"}, timeout=self.bus._ack_timeout
            )
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise BusUnavailable(f"cannot submit to {self.bus.url}: {type(error).__name__}: {error}") from None
        return not ack.duplicate

    async def join(self, group: str, worker: str, redeliver_after: float) -> None:
        nats = self._nats()
        api = nats.js.api
        await self._ensure()
        nc, js = self.bus._client()
        jsm = nc.jsm(timeout=self.bus._ack_timeout)
        config = api.ConsumerConfig(
            name=group,
            durable_name=group,
            filter_subject=self.bus.task_subject,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=redeliver_after,
            max_deliver=-1,
            max_ack_pending=-1,
            deliver_policy=api.DeliverPolicy.ALL,
        )
        try:
            await jsm.add_consumer(self.bus.task_stream, config)  # creates it, or updates its ack_wait
            self._pull = await js.pull_subscribe_bind(durable=group, stream=self.bus.task_stream)
        except nats.js.errors.APIError as error:
            raise BusError(
                f"JetStream at {self.bus.url} refused the workers' consumer {group!r}: {error.description or error}"
            ) from None
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise BusUnavailable(
                f"cannot join the work queue on {self.bus.url}: {type(error).__name__}: {error}"
            ) from None

    async def take(self, count: int, wait: float) -> list[Taken]:
        nats = self._nats()
        if self._pull is None:
            raise BusError("take() before join(): a worker joins its group first")
        try:
            msgs: list[Msg] = await self._pull.fetch(count, timeout=wait)
        except (TimeoutError, nats.errors.TimeoutError):
            return []
        except (nats.errors.Error, OSError) as error:
            raise Transient(f"taking tasks: {type(error).__name__}: {error}") from None
        return [Taken(msg.data, msg.metadata.num_delivered, msg) for msg in msgs]

    async def touch(self, taken: Taken) -> None:
        nats = self._nats()
        try:
            await taken.handle.in_progress()
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise Transient(f"keeping a task: {type(error).__name__}: {error}") from None

    async def ack(self, taken: Taken) -> None:
        nats = self._nats()
        try:
            await taken.handle.ack_sync(timeout=self.bus._ack_timeout)
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise Transient(f"acknowledging a task: {type(error).__name__}: {error}") from None

    async def request_cancel(self, run_id: str, reason: str) -> None:
        nats = self._nats()
        await self._ensure()
        _, js = self.bus._client()
        try:
            await js.publish(self.cancel_subject(run_id), reason.encode("utf-8", "surrogatepass"),
                             timeout=self.bus._ack_timeout)  # fmt: skip
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise BusUnavailable(f"cannot cancel on {self.bus.url}: {type(error).__name__}: {error}") from None

    async def cancel_reason(self, run_id: str) -> str | None:
        nats = self._nats()
        await self._ensure()
        nc, _ = self.bus._client()
        jsm = nc.jsm(timeout=self.bus._ack_timeout)
        try:
            raw = await jsm.get_last_msg(self.bus.cancel_stream, self.cancel_subject(run_id), direct=True)
        except nats.js.errors.NotFoundError:
            return None
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise Transient(f"reading cancel requests: {type(error).__name__}: {error}") from None
        return (raw.data or b"").decode("utf-8", "surrogatepass")

    async def cancel_requests(self) -> AsyncIterator[tuple[str, str] | None]:
        await self._ensure()
        nc, _ = self.bus._client()
        prefix = f"{self.bus.cancel_prefix}."
        arrived: asyncio.Queue[tuple[str, str]] = asyncio.Queue()

        async def on_request(msg: Msg) -> None:
            if msg.subject.startswith(prefix):
                run_id = _run_of(msg.subject[len(prefix) :])
                arrived.put_nowait((run_id, msg.data.decode("utf-8", "surrogatepass")))

        sub = await nc.subscribe(f"{prefix}>", cb=on_request)
        try:
            await nc.flush(timeout=max(1, round(self.bus._ack_timeout)))  # the server has the subscription from here on
            yield None
            while True:
                yield await arrived.get()
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    async def close(self) -> None:
        pull, self._pull = self._pull, None
        if pull is not None:
            with contextlib.suppress(Exception):
                await pull.unsubscribe()
