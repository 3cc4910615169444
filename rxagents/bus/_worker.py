"""Workers: take tasks from the bus's work queue, run them, publish their events, acknowledge them.

A :class:`Worker` runs up to ``concurrency`` tasks at once on its loop. For each task it takes:

1. it begins an attempt at the run (:meth:`~rxagents.bus.Bus.begin_attempt`): from then on the broker refuses
   the writes of any earlier attempt (a worker that stalled or lost the broker while its task went to another);
   then it reads what the broker holds of the run: a run that already ended (a previous attempt finished it but died
   before acknowledging) is acknowledged at once; a cancel request stored for the run ends it without running;
2. it builds the spec's agent or workflow (:mod:`rxagents.bus._runner`; keys from its own environment), and
   publishes the run under the submitted run id. When an earlier attempt died mid-run, the run continues its
   log after a ``retry`` event (:func:`~rxagents.bus._attempt.continue_run`);
3. while the run goes, it keeps the task (so it is not redelivered) every ``redeliver_after / 3`` seconds and
   checks for a cancel request; a cancel request announced on the bus stops the run at once (its HTTP stream
   closes) with a terminal ``error`` event of :class:`~rxagents.bus.RunCancelled`;
4. once the run's terminal event is on the broker, it acknowledges the task. If publishing fails, the task is
   not acknowledged: another attempt continues the run later. When the broker refuses the run's writes because
   a newer attempt began (:class:`~rxagents.bus.AttemptFenced`), the run stops (its model stream closes) and the
   task is left to that attempt.

A task whose worker dies (``kill -9``, a lost machine) is delivered again after ``redeliver_after`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from reactivex import Observable

from rxagents._validate import check_int, check_seconds, check_str
from rxagents.bus._attempt import Stop, continue_run, ending
from rxagents.bus._base import Bus, Fence, Transient, check_bus
from rxagents.bus._errors import AttemptFenced, BusError, RunCancelled
from rxagents.bus._publish import apublish, publish
from rxagents.bus._queue import Taken
from rxagents.bus._runner import runner
from rxagents.bus._submit import InvalidTask, SubmittedTask, decode_task
from rxagents.bus._wire import Message
from rxagents.errors import ConfigurationError
from rxagents.events import TokenEvent

__all__ = ["Worker", "WorkerStats", "run_worker"]

log = logging.getLogger("rxagents.bus")
STOPPED = "the worker running it stopped before the run ended"


@dataclass(slots=True)
class WorkerStats:
    """What a worker did so far: tasks ``taken``; runs that ``finished``, ``failed`` (an error event) or were
    ``cancelled``; runs ``continued`` after an earlier attempt died; tasks found ``already_ended``; ``rejected``
    tasks that could not run (a bad payload or spec); tasks ``unacknowledged`` because publishing failed; runs
    ``fenced``: stopped because a newer attempt took them over (their task was delivered again elsewhere);
    ``peak``: the most tasks it ran at once."""

    taken: int = 0
    finished: int = 0
    failed: int = 0
    cancelled: int = 0
    continued: int = 0
    already_ended: int = 0
    rejected: int = 0
    unacknowledged: int = 0
    fenced: int = 0
    peak: int = 0


@dataclass(slots=True, eq=False)
class _Active:
    run_id: str
    taken: Taken
    stop: Stop
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def _names(spec: Mapping[str, Any]) -> tuple[str, str]:
    """The agent and model names a run of ``spec`` shows before it started."""
    if "agent" in spec:
        agent = spec["agent"]
        return str(agent.get("agent_name", "Agent")), str(agent.get("model_name") or "")
    workflow = spec["workflow"]
    return str(workflow.get("name") or f"{workflow['kind'].capitalize()}Workflow"), f"{workflow['kind']} workflow"


class Worker:
    """Takes tasks from ``bus``'s work queue and runs them (see the module docs). :meth:`run` until :meth:`stop`.

    Args:
        bus: a connected :class:`~rxagents.bus.Bus`; the worker runs on its loop.
        concurrency: tasks run at once at most.
        group: the workers that share tasks (each task goes to one worker of the group).
        redeliver_after: seconds after which a task its worker stopped keeping (it died) goes to another worker.
            The worker keeps its tasks every third of it.
        api_bases: the OpenAI-compatible endpoints a spec's ``api_base`` may name: the worker sends its provider
            keys there, so only endpoints you trust. Others fail the run with a ConfigurationError.
        name: this worker's name on the broker (default: host, pid and a random suffix).
        publish_options: options of :func:`~rxagents.bus.publish` (``max_buffer=``...).

    Example::

        async with connect_bus("nats://127.0.0.1:4222") as bus:
            await Worker(bus, concurrency=8).run()
    """

    def __init__(
        self,
        bus: Bus,
        *,
        concurrency: int = 8,
        group: str = "workers",
        redeliver_after: float = 30.0,
        api_bases: Collection[str] = (),
        name: str | None = None,
        publish_options: Mapping[str, Any] | None = None,
    ) -> None:
        check_bus(bus)
        self.bus = bus
        self.concurrency = check_int("concurrency", concurrency, maximum=10_000)
        self.group = check_str("group", group)
        if not group.replace("-", "").replace("_", "").isalnum():
            raise ConfigurationError(f"group must be a name of A-Z a-z 0-9 _ - (e.g. 'workers'), got {group!r}")
        self.redeliver_after = check_seconds("redeliver_after", redeliver_after, maximum=86_400.0)
        if isinstance(api_bases, str) or not all(isinstance(base, str) and base for base in api_bases):
            raise ConfigurationError(f"api_bases must be a list of endpoint URLs, got {api_bases!r}")
        self.api_bases = tuple(api_bases)
        default = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self.name = check_str("name", name, none="for a generated name") or default
        self.publish_options = dict(publish_options or {})
        self.stats = WorkerStats()
        self._active: dict[str, _Active] = {}
        self._stopping = False
        self._cancel_runs = False
        self._wake: asyncio.Event | None = None

    def __repr__(self) -> str:
        return f"Worker({self.bus!r}, name={self.name!r}, concurrency={self.concurrency})"

    @property
    def running(self) -> list[str]:
        """The run ids of the tasks running now."""
        return list(self._active)

    def stop(self, *, cancel_runs: bool = False) -> None:
        """Take no more tasks; :meth:`run` returns once the running ones ended. With ``cancel_runs`` they are
        ended now, each with an error event of RunCancelled. Call it on the bus's loop (e.g. from a signal
        handler added with ``loop.add_signal_handler``)."""
        self._stopping = True
        if cancel_runs:
            self._cancel_runs = True
            for active in list(self._active.values()):
                active.stop(STOPPED)
        if self._wake is not None:
            self._wake.set()

    async def run(self) -> None:
        """Take and run tasks until :meth:`stop`; return once the tasks taken have ended.

        Raises:
            BusUnavailable: the broker cannot be reached to join the work queue.
        """
        loop = asyncio.get_running_loop()
        if loop is not self.bus.loop:
            raise BusError(f"{self.bus!r} belongs to another event loop: run the worker on the loop it connected on")
        self._wake = asyncio.Event()
        queue = self.bus.queue
        await queue.join(self.group, self.name, self.redeliver_after)
        log.info("worker %s joined group %r on %s (concurrency %d)", self.name, self.group, self.bus.url,
                 self.concurrency)  # fmt: skip
        listener = loop.create_task(self._listen())
        backoff = 0.05
        try:
            while not self._stopping:
                free = self.concurrency - len(self._active)
                if free <= 0:
                    self._wake.clear()
                    await self._wake.wait()
                    continue
                try:
                    taken = await queue.take(free, 1.0)
                    backoff = 0.05
                except Transient as error:
                    log.warning("worker %s: taking tasks failed (%s); trying again", self.name, error)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                for item in taken:
                    self._start(item)
            while self._active:
                if self._cancel_runs:
                    for active in list(self._active.values()):
                        active.stop(STOPPED)
                self._wake.clear()
                await self._wake.wait()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener
            for active in list(self._active.values()):
                active.stop(STOPPED)
            pending = [task for active in self._active.values() for task in active.tasks]
            if pending:
                await asyncio.wait(pending, timeout=10.0)
            log.info("worker %s stopped: %s", self.name, self.stats)

    # --- one task ------------------------------------------------------------------------------------------------

    def _start(self, taken: Taken) -> None:
        self.stats.taken += 1
        try:
            job = decode_task(taken.payload)
        except InvalidTask as error:
            self._track(None, taken, self._reject(taken, error))
            return
        if job.run_id in self._active:  # delivered again while this worker still runs it: keep it, once
            return
        self._track(job.run_id, taken, self._execute(job, taken))

    def _track(self, run_id: str | None, taken: Taken, work: Any) -> None:
        loop = asyncio.get_running_loop()
        key = run_id if run_id is not None else f"invalid:{secrets.token_hex(8)}"
        active = _Active(key, taken, Stop(key))
        self._active[key] = active
        self.stats.peak = max(self.stats.peak, len(self._active))
        task = loop.create_task(work)
        keeper = loop.create_task(self._keep(active))
        active.tasks = [task, keeper]

        def done(finished: asyncio.Task[None]) -> None:
            keeper.cancel()
            if not finished.cancelled() and finished.exception() is not None:
                log.error("worker %s: a task failed", self.name, exc_info=finished.exception())
            self._active.pop(key, None)
            if self._wake is not None:
                self._wake.set()

        task.add_done_callback(done)

    async def _reject(self, taken: Taken, error: InvalidTask) -> None:
        self.stats.rejected += 1
        log.error("worker %s: a task cannot run: %s", self.name, error)
        if error.run_id is not None:
            cause = error.__cause__ if isinstance(error.__cause__, Exception) else error
            if not await self._end(error.run_id, cause, await self._last(error.run_id), "Agent", ""):
                return
        await self._ack(taken)

    async def _execute(self, job: SubmittedTask, taken: Taken) -> None:
        run_id = job.run_id
        active = self._active[run_id]
        agent, model = _names(job.spec)
        try:
            fence = await self.bus.begin_attempt(run_id)  # first: no earlier attempt's write lands after the read
            last = await self.bus.last_message(run_id)
            if last is not None and last.events[-1].is_terminal:
                self.stats.already_ended += 1
                await self._ack(taken)
                return
            reason = active.stop.reason or await self.bus.queue.cancel_reason(run_id)
            if reason is not None:
                if await self._end(run_id, RunCancelled(run_id, reason), last, agent, model, fence):
                    self.stats.cancelled += 1
                    await self._ack(taken)
                return
            try:
                run = runner(job.spec, api_bases=self.api_bases)
            except Exception as error:  # ConfigurationError: an unknown model, a key missing here, an api_base...
                log.error("worker %s: run %s cannot run here: %s", self.name, run_id, error)
                if await self._end(run_id, error, last, agent, model, fence):
                    self.stats.rejected += 1
                    await self._ack(taken)
                return
            if last is not None:
                self.stats.continued += 1
                log.info("worker %s: run %s continues after seq %d (delivery %d)", self.name, run_id, last.last,
                         taken.deliveries)  # fmt: skip
            why = f"the run starts over on worker {self.name}: the worker running it stopped"
            loop = asyncio.get_running_loop()
            source = run(job.task, run_id).pipe(
                continue_run(last, why, loop.time),
                active.stop.operator,
                publish(self.bus, **self.publish_options, fence=fence),
            )
            outcome = await _completion(source)
            if isinstance(outcome, AttemptFenced):
                self.stats.fenced += 1
                log.warning("worker %s: run %s was taken over by a newer attempt; this one stopped", self.name,
                            run_id)  # fmt: skip
                return
            if isinstance(outcome, BusError):  # publishing failed: another attempt continues the run
                self.stats.unacknowledged += 1
                log.warning("worker %s: publishing run %s failed (%s); the task goes back to the queue",
                            self.name, run_id, outcome)  # fmt: skip
                return
            if outcome is not None:
                # make sure the run's end is on the broker (a run stopped before it emitted anything has none)
                now = await self.bus.last_message(run_id)
                if (now is None or not now.events[-1].is_terminal) and not await self._end(
                    run_id, outcome, now, agent, model, fence
                ):
                    return
            if outcome is None:
                self.stats.finished += 1
            elif isinstance(outcome, RunCancelled):
                self.stats.cancelled += 1
            else:
                self.stats.failed += 1
            await self._ack(taken)
        except (Transient, BusError) as error:
            self.stats.unacknowledged += 1
            log.warning("worker %s: run %s: %s; the task goes back to the queue", self.name, run_id, error)

    async def _last(self, run_id: str) -> Message | None:
        try:
            return await self.bus.last_message(run_id)
        except BusError:
            return None

    async def _end(self, run_id: str, error: BaseException, last: Message | None, agent: str, model: str,
                   fence: Fence | None = None) -> bool:  # fmt: skip
        """Publish the end of ``run_id`` with ``error``; False when the broker could not take it."""
        events = ending(run_id, error, last, agent, model, asyncio.get_running_loop().time())
        try:
            await apublish(self.bus, events, **self.publish_options, fence=fence)
        except AttemptFenced:
            self.stats.fenced += 1
            log.warning("worker %s: run %s was taken over by a newer attempt", self.name, run_id)
            return False
        except BusError as failure:
            self.stats.unacknowledged += 1
            log.warning("worker %s: cannot publish the end of run %s: %s", self.name, run_id, failure)
            return False
        return True

    async def _ack(self, taken: Taken) -> None:
        try:
            await self.bus.queue.ack(taken)
        except (Transient, BusError) as error:  # the run is over on the broker: a redelivery only acknowledges it
            log.warning("worker %s: acknowledging a task failed: %s", self.name, error)

    async def _keep(self, active: _Active) -> None:
        """Keep the task every third of ``redeliver_after``, and look for its cancel request."""
        queue = self.bus.queue
        while True:
            await asyncio.sleep(self.redeliver_after / 3)
            try:
                await queue.touch(active.taken)
                if active.stop.reason is None and not active.run_id.startswith("invalid:"):
                    reason = await queue.cancel_reason(active.run_id)
                    if reason is not None:
                        active.stop(reason)
            except (Transient, BusError) as error:
                log.debug("worker %s: keeping run %s: %s", self.name, active.run_id, error)

    async def _listen(self) -> None:
        """Stop the runs whose cancel request is announced."""
        queue = self.bus.queue
        while True:
            try:
                async for request in queue.cancel_requests():
                    if request is not None:
                        run_id, reason = request
                        active = self._active.get(run_id)
                        if active is not None:
                            log.info("worker %s: run %s: %s", self.name, run_id, reason)
                            active.stop(reason)
                        continue
                    for active in list(self._active.values()):  # (re)subscribed: look at the markers
                        if active.stop.reason is None and not active.run_id.startswith("invalid:"):
                            marker = await queue.cancel_reason(active.run_id)
                            if marker is not None:
                                active.stop(marker)
            except asyncio.CancelledError:
                raise
            except Exception as error:
                log.warning("worker %s: listening for cancel requests: %s; again in 1 s", self.name, error)
                await asyncio.sleep(1.0)


async def _completion(source: Observable[TokenEvent]) -> Exception | None:
    """Run ``source`` to its end: None when it completed, else its error. Cancelling the caller disposes it."""
    done: asyncio.Future[Exception | None] = asyncio.get_running_loop().create_future()

    def on_error(error: Exception) -> None:
        if not done.done():
            done.set_result(error)

    def on_completed() -> None:
        if not done.done():
            done.set_result(None)

    subscription = source.subscribe(on_error=on_error, on_completed=on_completed)
    try:
        return await done
    finally:
        subscription.dispose()


async def run_worker(bus: Bus, **options: Any) -> None:
    """``await Worker(bus, **options).run()``: take and run tasks until cancelled (see :class:`Worker`);
    cancelling it ends the runs in progress with RunCancelled.

    Example::

        async with connect_bus(url) as bus:
            await run_worker(bus, concurrency=4)
    """
    await Worker(bus, **options).run()
