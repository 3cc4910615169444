"""Drawing the dashboard's lanes: one line each (compact) or a heading and the end of the text (full)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.cells import cell_len, set_cell_size
from rich.console import Group
from rich.measure import Measurement
from rich.rule import Rule
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from rxagents.sinks._lanes import ICONS, PRIORITY, STYLES, LaneStatus, LaneView
from rxagents.sinks._live_view import count, fmt_rate
from rxagents.sinks._terminal import LastLines, tail_fit

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult

__all__ = ["CompactRows", "Row", "compact_lanes", "full_lanes", "status_word"]


@dataclass(frozen=True, slots=True)
class Row:
    icon: str
    name: str
    status: str
    status_style: str
    tokens: str
    rate: str
    tail: str
    tail_style: str


class CompactRows:
    """One line per lane, laid out by hand: a rich ``Table`` spends about a millisecond per row measuring
    cells, which at 50+ lanes and 8 frames/s would be most of the dashboard's cost."""

    def __init__(self, rows: Sequence[Row], name_width: int, more: str) -> None:
        self.rows = rows
        self.name_width = max(4, name_width)
        self.more = more

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        nw = self.name_width
        tw = max((len(r.tokens) for r in self.rows), default=1)
        rw = max((len(r.rate) for r in self.rows), default=0)
        tail_width = width - (2 + 1 + nw + 1 + 11 + 1 + tw + 1 + rw + 1)
        styles: dict[str, Style] = {}

        def style(name: str) -> Style:
            if name not in styles:
                styles[name] = console.get_style(name or "none")
            return styles[name]

        newline = Segment.line()
        for row in self.rows:  # few segments per row: rich's per-segment bookkeeping is the cost of a frame
            name = row.name
            name = set_cell_size(name, nw - 1) + "…" if cell_len(name) > nw else set_cell_size(name, nw)
            yield Segment(f"{row.icon} {name} ")
            yield Segment(f"{row.status:<11}", style(row.status_style))
            if tail_width > 0:
                yield Segment(
                    f" {row.tokens:>{tw}} {row.rate:>{rw}} " + tail_fit(row.tail, tail_width), style(row.tail_style)
                )
            else:
                yield Segment(f" {row.tokens:>{tw}} {row.rate:>{rw}}")
            yield newline
        if self.more:
            yield Segment(self.more, console.get_style("dim"))
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(options.max_width, options.max_width)


def status_word(status: LaneStatus, final: bool) -> str:
    """A lane's status in words; a lane still waiting when the dashboard ended "not started"."""
    if status is LaneStatus.WAITING and final:
        return "not started"
    return status.value


def compact_lanes(views: list[LaneView], *, final: bool, height: int) -> RenderableType:
    """One line per lane; when they do not fit a console ``height`` lines high (and the dashboard has not
    ended), errors and streaming lanes first and a count of the rest."""
    shown = views
    hidden: list[LaneView] = []
    fit = max(1, height - 3)  # the lines inside the panel
    if not final and len(views) > fit:
        keep = sorted(range(len(views)), key=lambda i: (PRIORITY[views[i].status], i))[: fit - 1]
        kept = set(keep)
        shown = [views[i] for i in sorted(kept)]
        hidden = [view for i, view in enumerate(views) if i not in kept]
    rows = [
        Row(
            ICONS[view.status],
            view.name,
            status_word(view.status, final),
            STYLES[view.status],
            f"{view.tokens:,}",
            fmt_rate(view.rate),
            view.error or view.tail,
            "red" if view.error else "",
        )
        for view in shown
    ]
    more = ""
    if hidden:
        counts: dict[str, int] = {}
        for view in hidden:
            label = status_word(view.status, final)
            counts[label] = counts.get(label, 0) + 1
        more = f"   … {len(hidden)} more ({', '.join(f'{n} {label}' for label, n in counts.items())})"
    return CompactRows(rows, min(32, max((cell_len(v.name) for v in views), default=8)), more)


def full_lanes(views: list[LaneView], *, final: bool, tail_lines: int) -> RenderableType:
    """Each lane with a heading, a rule, its error and the last ``tail_lines`` lines of its text."""
    items: list[RenderableType] = []
    for view in views:
        style = STYLES[view.status]
        head = Text(f"{ICONS[view.status]} ")
        head.append(view.name, style="bold")
        details = [status_word(view.status, final), count(view.tokens, "token")]
        if view.rate is not None:
            details.append(fmt_rate(view.rate))
        if view.runs > 1:
            details.append(f"run {view.runs}")
        head.append("  " + " · ".join(details), style=style)
        items.append(head)
        items.append(Rule(characters="━", style=style))
        if view.error:
            items.append(Text(view.error, style="red"))
        items.append(LastLines(view.tail, tail_lines))
        items.append(Text(""))
    return Group(*items)
