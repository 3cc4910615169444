"""Exceptions raised by rxagents.

Every exception that ends a run is an :class:`RxAgentsError` carrying what the run produced
before it failed (``partial_text`` and ``events``), so nothing the model produced is lost.
Messages never contain API keys.
"""

from __future__ import annotations

from collections.abc import Iterable

from rxagents.events import EventKind, TokenEvent

__all__ = [
    "ConfigurationError",
    "ModelError",
    "RunError",
    "RxAgentsError",
]


class RxAgentsError(Exception):
    """Base class. ``partial_text`` is the answer text delivered before the failure;
    ``events`` the events delivered (empty when the error happened outside a run)."""

    def __init__(
        self,
        message: str,
        *,
        partial_text: str = "",
        events: Iterable[TokenEvent] = (),
    ) -> None:
        super().__init__(message)
        self.partial_text = partial_text
        self.events: tuple[TokenEvent, ...] = tuple(events)


class ConfigurationError(RxAgentsError, ValueError):
    """A bad argument or environment, raised before anything runs."""


class ModelError(RxAgentsError):
    """The model backend failed (HTTP status, dropped connection, malformed stream...).

    ``status_code`` and ``retry_after`` (seconds) are set when the provider said so;
    ``__cause__`` is the provider's own exception.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int | None = None,
        retry_after: float | None = None,
        partial_text: str = "",
        events: Iterable[TokenEvent] = (),
    ) -> None:
        super().__init__(message, partial_text=partial_text, events=events)
        self.status_code = status_code
        self.retry_after = retry_after


class RunError(RxAgentsError):
    """A run failed: raised by ``Agent.run``/``arun``. ``__cause__`` is the underlying error."""


def partial_text_of(events: Iterable[TokenEvent]) -> str:
    """The answer text carried by ``events`` (token deltas, concatenated)."""
    return "".join(e.text for e in events if e.kind is EventKind.TOKEN)
