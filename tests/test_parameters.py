"""Every constructor parameter of Agent and the workflows is checked at construction.

A bad value is a ``ConfigurationError`` naming the parameter, the value and the fix, raised by the constructor —
never a raw ``TypeError``/``AttributeError`` from deep inside, and never a value accepted that fails (or
misbehaves) later.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxagents import Agent, ConcurrentWorkflow, SequentialWorkflow
from rxagents._run import RetryPolicy
from rxagents._validate import MAX_LOOPS, MAX_TEMPERATURE, MAX_TIMEOUT, MAX_TOKENS
from rxagents.errors import ConfigurationError
from rxagents.models import ModelBackend, OfflineModel
from tests.strategies import junk_values


def _optional(check: Callable[[Any], bool]) -> Callable[[Any], bool]:
    return lambda value: value is None or check(value)


def _int_in(low: int, high: int | None = None) -> Callable[[Any], bool]:
    return lambda v: type(v) is int and low <= v and (high is None or v <= high)


def _seconds(v: Any) -> bool:
    return type(v) is float and 0 < v <= MAX_TIMEOUT


def _is_bool(v: Any) -> bool:
    return type(v) is bool


def _text(v: Any) -> bool:
    return isinstance(v, str)


#: Agent parameter -> (the attribute holding it, what a valid stored value is).
AGENT_PARAMETERS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "agent_name": ("agent_name", lambda v: isinstance(v, str) and v.strip() != ""),
    "model_name": ("model_name", _text),
    "system_prompt": ("system_prompt", _optional(_text)),
    "max_loops": ("max_loops", _int_in(1, MAX_LOOPS)),
    "streaming_on": ("streaming_on", _is_bool),
    "stream": ("stream_detailed", _is_bool),
    "print_on": ("print_on", _is_bool),
    "verbose": ("verbose", _is_bool),
    "streaming_callback": ("streaming_callback", _optional(callable)),
    "temperature": ("temperature", _optional(lambda v: type(v) is float and 0 <= v <= MAX_TEMPERATURE)),
    "max_tokens": ("max_tokens", _optional(_int_in(1, MAX_TOKENS))),
    "api_base": ("_api_base", _optional(_text)),
    "api_key": ("_api_key", _optional(_text)),
    "llm": ("llm", lambda v: isinstance(v, ModelBackend)),
    "backend": ("backend", lambda v: v is None),  # with llm= given (as here), only None is valid
    "on_callback_error": ("on_callback_error", lambda v: v in ("log", "raise")),
    "retries": ("retry_policy", lambda v: isinstance(v, RetryPolicy) and _int_in(0)(v.retries)),
    "retry_attempts": ("retry_policy", lambda v: isinstance(v, RetryPolicy) and _int_in(0)(v.retries)),
    "first_token_timeout": ("first_token_timeout", _optional(_seconds)),
    "stall_timeout": ("stall_timeout", _optional(_seconds)),
}


def _agent(**options: Any) -> Agent:
    options.setdefault("llm", OfflineModel())
    return Agent(print_on=options.pop("print_on", False), **options)


def test_every_agent_parameter_is_covered() -> None:
    import inspect

    named = set(inspect.signature(Agent.__init__).parameters) - {"self", "swarms_options"}
    assert named | {"retry_attempts"} == set(AGENT_PARAMETERS)


@settings(max_examples=400)  # construction only: cheap, and 19 parameters to cover
@given(name=st.sampled_from(sorted(AGENT_PARAMETERS)), value=junk_values())
def test_agent_accepts_a_valid_value_or_names_the_parameter(name: str, value: object) -> None:
    attribute, valid = AGENT_PARAMETERS[name]
    try:
        agent = _agent(**{name: value})
    except ConfigurationError as exc:
        assert name in str(exc)
        if name == "api_key" and isinstance(value, str | bytes) and len(value) > 2:
            assert repr(value) not in str(exc)
        return
    stored = getattr(agent, attribute)
    assert valid(stored), f"Agent({name}={value!r}) stored {attribute}={stored!r}"


@settings(max_examples=100)
@given(value=junk_values())
def test_model_name_resolves_or_names_the_parameter(value: object) -> None:
    """Without ``llm=`` the name goes through model resolution: still a ConfigurationError naming it."""
    try:
        agent = Agent(model_name=value, print_on=False)  # type: ignore[arg-type]
    except ConfigurationError as exc:
        assert "model_name" in str(exc)
        return
    assert isinstance(agent.model_name, str) and agent.model_name


_DEFAULT = "or None for the model's default"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"temperature": "0.5"},
            "temperature must be a number >= 0 and <= 2, or None for the model's default, got '0.5'; "
            "pass 0.5 without quotes",
        ),
        ({"temperature": math.nan}, f"temperature must be a number >= 0 and <= 2, {_DEFAULT}, got nan"),
        (
            {"max_tokens": "10"},
            "max_tokens must be an int >= 1 and <= 10000000, or None for the model's default, got '10'; "
            "pass 10 without quotes",
        ),
        ({"max_tokens": 1.5}, f"max_tokens must be an int >= 1 and <= 10000000, {_DEFAULT}, got 1.5"),
        ({"max_tokens": math.nan}, f"max_tokens must be an int >= 1 and <= 10000000, {_DEFAULT}, got nan"),
        ({"max_loops": 10**9}, "max_loops must be an int >= 1 and <= 1000, got 1000000000"),
        ({"model_name": 123}, "model_name must be a string, or None to choose from the environment, got 123"),
        ({"system_prompt": 5}, "system_prompt must be a string, or None for no system message, got 5"),
        ({"api_base": 8080}, "api_base must be a string, or None for the provider's endpoint, got 8080"),
        ({"print_on": "no"}, "print_on must be True or False, got 'no'"),
        (
            {"stall_timeout": 10**5},
            "stall_timeout must be a number of seconds > 0 and <= 86400, or None for no limit, got 100000",
        ),
        ({"retries": "2"}, "retries must be an int >= 0, got '2'; pass 2 without quotes; 0 never retries; or pass a "
                           "RetryPolicy(...)"),
    ],
)
def test_parameters_that_used_to_fail_late_fail_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        _agent(**options)
    assert str(info.value) == message


def test_the_api_key_is_never_shown_in_the_error() -> None:
    class Key:
        def __repr__(self) -> str:
            return "sk-rxagents-FAKE-KEY"

    with pytest.raises(ConfigurationError) as info:
        _agent(api_key=Key())
    assert "FAKE-KEY" not in str(info.value) and "api_key" in str(info.value)


def test_bounds_are_inclusive() -> None:
    agent = _agent(max_loops=MAX_LOOPS, max_tokens=MAX_TOKENS, temperature=2, stall_timeout=MAX_TIMEOUT)
    assert (agent.max_loops, agent.max_tokens, agent.temperature, agent.stall_timeout) == (
        MAX_LOOPS, MAX_TOKENS, 2.0, MAX_TIMEOUT,
    )  # fmt: skip


def test_an_unknown_keyword_suggests_the_parameter() -> None:
    with pytest.raises(TypeError, match=r"\['max_loop'\]; did you mean 'max_loops'\?"):
        _agent(max_loop=2)


# --- workflows -------------------------------------------------------------------------------------------------
def _agents() -> list[Agent]:
    return [_agent(agent_name="A"), _agent(agent_name="B")]


#: Workflow parameter -> (the attribute holding it, what a valid stored value is).
WORKFLOW_PARAMETERS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "name": ("name", lambda v: isinstance(v, str) and v.strip() != ""),
    "max_loops": ("max_loops", _int_in(1, MAX_LOOPS)),
    "streaming_callback": ("streaming_callback", _optional(callable)),
    "stream": ("stream_detailed", _is_bool),
    "show_dashboard": ("show_dashboard", _is_bool),
    "on_callback_error": ("on_callback_error", lambda v: v in ("log", "raise")),
    "agents": ("agents", lambda v: isinstance(v, tuple) and all(isinstance(a, Agent) for a in v)),
}
CONCURRENT_PARAMETERS = {
    **WORKFLOW_PARAMETERS,
    "max_concurrency": ("max_concurrency", _optional(_int_in(1))),
    "fail_fast": ("fail_fast", _is_bool),
}


@pytest.mark.parametrize(
    ("workflow", "parameters"),
    [(ConcurrentWorkflow, CONCURRENT_PARAMETERS), (SequentialWorkflow, WORKFLOW_PARAMETERS)],
)
def test_every_workflow_parameter_is_covered(workflow: type[Any], parameters: dict[str, Any]) -> None:
    import inspect

    assert set(inspect.signature(workflow.__init__).parameters) - {"self", "swarms_options"} == set(parameters)


@settings(max_examples=400)
@given(
    workflow=st.sampled_from([ConcurrentWorkflow, SequentialWorkflow]),
    name=st.sampled_from(sorted(CONCURRENT_PARAMETERS)),
    value=junk_values(),
)
def test_workflow_accepts_a_valid_value_or_names_the_parameter(workflow: type[Any], name: str, value: object) -> None:
    parameters = CONCURRENT_PARAMETERS if workflow is ConcurrentWorkflow else WORKFLOW_PARAMETERS
    if name not in parameters:
        return
    attribute, valid = parameters[name]
    options: dict[str, Any] = {"agents": _agents(), name: value}
    try:
        made = workflow(**options)
    except ConfigurationError as exc:
        assert name in str(exc)
        return
    stored = getattr(made, attribute)
    assert valid(stored), f"{workflow.__name__}({name}={value!r}) stored {attribute}={stored!r}"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_loops": 10**9}, "max_loops must be an int >= 1 and <= 1000, got 1000000000"),
        ({"show_dashboard": "no"}, "show_dashboard must be True or False, got 'no'"),
        ({"fail_fast": 1}, "fail_fast must be True or False, got 1"),
        ({"stream": None}, "stream must be True or False, got None"),
        ({"name": 7}, "name must be a non-empty string, got 7"),
    ],
)
def test_workflow_parameters_fail_at_construction(options: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        ConcurrentWorkflow(agents=_agents(), **options)
    assert message in str(info.value)
