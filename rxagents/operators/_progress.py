"""``track_progress``: drive a ``rich.progress.Progress`` task from a token stream."""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable, SerialDisposable

from rxagents._validate import check_int, check_number, check_str, fail
from rxagents.events import EventKind, TokenEvent

if TYPE_CHECKING:
    from rich.progress import Progress, ProgressColumn, TaskID

__all__ = ["progress_columns", "track_progress"]

log = logging.getLogger("rxagents")


def progress_columns() -> tuple[ProgressColumn, ...]:
    """The columns that show everything ``track_progress`` maintains: description, bar, percentage, the
    token count and tokens/s (the task fields ``tokens`` and ``rate``).

    Example::

        with Progress(*progress_columns()) as progress:
            ...
    """
    from rich.progress import BarColumn, TaskProgressColumn, TextColumn

    return (
        TextColumn("[bold blue]{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[tokens]:>6} tokens"),
        TextColumn("{task.fields[rate]:>7.1f} tok/s"),
    )


class _Tracker:
    """One subscription of ``track_progress``."""

    def __init__(
        self,
        progress: Progress,
        total: int | None,
        description: str | None,
        task_id: TaskID | None,
        estimate: int,
        growth: float,
    ) -> None:
        self.progress = progress
        self.fixed_total = total
        self.description = description or "agent"
        self.named = description is not None
        self.task_id = task_id
        self.total = total if total is not None else estimate
        self.growth = growth
        self.count = 0
        self.t0: float | None = None
        self.rate = 0.0
        self.ended = False
        self.broken = False
        self.lock = threading.Lock()

    def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Call the Progress; a display failure is reported once and never breaks the stream."""
        if self.broken:
            return None
        try:
            return method(*args, **kwargs)
        except Exception as exc:
            self.broken = True
            log.warning("track_progress: updating the progress display failed; it stopped", exc_info=exc)
            return None

    def begin(self) -> None:
        fields = {"tokens": 0, "rate": 0.0, "status": "running"}
        if self.task_id is not None and not self.named:  # keep the description of the task given
            for task in self._call(lambda: list(self.progress.tasks)) or ():
                if task.id == self.task_id:
                    self.description, self.named = task.description, True
        if self.task_id is None:
            self.task_id = self._call(self.progress.add_task, self.description, total=self.total, completed=0, **fields)
        else:
            description = self.description if self.named else None
            self._call(
                self.progress.update,
                self.task_id,
                total=self.total,
                completed=0,
                description=description,
                **fields,
            )

    def update(self, **kwargs: Any) -> None:
        if self.task_id is not None:
            self._call(self.progress.update, self.task_id, **kwargs)

    def on_event(self, event: TokenEvent) -> None:
        with self.lock:
            if self.ended:
                return
            kind = event.kind
            if kind is EventKind.START:
                self.t0 = event.time
                if not self.named:
                    self.description = event.agent
                    self.update(description=self.description)
            elif kind is EventKind.TOKEN:
                self.count += 1
                if self.t0 is None:
                    self.t0 = event.time
                elapsed = event.time - self.t0
                if elapsed > 0:
                    self.rate = self.count / elapsed
                if self.count >= self.total:  # grow ahead of the count: 100% is reached at finish only
                    self.total = max(self.count + 1, math.ceil(self.total * self.growth))
                self.update(completed=self.count, total=self.total, tokens=self.count, rate=self.rate)
            elif kind is EventKind.FINISH:
                self.finish()
            elif kind is EventKind.ERROR:
                self.fail(event.error)

    def finish(self) -> None:
        self.ended = True
        done = max(self.count, 1)  # an empty answer still ends at 100%
        self.update(completed=done, total=done, tokens=self.count, rate=self.rate, status="done")

    def fail(self, error: BaseException | None) -> None:
        self.ended = True
        reason = type(error).__name__ if error is not None else "error"
        self.update(description=f"{self.description} — failed ({reason})", status="failed")

    def on_error(self, error: Exception) -> None:
        with self.lock:
            if not self.ended:
                self.fail(error)

    def on_completed(self) -> None:
        with self.lock:
            if not self.ended:
                self.finish()

    def dispose(self) -> None:
        with self.lock:
            if not self.ended:
                self.ended = True
                self.update(description=f"{self.description} — cancelled", status="cancelled")


def track_progress(
    progress: Progress,
    *,
    total: int | None = None,
    description: str | None = None,
    task_id: TaskID | None = None,
    estimate: int = 200,
    growth: float = 1.5,
) -> Callable[[Observable[TokenEvent]], Observable[TokenEvent]]:
    """Advance a rich ``Progress`` task by one per token event; pass every event through unchanged.

    The spec's progress bar guesses ``total=100`` and advances forever: a short answer stops at 40%, a long
    one sits at 100% long before it ends. Here the total is ``total`` (pass the agent's ``max_tokens``) or
    an ``estimate``; either grows by ``growth`` whenever the count reaches it, so the bar never shows 100%
    early, and at ``finish`` the task is set to exactly 100% (``completed == total`` == tokens received).
    Tokens/s is computed from the events' ``time`` (the scheduler clock) since ``start``, not the wall
    clock, and kept in the task field ``rate``; the count is in ``tokens``. On an error the description
    says ``— failed (ErrorType)`` and the bar stays where it was; on dispose it says ``— cancelled``. A
    failing display is reported once and never breaks the stream.

    .. code-block:: text

        source:    -s---a---b---c---f-|       (total=None, estimate=2, growth=1.5)
        completed:  0   1   2   3   3
        total:      2   2   3   5   3         -> 100% exactly at f, never before
        output:    -s---a---b---c---f-|

    Each subscription adds its own task (``progress.add_task``) unless ``task_id`` names one to reuse
    (reset to 0 at subscribe). Show the fields with :func:`progress_columns`, or your own columns, e.g.
    ``TextColumn("{task.fields[rate]:.1f} tok/s")``.

    Args:
        progress: a ``rich.progress.Progress`` (started or not).
        total: the expected number of token events, e.g. ``max_tokens``; grows if reached before finish.
        description: the task's description; default: the agent's name from the ``start`` event (or the
            description of the ``task_id`` task).
        task_id: an existing task to drive instead of adding one.
        estimate: the starting total when ``total`` is None.
        growth: the factor the total grows by when the count reaches it.

    Returns:
        An operator passing every event through unchanged.

    Example::

        with Progress(*progress_columns()) as progress:
            stream = agent.stream(task).pipe(track_progress(progress, total=agent.max_tokens))
            async for _ in to_async_iter(stream):
                pass
    """
    if not callable(getattr(progress, "add_task", None)) or not callable(getattr(progress, "update", None)):
        fail("progress", "a rich.progress.Progress", progress, hint="create one with Progress(*progress_columns())")
    check_int("total", total, hint="e.g. max_tokens", none="to estimate")
    check_int("estimate", estimate)
    check_number("growth", growth, minimum=1, above=True, hint="e.g. 1.5")
    check_str("description", description, empty=True, none="(the agent's name)")

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            tracker = _Tracker(progress, total, description, task_id, estimate, float(growth))
            tracker.begin()
            upstream = SerialDisposable()

            def on_next(event: TokenEvent) -> None:
                tracker.on_event(event)
                observer.on_next(event)

            def on_error(error: Exception) -> None:
                tracker.on_error(error)
                observer.on_error(error)

            def on_completed() -> None:
                tracker.on_completed()
                observer.on_completed()

            def dispose() -> None:
                upstream.dispose()
                tracker.dispose()

            upstream.disposable = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)
            return Disposable(dispose)

        return reactivex.create(subscribe)

    return operator
