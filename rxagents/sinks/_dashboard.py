"""``dashboard``: one live lane per agent for a merged stream of several runs.

What swarms does (a global rich ``Live`` redrawn with the whole text from every agent thread, per token) costs
O(n²) and tears the terminal. Here each event only updates a lane — a counter, a timestamp and a bounded tail
of its text, O(1) — and frames are drawn by a periodic timer on the scheduler, at most ``refresh_per_second``
times a second, whatever the token rate. Each subscription has its own ``Live``; nothing is shared between
dashboards but the rule that one terminal stream shows one live display at a time (see
:mod:`rxagents.sinks._terminal`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from reactivex import Observable, abc
from rich.panel import Panel
from rich.text import Text

from rxagents._validate import check_scheduler
from rxagents.events import EventKind, TokenEvent
from rxagents.sinks._lane_render import compact_lanes, full_lanes, status_word
from rxagents.sinks._lanes import ENDED, ICONS, Lane, LaneStatus, LaneView, Named
from rxagents.sinks._live_view import agent_names, check_dashboard, count, describe, fmt_rate, view_operator
from rxagents.sinks._terminal import FrameDriver

if TYPE_CHECKING:
    from rich.console import Console, RenderableType

__all__ = ["COMPACT_ABOVE", "Dashboard", "LaneStatus", "LaneView", "dashboard"]

#: With ``compact=None``, more lanes than this switch to one line per agent.
COMPACT_ABOVE = 12


class Dashboard(FrameDriver):
    """The state and drawing of one dashboard (one subscription of :func:`dashboard`).

    Drive it with :meth:`start` (a scheduler for the frame timer), :meth:`on_event` for each event (any
    thread; O(1)), then :meth:`finish`. Inspect it with :meth:`lanes`, :attr:`mode` (``"live"`` or
    ``"lines"``), :attr:`frames` and :attr:`ticks`; :meth:`build` gives the current frame as a renderable.

    Args: as :func:`dashboard`.
    """

    def __init__(
        self,
        title: str,
        agents: Sequence[str | Named] = (),
        *,
        console: Console | None = None,
        refresh_per_second: float = 8.0,
        compact: bool | None = None,
        tail_lines: int = 2,
        final_text: bool = True,
    ) -> None:
        rate = check_dashboard(title, compact, tail_lines, refresh_per_second)
        names = agent_names(agents)
        super().__init__(console, rate)
        self.title = title
        self.compact = compact
        self.tail_lines = tail_lines
        self.final_text = final_text
        self._tail_limit = (tail_lines + 1) * (max(self.console.width, 20) + 1)
        self._lock = threading.Lock()
        self._lanes: list[Lane] = []
        self._by_name: dict[str, list[Lane]] = {}
        self._by_run: dict[tuple[str, str], Lane] = {}  # (run_id, agent) -> its lane
        self._run_lanes: dict[str, list[Lane]] = {}  # run_id -> its lanes; the first is the run's own
        self._pending: list[str] = []
        self._tokens = 0
        self._t_first: float | None = None
        self._t_last: float | None = None
        self._failure: str | None = None
        self._finished = False
        self._announced = False
        for name in names:
            self._add_lane(name)

    def start(self, scheduler: abc.SchedulerBase) -> None:
        super().start(scheduler)
        if self.mode == "live":  # nothing is printed line by line: drop what was kept for it
            with self._lock:
                self._pending.clear()
                for lane in self._lanes:
                    lane.parts = None

    def __repr__(self) -> str:
        return f"Dashboard(title={self.title!r}, lanes={len(self._lanes)}, mode={self.mode!r})"

    # state ------------------------------------------------------------------------------------------------
    def _add_lane(self, name: str) -> Lane:
        lane = Lane(name, self._tail_limit)
        lane.parts = [] if self._keeps_text() else None
        self._lanes.append(lane)
        self._by_name.setdefault(name, []).append(lane)
        return lane

    def _keeps_text(self) -> bool:
        return self.final_text and self.mode != "live"

    def _bind(self, event: TokenEvent) -> Lane:
        """The lane for a run seen for the first time: a waiting lane of that name, else an ended one (a
        repeated chain), else a new lane."""
        lanes = self._by_name.get(event.agent, ())
        lane = next((x for x in lanes if x.run_id is None), None)
        if lane is None:
            lane = next((x for x in lanes if x.status in ENDED), None)
            if lane is not None:
                lane.reset(self._keeps_text())
            else:
                lane = self._add_lane(event.agent)
        lane.run_id = event.run_id
        lane.runs += 1
        self._by_run[event.run_id, event.agent] = lane
        self._run_lanes.setdefault(event.run_id, []).append(lane)
        return lane

    def _end_run(self, lane: Lane, status: LaneStatus) -> None:
        """The run's own lane ended (its terminal event): the lanes of its agents still going end with it."""
        lanes = self._run_lanes.get(lane.run_id or "", [])
        if not lanes or lanes[0] is not lane:
            return  # an agent's own end: its run goes on
        del self._run_lanes[lane.run_id or ""]
        for other in lanes[1:]:
            if other.run_id == lane.run_id and other.status not in ENDED:
                other.error = lane.error
                self._set(other, status)

    def _set(self, lane: Lane, status: LaneStatus) -> None:
        lane.status = status
        if self.mode == "live":
            return
        rest = ""
        if status is LaneStatus.STREAMING:
            rest = f" (run {lane.runs})" if lane.runs > 1 else ""
        elif status is LaneStatus.DONE:
            rate = fmt_rate(lane.rate)
            rest = f" · {count(lane.tokens, 'token')}" + (f" · {rate}" if rate else "")
        elif status is LaneStatus.ERROR:
            rest = f" · {count(lane.tokens, 'token')} · {lane.error}"
        elif status is LaneStatus.CANCELLED:
            rest = f" · {count(lane.tokens, 'token')}"
        self._pending.append(f"[{self.title}] {ICONS[status]} {lane.name}: {status.value}{rest}\n")
        if status in (LaneStatus.DONE, LaneStatus.ERROR) and lane.parts:
            text = "".join(lane.parts)
            self._pending.append("".join(f"    {line}\n" for line in text.splitlines()))
            lane.parts = []

    def on_event(self, event: TokenEvent) -> None:
        """Update the event's lane: O(1), no drawing."""
        with self._lock:
            if self._finished:
                return
            lane = self._by_run.get((event.run_id, event.agent))
            if lane is None:
                lane = self._bind(event)
            time = event.time
            if self._t_first is None:
                self._t_first = time
            if self._t_last is None or time > self._t_last:
                self._t_last = time
            if lane.t0 is None:
                lane.t0 = time
            kind = event.kind
            if kind is EventKind.TOKEN:
                lane.tokens += 1
                self._tokens += 1
                lane.t_last = time
                lane.tail.append(event.text)
                if lane.parts is not None:
                    lane.parts.append(event.text)
                if lane.status is LaneStatus.WAITING:
                    self._set(lane, LaneStatus.STREAMING)
            elif kind is EventKind.START:
                lane.t0 = time
                self._set(lane, LaneStatus.STREAMING)
            elif kind is EventKind.FINISH:
                self._set(lane, LaneStatus.DONE)
                self._end_run(lane, LaneStatus.DONE)
            elif kind is EventKind.ERROR:
                lane.error = describe(event.error)
                self._set(lane, LaneStatus.ERROR)
                self._end_run(lane, LaneStatus.ERROR)
            elif kind is EventKind.RETRY:  # the run restarts (all its lanes, if it is the run's own): text discarded
                lanes = self._run_lanes.get(event.run_id, [])
                for restarted in lanes if lanes and lanes[0] is lane else [lane]:
                    self._restart(restarted, time)
                if self.mode != "live":
                    self._pending.append(f"[{self.title}] 🔁 {lane.name}: retrying ({event.text})\n")
            elif lane.status is LaneStatus.WAITING:
                self._set(lane, LaneStatus.STREAMING)
            self.dirty = True

    def _restart(self, lane: Lane, time: float) -> None:
        lane.tail.clear()
        if lane.parts is not None:
            lane.parts.clear()
        lane.tokens = 0
        lane.t0 = time

    def shutdown(self) -> None:
        self.finish(cancelled=True)

    def finish(self, error: BaseException | None = None, *, cancelled: bool = False) -> None:
        """End the dashboard: lanes still streaming become cancelled, ``error`` (the stream's) is shown, and
        the final frame is drawn once. Later calls do nothing."""
        with self._lock:
            if not self._finished:
                self._finished = True
                for lane in self._lanes:
                    if lane.status is LaneStatus.STREAMING:
                        self._set(lane, LaneStatus.CANCELLED)
                if error is not None and not any(lane.status is LaneStatus.ERROR for lane in self._lanes):
                    self._failure = describe(error)
                elif cancelled and error is None and not any(
                    lane.status is LaneStatus.CANCELLED for lane in self._lanes
                ) and any(lane.status is LaneStatus.WAITING for lane in self._lanes):
                    self._failure = "cancelled"  # nothing was running: say why the waiting lanes never ran
                self.dirty = True
        self.close()

    def lanes(self) -> list[LaneView]:
        """A snapshot of every lane, in order (the ``agents`` given, then agents seen later)."""
        with self._lock:
            return [lane.view() for lane in self._lanes]

    # drawing ----------------------------------------------------------------------------------------------
    def is_compact(self, lanes: int | None = None) -> bool:
        """Whether frames use one line per agent: ``compact`` if given, else when there are more than
        :data:`COMPACT_ABOVE` lanes or the full lanes would not fit the console's height."""
        if self.compact is not None:
            return self.compact
        n = len(self._lanes) if lanes is None else lanes
        return n > COMPACT_ABOVE or n * (self.tail_lines + 3) + 2 > self.console.height

    def _summary(self, views: Sequence[LaneView]) -> Text:
        counts: dict[LaneStatus, int] = {}
        for view in views:
            counts[view.status] = counts.get(view.status, 0) + 1
        parts = [count(len(views), "agent")]
        for status in LaneStatus:
            if counts.get(status):
                label = status_word(status, self.final)
                parts.append(f"{counts[status]} {label}")
        with self._lock:
            tokens, t0, t1, failure = self._tokens, self._t_first, self._t_last, self._failure
        parts.append(count(tokens, "token"))
        if t0 is not None and t1 is not None and t1 > t0:
            if self.final:
                parts.append(f"{t1 - t0:,.1f} s")
            parts.append(fmt_rate(tokens / (t1 - t0)))
        text = Text(" · ".join(parts), style="dim")
        if failure:
            text.append(f" · {failure}", style="red")
        return text

    def build(self) -> RenderableType:
        """The current frame (the final one after :meth:`finish`)."""
        views = self.lanes()
        if self.is_compact(len(views)):
            body = compact_lanes(views, final=self.final, height=self.console.height)
        else:
            body = full_lanes(views, final=self.final, tail_lines=self.tail_lines)
        border = "blue"
        if any(v.status is LaneStatus.ERROR for v in views) or self._failure:
            border = "red" if self.final else "yellow"
        elif self.final and views and all(v.status is LaneStatus.DONE for v in views):
            border = "green"
        return Panel(
            body,
            title=Text(self.title, style="bold"),
            subtitle=self._summary(views),
            border_style=border,
            expand=True,
        )

    def take_output(self) -> str:
        with self._lock:
            head = ""
            if not self._announced:
                self._announced = True
                head = f"[{self.title}] {count(len(self._lanes), 'agent')}\n"
            out, self._pending = self._pending, []
        return head + "".join(out)

    def final_output(self) -> str:
        views = self.lanes()
        return f"[{self.title}] finished · {self._summary(views).plain}\n"


def dashboard(
    title: str,
    agents: Sequence[str | Named],
    *,
    console: Console | None = None,
    refresh_per_second: float = 8.0,
    compact: bool | None = None,
    scheduler: abc.SchedulerBase | None = None,
    tail_lines: int = 2,
    final_text: bool = True,
) -> Callable[[Observable[TokenEvent]], Observable[TokenEvent]]:
    """A live view of several agents' runs, one lane per agent; every event passes through unchanged.

    Each lane shows the agent's status (⏳ waiting, 🔄 streaming, ✅ done, ❌ error, ⛔ cancelled), the tail
    of its text (the last ``tail_lines`` lines — never the whole text), its token count and tokens/s (from
    the events' ``time``, the scheduler clock). Lanes are made for ``agents`` up front (shown as waiting) and
    for any other agent when its first event arrives; a run of an agent whose lane has ended (a sequential
    chain repeated by ``max_loops``) reuses the lane. A run whose events name several agents (a workflow run
    from a bus worker: one ``run_id``, each event's ``agent`` naming who wrote it) gets a lane per agent; its
    terminal event (``finish`` or ``error``, of the run's first agent) ends them all, and a ``retry`` of the run
    (of its first agent) starts them all over.

    Cost: an event updates its lane in O(1) (a counter and a bounded tail); frames are drawn by a periodic
    timer on ``scheduler``, at most ``refresh_per_second`` a second and only when something changed — never
    per token, never from the threads that produce the events. On completion, error or dispose the final
    frame is drawn exactly once (the ``Live`` is stopped once) before the end is passed on.

    Compact mode (one line per agent) is used when ``compact=True``, or with ``compact=None`` when there are
    more than 12 agents or the full lanes would not fit the console's height. When even the compact lanes do
    not fit, a frame shows errors and streaming agents first and counts the rest (``… 30 more (28 done, 2
    waiting)``); the final frame lists every agent.

    Not a terminal (CI logs, pipes, files): no ``Live`` and no cursor movement, but plain lines — one per
    status change (``[title] ✅ Writer: done · 200 tokens · 41.3 tok/s``), each agent's text under its done
    or error line (``final_text=False`` to leave it out), and a summary line at the end.

    Two dashboards at once: each subscription has its own ``Live``. A terminal stream shows one live display
    at a time, so a dashboard whose console's output already has one (another dashboard, a panel, a rich
    ``Progress``) prints plain lines instead, which rich places above the running display.

    .. code-block:: text

        source:  -s1-s2-a1-b2-c1-f1-d2-f2-|        (s=start a..d=tokens f=finish, 1/2 = agent)
        frames:  F-------F-------F--------(F|)     (timer: every 1/refresh_per_second; final frame at |)
        output:  -s1-s2-a1-b2-c1-f1-d2-f2-|        (unchanged)

    Args:
        title: shown on the panel's border.
        agents: the agents' names (or Agents) in lane order.
        console: the rich ``Console`` to draw on; default rich's global console (stdout).
        refresh_per_second: frames per second at most, in (0, 60].
        compact: one line per agent (True), full lanes (False), or by size (None).
        scheduler: drives the frame timer; default: the run's loop scheduler (chosen at subscription).
        tail_lines: lines of text shown per full lane.
        final_text: in plain-line mode, print each agent's text when it ends.

    Returns:
        An operator passing every event through unchanged.

    Example::

        streams = [agent.stream(task) for agent in agents]
        reactivex.merge(*streams).pipe(dashboard("Market Analysis", [a.agent_name for a in agents])).run()
    """
    check_dashboard(title, compact, tail_lines, refresh_per_second)
    check_scheduler(scheduler)
    names = agent_names(agents)

    def make_view() -> Dashboard:
        return Dashboard(
            title,
            names,
            console=console,
            refresh_per_second=refresh_per_second,
            compact=compact,
            tail_lines=tail_lines,
            final_text=final_text,
        )

    return view_operator(make_view, scheduler, f"dashboard {title!r}: updating a lane failed; the display stopped")
