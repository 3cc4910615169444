"""The exceptions of the event bus."""

from __future__ import annotations

from collections.abc import Iterable

from rxagents.errors import RxAgentsError
from rxagents.events import TokenEvent

__all__ = [
    "AttemptFenced",
    "BusError",
    "BusGapError",
    "BusUnavailable",
    "RemoteRunError",
    "RunCancelled",
    "RunNotFound",
]


class BusError(RxAgentsError):
    """Something went wrong between rxagents and the broker. Messages name the broker by its URL without
    credentials (:func:`rxagents._urls.safe_url`).

    ``unpublished`` holds, in order, every event a publisher was given that the broker has not acknowledged
    when the publisher failed: nothing is dropped silently, so the caller can keep them, publish them again
    later (the broker de-duplicates by seq), or report them. It is empty for failures that are not a
    publisher's (connecting, attaching, listing runs). ``events`` is the same tuple.
    """

    def __init__(self, message: str, *, unpublished: Iterable[TokenEvent] = (), partial_text: str = "") -> None:
        events = tuple(unpublished)
        super().__init__(message, events=events, partial_text=partial_text)
        self.unpublished: tuple[TokenEvent, ...] = events


class BusUnavailable(BusError):
    """The broker could not be reached (or kept failing) for longer than the caller allowed, or a publisher's
    buffer of unacknowledged events is full. ``unpublished``: see :class:`BusError`."""


class AttemptFenced(BusError):
    """A newer attempt took run ``run_id`` over (its task was delivered again to another worker while this one
    stalled or lost the broker): the broker refuses this attempt's writes, so the run's log holds the newer
    attempt only after its ``retry`` event. The attempt should stop; ``unpublished``: see :class:`BusError`."""

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class BusGapError(BusError):
    """Events of a run are missing on the broker and did not arrive within ``gap_timeout``: they expired
    under the retention limits, or the publisher failed before the broker acknowledged them.

    ``run_id`` is the run and ``missing`` the range of sequence numbers that never arrived (``stop``
    exclusive). ``partial_text`` is the answer text delivered before the gap."""

    def __init__(self, message: str, *, run_id: str, missing: range, partial_text: str = "") -> None:
        super().__init__(message, partial_text=partial_text)
        self.run_id = run_id
        self.missing = missing


class RunNotFound(BusError):
    """No event of the run reached the broker within ``start_timeout`` of attaching: the run id is wrong,
    the run has not started yet, or it expired under the retention limits."""

    def __init__(self, message: str, *, run_id: str) -> None:
        super().__init__(message)
        self.run_id = run_id


class RunCancelled(RxAgentsError):
    """A run ended before its model finished because it was cancelled: :func:`~rxagents.bus.cancel` asked for
    it, its worker stopped, or the subscription publishing it was disposed. It is the error of the run's
    terminal ``error`` event, so every process attached to the run sees the run end (as a
    :class:`RemoteRunError` of type ``"RunCancelled"``) and ``bus.runs()`` shows it ``"cancelled"``.

    ``run_id`` is the run, ``reason`` why it was cancelled; ``partial_text`` the answer text before it.

    >>> str(RunCancelled("run-1", "cancelled on request"))
    'run run-1 was cancelled: cancelled on request'
    """

    def __init__(self, run_id: str, reason: str, *, partial_text: str = "") -> None:
        super().__init__(f"run {run_id} was cancelled: {reason}", partial_text=partial_text)
        self.run_id = run_id
        self.reason = reason

    def __reduce__(self) -> tuple[object, ...]:
        return (_run_cancelled, (self.run_id, self.reason, self.partial_text))


def _run_cancelled(run_id: str, reason: str, partial_text: str) -> RunCancelled:
    return RunCancelled(run_id, reason, partial_text=partial_text)


class RemoteRunError(RxAgentsError):
    """A run that another process published failed: the ``error`` of its ``error`` event, as seen by a
    process that attached to it.

    The exception object itself cannot cross the broker; its class name and message do. ``type`` is the
    original exception's class name (``"StreamCutError"``), ``message`` its text; ``partial_text`` is the
    answer text this attachment delivered before the error. ``str(error)`` is ``"type: message"``.

    >>> error = RemoteRunError("StreamCutError", "the stream closed")
    >>> error.type, error.message, str(error)
    ('StreamCutError', 'the stream closed', 'StreamCutError: the stream closed')
    """

    def __init__(self, type: str, message: str, *, partial_text: str = "") -> None:
        super().__init__(f"{type}: {message}" if message else type, partial_text=partial_text)
        self.type = type
        self.message = message

    def __repr__(self) -> str:
        return f"RemoteRunError(type={self.type!r}, message={self.message!r})"

    def __reduce__(self) -> tuple[object, ...]:
        return (_remote_run_error, (self.type, self.message, self.partial_text))


def _remote_run_error(type: str, message: str, partial_text: str) -> RemoteRunError:
    return RemoteRunError(type, message, partial_text=partial_text)
