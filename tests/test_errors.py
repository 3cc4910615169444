"""The exception hierarchy: one timeout base for a run's own limits and the timeout operators."""

from __future__ import annotations

import pytest
from reactivex.testing import ReactiveTest, TestScheduler

from rxagents import Agent, ModelError, OfflineModel, SilenceTimeout, StallTimeout
from rxagents.errors import RxAgentsError
from rxagents.events import EventKind, TokenEvent
from rxagents.operators import StreamTimeout, first_token_timeout


@pytest.mark.parametrize("kind", [StallTimeout, StreamTimeout])
def test_both_timeouts_are_silence_timeouts_and_model_errors(kind: type[SilenceTimeout]) -> None:
    error = kind("silent", seconds=2.5, phase="first_token", partial_text="ab")
    assert isinstance(error, SilenceTimeout) and isinstance(error, ModelError) and isinstance(error, RxAgentsError)
    assert (error.seconds, error.phase, error.partial_text, error.status_code) == (2.5, "first_token", "ab", None)


def test_the_timeout_operator_and_the_run_limit_are_caught_by_one_handler() -> None:
    caught: list[Exception] = []
    scheduler = TestScheduler()
    source = scheduler.create_cold_observable(ReactiveTest.on_next(1, TokenEvent(EventKind.START, "A", "r", 0)))
    source.pipe(first_token_timeout(5, scheduler=scheduler)).subscribe(on_error=caught.append)
    agent = Agent(llm=OfflineModel(stall_after=0), first_token_timeout=3, retries=0, print_on=False)
    agent.stream("x", scheduler=scheduler).subscribe(on_error=caught.append)
    scheduler.start()
    assert all(isinstance(e, SilenceTimeout) for e in caught)
    assert [(type(e), getattr(e, "phase", None), getattr(e, "seconds", None)) for e in caught] == [
        (StallTimeout, "first_token", 3),
        (StreamTimeout, "first_token", 5),
    ]
