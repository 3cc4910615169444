"""Exceptions raised by the operators, and how an operator ends a run it has to stop (:class:`Relay`).

Every exception here is an :class:`rxagents.errors.RxAgentsError`: it carries ``partial_text`` (the answer
text delivered downstream before the failure) and ``events`` (the events delivered), so nothing is lost.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Generic, TypeVar

from reactivex import abc
from reactivex.disposable import SerialDisposable

from rxagents._core.partial import PartialText
from rxagents.errors import RxAgentsError, SilenceTimeout
from rxagents.events import EventKind, TokenEvent

_T = TypeVar("_T")

__all__ = [
    "BudgetExceeded",
    "CallbackError",
    "RetryError",
    "RetryExhausted",
    "SlowConsumerError",
    "StreamGrammarError",
    "StreamTimeout",
    "TokensAlreadyDelivered",
]


class CallbackError(RxAgentsError):
    """A user callback raised under ``tap_safe(..., on_error="raise")``.

    ``original`` (also ``__cause__``) is the callback's exception; ``event`` the event it was called for.
    """

    def __init__(
        self,
        message: str,
        *,
        original: BaseException,
        event: TokenEvent | None = None,
        partial_text: str = "",
        events: Iterable[TokenEvent] = (),
    ) -> None:
        super().__init__(message, partial_text=partial_text, events=events)
        self.original = original
        self.event = event
        self.__cause__ = original


class StreamTimeout(SilenceTimeout):
    """No token (``phase="first_token"``) or no event at all (``phase="gap"``) arrived within ``seconds``:
    raised by :func:`~rxagents.operators.first_token_timeout` and :func:`~rxagents.operators.gap_timeout`.
    A :class:`~rxagents.errors.SilenceTimeout`, as a run's own :class:`~rxagents.errors.StallTimeout` is."""


class BudgetExceeded(RxAgentsError):
    """A run went over its token or cost budget and was cancelled.

    ``limit`` names the budget (``"max_tokens"`` or ``"max_cost"``), ``allowed`` its value, ``used`` what the
    run would have used with the event that crossed it (that event is not delivered).
    """

    def __init__(
        self,
        message: str,
        *,
        limit: str,
        allowed: float,
        used: float,
        partial_text: str = "",
        events: Iterable[TokenEvent] = (),
    ) -> None:
        super().__init__(message, partial_text=partial_text, events=events)
        self.limit = limit
        self.allowed = allowed
        self.used = used


class StreamGrammarError(RxAgentsError):
    """A stream broke the run grammar ``start (token|reasoning|tool_call|retry)* usage? (finish|error)``.

    ``event`` is the offending event (``None`` when the violation is how the stream ended).
    """

    def __init__(
        self,
        message: str,
        *,
        event: TokenEvent | None = None,
        partial_text: str = "",
        events: Iterable[TokenEvent] = (),
    ) -> None:
        super().__init__(message, partial_text=partial_text, events=events)
        self.event = event


class RetryError(RxAgentsError):
    """Base of the errors ``retry`` ends a stream with. ``attempts`` is how many subscriptions were made;
    ``__cause__`` (also ``last_error``) the error of the last attempt."""

    def __init__(
        self,
        message: str,
        *,
        attempts: int,
        last_error: BaseException,
        partial_text: str = "",
        events: Iterable[TokenEvent] = (),
    ) -> None:
        super().__init__(message, partial_text=partial_text, events=events)
        self.attempts = attempts
        self.last_error = last_error
        self.__cause__ = last_error


class RetryExhausted(RetryError):
    """Every attempt ``retry`` was allowed failed with a retryable error."""


class TokensAlreadyDelivered(RetryError):
    """A retryable error came after output had been delivered and ``after_tokens="fail"``: retrying would have
    repeated it. ``partial_text`` is what the consumer already has."""


class SlowConsumerError(RxAgentsError):
    """``to_async_iter(..., maxsize=n)``: the consumer fell ``maxsize`` events behind the stream."""

    def __init__(
        self,
        message: str,
        *,
        maxsize: int,
        partial_text: str = "",
        events: Iterable[TokenEvent] = (),
    ) -> None:
        super().__init__(message, partial_text=partial_text, events=events)
        self.maxsize = maxsize


def error_event_after(last: TokenEvent | None, error: BaseException, time: float) -> TokenEvent | None:
    """The ``error`` event that ends the run ``last`` belongs to, or ``None`` when no event was delivered
    yet (nothing started, so the run ends with a bare ``on_error``) or ``last`` already ended its run."""
    if last is None or last.kind in (EventKind.FINISH, EventKind.ERROR):
        return None
    return TokenEvent(
        EventKind.ERROR,
        last.agent,
        last.run_id,
        last.seq + 1,
        last.loop,
        error=error,
        time=max(time, last.time),
        model=last.model,
    )


class Relay(Generic[_T]):
    """The downstream side of one subscription of an operator that may end the stream itself.

    Serialises delivery with a re-entrant lock, stops delivering once terminated or disposed, remembers the
    last event (and, with ``keep_events``, every event) delivered, and owns the upstream subscription
    (``upstream``) so :meth:`fail` and :meth:`dispose` release it.
    """

    __slots__ = ("_events", "_text", "disposed", "done", "last", "lock", "observer", "upstream")

    def __init__(self, observer: abc.ObserverBase[_T], *, keep_events: bool = False) -> None:
        self.observer = observer
        self.lock = threading.RLock()
        self.upstream = SerialDisposable()
        self.done = False
        self.disposed = False
        self.last: TokenEvent | None = None
        self._events: list[TokenEvent] | None = [] if keep_events else None
        self._text = PartialText()

    @property
    def partial_text(self) -> str:
        """The answer text delivered, without what ``retry`` events discarded."""
        return self._text.text

    @property
    def events(self) -> tuple[TokenEvent, ...]:
        return tuple(self._events or ())

    def _record(self, value: object) -> None:
        if isinstance(value, TokenEvent):
            self.last = value
            self._text.add(value)
            if self._events is not None:
                self._events.append(value)

    def on_next(self, value: _T) -> None:
        with self.lock:
            if self.done:
                return
            self._record(value)
            self.observer.on_next(value)

    def on_error(self, error: Exception) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
            self.observer.on_error(error)

    def on_completed(self) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
            self.observer.on_completed()

    def fail(self, error: Exception, time: float, *, event: bool = True, fill: bool = True) -> bool:
        """End the stream with ``error``: release upstream, emit the run's ``error`` event (when a run is
        open and ``event``), fill ``error``'s ``partial_text``/``events`` if it is an RxAgentsError (and
        ``fill``), then ``on_error``. Returns False (and does nothing) when the stream already ended."""
        with self.lock:
            if self.done:
                return False
            self.done = True
            self.upstream.dispose()
            ending = error_event_after(self.last, error, time) if event else None
            if ending is not None:
                self._record(ending)
            if fill and isinstance(error, RxAgentsError):
                error.partial_text = self.partial_text
                error.events = self.events
            if ending is not None:
                self.observer.on_next(ending)  # type: ignore[arg-type]  # operators that fail relay TokenEvents
                if self.disposed:  # the consumer disposed while handling the error event
                    return True
            self.observer.on_error(error)
            return True

    def dispose(self) -> None:
        with self.lock:
            self.done = True
            self.disposed = True
        self.upstream.dispose()
