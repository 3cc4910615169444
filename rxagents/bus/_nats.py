"""NATS JetStream adapter: one stream per deployment, one subject per run.

Messages of run ``R`` go to subject ``<subject_prefix>.<token(R)>`` of stream ``<stream>`` (file storage, limits
retention). ``token(R)`` is ``R`` itself when it only has ``A-Z a-z 0-9 _ -``, else ``=`` followed by ``R`` in
unpadded URL-safe base64 (so any run id works and two ids never share a subject). Each message carries a
``Nats-Msg-Id`` header (``run_id:seq``, or ``run_id:first-last`` for a coalesced message): JetStream drops a
message whose id it stored within ``duplicate_window``, so a publisher retrying after a lost ack stores nothing
twice.

Reading a run uses an ephemeral push consumer filtered on its subject (no acks, flow control, idle heartbeats,
memory state): the stored messages, then live ones. Missing heartbeats mean the connection or the server went
away; the reader raises :class:`Transient` and the caller reads again from the last stream sequence it saw.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import re
import ssl
from collections import deque
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rxagents._urls import safe_url
from rxagents.bus._base import Bus, Outgoing, RunInfo, Transient, run_info, scrub
from rxagents.bus._errors import AttemptFenced, BusError, BusUnavailable
from rxagents.bus._nats_acks import AckInbox
from rxagents.bus._nats_queue import NatsQueue
from rxagents.bus._nats_urls import split_servers
from rxagents.bus._wire import Message, decode_message
from rxagents.errors import ConfigurationError

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.js.client import JetStreamContext

__all__ = ["NatsBus", "run_token"]

log = logging.getLogger("rxagents.bus")
_PLAIN = re.compile(r"[A-Za-z0-9_-]{1,200}")
_NAME = re.compile(r"[A-Za-z0-9_-]+")
_SUBJECT = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*")
#: JetStream's error code for a failed Nats-Expected-Last-Subject-Sequence check.
_WRONG_LAST_SEQUENCE = 10071
#: Messages published between two turns of the loop: the broker stores the first ones while the next are sent.
_YIELD_EVERY = 64


def run_token(run_id: str) -> str:
    """The subject token of ``run_id``: itself if plain, else ``=`` + URL-safe base64 (see the module docs).

    >>> run_token("run-0191a2"), run_token("team.a/run 1")
    ('run-0191a2', '=dGVhbS5hL3J1biAx')
    """
    if _PLAIN.fullmatch(run_id):
        return run_id
    return "=" + base64.urlsafe_b64encode(run_id.encode("utf-8", "surrogatepass")).decode("ascii").rstrip("=")


def _nats() -> Any:
    try:
        import nats
        import nats.js.api
    except ImportError:
        raise ConfigurationError(
            "NatsBus needs the nats-py package: pip install 'rxagents[nats]' (or pip install nats-py)"
        ) from None
    return nats


def _positive(name: str, value: float | None, *, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"{name} must be a number > 0{' or None' if allow_none else ''}, got {value!r}")


class NatsBus(Bus):
    """The event bus on NATS JetStream.

    Args:
        url: ``nats://host:port`` or ``tls://host:port`` (TLS); several servers separated by commas. Credentials
            may be in the URL (``nats://user:password@host``, ``nats://token@host``) or given below; they are
            never shown (``repr``, errors and logs use the URL without them).
        stream: the JetStream stream of this deployment; created on connect if missing, its limits updated
            if they differ.
        subject_prefix: the subjects of runs (``<subject_prefix>.<run token>``).
        max_age: seconds a message is kept (default one day); None keeps messages until another limit removes them.
        max_bytes: the most bytes the stream keeps (oldest messages go first); None: no limit.
        max_msgs_per_run: the most messages kept per run (subject); None: no limit. A coalesced message holds many
            events.
        duplicate_window: seconds within which JetStream recognises a re-sent message by its id (at most
            ``max_age``).
        credentials: a NATS ``.creds`` file (JWT and NKey seed).
        user, password, token: NATS user/password or token authentication.
        tls: an ``ssl.SSLContext`` for TLS (implied by a ``tls://`` URL: the default context is used then).
        connect_timeout: seconds :meth:`connect` tries before it fails with BusUnavailable.
        ack_timeout: seconds a publish waits for JetStream's acknowledgements before it re-sends.
        heartbeat: seconds between the idle heartbeats of a reader's consumer; three missed ones and the reader
            re-subscribes from where it was.
        reconnect_wait: seconds between reconnect attempts after the connection drops (the client keeps trying).
        name: the connection name shown in NATS monitoring.
        task_stream, task_subject: the work queue's stream (work-queue retention) and subject.
        cancel_stream, cancel_prefix: the stream of cancel requests and the prefix of their subjects.
    """

    _send_depth = 2  # a publisher's next batch goes on the wire while the acknowledgements of one come in

    def __init__(
        self,
        url: str = "nats://127.0.0.1:4222",
        *,
        stream: str = "RXAGENTS_RUNS",
        subject_prefix: str = "rxagents.run",
        max_age: float | None = 86_400.0,
        max_bytes: int | None = None,
        max_msgs_per_run: int | None = None,
        duplicate_window: float = 120.0,
        credentials: str | Path | None = None,
        user: str | None = None,
        password: str | None = None,
        token: str | None = None,
        tls: ssl.SSLContext | None = None,
        connect_timeout: float = 5.0,
        ack_timeout: float = 5.0,
        heartbeat: float = 1.0,
        reconnect_wait: float = 0.25,
        name: str = "rxagents",
        task_stream: str = "RXAGENTS_TASKS",
        task_subject: str = "rxagents.task",
        cancel_stream: str = "RXAGENTS_CANCEL",
        cancel_prefix: str = "rxagents.cancel",
    ) -> None:
        servers, url_user, url_password, url_token = split_servers(url)
        super().__init__(servers[0])
        self.url = ",".join(safe_url(server) for server in servers)
        for option, name, example in (
            ("stream", stream, "RXAGENTS_RUNS"),
            ("task_stream", task_stream, "RXAGENTS_TASKS"),
            ("cancel_stream", cancel_stream, "RXAGENTS_CANCEL"),
        ):
            if not isinstance(name, str) or not _NAME.fullmatch(name):
                raise ConfigurationError(
                    f"{option} must be a name of A-Z a-z 0-9 _ - (e.g. {example!r}), got {name!r}"
                )
        for option, name, example in (
            ("subject_prefix", subject_prefix, "rxagents.run"),
            ("task_subject", task_subject, "rxagents.task"),
            ("cancel_prefix", cancel_prefix, "rxagents.cancel"),
        ):
            if not isinstance(name, str) or not _SUBJECT.fullmatch(name):
                raise ConfigurationError(
                    f"{option} must be dot-separated tokens of A-Z a-z 0-9 _ - (e.g. {example!r}), got {name!r}"
                )
        for option, value in (("max_age", max_age), ("duplicate_window", duplicate_window)):
            _positive(option, value, allow_none=option == "max_age")
        for option, count in (("max_bytes", max_bytes), ("max_msgs_per_run", max_msgs_per_run)):
            if count is not None and (isinstance(count, bool) or not isinstance(count, int) or count < 1):
                raise ConfigurationError(f"{option} must be an int >= 1 or None (no limit), got {count!r}")
        for option, value in (
            ("connect_timeout", connect_timeout),
            ("ack_timeout", ack_timeout),
            ("heartbeat", heartbeat),
            ("reconnect_wait", reconnect_wait),
        ):
            _positive(option, value, allow_none=False)
        if credentials is not None and not Path(credentials).is_file():
            raise ConfigurationError(f"credentials must be the path of a NATS .creds file, got {str(credentials)!r}")
        self._servers = servers
        self._user = user if user is not None else url_user
        self._password = password if password is not None else url_password
        self._token = token if token is not None else url_token
        self._credentials = str(credentials) if credentials is not None else None
        self._tls = tls if tls is not None else (ssl.create_default_context() if url.startswith("tls:") else None)
        self.stream = stream
        self.subject_prefix = subject_prefix
        self.max_age = max_age
        self.max_bytes = max_bytes
        self.max_msgs_per_run = max_msgs_per_run
        self.duplicate_window = min(duplicate_window, max_age) if max_age is not None else duplicate_window
        self._connect_timeout = connect_timeout
        self._ack_timeout = ack_timeout
        self._heartbeat = heartbeat
        self._reconnect_wait = reconnect_wait
        self._name = name
        self.task_stream = task_stream
        self.task_subject = task_subject
        self.cancel_stream = cancel_stream
        self.cancel_prefix = cancel_prefix
        self._nc: Client | None = None
        self._js: JetStreamContext | None = None
        self._queue: NatsQueue | None = None
        self._acks: AckInbox | None = None
        self._wire = asyncio.Lock()  # one send's messages at a time on the wire: sends keep their order

    def __repr__(self) -> str:
        return f"NatsBus({self.url!r}, stream={self.stream!r})"

    def subject(self, run_id: str) -> str:
        """The subject the events of ``run_id`` are published to."""
        return f"{self.subject_prefix}.{run_token(run_id)}"

    def _secrets(self) -> list[str | None]:
        return [self._password, self._token]

    # --- connection -----------------------------------------------------------------------------------------

    async def _connect(self) -> None:
        nats = _nats()
        nc = nats.NATS()

        async def on_error(error: Exception) -> None:
            log.debug("nats %s: %s", self.url, scrub(f"{type(error).__name__}: {error}", self._secrets()))

        options: dict[str, Any] = {
            "servers": self._servers,
            "name": self._name,
            "error_cb": on_error,
            "allow_reconnect": True,
            "max_reconnect_attempts": -1,
            "reconnect_time_wait": self._reconnect_wait,
            "connect_timeout": min(self._connect_timeout, 2.0),
        }
        if self._user is not None or self._password is not None:
            options |= {"user": self._user, "password": self._password}
        if self._token is not None:
            options["token"] = self._token
        if self._credentials is not None:
            options["user_credentials"] = self._credentials
        if self._tls is not None:
            options["tls"] = self._tls
        try:
            await asyncio.wait_for(nc.connect(**options), self._connect_timeout)
            js = nc.jetstream(timeout=self._ack_timeout)
            try:
                await self._ensure_stream(nc)
            except nats.js.errors.APIError as error:
                if isinstance(error, nats.js.errors.ServiceUnavailableError):
                    raise
                raise BusError(
                    f"JetStream at {self.url} refused the stream {self.stream!r} (subjects "
                    f"'{self.subject_prefix}.>'): {error.description or error}; give each deployment its own "
                    f"stream= and subject_prefix="
                ) from None
        except BaseException as error:
            with contextlib.suppress(Exception):
                await nc.close()
            if isinstance(error, BusError | asyncio.CancelledError) or not isinstance(error, Exception):
                raise
            reason = scrub(f"{type(error).__name__}: {error}" if str(error) else type(error).__name__, self._secrets())
            raise BusUnavailable(
                f"cannot connect to NATS at {self.url} within connect_timeout={self._connect_timeout}s ({reason}); "
                f"is nats-server running with JetStream enabled (nats-server -js)?"
            ) from None
        self._nc, self._js, self._acks = nc, js, AckInbox(nc)

    async def _ensure_stream(self, nc: Client) -> None:
        nats = _nats()
        api = nats.js.api
        jsm = nc.jsm(timeout=self._ack_timeout)
        wanted = {
            "max_age": self.max_age,
            "max_bytes": self.max_bytes if self.max_bytes is not None else -1,
            "max_msgs_per_subject": self.max_msgs_per_run if self.max_msgs_per_run is not None else -1,
            "duplicate_window": self.duplicate_window,
        }
        config = api.StreamConfig(
            name=self.stream,
            subjects=[f"{self.subject_prefix}.>"],
            retention=api.RetentionPolicy.LIMITS,
            storage=api.StorageType.FILE,
            discard=api.DiscardPolicy.OLD,
            num_replicas=1,
            allow_direct=True,
            **wanted,
        )
        try:
            info = await jsm.stream_info(self.stream)
        except nats.js.errors.NotFoundError:
            await jsm.add_stream(config)
            return
        have = info.config
        current = {
            "max_age": have.max_age or None,
            "max_bytes": have.max_bytes if have.max_bytes is not None else -1,
            "max_msgs_per_subject": have.max_msgs_per_subject,
            "duplicate_window": have.duplicate_window,
        }
        if current != wanted or have.subjects != config.subjects or not have.allow_direct:
            await jsm.update_stream(config.evolve(storage=have.storage))

    @property
    def queue(self) -> NatsQueue:
        if self._queue is None:
            self._queue = NatsQueue(self)
        return self._queue

    async def _close(self) -> None:
        queue, self._queue = self._queue, None
        if queue is not None:
            await queue.close()
        nc, self._nc, self._js = self._nc, None, None
        acks, self._acks = self._acks, None
        if acks is not None:
            await acks.close()
        if nc is not None:
            with contextlib.suppress(Exception):
                await nc.close()

    def _client(self) -> tuple[Client, JetStreamContext]:
        if self._nc is None or self._js is None or self._nc.is_closed:
            raise BusUnavailable(f"{self!r} is closed")
        return self._nc, self._js

    # --- publishing -------------------------------------------------------------------------------------------

    async def _send(self, messages: Sequence[Outgoing]) -> None:
        nats = _nats()
        self._client()
        acks = self._acks
        assert acks is not None
        futures: list[asyncio.Future[Any]] = []
        try:
            async with self._wire:
                for i, message in enumerate(messages, 1):
                    if i % _YIELD_EVERY == 0:  # the client's flusher puts what is buffered on the wire meanwhile
                        await asyncio.sleep(0)
                    headers = {"Nats-Msg-Id": message.msg_id}
                    if message.fence is not None:
                        headers["Nats-Expected-Last-Subject-Sequence"] = str(message.fence.token)
                        headers["Nats-Expected-Last-Subject-Sequence-Subject"] = self.fence_subject(message.run_id)
                    futures.append(await acks.publish(self.subject(message.run_id), message.payload, headers))
            _, pending = await asyncio.wait(futures, timeout=self._ack_timeout)
            if pending:
                raise Transient(f"{len(pending)} of {len(messages)} messages unacknowledged after {self._ack_timeout}s")
            for message, future in zip(messages, futures, strict=True):
                if future.exception() is not None:
                    raise Transient(f"no JetStream stream answered on {self.subject(message.run_id)!r}")
                error = future.result().get("error")
                if error is None:
                    continue
                if message.fence is not None and error.get("err_code") == _WRONG_LAST_SEQUENCE:
                    raise AttemptFenced(
                        f"run {message.run_id!r} on {self.url}: a newer attempt took the run over (its task was "
                        f"delivered again); the broker refuses this attempt's messages",
                        run_id=message.run_id,
                    )
                if error.get("code") == 503:
                    raise Transient(f"JetStream unavailable: {error.get('description')}")
                raise BusError(f"JetStream at {self.url} refused a message: {error.get('description') or error}")
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise Transient(f"{type(error).__name__}: {error}") from None
        finally:
            acks.forget(futures)

    def fence_subject(self, run_id: str) -> str:
        """The subject of the fence messages of ``run_id``'s attempts (see :meth:`Bus.begin_attempt`)."""
        return f"{self.subject(run_id)}.fence"

    async def _fence(self, run_id: str) -> int:
        nats = _nats()
        _, js = self._client()
        try:
            ack = await js.publish(self.fence_subject(run_id), b"", timeout=self._ack_timeout)
        except nats.js.errors.APIError as error:
            if error.code == 503:
                raise Transient(f"JetStream unavailable: {error.description}") from None
            raise BusError(f"JetStream at {self.url} refused the fence of run {run_id!r}: {error}") from None
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise Transient(f"{type(error).__name__}: {error}") from None
        return int(ack.seq)

    # --- reading ----------------------------------------------------------------------------------------------

    async def _read(self, run_id: str, from_seq: int, cursor: Any) -> AsyncIterator[tuple[bytes, Any] | None]:
        nats = _nats()
        api = nats.js.api
        nc, _ = self._client()
        inbox = nc.new_inbox()
        arrived: deque[Msg] = deque()
        wake = asyncio.Event()

        async def deliver(msg: Msg) -> None:
            arrived.append(msg)
            wake.set()

        start = {"deliver_policy": api.DeliverPolicy.ALL}
        if cursor is not None:
            start = {"deliver_policy": api.DeliverPolicy.BY_START_SEQUENCE, "opt_start_seq": int(cursor)}
        config = api.ConsumerConfig(
            deliver_subject=inbox,
            filter_subject=self.subject(run_id),
            ack_policy=api.AckPolicy.NONE,
            flow_control=True,
            idle_heartbeat=self._heartbeat,
            mem_storage=True,
            num_replicas=1,
            inactive_threshold=max(30.0, 10 * self._heartbeat),
            **start,
        )
        jsm = nc.jsm(timeout=self._ack_timeout)
        sub = None
        consumer: str | None = None
        try:
            try:
                sub = await nc.subscribe(inbox, cb=deliver, pending_msgs_limit=0, pending_bytes_limit=0)
                consumer = (await jsm.add_consumer(self.stream, config)).name
            except nats.js.errors.NotFoundError:
                raise BusError(f"the stream {self.stream!r} is missing on {self.url}") from None
            except (TimeoutError, nats.errors.Error, OSError) as error:
                raise Transient(f"cannot create a consumer: {type(error).__name__}: {error}") from None
            expected = 1  # the consumer sequence of the next message
            silence = 3 * self._heartbeat
            loop = asyncio.get_running_loop()
            while True:
                if not arrived:
                    wake.clear()
                    deadline = loop.time() + silence
                    while not arrived:
                        left = deadline - loop.time()
                        if left <= 0 or nc.is_closed:
                            raise Transient(f"no heartbeat from {self.url} for {silence:g}s")
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(wake.wait(), min(left, self._heartbeat))
                        if not arrived:
                            yield None
                msg = arrived.popleft()
                headers = msg.headers
                if headers and headers.get("Status"):
                    reply = msg.reply or (headers.get("Nats-Consumer-Stalled") if headers else None)
                    if reply:  # a flow control request (or a stalled consumer): answer it
                        await nc.publish(reply, b"")
                    last = headers.get("Nats-Last-Consumer")
                    if last is not None and int(last) != expected - 1:
                        raise Transient(f"consumer at {last}, this reader at {expected - 1}")
                    yield None
                    continue
                stream_seq, consumer_seq = _sequences(msg.reply)
                if consumer_seq != expected:
                    raise Transient(f"consumer sequence {consumer_seq}, expected {expected}")
                expected += 1
                yield msg.data, stream_seq + 1
        finally:
            if sub is not None:
                with contextlib.suppress(Exception):
                    await sub.unsubscribe()
            if consumer is not None and not nc.is_closed and nc.is_connected:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(jsm.delete_consumer(self.stream, consumer), 1.0)

    # --- listing ----------------------------------------------------------------------------------------------

    async def last_message(self, run_id: str) -> Message | None:
        nats = _nats()
        nc, _ = self._client()
        jsm = nc.jsm(timeout=self._ack_timeout)
        try:
            raw = await jsm.get_last_msg(self.stream, self.subject(run_id), direct=True)
        except nats.js.errors.NotFoundError:
            return None
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise BusUnavailable(f"cannot read run {run_id!r} on {self.url}: {type(error).__name__}: {error}") from None
        return decode_message(raw.data) if raw.data else None

    async def runs(self) -> list[RunInfo]:
        nats = _nats()
        nc, _ = self._client()
        jsm = nc.jsm(timeout=self._ack_timeout)
        try:
            info = await jsm.stream_info(self.stream, subjects_filter=f"{self.subject_prefix}.>")
            depth = self.subject_prefix.count(".") + 1  # rxagents.run.<token>; fences are rxagents.run.<token>.fence
            subjects = [subject for subject in info.state.subjects or {} if subject.count(".") == depth]
            found: list[tuple[int, RunInfo]] = []
            limit = asyncio.Semaphore(32)

            async def last_of(subject: str) -> None:
                async with limit:
                    try:
                        raw = await jsm.get_last_msg(self.stream, subject, direct=True)
                    except nats.js.errors.NotFoundError:
                        return  # removed since the listing
                if raw.data:
                    found.append((raw.seq or 0, run_info(decode_message(raw.data))))

            await asyncio.gather(*(last_of(subject) for subject in subjects))
        except (TimeoutError, nats.errors.Error, OSError) as error:
            raise BusUnavailable(f"cannot list runs on {self.url}: {type(error).__name__}: {error}") from None
        return [run for _, run in sorted(found, key=lambda pair: pair[0])]


def _sequences(reply: str | None) -> tuple[int, int]:
    """(stream sequence, consumer sequence) from a JetStream message's reply subject."""
    tokens = (reply or "").split(".")
    if len(tokens) == 9:  # $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<time>.<pending>
        return int(tokens[5]), int(tokens[6])
    if len(tokens) >= 11:  # $JS.ACK.<domain>.<account>.<stream>.<consumer>.<delivered>.<sseq>.<cseq>...
        return int(tokens[7]), int(tokens[8])
    raise BusError(f"not a JetStream message (reply subject {reply!r})")
