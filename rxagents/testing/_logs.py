"""Collecting what an operator logs while it is checked, to report it once instead of per example.

The law checker runs an operator hundreds of times (examples times trials, plus shrinking). An operator that
logs -- ``tap_safe`` reporting a raising callback once per run, with its traceback -- would print hundreds of
tracebacks. :class:`LogCollector` takes the ``rxagents`` logger's records made on the checking thread while it
is active, counts them by message, keeps the first traceback as text, and lets everything else through.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from types import TracebackType

__all__ = ["LogCollector", "LoggedMessage"]


@dataclass(frozen=True, slots=True)
class LoggedMessage:
    """Records of one kind (same level, same message template) collected during a check."""

    level: str
    message: str  # the first one, formatted
    count: int

    def __str__(self) -> str:
        return f"{self.count} × {self.level} {self.message}"


class LogCollector(logging.Filter):
    """While active (``with``), holds back the records ``logger`` gets on the thread that entered it.

    Records from other threads pass as usual. A logger's filter also stops propagation, so a held record
    reaches no handler at all (not the root's, not pytest's).
    """

    def __init__(self, logger: str = "rxagents") -> None:
        super().__init__()
        self.logger = logging.getLogger(logger)
        self._thread: int | None = None
        self._lock = threading.Lock()
        self._counts: dict[tuple[int, str], int] = {}  # (level, message template) -> records
        self._first: dict[tuple[int, str], tuple[str, str]] = {}  # -> (level name, first message's first line)
        #: The first held record that had a traceback, formatted as logging would have printed it.
        self.first_traceback: str | None = None

    def __enter__(self) -> LogCollector:
        self._thread = threading.get_ident()
        self.logger.addFilter(self)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.logger.removeFilter(self)
        self._thread = None

    def filter(self, record: logging.LogRecord) -> bool:
        if record.thread != self._thread:
            return True
        try:
            message = record.getMessage()
        except Exception:  # bad arguments: logging would report them, we keep the template
            message = str(record.msg)
        key = (record.levelno, str(record.msg))
        with self._lock:
            count = self._counts.get(key, 0)
            if not count:
                self._first[key] = (record.levelname, message.splitlines()[0] if message else "")
            self._counts[key] = count + 1
            if self.first_traceback is None and record.exc_info and record.exc_info[0] is not None:
                self.first_traceback = logging.Formatter().format(record)
        return False

    @property
    def messages(self) -> tuple[LoggedMessage, ...]:
        """What was held back, by kind, in order of first appearance."""
        with self._lock:
            return tuple(LoggedMessage(*self._first[key], count) for key, count in self._counts.items())

    @property
    def highest_level(self) -> int:
        """The highest level held back (``logging.NOTSET`` when nothing was)."""
        with self._lock:
            return max((level for level, _ in self._counts), default=logging.NOTSET)

    def summary(self) -> str:
        """One line: how many records of which kinds were held back."""
        messages = self.messages
        total = sum(m.count for m in messages)
        kinds = "; ".join(str(m) for m in messages[:3]) + ("; ..." if len(messages) > 3 else "")
        return f"{total} log record{'s' if total != 1 else ''} collected: {kinds}"
