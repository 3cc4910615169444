"""What a watcher saw of every run: ``rxagents watch`` prints it as one JSON line a run and a summary line.

:class:`RunTally` takes the merged events of many runs (as :func:`~rxagents.bus.watch` delivers them) one at a
time, in O(1) each, and checks each run's log as it passes: seqs from 0, each once, in order. A seq seen again
counts as ``duplicates``, a seq skipped as ``missing``; a ``retry`` event starts the run's answer again (its
token count and text), as ``collect_text()`` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rxagents.bus._base import RunStatus, is_cancellation
from rxagents.bus._errors import RemoteRunError
from rxagents.events import EventKind, TokenEvent

__all__ = ["RunTally"]


@dataclass(slots=True)
class _Run:
    agent: str
    next_seq: int = 0
    events: int = 0
    tokens: int = 0
    retries: int = 0
    duplicates: int = 0
    missing: int = 0
    status: RunStatus = "running"
    error: str | None = None
    parts: list[str] | None = field(default_factory=list)


class RunTally:
    """Counts every run's events as they pass; :meth:`add` returns a run's record when its terminal event
    passes. ``keep_text``: records carry the run's answer (the token text after its last retry).

    A record: ``{"run_id", "agent", "status" ("finished", "failed" or "cancelled"), "events", "tokens" (of the
    answer), "retries", "duplicates", "missing"}``, ``"error"`` (``"Type: message"``) for a failed or cancelled
    run, ``"text"`` with ``keep_text``.

    >>> tally = RunTally()
    >>> tally.add(TokenEvent(EventKind.START, "writer", "r1", 0)) is None
    True
    >>> tally.add(TokenEvent(EventKind.TOKEN, "writer", "r1", 1, text="Hi"))
    >>> tally.add(TokenEvent(EventKind.FINISH, "writer", "r1", 2))["tokens"]
    1
    >>> tally.summary()
    '1 run(s) watched: 1 finished, 0 failed, 0 cancelled, 0 unfinished; 1 tokens; 0 duplicated, 0 missing events'
    """

    def __init__(self, *, keep_text: bool = False) -> None:
        self.keep_text = keep_text
        self._runs: dict[str, _Run] = {}

    def __repr__(self) -> str:
        return f"RunTally(runs={len(self._runs)}, keep_text={self.keep_text})"

    def add(self, event: TokenEvent) -> dict[str, Any] | None:
        """Count ``event``; the run's record if it ended the run, else None."""
        run = self._runs.get(event.run_id)
        if run is None:
            run = self._runs[event.run_id] = _Run(event.agent, parts=[] if self.keep_text else None)
        run.events += 1
        if event.seq < run.next_seq:
            run.duplicates += 1
            return None  # a reader would drop it: it changes nothing
        run.missing += event.seq - run.next_seq
        run.next_seq = event.seq + 1
        kind = event.kind
        if kind is EventKind.TOKEN:
            run.tokens += 1
            if run.parts is not None:
                run.parts.append(event.text)
        elif kind is EventKind.RETRY:
            run.retries += 1
            run.tokens = 0
            if run.parts is not None:
                run.parts.clear()
        elif kind is EventKind.FINISH:
            run.status = "finished"
            return self._record(event.run_id, run)
        elif kind is EventKind.ERROR:
            run.status = "cancelled" if is_cancellation(event.error) else "failed"
            error = event.error
            run.error = str(error) if isinstance(error, RemoteRunError) else f"{type(error).__name__}: {error}"
            return self._record(event.run_id, run)
        return None

    def _record(self, run_id: str, run: _Run) -> dict[str, Any]:
        record: dict[str, Any] = {
            "run_id": run_id, "agent": run.agent, "status": run.status, "events": run.events, "tokens": run.tokens,
            "retries": run.retries, "duplicates": run.duplicates, "missing": run.missing,
        }  # fmt: skip
        if run.error is not None:
            record["error"] = run.error
        if run.parts is not None:
            record["text"] = "".join(run.parts)
            run.parts = []  # the record has it; an event after the end (none should come) starts afresh
        return record

    def summary(self) -> str:
        """One line: runs seen by status, tokens of their answers, duplicated and missing events."""
        runs = self._runs.values()
        by_status = {status: sum(run.status == status for run in runs) for status in
                     ("finished", "failed", "cancelled", "running")}  # fmt: skip
        return (
            f"{len(self._runs)} run(s) watched: {by_status['finished']} finished, {by_status['failed']} failed, "
            f"{by_status['cancelled']} cancelled, {by_status['running']} unfinished; "
            f"{sum(run.tokens for run in runs)} tokens; {sum(run.duplicates for run in runs)} duplicated, "
            f"{sum(run.missing for run in runs)} missing events"
        )
