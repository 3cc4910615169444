"""Redis Streams adapter: one stream key per run, order and de-duplication kept by a Lua script.

Run ``R``'s messages are entries of the stream ``<prefix>:run:R`` (field ``m``: the encoded message). Redis has no
broker-side de-duplication, so every message is added by one Lua script, atomically:

- it keeps the run's next expected seq in ``<prefix>:next:R``;
- a message whose seqs were all stored already (``last < next``) is a re-send: not stored, acknowledged;
- a message that starts after ``next`` would leave a gap: refused (the publisher lost earlier events; the
  publish fails with a :class:`~rxagents.bus.BusError` instead of storing a run with a hole);
- a message of an attempt (see :meth:`~rxagents.bus.Bus.begin_attempt`: ``INCR <prefix>:attempt:R``) whose
  attempt number is not the run's latest is refused (a newer attempt took the run over);
- otherwise it is stored with the entry id ``<last seq>-1`` (so readers can start at any seq with ``XREAD``),
  ``next`` becomes ``last + 1``, both keys get the ``max_age`` expiry (sliding: counted from the run's last
  message), the stream is trimmed to ``max_msgs_per_run`` entries, and the run's id is scored with the server's
  time in the sorted set ``<prefix>:runs`` (``bus.runs()`` lists it).

So the stored log of a run is in seq order with neither gap nor duplicate, whatever the publisher retried. Use
Redis with ``appendonly yes`` to keep acknowledged messages across a restart. Keys of one run are not
co-located for Redis Cluster: use a single Redis (or a primary with replicas).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

from rxagents._urls import safe_url
from rxagents._validate import check_int
from rxagents.bus._base import Bus, Outgoing, RunInfo, Transient, run_info, scrub
from rxagents.bus._errors import AttemptFenced, BusError, BusUnavailable
from rxagents.bus._redis_queue import RedisQueue
from rxagents.bus._wire import Message, decode_message
from rxagents.errors import ConfigurationError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.commands.core import AsyncScript

__all__ = ["RedisBus"]

_APPEND = """
if ARGV[7] ~= '' and tonumber(redis.call('GET', KEYS[4]) or '0') ~= tonumber(ARGV[7]) then return 'fenced' end
local next_seq = tonumber(redis.call('GET', KEYS[2]) or '0')
local first = tonumber(ARGV[1])
local last = tonumber(ARGV[2])
if last < next_seq then return 0 end
if first > next_seq then return -1 - next_seq end
local maxlen = tonumber(ARGV[4])
if maxlen > 0 then
  redis.call('XADD', KEYS[1], 'MAXLEN', maxlen, ARGV[2] .. '-1', 'm', ARGV[3])
else
  redis.call('XADD', KEYS[1], ARGV[2] .. '-1', 'm', ARGV[3])
end
local ttl = tonumber(ARGV[5])
if ttl > 0 then
  redis.call('SET', KEYS[2], last + 1, 'PX', ttl)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[4], ttl)
else
  redis.call('SET', KEYS[2], last + 1)
end
local now = redis.call('TIME')
redis.call('ZADD', KEYS[3], tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000), ARGV[6])
return 1
"""


def _redis() -> Any:
    try:
        import redis.asyncio
        import redis.asyncio.retry
        import redis.backoff
        import redis.exceptions
    except ImportError:
        raise ConfigurationError(
            "RedisBus needs the redis package: pip install 'rxagents[redis]' (or pip install redis)"
        ) from None
    return redis


class RedisBus(Bus):
    """The event bus on Redis Streams.

    Args:
        url: ``redis://host:port/db`` or ``rediss://host:port/db`` (TLS). A password (and user) may be in the URL
            (``redis://:password@host``) or given below; it is never shown (``repr``, errors and logs use the URL
            without it).
        prefix: the prefix of every key the bus uses (one per deployment).
        max_age: seconds a run is kept after its last message; None keeps it.
        max_msgs_per_run: the most messages kept per run (``XADD MAXLEN``, exact); None: no limit.
        password, username: Redis AUTH.
        ssl_ca_certs, ssl_certfile, ssl_keyfile: TLS files for ``rediss://`` (a CA bundle; a client certificate).
        connect_timeout: seconds :meth:`connect` (and every command) waits for the server.
        block: seconds a reader's ``XREAD`` waits for new entries before it checks its timers.
        max_connections: connections to Redis at most (each attached reader holds one while its ``XREAD``
            blocks; redis-py's own default of 100 failed the 101st concurrent command).
    """

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "rxagents",
        max_age: float | None = 86_400.0,
        max_msgs_per_run: int | None = None,
        password: str | None = None,
        username: str | None = None,
        ssl_ca_certs: str | None = None,
        ssl_certfile: str | None = None,
        ssl_keyfile: str | None = None,
        connect_timeout: float = 5.0,
        block: float = 1.0,
        max_connections: int = 10_000,
    ) -> None:
        try:
            parts = urlsplit(url.strip()) if isinstance(url, str) else None
            port = parts.port if parts is not None else None
            db = int(parts.path.strip("/") or 0) if parts is not None else 0
        except ValueError:
            raise ConfigurationError(
                f"url must be a Redis URL such as 'redis://127.0.0.1:6379/0', got {safe_url(str(url))!r}"
            ) from None
        if parts is None or parts.scheme not in ("redis", "rediss") or not parts.hostname:
            shown = safe_url(url) if isinstance(url, str) else repr(url)
            raise ConfigurationError(f"url must be redis://host:port/db or rediss://host:port/db, got {shown!r}")
        super().__init__(url.strip())
        if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
            raise ConfigurationError(f"prefix must be a non-empty string without spaces, got {prefix!r}")
        if max_age is not None and (isinstance(max_age, bool) or not isinstance(max_age, int | float) or max_age <= 0):
            raise ConfigurationError(f"max_age must be a number of seconds > 0 or None (keep runs), got {max_age!r}")
        if max_msgs_per_run is not None and (
            isinstance(max_msgs_per_run, bool) or not isinstance(max_msgs_per_run, int) or max_msgs_per_run < 1
        ):
            raise ConfigurationError(
                f"max_msgs_per_run must be an int >= 1 or None (no limit), got {max_msgs_per_run!r}"
            )
        for name, value in (("connect_timeout", connect_timeout), ("block", block)):
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                raise ConfigurationError(f"{name} must be a number of seconds > 0, got {value!r}")
        self._host = parts.hostname
        self._port = port or 6379
        self._db = db
        self._tls = parts.scheme == "rediss"
        self._max_connections = check_int("max_connections", max_connections, maximum=1_000_000)
        self._password = password if password is not None else (unquote(parts.password) if parts.password else None)
        self._username = username if username is not None else (unquote(parts.username) if parts.username else None)
        self._ssl = {"ssl_ca_certs": ssl_ca_certs, "ssl_certfile": ssl_certfile, "ssl_keyfile": ssl_keyfile}
        self.prefix = prefix
        self.max_age = max_age
        self.max_msgs_per_run = max_msgs_per_run
        self._connect_timeout = connect_timeout
        self._block = block
        self._client: Redis | None = None
        self._script: AsyncScript | None = None
        self._queue: RedisQueue | None = None

    def __repr__(self) -> str:
        return f"RedisBus({self.url!r}, prefix={self.prefix!r})"

    def key(self, run_id: str) -> str:
        """The stream key holding the messages of ``run_id``."""
        return f"{self.prefix}:run:{run_id}"

    def _fault(self, what: str, error: BaseException) -> str:
        return scrub(f"{what} on {self.url}: {type(error).__name__}: {error}", [self._password])

    # --- connection -----------------------------------------------------------------------------------------

    async def _connect(self) -> None:
        redis = _redis()
        options: dict[str, Any] = {
            "host": self._host,
            "port": self._port,
            "db": self._db,
            "password": self._password,
            "username": self._username,
            "socket_connect_timeout": self._connect_timeout,
            "socket_timeout": self._connect_timeout + self._block,
            "max_connections": self._max_connections,
            # no hidden retries with back-off inside redis-py: publish and attach retry on their own terms
            "retry": redis.asyncio.retry.Retry(redis.backoff.NoBackoff(), 0),
        }
        if self._tls:
            options["ssl"] = True
            options |= {name: value for name, value in self._ssl.items() if value is not None}
        client = redis.asyncio.Redis(**options)
        try:
            await asyncio.wait_for(client.ping(), self._connect_timeout)
        except (TimeoutError, redis.exceptions.RedisError, OSError) as error:
            with contextlib.suppress(Exception):
                await client.aclose()
            raise BusUnavailable(
                self._fault("cannot connect to Redis", error) + "; is redis-server running there?"
            ) from None
        self._client = client
        self._script = client.register_script(_APPEND)

    @property
    def queue(self) -> RedisQueue:
        if self._queue is None:
            self._queue = RedisQueue(self)
        return self._queue

    async def _close(self) -> None:
        queue, self._queue = self._queue, None
        if queue is not None:
            await queue.close()
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                await client.aclose()

    def _redis_client(self) -> Redis:
        if self._client is None:
            raise BusUnavailable(f"{self!r} is closed")
        return self._client

    # --- publishing -------------------------------------------------------------------------------------------

    async def _send(self, messages: Sequence[Outgoing]) -> None:
        redis = _redis()
        client, script = self._redis_client(), self._script
        assert script is not None
        ttl = int(self.max_age * 1000) if self.max_age is not None else 0
        maxlen = self.max_msgs_per_run or 0
        try:
            async with client.pipeline(transaction=False) as pipe:
                for m in messages:
                    keys = [self.key(m.run_id), f"{self.prefix}:next:{m.run_id}", f"{self.prefix}:runs",
                            self._attempt_key(m.run_id)]  # fmt: skip
                    fence: int | str = m.fence.token if m.fence is not None else ""
                    args: list[int | str | bytes] = [m.first, m.last, m.payload, maxlen, ttl, m.run_id, fence]
                    await script(keys=keys, args=args, client=pipe)
                results = await pipe.execute()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
            raise Transient(self._fault("publishing", error)) from None
        except redis.exceptions.RedisError as error:
            raise BusError(self._fault("Redis refused a message", error)) from None
        for m, result in zip(messages, results, strict=True):
            if result == b"fenced":
                raise AttemptFenced(
                    f"run {m.run_id!r} on {self.url}: a newer attempt took the run over (its task was delivered "
                    f"again); the broker refuses this attempt's messages",
                    run_id=m.run_id,
                )
            if int(result) < 0:
                expected = -1 - int(result)
                raise BusError(
                    f"run {m.run_id!r} on {self.url}: the broker has its events up to seq {expected - 1}, this message "
                    f"starts at seq {m.first}: events {expected}..{m.first - 1} were never published"
                )

    def _attempt_key(self, run_id: str) -> str:
        return f"{self.prefix}:attempt:{run_id}"

    async def _fence(self, run_id: str) -> int:
        redis = _redis()
        client = self._redis_client()
        key = self._attempt_key(run_id)
        try:
            async with client.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                if self.max_age is not None:
                    pipe.pexpire(key, int(self.max_age * 1000))
                results = await pipe.execute()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
            raise Transient(self._fault("beginning an attempt", error)) from None
        except redis.exceptions.RedisError as error:
            raise BusError(self._fault(f"Redis refused the attempt of run {run_id!r}", error)) from None
        return int(results[0])

    # --- reading ----------------------------------------------------------------------------------------------

    async def _read(self, run_id: str, from_seq: int, cursor: Any) -> AsyncIterator[tuple[bytes, Any] | None]:
        redis = _redis()
        client = self._redis_client()
        key = self.key(run_id)
        position = cursor if cursor is not None else f"{from_seq}-0"
        block = int(self._block * 1000)
        if cursor is None and from_seq > 0:
            # the message before from_seq too: if it ends the run, the reader learns the run is over
            try:
                before: Any = await client.xrevrange(key, f"({from_seq}-0", "-", count=1)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
                raise Transient(self._fault("reading", error)) from None
            for entry_id, fields in before:
                position = entry_id
                yield fields[b"m"], entry_id
        while True:
            try:
                reply: Any = await client.xread({key: position}, count=512, block=block)
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError) as error:
                raise Transient(self._fault("reading", error)) from None
            if not reply:
                yield None
                continue
            for _, entries in reply:
                for entry_id, fields in entries:
                    position = entry_id
                    yield fields[b"m"], entry_id

    # --- listing ----------------------------------------------------------------------------------------------

    async def last_message(self, run_id: str) -> Message | None:
        redis = _redis()
        client = self._redis_client()
        try:
            last: Any = await client.xrevrange(self.key(run_id), "+", "-", count=1)
        except (redis.exceptions.RedisError, OSError) as error:
            raise BusUnavailable(self._fault(f"cannot read run {run_id!r}", error)) from None
        return decode_message(last[0][1][b"m"]) if last else None

    async def runs(self) -> list[RunInfo]:
        redis = _redis()
        client = self._redis_client()
        index = f"{self.prefix}:runs"
        try:
            if self.max_age is not None:
                seconds, micros = await client.time()
                now_ms = seconds * 1000 + micros // 1000
                await client.zremrangebyscore(index, "-inf", now_ms - int(self.max_age * 1000))
            members: Any = await client.zrange(index, 0, -1)
            ids = [raw.decode("utf-8", "surrogateescape") for raw in members]
            async with client.pipeline(transaction=False) as pipe:
                for run_id in ids:
                    pipe.xrevrange(self.key(run_id), "+", "-", count=1)
                lasts = await pipe.execute()
        except (redis.exceptions.RedisError, OSError) as error:
            raise BusUnavailable(self._fault("cannot list runs", error)) from None
        return [run_info(decode_message(last[0][1][b"m"])) for last in lasts if last]
