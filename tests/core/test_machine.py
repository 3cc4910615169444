"""RunMachine: one run's rules, driven here without a clock, a loop or a scheduler."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxagents._core.grammar import RunGrammar
from rxagents._core.machine import Command, Complete, Fail, Open, Pull, RunMachine, Step, Wait
from rxagents._core.partial import PartialText
from rxagents._core.policy import RetryPolicy, is_transient
from rxagents._core.silence import Silence
from rxagents.errors import ModelError, StallTimeout, StreamCutError
from rxagents.events import EventKind, TokenEvent, Usage
from rxagents.models import Delta
from tests.strategies import model_requests

S, T, U, F, E, R = (EventKind.START, EventKind.TOKEN, EventKind.USAGE, EventKind.FINISH, EventKind.ERROR,
                    EventKind.RETRY)  # fmt: skip


def token(text: str) -> Delta:
    return Delta(EventKind.TOKEN, text=text)


FINISH = Delta(EventKind.FINISH, finish_reason="stop")
USAGE = Delta(EventKind.USAGE, usage=Usage(3, 2, 5))
#: A request that answers "ok": what every request does once a script runs out.
CLEAN: tuple[list[Delta], str] = ([token("ok"), FINISH], "end")


def machine(**kw: Any) -> RunMachine:
    return RunMachine(**({"agent": "A", "model": "m", "run_id": "run-1"} | kw))


def fault(ending: str) -> BaseException:
    return {
        "503": lambda: ModelError("busy", status_code=503),
        "cut": lambda: StreamCutError("cut"),
        "400": lambda: ModelError("bad request", status_code=400),
    }[ending]()


def drive(run: RunMachine, requests: Sequence[tuple[Sequence[Delta], str]]) -> tuple[list[TokenEvent], list[Command]]:
    """Do what a driver does: request ``i`` plays ``requests[i]`` (then :data:`CLEAN`), one second per input."""
    scripts = iter(requests)
    now = 0.0
    events: list[TokenEvent] = []
    commands: list[Command] = []
    deltas: Iterator[Delta] = iter(())
    ending = "end"
    step = run.begin(now)
    while True:
        events += step.events
        command = step.command
        commands.append(command)
        now += 1
        if isinstance(command, Complete | Fail):
            return events, commands
        if isinstance(command, Wait):
            step = run.resume(now)
            continue
        if isinstance(command, Open):
            script, ending = next(scripts, CLEAN)
            deltas = iter(script)
        delta = next(deltas, None)
        if delta is not None:
            step = run.delta(delta, now)
        elif ending == "end" or (ending == "silent" and command.silence is None):
            step = run.end(now)
        elif ending == "silent":
            step = run.silent(now)
        else:
            step = run.failed(fault(ending), now)


def kinds(events: Sequence[TokenEvent]) -> list[EventKind]:
    return [e.kind for e in events]


# --- a run without failures ---------------------------------------------------------------------------------


def test_a_clean_run_is_start_deltas_usage_finish() -> None:
    events, commands = drive(machine(), [([token("Hel"), token("lo"), USAGE, FINISH], "end")])
    assert kinds(events) == [S, T, T, U, F]
    assert [e.seq for e in events] == [0, 1, 2, 3, 4] and [e.time for e in events] == [0, 1, 2, 5, 5]
    assert events[3].usage == Usage(3, 2, 5) and events[4].finish_reason == "stop"
    assert isinstance(commands[0], Open) and commands[0] == Open(1, (), None)
    assert isinstance(commands[-1], Complete)


def test_each_loop_is_a_request_on_the_answers_before_it_and_usage_is_summed() -> None:
    run = machine(max_loops=3)
    events, commands = drive(run, [([token("a"), USAGE, FINISH], "end")] * 3)
    assert [(c.loop, c.answers) for c in commands if isinstance(c, Open)] == [(1, ()), (2, ("a",)), (3, ("a", "a"))]
    assert kinds(events) == [S, T, T, T, U, F] and [e.loop for e in events] == [1, 1, 2, 3, 3, 3]
    assert events[-2].usage == Usage(9, 6, 15)


def test_silence_limits_first_token_then_stall() -> None:
    run = machine(first_token_timeout=60, stall_timeout=30)
    _, commands = drive(run, [([token("a"), FINISH], "end")])
    assert commands[:3] == [
        Open(1, (), Silence(60, "first_token")),
        Pull(Silence(30, "stall")),
        Pull(Silence(30, "stall")),
    ]


# --- failures -------------------------------------------------------------------------------------------------


def test_a_failure_before_output_is_retried_invisibly_and_its_usage_forgotten() -> None:
    run = machine(retry=RetryPolicy(retries=2, backoff=0.5))
    events, commands = drive(run, [([USAGE], "503"), ([token("a"), USAGE, FINISH], "end")])
    assert kinds(events) == [S, T, U, F] and events[2].usage == Usage(3, 2, 5)
    wait = commands[2]
    assert isinstance(wait, Wait) and (wait.seconds, wait.retry, wait.restart) == (0.5, 1, False)
    assert isinstance(commands[3], Open) and commands[3].loop == 1


def test_the_wait_is_at_least_retry_after_and_at_most_max_wait() -> None:
    slow = ModelError("slow down", status_code=429, retry_after=7)
    step = _failed_at_once(RetryPolicy(backoff=1), slow)
    assert isinstance(step.command, Wait) and step.command.seconds == 7
    too_slow = ModelError("slow down", status_code=429, retry_after=3600)
    step = _failed_at_once(RetryPolicy(backoff=1, max_wait=60), too_slow)
    assert isinstance(step.command, Fail) and step.command.error is too_slow


def _failed_at_once(policy: RetryPolicy, error: BaseException) -> Step:
    run = machine(retry=policy)
    run.begin(0)
    return run.failed(error, 1)


def test_a_failure_after_output_fails_the_run_with_its_partial_text() -> None:
    run = machine(retry=RetryPolicy(retries=2, backoff=0))
    events, commands = drive(run, [([], "503"), ([token("Hel")], "cut")])
    assert kinds(events) == [S, T, E]
    error = commands[-1].error if isinstance(commands[-1], Fail) else None
    assert isinstance(error, StreamCutError) and error.partial_text == "Hel" and error.retries == 1
    assert events[-1].error is error and error.events == tuple(events)
    assert "gave up after 1 retry" in "".join(error.__notes__)


def test_restart_announces_a_retry_event_and_starts_again_from_the_first_loop() -> None:
    run = machine(max_loops=2, retry=RetryPolicy(retries=1, backoff=0, after_tokens="restart"))
    events, commands = drive(run, [([token("a"), FINISH], "end"), ([token("b")], "cut")])
    assert kinds(events) == [S, T, T, R, T, T, F]
    assert events[3].text == "StreamCutError: cut" and events[3].loop == 2
    assert [(c.loop, c.answers) for c in commands if isinstance(c, Open)] == [
        (1, ()),
        (2, ("a",)),
        (1, ()),
        (2, ("ok",)),
    ]
    assert PartialText(events).text == "okok"


def test_silence_fails_the_request_with_stall_timeout_named_by_its_phase() -> None:
    run = machine(first_token_timeout=5, retry=RetryPolicy(retries=2))
    events, commands = drive(run, [([], "silent")])
    error = commands[-1].error if isinstance(commands[-1], Fail) else None
    assert isinstance(error, StallTimeout) and (error.phase, error.seconds) == ("first_token", 5)
    assert "first_token_timeout=5" in str(error) and kinds(events) == [S, E]  # not retried by default
    run = machine(first_token_timeout=5, retry=RetryPolicy(retries=2, retry_on=is_transient))
    events, _ = drive(run, [([], "silent")])
    assert kinds(events) == [S, T, F]


def test_a_request_ending_without_finish_is_a_failed_request() -> None:
    run = machine(retry=RetryPolicy(retries=1, backoff=0))
    events, commands = drive(run, [([], "end")])
    assert kinds(events) == [S, T, F] and isinstance(commands[1], Wait)
    assert "without a finish_reason" in str(commands[1].error)


def test_a_delta_of_a_kind_no_backend_yields_fails_the_request() -> None:
    events, _commands = drive(machine(), [([Delta(EventKind.ERROR)], "end")])
    assert kinds(events) == [S, E] and "yielded a 'error' delta" in str(events[-1].error)


def test_an_error_that_is_no_rxagents_error_is_wrapped_with_its_cause() -> None:
    run = machine()
    run.begin(0)
    cause = KeyError("k")
    step = run.failed(cause, 1)
    assert isinstance(step.command, Fail) and step.command.error.__cause__ is cause
    assert str(step.command.error) == "KeyError: 'k'"


def test_abort_fails_at_once_without_a_retry() -> None:
    run = machine(retry=RetryPolicy(retries=3))
    run.begin(0)
    step = run.abort(ModelError("no backend"), 1)
    assert kinds(step.events) == [E] and isinstance(step.command, Fail) and run.ended


def test_inputs_out_of_turn_are_refused() -> None:
    run = machine(retry=RetryPolicy(retries=1, backoff=0))
    with pytest.raises(RuntimeError, match="delta\\(\\) in state new"):
        run.delta(FINISH, 0)
    run.begin(0)
    with pytest.raises(RuntimeError, match="resume\\(\\) in state streaming"):
        run.resume(1)
    with pytest.raises(RuntimeError, match="no silence limit"):
        run.silent(1)
    run.failed(StreamCutError("cut"), 1)
    with pytest.raises(RuntimeError, match="delta\\(\\) in state waiting"):
        run.delta(FINISH, 2)


def test_event_times_never_go_backwards() -> None:
    run = machine()
    run.begin(5)
    step = run.delta(token("a"), 3)
    assert step.events[0].time == 5


# --- laws -----------------------------------------------------------------------------------------------------

policies = st.builds(
    RetryPolicy,
    retries=st.integers(0, 3),
    backoff=st.sampled_from([0.0, 0.25, 1.0]),
    after_tokens=st.sampled_from(["fail", "restart"]),
    retry_on=st.sampled_from([is_transient, RetryPolicy().retry_on]),
)
limits = st.sampled_from([None, 1.0])


@given(
    requests=st.lists(model_requests(), max_size=6),
    policy=policies,
    max_loops=st.integers(1, 3),
    first=limits,
    stall=limits,
)
def test_any_run_is_one_well_formed_run_that_loses_and_repeats_nothing(
    requests: list[tuple[list[Delta], str]], policy: RetryPolicy, max_loops: int, first: float | None,
    stall: float | None,
) -> None:  # fmt: skip
    run = machine(retry=policy, max_loops=max_loops, first_token_timeout=first, stall_timeout=stall)
    events, commands = drive(run, requests)
    grammar = RunGrammar(cut=False)
    assert [grammar.check(e) for e in events] == [None] * len(events)
    assert grammar.open_runs() == []
    assert [e.seq for e in events] == list(range(len(events))) and kinds(events).count(S) == 1
    waits = [c for c in commands if isinstance(c, Wait)]
    assert len(waits) <= policy.retries
    assert kinds(events).count(R) == sum(w.restart for w in waits)
    if policy.after_tokens == "fail":
        assert R not in kinds(events)
    end = commands[-1]
    text = PartialText(events).text
    if isinstance(end, Complete):
        assert events[-1].kind is F and len(run.answers) == max_loops
        assert text == "".join(run.answers)  # every token of the answer delivered once, none lost
    else:
        assert isinstance(end, Fail) and events[-1].kind is E and events[-1].error is end.error
        assert end.error.partial_text == text and end.error.events == tuple(events)
