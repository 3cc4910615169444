"""Drawing the dashboard's lanes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from rich.cells import cell_len, set_cell_size
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style

from rxagents.sinks._terminal import tail_fit

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult

__all__ = ["CompactRows", "Row"]


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
                yield Segment(f" {row.tokens:>{tw}} {row.rate:>{rw}} " + tail_fit(row.tail, tail_width),
                              style(row.tail_style))
            else:
                yield Segment(f" {row.tokens:>{tw}} {row.rate:>{rw}}")
            yield newline
        if self.more:
            yield Segment(self.more, console.get_style("dim"))
            yield Segment.line()

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(options.max_width, options.max_width)
