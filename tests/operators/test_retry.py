"""retry: transparent before the first token, fail or restart (announced) after — never duplicate."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
import reactivex
from reactivex import Observable
from reactivex.notification import OnCompleted, OnError, OnNext
from reactivex.testing import ReactiveTest, TestScheduler
from reactivex.testing.recorded import Recorded

from rxagents import Agent
from rxagents.errors import ConfigurationError, ModelError
from rxagents.events import EventKind, TokenEvent
from rxagents.models import OfflineModel
from rxagents.operators._errors import (
    CallbackError,
    RetryExhausted,
    StreamTimeout,
    TokensAlreadyDelivered,
)
from rxagents.operators._retry import ExponentialBackoff, is_transient, retry
from rxagents.testing._laws import Law, check_operator_laws

S, T, F, E, R = EventKind.START, EventKind.TOKEN, EventKind.FINISH, EventKind.ERROR, EventKind.RETRY

# --- helpers ------------------------------------------------------------------------------------------------


def attempt(run_id: str, *texts: str, error: Exception | None = None, step: float = 10) -> list[Recorded[Any]]:
    """One attempt as cold messages: start, tokens, then finish+complete or error event+on_error."""
    items = [TokenEvent(S, "A", run_id, 0)]
    items += [TokenEvent(T, "A", run_id, i, text=t) for i, t in enumerate(texts, start=1)]
    n = len(items)
    items.append(
        TokenEvent(E, "A", run_id, n, error=error) if error else TokenEvent(F, "A", run_id, n, finish_reason="stop")
    )
    messages = [ReactiveTest.on_next(int(step * (i + 1)), e) for i, e in enumerate(items)]
    end = int(step * (len(items) + 1))
    messages.append(ReactiveTest.on_error(end, error) if error else ReactiveTest.on_completed(end))
    return messages


def attempts(scheduler: TestScheduler, *scripts: list[Recorded[Any]]) -> tuple[Observable[TokenEvent], list[float]]:
    """A cold source whose n-th subscription plays scripts[n]; records subscription times."""
    times: list[float] = []

    def factory(_: Any) -> Observable[TokenEvent]:
        times.append(scheduler.clock)
        messages = scripts[min(len(times), len(scripts)) - 1]
        source: Observable[TokenEvent] = scheduler.create_cold_observable(messages)
        return source.pipe(stamp(scheduler))

    return reactivex.defer(factory), times


def stamp(scheduler: TestScheduler) -> Any:
    """Stamp event.time with the scheduler clock, as a real run does."""
    from reactivex import operators as ops

    return ops.map(lambda e: dataclasses.replace(e, time=scheduler.clock))


def play(op: Any, *scripts: list[Recorded[Any]], disposed: float = 10_000) -> tuple[Any, list[float]]:
    scheduler = TestScheduler()
    source, times = attempts(scheduler, *scripts)
    results = scheduler.start(lambda: source.pipe(op(scheduler)), disposed=disposed)
    return results, times


def values(results: Any) -> list[TokenEvent]:
    return [m.value.value for m in results.messages if isinstance(m.value, OnNext)]


def error_of(results: Any) -> Exception:
    last = results.messages[-1].value
    assert isinstance(last, OnError), results.messages
    return last.exception


def transient(message: str = "503", **kw: Any) -> ModelError:
    return ModelError(message, status_code=503, **kw)


def assert_contiguous(events: list[TokenEvent]) -> None:
    assert [e.seq for e in events] == list(range(len(events)))
    assert len({e.run_id for e in events}) == 1


# --- before the first token: transparent ---------------------------------------------------------------------


def test_retry_before_first_token_is_transparent() -> None:
    results, times = play(
        lambda s: retry(3, backoff=5, scheduler=s),
        attempt("run-1", error=transient()),
        attempt("run-2", "Hel", "lo"),
    )
    got = values(results)
    assert [e.kind for e in got] == [S, T, T, F]
    assert "".join(e.text for e in got) == "Hello"
    assert_contiguous(got)
    assert got[0].run_id == "run-1"  # run_id of the first attempt, kept
    assert isinstance(results.messages[-1].value, OnCompleted)
    assert times == [200, 235]  # error at 230, +5 s backoff


def test_retry_after_is_the_minimum_wait() -> None:
    _, times = play(
        lambda s: retry(2, backoff=1, scheduler=s),
        attempt("run-1", error=transient(retry_after=42)),
        attempt("run-2", "a"),
    )
    assert times == [200, 272]


def test_backoff_function_gets_the_failure_count() -> None:
    seen: list[int] = []

    def backoff(failures: int) -> float:
        seen.append(failures)
        return 1.0

    results, times = play(
        lambda s: retry(3, backoff=backoff, scheduler=s),
        attempt("r1", error=transient()),
        attempt("r2", error=transient()),
        attempt("r3", "ok"),
    )
    assert seen == [1, 2] and len(times) == 3
    assert isinstance(results.messages[-1].value, OnCompleted)


# --- after tokens ----------------------------------------------------------------------------------------------


def test_after_tokens_fail_keeps_partial_text() -> None:
    cause = transient()
    results, times = play(
        lambda s: retry(3, backoff=0, scheduler=s), attempt("r1", "Hel", error=cause), attempt("r2", "Hello")
    )
    error = error_of(results)
    assert isinstance(error, TokensAlreadyDelivered)
    assert error.partial_text == "Hel" and error.__cause__ is cause and error.attempts == 1
    got = values(results)
    assert [e.kind for e in got] == [S, T, E] and got[-1].error is error
    assert_contiguous(got)
    assert len(times) == 1  # no resubscription


def test_after_tokens_restart_announces_with_a_retry_event() -> None:
    results, _ = play(
        lambda s: retry(3, backoff=0, after_tokens="restart", scheduler=s),
        attempt("r1", "Hel", error=transient("connection reset")),
        attempt("r2", "Hel", "lo"),
    )
    got = values(results)
    assert [e.kind for e in got] == [S, T, R, T, T, F]
    assert got[2].text == "ModelError: connection reset"
    assert_contiguous(got)
    assert isinstance(results.messages[-1].value, OnCompleted)


def test_restart_never_redelivers_a_token_without_a_retry_event_before_it() -> None:
    results, _ = play(
        lambda s: retry(5, backoff=0, after_tokens="restart", scheduler=s),
        attempt("r1", "a", "b", error=transient()),
        attempt("r2", error=transient()),  # fails before any token: transparent
        attempt("r3", "a", "b", "c"),
    )
    got = values(results)
    assert [e.kind for e in got] == [S, T, T, R, T, T, T, F]
    assert_contiguous(got)
    text_after_last_retry = "".join(
        e.text for e in got[got.index(next(e for e in got if e.kind is R)) :] if e.kind is T
    )
    assert text_after_last_retry == "abc"


def test_restart_failure_partial_text_is_the_current_attempts() -> None:
    results, _ = play(
        lambda s: retry(2, backoff=0, after_tokens="restart", scheduler=s),
        attempt("r1", "x", error=transient()),
        attempt("r2", "y", "z", error=transient()),
    )
    error = error_of(results)
    assert isinstance(error, RetryExhausted) and error.partial_text == "yz"


# --- giving up -----------------------------------------------------------------------------------------------


def test_exhausted_after_max_attempts() -> None:
    last = transient("third")
    results, times = play(
        lambda s: retry(3, backoff=0, scheduler=s),
        attempt("r1", error=transient()),
        attempt("r2", error=transient()),
        attempt("r3", error=last),
    )
    error = error_of(results)
    assert isinstance(error, RetryExhausted) and error.attempts == 3 and error.__cause__ is last
    assert len(times) == 3
    got = values(results)
    assert [e.kind for e in got] == [S, E]
    assert_contiguous(got)


def test_non_retryable_error_passes_through_unchanged() -> None:
    bad = ModelError("invalid api key", status_code=401)
    results, times = play(lambda s: retry(3, backoff=0, scheduler=s), attempt("r1", error=bad))
    assert error_of(results) is bad and len(times) == 1
    assert values(results)[-1].error is bad


def test_retry_on_exception_types() -> None:
    results, times = play(
        lambda s: retry(2, backoff=0, retry_on=KeyError, scheduler=s),
        attempt("r1", error=KeyError("k")),
        attempt("r2", "ok"),
    )
    assert isinstance(results.messages[-1].value, OnCompleted) and len(times) == 2


def test_retry_on_predicate() -> None:
    results, times = play(
        lambda s: retry(2, backoff=0, retry_on=lambda e: "flaky" in str(e), scheduler=s),
        attempt("r1", error=RuntimeError("flaky")),
        attempt("r2", error=RuntimeError("solid")),
    )
    assert str(error_of(results)) == "solid" and len(times) == 2


def test_dispose_during_the_wait_stops_retrying() -> None:
    _, times = play(
        lambda s: retry(3, backoff=100, scheduler=s),
        attempt("r1", error=transient()),
        attempt("r2", "a"),
        disposed=300,
    )
    assert times == [200]


def test_is_transient() -> None:
    assert is_transient(ModelError("x", status_code=503))
    assert is_transient(ModelError("x", status_code=429))
    assert is_transient(ModelError("dropped"))
    assert is_transient(StreamTimeout("x", seconds=1, phase="gap"))
    assert is_transient(ConnectionResetError())
    assert not is_transient(ModelError("x", status_code=400))
    assert not is_transient(ConfigurationError("x"))
    assert not is_transient(CallbackError("x", original=ValueError()))
    assert not is_transient(ValueError())


def test_exponential_backoff() -> None:
    backoff = ExponentialBackoff(initial=0.5, factor=2, maximum=3)
    assert [backoff(n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    with pytest.raises(ConfigurationError, match=r"factor must be a number >= 1, got 0\.5"):
        ExponentialBackoff(factor=0.5)
    with pytest.raises(ConfigurationError, match="initial must be a finite number of seconds >= 0, got -1"):
        ExponentialBackoff(initial=-1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_attempts": 0}, ValueError, "max_attempts"),
        ({"max_attempts": 2.0}, ValueError, "max_attempts"),
        ({"after_tokens": "replay"}, ValueError, "after_tokens"),
        ({"backoff": -1}, ValueError, "backoff"),
        ({"backoff": "1s"}, TypeError, "backoff"),
        ({"retry_on": int}, TypeError, "retry_on"),
        ({"retry_on": (ValueError, 3)}, TypeError, "retry_on"),
        ({"retry_on": 3}, TypeError, "retry_on"),
        ({"scheduler": object()}, TypeError, "scheduler"),
    ],
)
def test_bad_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        retry(**kwargs)


# --- with the Agent's offline model in virtual time -----------------------------------------------------------


def agent_trace(model: OfflineModel, op: Any) -> tuple[list[TokenEvent], Any]:
    scheduler = TestScheduler()
    agent = Agent(agent_name="W", llm=model, print_on=False)
    results = scheduler.start(lambda: agent.stream("Explain retries", scheduler=scheduler).pipe(op(scheduler)))
    return values(results), results.messages[-1].value


def test_agent_run_failing_before_first_token_is_retried_transparently() -> None:
    clean, _ = agent_trace(OfflineModel(pace=0.1, length=8), lambda s: retry(scheduler=s))
    got, end = agent_trace(
        OfflineModel(pace=0.1, length=8, fail_after=0, fail_times=1, error_status=503),
        lambda s: retry(3, backoff=1, scheduler=s),
    )
    assert isinstance(end, OnCompleted)
    assert [e.kind for e in got] == [e.kind for e in clean]
    assert "".join(e.text for e in got) == "".join(e.text for e in clean)
    assert_contiguous(got)


def test_agent_stall_then_restart_with_gap_timeout() -> None:
    from rxagents.operators._guards import gap_timeout

    got, end = agent_trace(
        OfflineModel(pace=0.1, length=8, stall_after=3, fail_times=1),
        lambda s: (
            lambda src: src.pipe(gap_timeout(2, scheduler=s), retry(2, backoff=0, after_tokens="restart", scheduler=s))
        ),
    )
    assert isinstance(end, OnCompleted)
    kinds = [e.kind for e in got]
    assert kinds.count(R) == 1 and kinds.count(S) == 1 and kinds[-1] is F
    assert_contiguous(got)


# --- laws ---------------------------------------------------------------------------------------------------
# max_attempts=2: the checker runs each trial until the input's span + GRACE (100 s); a retried output lasts
# attempts x span, so with inputs up to ~50 s long, 3 attempts can outlast the trial and look cut off.


def test_retry_fail_mode_obeys_the_laws() -> None:
    report = check_operator_laws(lambda s: retry(2, backoff=0.25, retry_on=Exception, scheduler=s), handles_errors=True)
    assert len(report.checked) == len(Law) and report.handles_errors


def test_retry_restart_mode_obeys_the_laws() -> None:
    report = check_operator_laws(
        lambda s: retry(2, backoff=0.25, retry_on=Exception, after_tokens="restart", scheduler=s),
        handles_errors=True,
    )
    assert Law.NO_DUPLICATION in report.checked and Law.CONSERVATION in report.checked


def test_retry_with_default_predicate_obeys_the_laws() -> None:
    report = check_operator_laws(lambda s: retry(2, scheduler=s), handles_errors=True)
    assert len(report.checked) == len(Law)


def test_a_raising_retry_on_fails_the_stream_with_its_exception() -> None:
    cause = transient()

    def broken(_: BaseException) -> bool:
        raise LookupError("predicate bug")

    results, times = play(lambda s: retry(3, retry_on=broken, scheduler=s), attempt("r1", error=cause))
    error = error_of(results)
    assert isinstance(error, LookupError) and error.__context__ is cause and len(times) == 1
    assert [e.kind for e in values(results)] == [S, E]


def test_partial_text_after_a_restart_keeps_the_runs_that_were_not_restarted() -> None:
    def merged(b_text: str) -> list[Recorded[Any]]:
        a = [TokenEvent(S, "A", "ra", 0), TokenEvent(T, "A", "ra", 1, text="x"), TokenEvent(F, "A", "ra", 2)]
        b = [TokenEvent(S, "B", "rb", 0), TokenEvent(T, "B", "rb", 1, text=b_text)]
        b.append(TokenEvent(E, "B", "rb", 2, error=transient()))
        items = [a[0], b[0], a[1], a[2], b[1], b[2]]
        messages = [ReactiveTest.on_next(10 * (i + 1), e) for i, e in enumerate(items)]
        return [*messages, ReactiveTest.on_error(70, b[2].error)]

    results, _ = play(lambda s: retry(2, backoff=0, after_tokens="restart", scheduler=s), merged("y"), merged("z"))
    error = error_of(results)
    assert isinstance(error, RetryExhausted) and error.partial_text == "xz"  # A's text was never discarded
