"""RetryPolicy.decide: the one retry decision of runs and of the retry operator."""

from __future__ import annotations

import doctest
import math
import re
import types
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rxagents._core.grammar
import rxagents._core.partial
import rxagents._core.silence
from rxagents._core.policy import (
    ExponentialBackoff,
    GiveUp,
    GiveUpReason,
    Retry,
    RetryPolicy,
    is_transient,
    retryable,
)
from rxagents.errors import ConfigurationError, ModelError, StallTimeout
from tests.strategies import junk_values

BUSY = ModelError("busy", status_code=503)


def test_a_retryable_error_before_output_is_retried_after_the_backoff() -> None:
    assert RetryPolicy(backoff=2).decide(BUSY, 0, delivered=False) == Retry(2.0, restart=False)


def test_the_backoff_gets_the_retry_number() -> None:
    seen: list[int] = []
    policy = RetryPolicy(retries=3, backoff=lambda n: seen.append(n) or 0.0)
    for retried in range(3):
        policy.decide(BUSY, retried, delivered=False)
    assert seen == [1, 2, 3]


def test_after_output_it_restarts_or_gives_up_as_after_tokens_says() -> None:
    assert RetryPolicy(backoff=0, after_tokens="restart").decide(BUSY, 0, delivered=True) == Retry(0.0, restart=True)
    assert RetryPolicy(backoff=0).decide(BUSY, 0, delivered=True) == GiveUp("delivered", BUSY)


@pytest.mark.parametrize(
    ("error", "retried", "delivered", "reason"),
    [
        (ModelError("bad", status_code=400), 5, True, "not_retryable"),  # retry_on comes first
        (BUSY, 2, True, "exhausted"),  # then the count
        (BUSY, 1, True, "delivered"),  # then output
        (KeyboardInterrupt(), 0, False, "not_retryable"),  # never a BaseException
    ],
)
def test_the_rules_apply_in_order(error: BaseException, retried: int, delivered: bool, reason: GiveUpReason) -> None:
    decision = RetryPolicy(retries=2, retry_on=lambda e: isinstance(e, ModelError) and e.status_code == 503).decide(
        error, retried, delivered=delivered
    )
    assert decision == GiveUp(reason, error)


def test_retry_after_is_the_least_wait_and_max_wait_the_most() -> None:
    slow = ModelError("slow", status_code=429, retry_after=30)
    assert RetryPolicy(backoff=1).decide(slow, 0, delivered=False) == Retry(30.0)
    assert RetryPolicy(backoff=1, max_wait=10).decide(slow, 0, delivered=False) == GiveUp("too_long", slow)
    huge = ModelError("slow", status_code=429, retry_after=10**6)
    assert RetryPolicy(backoff=1, max_wait=None).decide(huge, 0, delivered=False) == Retry(10.0**6)


@pytest.mark.parametrize("backoff", [float("inf"), float("nan"), -1.0])
def test_a_backoff_that_is_no_wait_means_no_wait_beyond_retry_after(backoff: float) -> None:
    error = ModelError("slow", status_code=429, retry_after=3)
    assert RetryPolicy(backoff=lambda _: backoff).decide(error, 0, delivered=False) == Retry(3.0)


def test_a_raising_predicate_or_backoff_gives_up_with_its_exception() -> None:
    def broken(_: object) -> bool:
        raise ValueError("predicate bug")

    decision = RetryPolicy(retry_on=broken).decide(BUSY, 0, delivered=False)
    assert isinstance(decision, GiveUp) and decision.reason == "broken"
    assert str(decision.error) == "predicate bug" and decision.error.__context__ is BUSY
    decision = RetryPolicy(backoff=lambda _: 1 / 0).decide(BUSY, 0, delivered=False)
    assert isinstance(decision, GiveUp) and isinstance(decision.error, ZeroDivisionError)


def test_max_attempts_counts_the_first_request() -> None:
    assert RetryPolicy(retries=0).max_attempts == 1 and RetryPolicy(retries=4).max_attempts == 5


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"retries": -1}, "retries must be an int >= 0, got -1; 0: never retry"),
        ({"max_wait": math.inf}, "max_wait must be a finite number of seconds >= 0, or None (no limit), got inf"),
        ({"backoff": "1s"}, "backoff must be a finite number of seconds >= 0, got '1s'; or pass a function"),
        ({"retry_on": ValueError()}, "retry_on must be a predicate (error) -> bool, got ValueError(); e.g. is_"),
        ({"after_tokens": "skip"}, "after_tokens must be 'fail' or 'restart', got 'skip'"),
    ],
)
def test_bad_options_say_what_to_pass(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(match)):
        RetryPolicy(**options)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"initial": -1}, "initial must be a finite number of seconds >= 0, got -1"),
        ({"maximum": math.nan}, "maximum must be a finite number of seconds >= 0, got nan"),
        ({"factor": 0.5}, "factor must be a number >= 1, got 0.5; 1 waits the same each time, 2 doubles the wait"),
        ({"factor": "2"}, "factor must be a number >= 1, got '2'; pass 2.0 without quotes; 1 waits the same"),
    ],
)
def test_bad_backoff_options_say_what_to_pass(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=re.escape(match)):
        ExponentialBackoff(**options)


#: Each option and what a valid value of it is.
_POLICY_OPTIONS = {
    "retries": lambda v: type(v) is int and v >= 0,
    "backoff": lambda v: callable(v) or (type(v) in (int, float) and math.isfinite(v) and v >= 0),
    "max_wait": lambda v: v is None or (type(v) in (int, float) and math.isfinite(v) and v >= 0),
    "after_tokens": lambda v: v in ("fail", "restart"),
}
_BACKOFF_OPTIONS = {
    "initial": lambda v: type(v) in (int, float) and math.isfinite(v) and v >= 0,
    "factor": lambda v: type(v) in (int, float) and math.isfinite(v) and v >= 1,
    "maximum": lambda v: type(v) in (int, float) and math.isfinite(v) and v >= 0,
}


@given(name=st.sampled_from(sorted(_POLICY_OPTIONS)), value=junk_values())
def test_a_policy_accepts_a_valid_option_or_names_it(name: str, value: object) -> None:
    try:
        RetryPolicy(**{name: value})
    except ConfigurationError as exc:
        assert str(exc).startswith(f"{name} must be ") and not _POLICY_OPTIONS[name](value)
        return
    assert _POLICY_OPTIONS[name](value), f"RetryPolicy({name}={value!r}) was accepted"


@given(name=st.sampled_from(sorted(_BACKOFF_OPTIONS)), value=junk_values())
def test_a_backoff_accepts_a_valid_option_or_names_it(name: str, value: object) -> None:
    try:
        ExponentialBackoff(**{name: value})
    except ConfigurationError as exc:
        assert str(exc).startswith(f"{name} must be ") and not _BACKOFF_OPTIONS[name](value)
        return
    assert _BACKOFF_OPTIONS[name](value), f"ExponentialBackoff({name}={value!r}) was accepted"


def test_the_default_predicate_does_not_retry_a_first_token_timeout() -> None:
    assert not retryable(StallTimeout("silent", seconds=1, phase="first_token"))
    assert retryable(StallTimeout("silent", seconds=1, phase="stall"))
    assert is_transient(StallTimeout("silent", seconds=1, phase="first_token"))


@given(retries=st.integers(0, 5), retried=st.integers(0, 8), delivered=st.booleans())
def test_never_more_retries_than_allowed(retries: int, retried: int, delivered: bool) -> None:
    decision = RetryPolicy(retries=retries, backoff=0, after_tokens="restart").decide(
        BUSY, retried, delivered=delivered
    )
    assert isinstance(decision, Retry) == (retried < retries)
    if isinstance(decision, Retry):
        assert decision.restart == delivered


@pytest.mark.parametrize("module", [rxagents._core.grammar, rxagents._core.partial, rxagents._core.silence])
def test_docstring_examples(module: types.ModuleType) -> None:
    results = doctest.testmod(module)
    assert results.attempted > 0 and results.failed == 0
