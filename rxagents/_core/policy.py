"""When a failed model request is retried: :class:`RetryPolicy` and its decision, :meth:`RetryPolicy.decide`.

Used by the run (``Agent(retries=RetryPolicy(...))``, through :class:`~rxagents._core.machine.RunMachine`)
and by the ``retry`` operator (which builds a policy from its arguments: ``max_attempts = retries + 1``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from rxagents._validate import check_choice, check_int, check_number, check_seconds, fail
from rxagents.errors import ModelError, SilenceTimeout

__all__ = [
    "NO_RETRY",
    "ExponentialBackoff",
    "GiveUp",
    "Retry",
    "RetryPolicy",
    "is_transient",
    "retryable",
]

_TRANSIENT_STATUS = frozenset({408, 409, 425, 429})


def is_transient(error: BaseException) -> bool:
    """Whether ``error`` is worth retrying: the default ``retry_on`` of :func:`~rxagents.operators.retry`.

    True for a :class:`~rxagents.errors.SilenceTimeout` (``StallTimeout``, ``StreamTimeout``), a
    :class:`~rxagents.errors.ModelError` without an HTTP status (dropped connection, malformed or truncated
    stream) or with status 408, 409, 425, 429 or >= 500, and the builtin ``TimeoutError``/``ConnectionError``.
    False for everything else: bad requests, authentication, budget, callback and grammar errors would fail
    again.
    """
    if isinstance(error, SilenceTimeout | TimeoutError | ConnectionError):
        return True
    if isinstance(error, ModelError):
        status = error.status_code
        return status is None or status in _TRANSIENT_STATUS or status >= 500
    return False


def retryable(error: BaseException) -> bool:
    """The default ``retry_on`` of :class:`RetryPolicy`: :func:`is_transient` (HTTP 429/5xx, cut, malformed
    or empty streams, a stall), **except** a first-token timeout.

    A model that sent nothing for ``first_token_timeout`` is most often still busy (queued, or a reasoning model
    thinking before its first token): a new request starts that work again and multiplies the wait (three
    requests of 60 s: three minutes before a chat UI shows the error). So it fails at once, at the documented
    time; ``RetryPolicy(retry_on=is_transient)`` retries it too (a fresh connection can help a stuck server).
    """
    if isinstance(error, SilenceTimeout) and error.phase == "first_token":
        return False
    return is_transient(error)


@dataclass(frozen=True, slots=True)
class ExponentialBackoff:
    """Wait ``initial * factor ** (failures - 1)`` seconds, at most ``maximum``: 0.5, 1, 2, 4 ... 30."""

    initial: float = 0.5
    factor: float = 2.0
    maximum: float = 30.0

    def __post_init__(self) -> None:
        check_seconds("initial", self.initial, zero=True)
        check_number("factor", self.factor, minimum=1, hint="1 waits the same each time, 2 doubles the wait")
        check_seconds("maximum", self.maximum, zero=True)

    def __call__(self, failures: int) -> float:
        return float(min(self.maximum, self.initial * self.factor ** max(0, failures - 1)))


def _seconds(value: object) -> float | None:
    """``value`` as seconds >= 0, or None when it is not a finite non-negative number."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        return None
    return float(value)


@dataclass(frozen=True, slots=True)
class Retry:
    """The decision to try again after ``wait`` seconds; ``restart``: output was delivered, so the run starts
    again from its first loop, announced by a ``retry`` event (consumers discard its text)."""

    wait: float
    restart: bool = False


#: Why a policy gives up: the error is not retryable; no retry left; output was delivered and
#: ``after_tokens="fail"``; the wait asked for is over ``max_wait``; ``retry_on`` or ``backoff`` raised.
GiveUpReason = Literal["not_retryable", "exhausted", "delivered", "too_long", "broken"]


@dataclass(frozen=True, slots=True)
class GiveUp:
    """The decision not to retry: fail with ``error`` (the request's error; for ``"broken"`` the exception
    ``retry_on`` or ``backoff`` raised, its ``__context__`` the request's error)."""

    reason: GiveUpReason
    error: BaseException


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How a run retries a failed model request: ``Agent(retries=RetryPolicy(...))``.

    * A request that fails with a retryable error **before it delivered anything** (no token,
      reasoning or tool-call event of that request) is retried invisibly: consumers see no error,
      no duplicate ``start``, contiguous ``seq``.
    * Once it delivered output it is never retried silently. ``after_tokens="fail"`` (default):
      the run fails with the typed error and its ``partial_text``. ``"restart"``: a ``retry``
      event (``text`` = the reason) announces that the run starts again from its first loop;
      consumers discard the text they have (``collect_text``, the sinks and ``Agent.run`` do).

    .. code-block:: text

        request 1:  -s--#                        (# = 429, Retry-After 0.2 s, before any token)
        request 2:        ~0.2 s~--a--b--u--f-|
        events:     -s-------------a--b--u--f-|  (one start, seq 0..4, no error)

    Args:
        retries: retries allowed per run, in all (0: never retry).
        backoff: seconds to wait before retry ``n`` (1, 2, ...): a number, or a function of ``n``;
            default :class:`~rxagents.operators.ExponentialBackoff` (0.5 s doubling, at most 30 s).
            The wait is at least the error's ``retry_after`` (the provider's ``Retry-After``).
        max_wait: the longest wait the run accepts: an error asking for more (say ``Retry-After:
            3600``) fails the run at once, its ``retry_after`` telling the caller how long to wait.
            ``None``: no limit (what the ``retry`` operator uses).
        retry_on: which errors are retryable; default :func:`retryable`: HTTP 429/5xx, cut, malformed or
            empty streams — not 400/401, and not a first-token timeout (pass
            :func:`~rxagents.operators.is_transient` to retry that too).
        after_tokens: ``"fail"`` or ``"restart"``, see above.

    Example::

        Agent(model_name="gpt-4o-mini", retries=RetryPolicy(retries=4, after_tokens="restart"))
    """

    retries: int = 2
    backoff: float | Callable[[int], float] = field(default_factory=ExponentialBackoff)
    max_wait: float | None = 60.0
    retry_on: Callable[[BaseException], bool] = retryable
    after_tokens: Literal["fail", "restart"] = "fail"

    def __post_init__(self) -> None:
        check_int("retries", self.retries, minimum=0, hint="0: never retry")
        if not callable(self.backoff):
            check_seconds("backoff", self.backoff, zero=True, hint="or pass a function (retry number) -> seconds")
        check_seconds("max_wait", self.max_wait, zero=True, none="(no limit)")
        if not callable(self.retry_on):
            fail("retry_on", "a predicate (error) -> bool", self.retry_on, hint="e.g. is_transient")
        check_choice("after_tokens", self.after_tokens, ("fail", "restart"))

    @property
    def max_attempts(self) -> int:
        """Requests in all, the first included: ``retries + 1``."""
        return self.retries + 1

    def decide(self, error: BaseException, retried: int, *, delivered: bool) -> Retry | GiveUp:
        """What to do after ``error``, when ``retried`` retries were made and (``delivered``) output of the
        failed attempt already reached the consumer. The one place retry rules live; in order:

        1. only an ``Exception`` that ``retry_on`` accepts is retried;
        2. at most ``retries`` retries;
        3. after output, only with ``after_tokens="restart"`` (announced: :attr:`Retry.restart`);
        4. the wait is ``backoff(retried + 1)``, at least the error's ``retry_after``, at most ``max_wait``.
        """
        if not isinstance(error, Exception):
            return GiveUp("not_retryable", error)
        try:
            accepted = self.retry_on(error)
        except Exception as broken:
            broken.__context__ = error
            return GiveUp("broken", broken)
        if not accepted:
            return GiveUp("not_retryable", error)
        if retried >= self.retries:
            return GiveUp("exhausted", error)
        if delivered and self.after_tokens == "fail":
            return GiveUp("delivered", error)
        try:
            backoff = float(self.backoff(retried + 1) if callable(self.backoff) else self.backoff)
        except Exception as broken:
            broken.__context__ = error
            return GiveUp("broken", broken)
        wait = max(_seconds(backoff) or 0.0, _seconds(getattr(error, "retry_after", None)) or 0.0)
        if self.max_wait is not None and wait > self.max_wait:
            return GiveUp("too_long", error)
        return Retry(wait, restart=delivered)


#: No retries: what a bare :class:`~rxagents._run.RunSpec` does.
NO_RETRY = RetryPolicy(retries=0)
