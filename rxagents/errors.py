"""Exceptions raised by rxagents.

Every exception that ends a run is an :class:`RxAgentsError` carrying what the run produced
before it failed (``partial_text`` and ``events``), so nothing the model produced is lost.
Messages never contain API keys.
"""

from __future__ import annotations

from collections.abc import Iterable

from rxagents._core.partial import PartialText
from rxagents.events import TokenEvent

__all__ = [
    "ConfigurationError",
    "EmptyStreamError",
    "MalformedStreamError",
    "ModelError",
    "ProviderUnavailable",
    "ProviderUnreachable",
    "RateLimitError",
    "RunError",
    "RxAgentsError",
    "SilenceTimeout",
    "StallTimeout",
    "StreamCutError",
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


class ConfigurationError(RxAgentsError, ValueError, TypeError):
    """A bad argument or environment, raised before anything runs.

    The message names the parameter, the bad value and the fix. It is both a ``ValueError`` and a
    ``TypeError``, so code that catches either for a bad argument (a wrong value or a wrong type)
    keeps working."""


class ModelError(RxAgentsError):
    """The model backend failed (HTTP status, dropped connection, malformed stream...).

    ``status_code`` and ``retry_after`` (seconds) are set when the provider said so;
    ``__cause__`` is the provider's own exception. ``retries`` is how many times the run retried
    before it gave up with this error (see ``Agent(retries=...)``). The subclasses below name the
    faults a streaming client meets; anything else (a 400, a bad key) is a plain ``ModelError``.
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
        self.retries = 0


class RateLimitError(ModelError):
    """HTTP 429: the provider is rate limiting. ``retry_after`` is its ``Retry-After`` (seconds), if sent."""


class ProviderUnavailable(ModelError):
    """HTTP 5xx (500, 502, 503, 504, 529 ...): the provider failed or is overloaded."""


class ProviderUnreachable(ModelError):
    """No connection to the provider could be made: connection refused, DNS lookup failed, TLS handshake
    failed, or the connect timed out. Nothing was sent and no byte arrived, so ``status_code`` is None and
    ``partial_text`` is empty. Raised at once, with no hidden retry; it is transient, so the run's own retry
    policy (``Agent(retries=...)``) retries it, and ``retries`` says how often.

    ``url`` is the endpoint tried, without credentials (user info and key-like query values removed);
    ``reason`` is one of ``"refused"``, ``"dns"``, ``"tls"``, ``"timeout"`` or ``"unreachable"``.
    """

    def __init__(
        self,
        message: str,
        *,
        url: str | None = None,
        reason: str = "unreachable",
        partial_text: str = "",
        events: Iterable[TokenEvent] = (),
    ) -> None:
        super().__init__(message, partial_text=partial_text, events=events)
        self.url = url
        self.reason = reason


class StreamCutError(ModelError):
    """The connection closed before the stream ended (no ``finish_reason``): before the first byte or
    mid-stream. ``partial_text`` holds what arrived; it is never returned as if it were the answer."""


class MalformedStreamError(ModelError):
    """The provider sent a stream chunk that is not valid JSON (or not a chat-completion chunk)."""


class EmptyStreamError(ModelError):
    """The stream ended "normally" with nothing in it: no text, no reasoning, no tool call and no usage
    (a bare ``data: [DONE]``, for which litellm makes up ``finish_reason="stop"``)."""


class SilenceTimeout(ModelError):
    """The model (or the stream) went silent for longer than a limit allowed.

    ``seconds`` is the limit that was exceeded; ``phase`` says which one: ``"first_token"`` (no output
    yet), ``"stall"`` (mid-stream, a run's ``stall_timeout``) or ``"gap"`` (the ``gap_timeout``
    operator). The base of :class:`StallTimeout` (a run's own limits) and
    :class:`~rxagents.operators.StreamTimeout` (the timeout operators): catch it for either.
    """

    def __init__(
        self,
        message: str,
        *,
        seconds: float,
        phase: str,
        partial_text: str = "",
        events: Iterable[TokenEvent] = (),
    ) -> None:
        super().__init__(message, partial_text=partial_text, events=events)
        self.seconds = seconds
        self.phase = phase


class StallTimeout(SilenceTimeout):
    """The model went silent during a run: no output within ``first_token_timeout`` of the request
    (``phase="first_token"``: slow headers, a stall before the first token) or no next delta within
    ``stall_timeout`` (``phase="stall"``). ``seconds`` is the limit that was exceeded."""


class RunError(RxAgentsError):
    """A run failed: raised by ``Agent.run``/``arun``. ``__cause__`` is the underlying error."""


def partial_text_of(events: Iterable[TokenEvent]) -> str:
    """The answer text carried by ``events`` (token deltas, concatenated).

    A ``retry`` event means its run restarted and consumers discard the run's text so far: so does this
    (see :class:`rxagents._core.partial.PartialText`).
    """
    return PartialText(events).text
