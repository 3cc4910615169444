"""What the live views (:func:`~rxagents.sinks.panel`, :func:`~rxagents.sinks.dashboard`) share as sinks: the
checks of their arguments, the words of their status lines, and :func:`view_operator`, the operator that feeds
a stream to a view (the drawing itself is :class:`~rxagents.sinks._terminal.FrameDriver`'s)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Protocol

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from rxagents import _runtime
from rxagents._validate import check_bool, check_int, check_number, check_str, fail, shown
from rxagents.events import TokenEvent

__all__ = [
    "LiveView",
    "agent_names",
    "check_dashboard",
    "check_panel",
    "check_refresh_rate",
    "count",
    "describe",
    "fmt_rate",
    "token_rate",
    "view_operator",
]

log = logging.getLogger("rxagents")

_MAX_RATE = 60.0


def check_refresh_rate(refresh_per_second: object) -> float:
    """Validate a frame rate: a finite number in (0, 60]."""
    return check_number(
        "refresh_per_second",
        refresh_per_second,
        minimum=0,
        maximum=_MAX_RATE,
        above=True,
        hint="8 is smooth; lower it to spend less CPU on drawing",
    )


def count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" if n == 1 else f"{n:,} {noun}s"


def fmt_rate(rate: float | None) -> str:
    return "" if rate is None else f"{rate:,.1f} tok/s"


def describe(error: BaseException | None) -> str:
    if error is None:
        return "error"
    return f"{type(error).__name__}: {error}"


def token_rate(tokens: int, t0: float | None, t_last: float | None) -> float | None:
    """Tokens per second between the first event's time and the last token's (None until they differ)."""
    if t0 is None or t_last is None or t_last <= t0:
        return None
    return tokens / (t_last - t0)


def agent_names(agents: object) -> tuple[str, ...]:
    if isinstance(agents, str | bytes) or not isinstance(agents, Sequence):
        fail("agents", "a sequence of agent names (or Agents)", agents, hint="e.g. agents=['Researcher', 'Writer']")
    names = []
    for agent in agents:
        name = getattr(agent, "agent_name", agent)
        if not isinstance(name, str) or not name:
            fail(
                "agents",
                "a sequence of non-empty names (or Agents with agent_name)",
                agents,
                hint=f"{shown(agent)} is not one; e.g. agents=['Researcher', 'Writer']",
            )
        names.append(name)
    return tuple(names)


def _check_title(title: object, *, optional: bool) -> None:
    if optional:
        check_str("title", title, empty=True, none="(default '🤖 AGENT')")
    else:
        check_str("title", title, empty=True)


def check_dashboard(title: object, compact: object, tail_lines: object, refresh_per_second: object) -> float:
    """Check :func:`~rxagents.sinks.dashboard`'s arguments (but ``agents``: :func:`agent_names`); the frame rate."""
    _check_title(title, optional=False)
    check_bool("compact", compact, none="(choose by size)")
    check_int("tail_lines", tail_lines)
    return check_refresh_rate(refresh_per_second)


def check_panel(title: object, border_style: object, refresh_per_second: object) -> float:
    """Check :func:`~rxagents.sinks.panel`'s arguments; the frame rate."""
    _check_title(title, optional=True)
    if not isinstance(border_style, str):
        fail("border_style", "a rich style string such as 'blue'", border_style)
    return check_refresh_rate(refresh_per_second)


class LiveView(Protocol):
    """A view :func:`view_operator` feeds (:class:`~rxagents.sinks.StreamPanel`, :class:`~rxagents.sinks.Dashboard`)."""

    def start(self, scheduler: abc.SchedulerBase) -> None: ...

    def on_event(self, event: TokenEvent) -> None: ...

    def finish(self, error: BaseException | None = None, *, cancelled: bool = False) -> None: ...


def view_operator(
    make_view: Callable[[], LiveView], scheduler: abc.SchedulerBase | None, failed: str
) -> Callable[[Observable[TokenEvent]], Observable[TokenEvent]]:
    """An operator that shows the stream on a view made for each subscription; every event passes on unchanged.

    The view's frames are drawn on ``scheduler`` (default: the run's loop scheduler, chosen at subscription).
    Its final frame is drawn on completion, error or dispose, before the end is passed on. A view that fails to
    record an event is logged once (the warning ``failed``) and left alone: a display bug never breaks the stream.
    """

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], subscribe_scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            view = make_view()
            view.start(_runtime.default_scheduler(scheduler))
            broken = False

            def on_next(event: TokenEvent) -> None:
                nonlocal broken
                if not broken:
                    try:
                        view.on_event(event)
                    except Exception as exc:  # a display bug must never break the stream
                        broken = True
                        log.warning(failed, exc_info=exc)
                observer.on_next(event)

            def on_error(error: Exception) -> None:
                view.finish(error)
                observer.on_error(error)

            def on_completed() -> None:
                view.finish()
                observer.on_completed()

            try:
                subscription = source.subscribe(on_next, on_error, on_completed, scheduler=subscribe_scheduler)
            except BaseException:
                view.finish(cancelled=True)
                raise
            return CompositeDisposable(subscription, Disposable(lambda: view.finish(cancelled=True)))

        return reactivex.create(subscribe)

    return operator
