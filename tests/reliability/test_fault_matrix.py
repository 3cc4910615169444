"""The fault matrix: every fault the local server injects × every way to consume a run.

Rows are faults (real HTTP to :class:`LocalModelServer`), columns are the consumers: ``Agent.run``,
``Agent.astream``, ``Agent.stream()`` (the Observable) and a ``ConcurrentWorkflow`` lane, and the whole matrix runs
once per backend: the direct OpenAI-compatible backend and litellm (``model_name="litellm/..."``). Each cell checks
the same things: the event grammar, ``seq`` contiguous from 0 (nothing lost or duplicated), the text
delivered is never repeated, the typed error (in-band ``error`` event and raised exception, with the provider's
exception as ``__cause__``) with ``partial_text`` equal to what was delivered, and the retry policy honoured: the
server counts exactly the requests the policy allows, waits respect ``Retry-After``, and no connection is left
open. docs/reliability.md has the table.
"""

from __future__ import annotations

import asyncio
import email.utils
import itertools
import json
import socket
import threading
import time
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import pytest
from reactivex.testing import TestScheduler

from rxagents import _runtime
from rxagents._run import RetryPolicy, retryable
from rxagents.agent import Agent
from rxagents.errors import (
    ConfigurationError,
    EmptyStreamError,
    MalformedStreamError,
    ModelError,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimitError,
    RunError,
    RxAgentsError,
    StallTimeout,
    StreamCutError,
)
from rxagents.events import EventKind, TokenEvent
from rxagents.models import OfflineModel
from rxagents.operators import is_transient
from rxagents.testing._faults import (
    DropAfter,
    EmptyStream,
    HttpError,
    MalformedAfter,
    NoDone,
    Reply,
    SlowFirstByte,
    StallAfter,
    words,
)
from rxagents.testing._server import LocalModelServer
from rxagents.workflows import ConcurrentWorkflow, WorkflowError
from tests.leak_search import secret_paths

_T = TypeVar("_T")
_names = itertools.count()

TEXT = words("alpha beta gamma delta epsilon zeta eta theta")
FULL = "".join(TEXT)
THREE = "".join(TEXT[:3])
KEY = "sk-fault-matrix-0000"
GOOD = Reply(tokens=TEXT)
#: Generous limits for cells that do not test timeouts (a loaded CI machine must never trip them).
CALM = {"first_token_timeout": 30.0, "stall_timeout": 30.0}
FAST_RETRIES = RetryPolicy(retries=2, backoff=0.01)
#: FAST_RETRIES that also retry a first-token timeout (by default a first-token timeout fails at once).
FAST_RETRIES_ALL = RetryPolicy(retries=2, backoff=0.01, retry_on=is_transient)


@dataclass(frozen=True)
class Cell:
    """One row of the matrix: what the server does, and what every consumer must see."""

    replies: tuple[Reply, ...]
    error: type[ModelError] | None  # None: the run succeeds
    text: str  # the answer on success, the partial text on failure
    requests: int  # requests the server receives: 1 + retries
    agent: Mapping[str, Any] = field(default_factory=dict)
    wraps_provider: bool = True  # the error's __cause__ is the provider's (litellm's, or the HTTP client's) exception
    min_gap: float = 0.0  # seconds between consecutive requests (Retry-After)
    restarts: int = 0  # retry events (after_tokens="restart")
    status: int | None = None
    retry_after: float | None = None
    phase: str | None = None  # StallTimeout.phase


# fmt: off
CELLS: dict[str, Cell] = {
    "drop-before-first-byte": Cell((Reply(tokens=TEXT, fault=DropAfter(0)), GOOD), None, FULL, 2),
    "drop-before-first-byte-every-time": Cell(
        (Reply(tokens=TEXT, fault=DropAfter(0)),) * 3, StreamCutError, "", 3
    ),
    "drop-mid-stream": Cell((Reply(tokens=TEXT, fault=DropAfter(3)), GOOD), StreamCutError, THREE, 1),
    "drop-mid-stream-restart-opt-in": Cell(
        (Reply(tokens=TEXT, fault=DropAfter(3)), GOOD), None, FULL, 2,
        agent={"retries": RetryPolicy(retries=2, backoff=0.01, after_tokens="restart")}, restarts=1,
    ),
    "429-retry-after": Cell((Reply(fault=HttpError(429, retry_after=0.2)), GOOD), None, FULL, 2, min_gap=0.2),
    "429-every-time": Cell(
        (Reply(fault=HttpError(429, retry_after=0.2)),) * 3, RateLimitError, "", 3, min_gap=0.2, status=429,
        retry_after=0.2,
    ),
    "429-retry-after-beyond-max-wait": Cell(
        (Reply(fault=HttpError(429, retry_after=120)), GOOD), RateLimitError, "", 1, status=429, retry_after=120.0,
    ),
    "500": Cell((Reply(fault=HttpError(500)), GOOD), None, FULL, 2),
    "503-every-time": Cell((Reply(fault=HttpError(503)),) * 3, ProviderUnavailable, "", 3, status=503),
    "400-not-retried": Cell((Reply(fault=HttpError(400)), GOOD), ModelError, "", 1, status=400),
    "malformed-first-chunk": Cell((Reply(tokens=TEXT, fault=MalformedAfter(0)), GOOD), None, FULL, 2),
    "malformed-mid-stream": Cell((Reply(tokens=TEXT, fault=MalformedAfter(3)), GOOD), MalformedStreamError, THREE, 1),
    "invalid-utf8-first-chunk": Cell(
        (Reply(tokens=TEXT, fault=MalformedAfter(0, invalid_utf8=True)), GOOD), None, FULL, 2
    ),
    "invalid-utf8-mid-stream": Cell(
        (Reply(tokens=TEXT, fault=MalformedAfter(3, invalid_utf8=True)), GOOD), MalformedStreamError, THREE, 1
    ),
    "key-echoed-in-error-body": Cell(
        (Reply(fault=HttpError(401, f"Incorrect API key provided: {KEY}. Find your key at ...")), GOOD),
        ModelError, "", 1, status=401,
    ),
    "stall-before-first-token": Cell(
        (Reply(tokens=TEXT, fault=StallAfter(0)), GOOD), StallTimeout, "", 1,
        agent={"first_token_timeout": 1.0, "stall_timeout": 30.0}, wraps_provider=False, phase="first_token",
    ),
    "stall-before-first-token-retry-opt-in": Cell(
        (Reply(tokens=TEXT, fault=StallAfter(0)), GOOD), None, FULL, 2,
        agent={"first_token_timeout": 1.0, "stall_timeout": 30.0, "retries": FAST_RETRIES_ALL},
    ),
    "stall-mid-stream": Cell(
        (Reply(tokens=TEXT, fault=StallAfter(3)), GOOD), StallTimeout, THREE, 1,
        agent={"first_token_timeout": 30.0, "stall_timeout": 1.0}, wraps_provider=False, phase="stall",
    ),
    "slow-headers": Cell((Reply(tokens=TEXT, fault=SlowFirstByte(0.3)), GOOD), None, FULL, 1),
    "slow-headers-past-first-token-timeout": Cell(
        (Reply(tokens=TEXT, fault=SlowFirstByte(30.0)), GOOD), StallTimeout, "", 1,
        agent={"first_token_timeout": 1.0, "stall_timeout": 30.0}, wraps_provider=False, phase="first_token",
    ),
    "slow-headers-past-first-token-timeout-retry-opt-in": Cell(
        (Reply(tokens=TEXT, fault=SlowFirstByte(30.0)), GOOD), None, FULL, 2,
        agent={"first_token_timeout": 1.0, "stall_timeout": 30.0, "retries": FAST_RETRIES_ALL},
    ),
    "no-done": Cell((Reply(tokens=TEXT, fault=NoDone()), GOOD), None, FULL, 1),
    "empty-stream": Cell((Reply(fault=EmptyStream()), GOOD), None, FULL, 2),
    "empty-stream-every-time": Cell((Reply(fault=EmptyStream()),) * 3, EmptyStreamError, "", 3, wraps_provider=False),
    "empty-answer-with-finish-and-usage": Cell((Reply(fault=EmptyStream(finish=True)), GOOD), None, "", 1),
}
# fmt: on


@dataclass
class Outcome:
    """What one consumer saw of the faulty agent's run."""

    kinds: list[str]
    seqs: list[int]
    texts: list[tuple[str, str]]  # (kind, text) of token and retry events, in order
    error: BaseException | None  # the typed error the consumer got (for run(): RunError.__cause__)
    in_band: BaseException | None = None  # the error event's exception, where the consumer gets objects
    answer: str | None = None  # what the consumer was handed as the answer
    run_error: RunError | None = None


def _outcome(events: list[TokenEvent], error: BaseException | None, answer: str | None = None) -> Outcome:
    in_band = events[-1].error if events and events[-1].kind is EventKind.ERROR else None
    return Outcome(
        kinds=[e.kind.value for e in events],
        seqs=[e.seq for e in events],
        texts=[(e.kind.value, e.text) for e in events if e.kind in (EventKind.TOKEN, EventKind.RETRY)],
        error=error,
        in_band=in_band,
        answer=answer,
    )


def delivered(outcome: Outcome) -> str:
    """The text a consumer holds: token text, discarded at each ``retry`` event."""
    parts: list[str] = []
    for kind, text in outcome.texts:
        if kind == "retry":
            parts.clear()
        else:
            parts.append(text)
    return "".join(parts)


def _on_runtime(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run ``coro`` on the rxagents runtime loop (litellm caches its HTTP clients per loop)."""
    return asyncio.run_coroutine_threadsafe(coro, _runtime.runtime_loop()).result(timeout=60)


# --- the four consumers ------------------------------------------------------------------------------------------


def via_run(agent: Agent, server: LocalModelServer) -> Outcome:
    dicts: list[dict[str, Any]] = []
    answer: str | None = None
    run_error: RunError | None = None
    try:
        answer = agent.run("task", streaming_callback=dicts.append)
    except RunError as exc:
        run_error = exc
    outcome = Outcome(
        kinds=[d["type"] for d in dicts],
        seqs=[d["seq"] for d in dicts],
        texts=[(d["type"], d["content"] if d["type"] == "token" else d["reason"]) for d in dicts
               if d["type"] in ("token", "retry")],
        error=None if run_error is None else run_error.__cause__,
        answer=answer,
        run_error=run_error,
    )
    if run_error is not None:
        assert run_error.partial_text == delivered(outcome)
        assert [e.seq for e in run_error.events] == outcome.seqs
    return outcome


def via_astream(agent: Agent, server: LocalModelServer) -> Outcome:
    async def consume() -> Outcome:
        events: list[TokenEvent] = []
        try:
            async for event in agent.astream("task"):
                events.append(event)
        except RxAgentsError as exc:
            return _outcome(events, exc)
        return _outcome(events, None, delivered(_outcome(events, None)))

    return _on_runtime(consume())


def via_stream(agent: Agent, server: LocalModelServer) -> Outcome:
    events: list[TokenEvent] = []
    errors: list[Exception] = []
    ended = threading.Event()

    def on_error(error: Exception) -> None:
        errors.append(error)
        ended.set()

    subscription = agent.stream("task").subscribe(events.append, on_error, ended.set)
    assert ended.wait(60), "the run neither completed nor failed"
    subscription.dispose()
    error = errors[0] if errors else None
    return _outcome(events, error, None if error else delivered(_outcome(events, None)))


def via_workflow(agent: Agent, server: LocalModelServer) -> Outcome:
    healthy = _agent(server, (GOOD,))
    workflow = ConcurrentWorkflow(name="matrix", agents=[agent, healthy])
    try:
        result = workflow.run("task")
        error = None
    except WorkflowError as exc:
        result = exc.result
        error = exc.errors.get(agent.agent_name)
        assert set(exc.errors) == {agent.agent_name}
    assert result[healthy.agent_name] == FULL  # the other lane is untouched by the fault
    events = [e for e in result.events if e.agent == agent.agent_name]
    output = result.outputs[agent.agent_name]
    if error is not None:
        assert output.status == "error" and output.partial_text == delivered(_outcome(events, None))
    return _outcome(events, error, None if error else output.text)


CONSUMERS: dict[str, Callable[[Agent, LocalModelServer], Outcome]] = {
    "run": via_run,
    "astream": via_astream,
    "stream": via_stream,
    "workflow": via_workflow,
}


#: The backends every row runs on, and the model-name prefix that chooses each.
BACKENDS = {"direct": "", "litellm": "litellm/"}


def _agent(server: LocalModelServer, replies: tuple[Reply, ...], backend: str = "direct", **options: Any) -> Agent:
    """An agent whose requests get ``replies`` in turn; the server sees its ``agent_name`` as the model."""
    name = f"matrix-{next(_names)}"
    for reply in replies:
        server.enqueue(reply, model=name)
    settings: dict[str, Any] = {"retries": FAST_RETRIES, **CALM, **options}
    agent = Agent(agent_name=name, model_name=BACKENDS[backend] + name, api_base=server.url, api_key=KEY,
                  print_on=False, stream=True, **settings)  # fmt: skip
    assert agent.llm.name == backend
    return agent


def _from_provider(backend: str, cause: BaseException) -> bool:
    """Whether ``cause`` is the provider side's own exception: litellm's, or the HTTP client's (aiohttp) and the
    decoders' (invalid JSON or UTF-8) for the direct backend."""
    if backend == "litellm":
        return type(cause).__module__.startswith("litellm")
    return isinstance(cause, aiohttp.ClientError | json.JSONDecodeError | UnicodeDecodeError)


def _params() -> list[Any]:
    params = []
    for backend in BACKENDS:
        for row in CELLS:
            for column in CONSUMERS:
                params.append(pytest.param(backend, row, column, id=f"{backend}-{row}-{column}"))
    return params


@pytest.mark.parametrize(("backend", "row", "column"), _params())
def test_fault_matrix(backend: str, row: str, column: str, model_server: LocalModelServer) -> None:
    cell = CELLS[row]
    agent = _agent(model_server, cell.replies, backend, **cell.agent)
    got = CONSUMERS[column](agent, model_server)

    # grammar, and nothing lost or duplicated: one start, seq 0..n-1, exactly one terminal event, last
    assert got.kinds[0] == "start" and got.kinds.count("start") == 1
    assert got.seqs == list(range(len(got.seqs)))
    assert sum(kind in ("finish", "error") for kind in got.kinds) == 1
    assert got.kinds.count("retry") == cell.restarts
    text = delivered(got)
    assert FULL.startswith(text)  # in order, never repeated
    if cell.error is None:
        assert got.kinds[-1] == "finish" and got.error is None
        assert text == cell.text and got.answer == cell.text
    else:
        assert got.kinds[-1] == "error"
        assert isinstance(got.error, cell.error), f"{type(got.error).__name__}: {got.error}"
        assert type(got.error) is cell.error  # the most specific class, not a parent
        assert got.in_band is None or got.in_band is got.error
        assert got.error.partial_text == text == cell.text
        assert got.error.status_code == cell.status
        assert got.error.retry_after == cell.retry_after
        assert getattr(got.error, "phase", None) == cell.phase
        assert got.error.retries == cell.requests - 1
        if cell.wraps_provider:
            assert got.error.__cause__ is not None
            assert _from_provider(backend, got.error.__cause__), repr(got.error.__cause__)
        assert KEY not in str(got.error)
        # nor anywhere in the exception chain: args, messages, bodies, responses' text, requests' headers
        assert secret_paths(got.error, KEY) == []
        if got.run_error is not None:
            assert secret_paths(got.run_error, KEY) == []

    # the retry policy, as the server saw it
    records = [r for r in model_server.request_records if r.body["model"] == agent.agent_name]
    assert len(records) == cell.requests
    for before, after in itertools.pairwise(records):
        assert after.received_at - before.received_at >= cell.min_gap - 0.005
    # ... and every connection of the run ended (timeouts and drops close theirs)
    model = records[0].body["model"]
    assert model_server.wait_until(
        lambda: len([s for s in model_server.closed_streams if s.model == model]) == cell.requests, 10
    )


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("column", list(CONSUMERS))
def test_connection_refused_is_unreachable_in_every_consumer(
    backend: str, column: str, model_server: LocalModelServer
) -> None:
    """No server on the port: no HTTP status, no hidden retry - the policy's own retries, then the typed error."""
    with socket.socket() as refusing:  # bound, not listening: the kernel refuses connections
        refusing.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{refusing.getsockname()[1]}/v1"
        agent = Agent(agent_name=f"matrix-{next(_names)}", model_name=BACKENDS[backend] + "unreachable",
                      api_base=url, api_key=KEY, print_on=False, stream=True, retries=FAST_RETRIES, **CALM)  # fmt: skip
        got = CONSUMERS[column](agent, model_server)
    assert got.kinds[0] == "start" and got.kinds[-1] == "error" and got.kinds.count("error") == 1
    assert got.seqs == list(range(len(got.seqs))) and delivered(got) == ""
    assert type(got.error) is ProviderUnreachable, f"{type(got.error).__name__}: {got.error}"
    assert got.error.status_code is None and got.error.reason == "refused" and got.error.retries == 2
    assert url in str(got.error) and secret_paths(got.error, KEY) == []
    assert not any(r.body["model"] == "unreachable" for r in model_server.request_records)


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_stalled_stream_is_closed_on_the_server(backend: str, model_server: LocalModelServer) -> None:
    agent = _agent(model_server, (Reply(tokens=TEXT, fault=StallAfter(3)),), backend, stall_timeout=0.5)
    with pytest.raises(RunError) as info:
        agent.run("task")
    stall = info.value.__cause__
    assert isinstance(stall, StallTimeout) and stall.phase == "stall" and stall.seconds == 0.5
    model = agent.agent_name
    assert model_server.wait_until(
        lambda: any(s.model == model and s.outcome == "client_disconnected" for s in model_server.closed_streams), 5
    )


@pytest.mark.parametrize("backend", list(BACKENDS))
def test_retry_after_as_an_http_date_is_honoured(backend: str, model_server: LocalModelServer) -> None:
    """``Retry-After: <HTTP-date>``, read against the response's ``Date``: the retry waits until then (HTTP-dates
    have whole seconds, so the wait asked for here, 2 s, is between 1 and 3 s)."""
    later = email.utils.formatdate(time.time() + 2, usegmt=True)
    agent = _agent(model_server, (Reply(fault=HttpError(429, retry_after=later)), GOOD), backend)
    assert agent.run("task") == FULL
    first, second = [r for r in model_server.request_records if r.body["model"] == agent.agent_name]
    assert second.received_at - first.received_at >= 0.9  # not the policy's 0.01 s backoff
    failing = _agent(model_server, (Reply(fault=HttpError(429, retry_after=later)),), backend, retries=0)
    with pytest.raises(RunError) as info:
        failing.run("task")
    error = info.value.__cause__
    assert isinstance(error, RateLimitError) and error.retry_after is not None and 0 <= error.retry_after <= 3


# --- the same policy in virtual time (the offline model) -----------------------------------------------------------


def _virtual(agent: Agent) -> tuple[list[TokenEvent], Any]:
    scheduler = TestScheduler()
    results = scheduler.start(lambda: agent.stream("task", scheduler=scheduler))
    messages: list[Any] = list(results.messages)
    events = [m.value.value for m in messages if m.value.kind == "N"]
    return events, messages[-1]


def test_virtual_time_retry_waits_retry_after_on_the_scheduler() -> None:
    model = OfflineModel(pace=1.0, text="a b", fail_after=0, fail_times=1, error_status=429, retry_after=5.0)
    events, end = _virtual(Agent(agent_name="V", llm=model, print_on=False, retries=RetryPolicy(backoff=0.5)))
    assert end.value.kind == "C"
    assert [e.kind for e in events][:2] == [EventKind.START, EventKind.TOKEN]
    assert events[1].time == 200.0 + 1.0 + 5.0 + 1.0  # failed at 201, waited Retry-After 5 s, token 1 s later
    assert [e.seq for e in events] == list(range(len(events)))
    assert model.requests == 2


def test_disposing_during_a_retry_wait_sends_no_more_requests() -> None:
    scheduler = TestScheduler()
    model = OfflineModel(pace=1.0, text="a b", fail_after=0, error_status=503, retry_after=5.0)
    agent = Agent(agent_name="V", llm=model, print_on=False)
    got: list[TokenEvent] = []
    subscription = agent.stream("task", scheduler=scheduler).subscribe(got.append)
    scheduler.advance_to(3.0)  # the first request failed at 1.0; the retry is due at 6.0
    subscription.dispose()
    scheduler.advance_to(100.0)
    assert model.requests == 1
    assert [e.kind for e in got] == [EventKind.START]


def test_virtual_time_stall_times_out_with_partial_text() -> None:
    agent = Agent(agent_name="V", llm=OfflineModel(pace=1.0, text="a b c d", stall_after=2), print_on=False,
                  stall_timeout=10.0)  # fmt: skip
    events, end = _virtual(agent)
    assert end.value.kind == "E" and end.time == 200 + 2 + 10
    error = end.value.exception
    assert isinstance(error, StallTimeout) and error.phase == "stall" and error.partial_text == "a b"
    assert events[-1].kind is EventKind.ERROR and events[-1].error is error


def test_virtual_time_first_token_timeout_is_retried_then_fails() -> None:
    model = OfflineModel(pace=1.0, first_token_delay=50.0, text="a b")
    agent = Agent(agent_name="V", llm=model, print_on=False, first_token_timeout=10.0,
                  retries=RetryPolicy(retries=1, backoff=2.0, retry_on=is_transient))  # fmt: skip
    events, end = _virtual(agent)
    assert end.time == 200 + 10 + 2 + 10
    error = end.value.exception
    assert isinstance(error, StallTimeout) and error.phase == "first_token" and error.retries == 1
    assert [e.kind for e in events] == [EventKind.START, EventKind.ERROR]
    assert model.requests == 2


def test_virtual_time_restart_announces_a_retry_event() -> None:
    model = OfflineModel(pace=1.0, text="a b c", fail_after=2, fail_times=1)
    policy = RetryPolicy(retries=1, backoff=1.0, after_tokens="restart")
    events, end = _virtual(Agent(agent_name="V", llm=model, print_on=False, retries=policy))
    assert end.value.kind == "C"
    kinds = [e.kind for e in events]
    assert kinds[:4] == [EventKind.START, EventKind.TOKEN, EventKind.TOKEN, EventKind.RETRY]
    assert "".join(e.text for e in events[4:] if e.kind is EventKind.TOKEN) == "a b c"
    assert [e.seq for e in events] == list(range(len(events)))


def test_run_returns_only_the_restarted_answer() -> None:
    model = OfflineModel(text="a b c", fail_after=2, fail_times=1)
    policy = RetryPolicy(retries=1, backoff=0.0, after_tokens="restart")
    seen: list[str] = []
    assert Agent(llm=model, print_on=False, retries=policy).run("task", streaming_callback=seen.append) == "a b c"
    assert "".join(seen) == "a b" + "a b c"  # the callback saw the discarded attempt; the answer does not


def test_errors_after_output_are_never_retried_silently() -> None:
    model = OfflineModel(text="a b c", fail_after=2, fail_times=1, error_status=503)
    with pytest.raises(RunError) as info:
        Agent(llm=model, print_on=False, retries=5).run("task")
    assert info.value.partial_text == "a b"
    assert model.requests == 1


# --- configuration ----------------------------------------------------------------------------------------------------
_SECONDS = "a number of seconds > 0 and <= 86400, or None for no limit"


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"retries": -1}, "retries must be an int >= 0"),
        ({"retries": 1.5}, "retries must be an int >= 0"),
        ({"first_token_timeout": 0}, f"first_token_timeout must be {_SECONDS}, got 0$"),
        ({"stall_timeout": -3}, f"stall_timeout must be {_SECONDS}, got -3$"),
        ({"stall_timeout": float("nan")}, f"stall_timeout must be {_SECONDS}, got nan$"),
        ({"stall_timeout": 90_000}, f"stall_timeout must be {_SECONDS}, got 90000$"),
    ],
)
def test_bad_reliability_options_are_rejected(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        Agent(llm=OfflineModel(), **options)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"retries": True}, "retries must be an int"),
        ({"backoff": -1}, "backoff must be a finite number of seconds >= 0, got -1; or pass a function"),
        ({"max_wait": float("inf")}, "max_wait must be a finite number of seconds >= 0, or None"),
        ({"after_tokens": "replay"}, "after_tokens must be 'fail' or 'restart'"),
    ],
)
def test_bad_retry_policy_is_rejected(options: dict[str, Any], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        RetryPolicy(**options)


def test_defaults_never_hang_and_retry_transient_errors_twice() -> None:
    agent = Agent(llm=OfflineModel())
    assert agent.retry_policy == RetryPolicy() and agent.retry_policy.retries == 2
    assert agent.retry_policy.retry_on is retryable
    assert agent.first_token_timeout == 60.0 and agent.stall_timeout == 30.0
