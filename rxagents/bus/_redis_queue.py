"""The work queue on Redis Streams.

- Tasks: entries of the stream ``<prefix>:tasks`` (field ``p``: the payload). A Lua script queues a task only if
  ``<prefix>:task:<run_id>`` did not exist (``SET NX`` with the runs' ``max_age``), so a task submitted twice is
  queued once. Workers of a group read it with ``XREADGROUP`` (the group is created at id 0, so tasks queued
  before any worker are taken too); a worker keeps a task by re-claiming it (``XCLAIM ... JUSTID``, which resets
  its idle time), and takes the tasks idle longer than ``redeliver_after`` first (``XAUTOCLAIM``): those of a
  worker that died. Done: ``XACK`` and ``XDEL``.
- Dead workers' consumers: a worker killed with ``kill -9`` leaves its consumer in the group. Each worker, at
  most once every ``redeliver_after``, removes (``XGROUP DELCONSUMER``, in a Lua script with the check, so
  atomically) the group's consumers that hold no pending task and were idle longer than ``redeliver_after``:
  a dead worker's tasks were claimed by then (``XAUTOCLAIM``), and a live worker that holds none is idle for
  at most one blocking read (if it is removed all the same, its next ``XREADGROUP`` makes it again). A consumer
  that holds tasks is never removed: that would drop its tasks from the group. A worker that stops removes its
  own consumer when it holds no task.
- Cancel requests: the key ``<prefix>:cancel:<run_id>`` (the reason, with the runs' ``max_age``), announced on
  the channel ``<prefix>:cancel``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from rxagents.bus._base import Transient
from rxagents.bus._errors import BusError, BusUnavailable
from rxagents.bus._queue import Taken, TaskQueue

if TYPE_CHECKING:
    from rxagents.bus._redis import RedisBus

__all__ = ["RedisQueue"]

log = logging.getLogger("rxagents.bus")

_PUT = """
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[3]) then
  redis.call('XADD', KEYS[1], '*', 'r', ARGV[1], 'p', ARGV[2])
  return 1
end
return 0
"""
_FORGET = """
local removed = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local info = {}
  for i = 1, #consumer, 2 do info[consumer[i]] = consumer[i + 1] end
  local mine = info['name'] == ARGV[3]
  if tonumber(info['pending']) == 0 and ((ARGV[4] == '1' and mine) or
      (ARGV[4] == '0' and not mine and tonumber(info['idle']) > tonumber(ARGV[2]))) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info['name'])
    removed = removed + 1
  end
end
return removed
"""
#: How long a task's de-duplication key and a cancel marker live when runs are kept forever (max_age=None).
_DEFAULT_KEEP_MS = 7 * 86_400_000


class RedisQueue(TaskQueue):
    """The work queue of a :class:`~rxagents.bus.RedisBus` (see the module docs)."""

    def __init__(self, bus: RedisBus) -> None:
        self.bus = bus
        self.tasks = f"{bus.prefix}:tasks"
        self.channel = f"{bus.prefix}:cancel"
        self._group: str | None = None
        self._worker = ""
        self._idle_ms = 0
        self._swept_at: float | None = None  # loop time of the last removal of dead consumers

    def _redis(self) -> Any:
        from rxagents.bus._redis import _redis

        return _redis()

    def _keep_ms(self) -> int:
        return int(self.bus.max_age * 1000) if self.bus.max_age is not None else _DEFAULT_KEEP_MS

    def _failure(self, what: str, error: BaseException) -> BusUnavailable:
        return BusUnavailable(self.bus._fault(what, error))

    async def put(self, run_id: str, payload: bytes) -> bool:
        redis = self._redis()
        client = self.bus._redis_client()
        keys = [self.tasks, f"{self.bus.prefix}:task:{run_id}"]
        try:
            added = await client.eval(_PUT, 2, *keys, run_id, payload, self._keep_ms())
        except (redis.exceptions.RedisError, OSError) as error:
            raise self._failure("cannot submit", error) from None
        return bool(added)

    async def join(self, group: str, worker: str, redeliver_after: float) -> None:
        redis = self._redis()
        client = self.bus._redis_client()
        try:
            await client.xgroup_create(self.tasks, group, id="0", mkstream=True)
        except redis.exceptions.ResponseError as error:
            if "BUSYGROUP" not in str(error):
                raise BusError(self.bus._fault("Redis refused the workers' group", error)) from None
        except (redis.exceptions.RedisError, OSError) as error:
            raise self._failure("cannot join the work queue", error) from None
        self._group, self._worker, self._idle_ms = group, worker, max(1, int(redeliver_after * 1000))

    async def take(self, count: int, wait: float) -> list[Taken]:
        redis = self._redis()
        client = self.bus._redis_client()
        if self._group is None:
            raise BusError("take() before join(): a worker joins its group first")
        try:
            reply: Any = await client.xautoclaim(
                self.tasks, self._group, self._worker, self._idle_ms, start_id="0-0", count=count
            )
            entries = [(entry_id, fields) for entry_id, fields in reply[1] if fields]
            redelivered = bool(entries)
            if not entries:
                block = max(1, int(min(wait, self.bus._block) * 1000))
                read: Any = await client.xreadgroup(
                    self._group, self._worker, {self.tasks: ">"}, count=count, block=block
                )
                entries = [entry for _, items in read or [] for entry in items if entry[1]]
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
            raise Transient(self.bus._fault("taking tasks", error)) from None
        except redis.exceptions.RedisError as error:
            raise BusError(self.bus._fault("taking tasks", error)) from None
        now = asyncio.get_running_loop().time()
        if self._swept_at is None or now - self._swept_at >= self._idle_ms / 1000:
            self._swept_at = now
            await self.forget_dead()
        return [Taken(fields[b"p"], 2 if redelivered else 1, entry_id) for entry_id, fields in entries]

    async def forget_dead(self, *, only_self: bool = False) -> int:
        """Remove the group's consumers that hold no task and were idle longer than ``redeliver_after`` (dead
        workers'; see the module docs), or with ``only_self`` this worker's own if it holds none; how many."""
        redis = self._redis()
        client = self.bus._redis_client()
        if self._group is None:
            return 0
        args: list[str | int] = [self._group, self._idle_ms, self._worker, "1" if only_self else "0"]
        try:
            return int(await client.eval(_FORGET, 1, self.tasks, *args))
        except (redis.exceptions.RedisError, OSError) as error:  # tidying only: the next sweep tries again
            log.debug("removing dead consumers of %s: %s", self.tasks, error)
            return 0

    async def close(self) -> None:
        if self._group is not None and self.bus._client is not None:
            with contextlib.suppress(TimeoutError):  # the broker is away: a live worker's sweep removes it later
                await asyncio.wait_for(self.forget_dead(only_self=True), 1.0)

    async def touch(self, taken: Taken) -> None:
        redis = self._redis()
        client = self.bus._redis_client()
        assert self._group is not None
        try:
            await client.xclaim(self.tasks, self._group, self._worker, 0, [taken.handle], justid=True)
        except (redis.exceptions.RedisError, OSError) as error:
            raise Transient(self.bus._fault("keeping a task", error)) from None

    async def ack(self, taken: Taken) -> None:
        redis = self._redis()
        client = self.bus._redis_client()
        assert self._group is not None
        try:
            async with client.pipeline(transaction=True) as pipe:
                pipe.xack(self.tasks, self._group, taken.handle)
                pipe.xdel(self.tasks, taken.handle)
                await pipe.execute()
        except (redis.exceptions.RedisError, OSError) as error:
            raise Transient(self.bus._fault("acknowledging a task", error)) from None

    async def request_cancel(self, run_id: str, reason: str) -> None:
        redis = self._redis()
        client = self.bus._redis_client()
        try:
            async with client.pipeline(transaction=True) as pipe:
                pipe.set(f"{self.bus.prefix}:cancel:{run_id}", reason, px=self._keep_ms())
                pipe.publish(self.channel, json.dumps([run_id, reason]))
                await pipe.execute()
        except (redis.exceptions.RedisError, OSError) as error:
            raise self._failure("cannot cancel", error) from None

    async def cancel_reason(self, run_id: str) -> str | None:
        redis = self._redis()
        client = self.bus._redis_client()
        try:
            raw: Any = await client.get(f"{self.bus.prefix}:cancel:{run_id}")
        except (redis.exceptions.RedisError, OSError) as error:
            raise Transient(self.bus._fault("reading cancel requests", error)) from None
        return None if raw is None else bytes(raw).decode("utf-8", "surrogatepass")

    async def cancel_requests(self) -> AsyncIterator[tuple[str, str] | None]:
        redis = self._redis()
        client = self.bus._redis_client()
        backoff = 0.05
        while True:
            pubsub = client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                backoff = 0.05
                yield None  # (re)subscribed: requests announced before may have been missed
                while True:
                    message: Any = await pubsub.get_message(timeout=self.bus._block)
                    if message is None or message.get("type") != "message":
                        continue
                    with contextlib.suppress(ValueError, TypeError):
                        run_id, reason = json.loads(message["data"])
                        yield str(run_id), str(reason)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError):
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
