"""What the live sinks (:mod:`~rxagents.sinks._panel`, :mod:`~rxagents.sinks._dashboard`) share.

* :class:`TailBuffer` — the last N characters of a growing text, O(1) amortised per append, so a sink
  never keeps re-rendering the whole answer while it streams.
* :class:`WrappedTail` — the last lines of a growing text, word-wrapped as it arrives, so a frame of a long text
  costs what a frame of a short one does; :class:`LastLines` — a renderable of the last lines of a short text;
  :func:`tail_fit` — the end of a text on one line, cut on the left (``…the end``).
* :class:`FrameDriver` — draws a sink's frames at a fixed rate from a reactivex scheduler (the run's loop by
  default), never per event; picks a rich ``Live`` display on a real terminal and plain lines otherwise;
  draws the final frame exactly once.

One terminal, one live display: a ``Live`` claims its console's output file while it runs. A second live sink
writing to the same file (the same ``Console``, or another ``Console`` on the same stream), or to a console on
which another rich live display (a user's ``Progress``, say) is active, does not start a second ``Live`` — it
prints plain lines instead, which rich places above the running display. Nothing here is global but that
claim table and the set of running displays that get a final frame at interpreter exit.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import sys
import threading
import weakref
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Literal

from reactivex import abc
from reactivex.disposable import CompositeDisposable, SerialDisposable
from rich.cells import cell_len
from rich.errors import LiveError
from rich.live import Live
from rich.measure import Measurement
from rich.text import Text

from rxagents._validate import check_int

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderableType, RenderResult

__all__ = [
    "FrameDriver",
    "LastLines",
    "Mode",
    "TailBuffer",
    "WrappedTail",
    "is_live_terminal",
    "tail_fit",
]

log = logging.getLogger("rxagents")

#: How a sink draws: ``"live"`` — a rich ``Live`` redrawn in place at the frame rate; ``"lines"`` — plain
#: lines appended as things happen (not a terminal, or the terminal already has a live display).
Mode = Literal["live", "lines"]


class TailBuffer:
    """The last ``limit`` characters of a text that keeps growing.

    ``append`` is O(1) amortised (each piece is stored once and dropped at most once), whatever the length
    of the whole text; ``text()`` costs O(limit).
    """

    __slots__ = ("_parts", "_size", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = check_int("limit", limit)
        self._parts: deque[str] = deque()
        self._size = 0

    def append(self, text: str) -> None:
        if not text:
            return
        parts = self._parts
        parts.append(text)
        self._size += len(text)
        # Drop whole pieces while what remains still covers the limit.
        while self._size - len(parts[0]) >= self.limit:
            self._size -= len(parts.popleft())

    def clear(self) -> None:
        self._parts.clear()
        self._size = 0

    def text(self) -> str:
        joined = "".join(self._parts)
        return joined[-self.limit :] if len(joined) > self.limit else joined

    def __len__(self) -> int:
        return min(self._size, self.limit)

    def __repr__(self) -> str:
        return f"TailBuffer(limit={self.limit}, size={len(self)})"


def _right_cells(text: str, width: int) -> str:
    """The longest suffix of ``text`` that fits in ``width`` terminal cells."""
    if text.isascii():
        return text[-width:] if width > 0 else ""
    used = 0
    start = len(text)
    while start > 0:
        size = cell_len(text[start - 1])
        if used + size > width:
            break
        used += size
        start -= 1
    return text[start:]


def _fit(text: str, start: int, width: int, ascii_only: bool) -> int:
    """How many characters of ``text[start:]`` fit in ``width`` cells (at least one)."""
    if ascii_only:
        return max(1, min(width, len(text) - start))
    used = 0
    end = start
    while end < len(text):
        size = cell_len(text[end])
        if used + size > width:
            break
        used += size
        end += 1
    return max(1, end - start)


def tail_fit(text: str, width: int) -> str:
    """The end of ``text`` on one line of ``width`` cells: newlines become spaces, the cut start becomes ``…``."""
    if width <= 0:
        return ""
    flat = text.replace("\r", "").replace("\n", " ").replace("\t", " ")
    if (len(flat) if flat.isascii() else cell_len(flat)) <= width:
        return flat
    return "…" + _right_cells(flat, width - 1)


class WrappedTail:
    """The last ``lines`` lines of a growing text, word-wrapped at ``width`` cells as the text arrives.

    ``append`` costs O(len(piece) + width) and the lines are ready for a frame without wrapping again, so a
    frame of a long text costs no more than a frame of a short one. (The wrap is close to rich's, not
    identical; the final frame, rendered once by rich, is exact.)
    """

    __slots__ = ("_cells", "_cur", "done", "lines", "width")

    def __init__(self, width: int, lines: int) -> None:
        self.width = max(1, width)
        self.lines = max(1, lines)
        self.done: deque[str] = deque(maxlen=self.lines)
        self._cur = ""
        self._cells = 0

    def append(self, text: str) -> None:
        if not text:
            return
        text = text.replace("\r", "").replace("\t", "    ")
        parts = text.split("\n")
        for i, part in enumerate(parts):
            if i:
                self.done.append(self._cur.rstrip())
                self._cur, self._cells = "", 0
            if part:
                self._add(part)

    def _add(self, part: str) -> None:
        width = self.width
        budget = self.lines * (width + 1)
        if len(part) > budget:  # only its end can be seen
            self.done.append(self._cur.rstrip())
            self._cur, self._cells, part = "", 0, part[-budget:]
        cur = self._cur + part
        cells = self._cells + cell_len(part)
        ascii_only = cur.isascii()
        start = 0
        while cells > width:
            cut = start + _fit(cur, start, width, ascii_only)
            space = cur.rfind(" ", start + 1, cut + 1)
            end, nxt = (space, space + 1) if space > start else (cut, cut)
            self.done.append(cur[start:end].rstrip())
            cells -= len(cur[start:nxt]) if ascii_only else cell_len(cur[start:nxt])
            start = nxt
        self._cur, self._cells = cur[start:], cells

    def clear(self) -> None:
        self.done.clear()
        self._cur, self._cells = "", 0

    def text(self) -> str:
        """The visible lines joined by newlines (the line in progress last)."""
        rows = list(self.done)
        if self._cur:
            rows.append(self._cur)
        return "\n".join(rows[-self.lines :])


class LastLines:
    """The last ``lines`` lines of ``text`` once wrapped to the width available (the start is dropped)."""

    def __init__(self, text: str, lines: int, style: str = "") -> None:
        self.text = text
        self.lines = lines
        self.style = style

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        wrapped = Text(self.text, style=self.style, end="").wrap(console, max(1, options.max_width), overflow="fold")
        tail: Iterable[Text] = wrapped[-self.lines :] if self.lines > 0 else []
        for line in tail:
            line.rstrip()
            line.end = "\n"
            yield line

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(1, options.max_width)


def is_live_terminal(console: Console) -> bool:
    """Whether ``console`` can redraw in place (a real, non-dumb terminal)."""
    return bool(console.is_terminal and not console.is_dumb_terminal)


def _has_live_display(console: Console) -> bool:
    """Whether a rich live display (a Live, a Progress...) is active on ``console`` (rich 13 and >= 14)."""
    stack = getattr(console, "_live_stack", None)
    if stack:
        return True
    return getattr(console, "_live", None) is not None


_live_drivers: weakref.WeakSet[FrameDriver] = weakref.WeakSet()


@atexit.register
def _stop_live_displays() -> None:
    """A display still running at exit (Ctrl-C out of a blocking ``.run()``, say) gets its final frame, and
    the terminal its cursor back."""
    for driver in list(_live_drivers):
        with contextlib.suppress(Exception):
            driver.shutdown()


_claims_lock = threading.Lock()
_claims: dict[int, object] = {}  # id(output file) -> the FrameDriver drawing a Live on it


def _claim(console: Console, owner: object) -> bool:
    key = id(console.file)
    with _claims_lock:
        if key in _claims or _has_live_display(console):
            return False
        _claims[key] = owner
        return True


def _release(console: Console, owner: object) -> None:
    with _claims_lock:
        for key, holder in list(_claims.items()):
            if holder is owner:
                del _claims[key]


class FrameDriver:
    """Draws a sink's frames on a scheduler, at most ``refresh_per_second`` times a second.

    Subclasses give the picture and the plain-line output:

    * :meth:`build` — the renderable of the current state (a snapshot: it must not read mutable state when
      rich renders it later);
    * :meth:`take_output` — in ``"lines"`` mode, the text to append since the last call (status lines, new
      text); :meth:`final_output` — what to append at the end.

    The event side only updates state and sets :attr:`dirty`; a frame is drawn by the periodic timer, and
    only when something changed since the last one. The final frame is drawn by :meth:`close`, exactly
    once, by the thread that ends the stream (for an agent's run: the run's loop), before the end is passed
    downstream, so code that runs after completion sees a finished display. All drawing is serialised by
    one lock, and a drawing failure is logged once and stops the drawing, never the stream.
    """

    def __init__(self, console: Console | None, refresh_per_second: float) -> None:
        if console is None:
            from rich import get_console

            console = get_console()
        #: Where frames are drawn (default: rich's global console, stdout).
        self.console: Console = console
        self.refresh_per_second = refresh_per_second
        self.mode: Mode | None = None
        #: Frames drawn by the Live (the first, the changed ones, the final one); lines-mode writes.
        self.frames = 0
        #: Timer ticks so far (each draws a frame only when :attr:`dirty`).
        self.ticks = 0
        self.dirty = True
        self.closed = False
        self.final = False
        self._live: Live | None = None
        self._draw_lock = threading.RLock()
        self._timer = SerialDisposable()
        self._broken = False

    # to override ------------------------------------------------------------------------------------------
    def build(self) -> RenderableType:
        raise NotImplementedError

    def take_output(self) -> str:
        return ""

    def final_output(self) -> str:
        return ""

    # driving ----------------------------------------------------------------------------------------------
    def choose_mode(self) -> Mode:
        if is_live_terminal(self.console) and _claim(self.console, self):
            return "live"
        return "lines"

    def start(self, scheduler: abc.SchedulerBase) -> None:
        """Choose the mode and start the frame timer on ``scheduler`` (the first frame is drawn at once)."""
        with self._draw_lock:
            if self.closed or self.mode is not None:
                return
            self.mode = self.choose_mode()
        period = 1.0 / self.refresh_per_second
        first = scheduler.schedule(self._first)
        if isinstance(scheduler, abc.PeriodicSchedulerBase):
            periodic = scheduler.schedule_periodic(period, self._periodic)
        else:  # any other scheduler: re-arm a relative timer after each tick
            rearm = SerialDisposable()

            def again(sched: abc.SchedulerBase, _: Any = None) -> None:
                self.tick()
                if not rearm.is_disposed:
                    rearm.disposable = sched.schedule_relative(period, again)

            rearm.disposable = scheduler.schedule_relative(period, again)
            periodic = rearm
        self._timer.disposable = CompositeDisposable(first, periodic)

    def _first(self, _: abc.SchedulerBase, __: Any = None) -> None:
        self.tick()

    def _periodic(self, state: Any = None) -> Any:
        self.tick()
        return state

    def tick(self) -> None:
        """Draw a frame if something changed since the last one."""
        with self._draw_lock:
            if self.closed or self._broken or self.mode is None:
                return
            self.ticks += 1
            try:
                if self.mode == "live":
                    if self._live is None:
                        self.dirty = False
                        self._start_live()
                    elif self.dirty:
                        self.dirty = False
                        self._live.refresh()
                        self.frames += 1
                else:
                    out = self.take_output()
                    if out:
                        self._write(out)
            except Exception as exc:
                self._fail(exc)

    def _start_live(self) -> None:
        # Prints to stdout/stderr during the display go above it — but only when the display is on one of
        # them: a Live on another file (a log, a test's StringIO) must not capture the process's output.
        standard = self.console.file in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__)
        live = Live(
            console=self.console,
            get_renderable=self.build,
            auto_refresh=False,  # frames come from our scheduler, never from rich's refresh thread
            transient=False,
            vertical_overflow="ellipsis",
            redirect_stdout=standard,
            redirect_stderr=standard,
        )
        try:
            live.start(refresh=True)
        except LiveError:  # rich < 14: another Live appeared on this console meanwhile
            _release(self.console, self)
            self.mode = "lines"
            return
        self._live = live
        _live_drivers.add(self)
        self.frames += 1

    def _write(self, text: str) -> None:
        self.console.out(text, end="", highlight=False)
        self.console.file.flush()
        self.frames += 1

    def close(self) -> None:
        """Stop the timer and draw the final frame (exactly once; later calls do nothing)."""
        self._timer.dispose()
        with self._draw_lock:
            if self.closed:
                return
            self.closed = True
            self.final = True
            try:
                if self._broken or self.mode is None:
                    return
                if self.mode == "live":
                    if self._live is None:
                        self._start_live()
                    if self._live is not None:
                        self._live.stop()  # redraws once more, in full (the final frame)
                        self.frames += 1
                        return
                out = self.take_output() + self.final_output()
                if out:
                    self._write(out)
            except Exception as exc:
                self._fail(exc)
            finally:
                _live_drivers.discard(self)
                _release(self.console, self)

    def shutdown(self) -> None:
        """End the display from outside the stream (at interpreter exit); subclasses mark it cancelled."""
        self.close()

    def _fail(self, exc: Exception) -> None:
        self._broken = True
        log.warning("%s: drawing on the console failed; the display stopped (the stream goes on)",
                    type(self).__name__, exc_info=exc)
        live, self._live = self._live, None
        _live_drivers.discard(self)
        if live is not None:
            with contextlib.suppress(Exception):
                live.stop()
        _release(self.console, self)
