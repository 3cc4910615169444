"""The event bus: runs' events on a distributed broker, so any process can follow any run.

A run's events (:class:`~rxagents.events.TokenEvent`, with ``run_id`` and a gap-free ``seq``) are published to
a broker, one ordered log per run, and attached to from anywhere: replayed from any ``seq``, then followed live.
Two brokers behind one interface, :class:`Bus`:

- NATS JetStream (:class:`NatsBus`, ``nats://``): a stream per deployment, a subject per run, de-duplication by
  ``Nats-Msg-Id``;
- Redis Streams (:class:`RedisBus`, ``redis://``): a stream key per run, order and de-duplication by a Lua script.

.. code-block:: python

    async with connect_bus("nats://127.0.0.1:4222") as bus:
        await agent.stream(task).pipe(publish(bus))          # in the worker
        text = await attach(bus, run_id).pipe(collect_text())  # anywhere else

Work runs on workers in other processes: :func:`submit` queues a task (an agent or workflow spec, as JSON) and
returns its run id at once, a :class:`Worker` (``rxagents worker --bus URL``) takes it, runs it and publishes its
events under that id, and :func:`cancel` stops a run from any process.

Importing :mod:`rxagents` does not import this package; the adapters import their client library (``nats-py``,
``redis``: the ``nats`` and ``redis`` extras) when they connect. See docs/scale-out.md.
"""

from __future__ import annotations

from rxagents.bus._attach import aattach, attach
from rxagents.bus._base import Bus, Fence, RunInfo, RunStatus
from rxagents.bus._connect import connect_bus
from rxagents.bus._errors import (
    AttemptFenced,
    BusError,
    BusGapError,
    BusUnavailable,
    RemoteRunError,
    RunCancelled,
    RunNotFound,
)
from rxagents.bus._local import LocalNatsServer, LocalRedisServer, nats_server_path, redis_server_path
from rxagents.bus._nats import NatsBus
from rxagents.bus._publish import apublish, publish
from rxagents.bus._redis import RedisBus
from rxagents.bus._serve import BusRuns
from rxagents.bus._submit import cancel, submit
from rxagents.bus._watch import awatch, watch
from rxagents.bus._wire import Message, decode_message, encode_message, event_from_wire, event_to_wire
from rxagents.bus._worker import Worker, WorkerStats, run_worker

__all__ = [
    "AttemptFenced",
    "Bus",
    "BusError",
    "BusGapError",
    "BusRuns",
    "BusUnavailable",
    "Fence",
    "LocalNatsServer",
    "LocalRedisServer",
    "Message",
    "NatsBus",
    "RedisBus",
    "RemoteRunError",
    "RunCancelled",
    "RunInfo",
    "RunNotFound",
    "RunStatus",
    "Worker",
    "WorkerStats",
    "aattach",
    "apublish",
    "attach",
    "awatch",
    "cancel",
    "connect_bus",
    "decode_message",
    "encode_message",
    "event_from_wire",
    "event_to_wire",
    "nats_server_path",
    "publish",
    "redis_server_path",
    "run_worker",
    "submit",
    "watch",
]
