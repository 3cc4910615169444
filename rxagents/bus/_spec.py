"""Task specs: what a submitted task runs, as JSON, checked strictly on both sides of the bus.

A spec is one of::

    {"agent": {"agent_name": "writer", "model_name": "offline", "system_prompt": "...", "max_loops": 1,
               "temperature": 0.2, "max_tokens": 500, "api_base": "http://...", "retries": 2,
               "first_token_timeout": 60, "stall_timeout": 30, "offline": {"pace": 0.01, "length": 200}}}
    {"workflow": {"kind": "concurrent" | "sequential", "name": "...", "agents": [{...agent fields...}, ...],
                  "max_loops": 1, "max_concurrency": 4, "fail_fast": false}}

Every field but the agents' is optional (an agent's defaults are :class:`~rxagents.Agent`'s; ``model_name``
omitted lets the worker's environment choose). ``offline`` picks the offline model with those settings
(``pace``, ``first_token_delay``, ``length``, ``text``). An unknown field, a value of the wrong type or out of
range, is a :class:`~rxagents.errors.ConfigurationError` naming it (``spec.agent.max_loops must be ...``).

Provider keys never travel with a task: every process on the bus can read it. A field named like a credential
(``api_key``, ``token``, ``password``...) anywhere in a spec is refused; a worker uses the keys of its own
environment (``OPENAI_API_KEY``...).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rxagents._validate import (
    MAX_LOOPS,
    MAX_TEMPERATURE,
    MAX_TIMEOUT,
    MAX_TOKENS,
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_seconds,
    check_str,
    fail,
)
from rxagents.errors import ConfigurationError

__all__ = ["AGENT_FIELDS", "MAX_TASK_CHARS", "OFFLINE_FIELDS", "SECRET_FIELDS", "WORKFLOW_FIELDS", "check_spec",
           "check_submitted_task"]  # fmt: skip

AGENT_FIELDS = (
    "agent_name", "model_name", "system_prompt", "max_loops", "temperature", "max_tokens", "api_base", "retries",
    "first_token_timeout", "stall_timeout", "offline",
)  # fmt: skip
OFFLINE_FIELDS = ("pace", "first_token_delay", "length", "text")
WORKFLOW_FIELDS = ("kind", "name", "agents", "max_loops", "max_concurrency", "fail_fast")
#: Field names refused anywhere in a spec: credentials never cross the bus.
SECRET_FIELDS = frozenset({
    "api_key", "apikey", "key", "api_keys", "secret", "client_secret", "password", "token", "access_token",
    "authorization", "headers", "extra_headers", "credentials",
})  # fmt: skip
#: The longest task text a worker takes.
MAX_TASK_CHARS = 200_000
#: The most agents a workflow spec may have.
MAX_AGENTS = 64


def check_submitted_task(task: object) -> str:
    """A task: a non-empty string of at most :data:`MAX_TASK_CHARS` characters."""
    if not isinstance(task, str) or not task.strip():
        fail("task", "a non-empty string", task)
    if len(task) > MAX_TASK_CHARS:
        raise ConfigurationError(f"task must be at most {MAX_TASK_CHARS} characters, got {len(task)}")
    return task


def check_spec(spec: object) -> dict[str, Any]:
    """The spec, checked and normalised (only the fields given, with their checked values).

    Raises:
        ConfigurationError: naming the field at fault (``spec.agent.max_loops``), the value and the fix; a
            credential field is named without its value.

    >>> check_spec({"agent": {"agent_name": "writer", "model_name": "offline"}})
    {'agent': {'agent_name': 'writer', 'model_name': 'offline'}}
    >>> check_spec({"agent": {"api_key": "sk-..."}})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    rxagents.errors.ConfigurationError: spec.agent.api_key: provider keys never travel with a task ...
    """
    _no_secrets(spec, "spec")
    _object(spec, "spec", ("agent", "workflow"))
    assert isinstance(spec, Mapping)
    if len(spec) != 1:
        raise ConfigurationError(
            f'spec must have exactly one of "agent" or "workflow", got {sorted(spec) or "neither"}: '
            '{"agent": {...}} runs one agent, {"workflow": {"kind": ..., "agents": [...]}} several'
        )
    if "agent" in spec:
        return {"agent": _agent(spec["agent"], "spec.agent")}
    return {"workflow": _workflow(spec["workflow"], "spec.workflow")}


def _no_secrets(value: object, where: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str) and key.lower().replace("-", "_") in SECRET_FIELDS:
                raise ConfigurationError(
                    f"{where}.{key}: provider keys never travel with a task (every process on the bus can read it); "
                    f"set the key in the worker's environment (e.g. OPENAI_API_KEY)"
                )
            _no_secrets(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_secrets(item, f"{where}[{i}]")


def _object(value: object, where: str, fields: tuple[str, ...]) -> None:
    if not isinstance(value, Mapping):
        fail(where, f"a JSON object with the fields {list(fields)}", value)
    unknown = sorted(str(key) for key in value if key not in fields)
    if unknown:
        raise ConfigurationError(f"{where}.{unknown[0]} is not a field of {where}; its fields are {list(fields)}")


def _agent(value: object, where: str) -> dict[str, Any]:
    _object(value, where, AGENT_FIELDS)
    assert isinstance(value, Mapping)
    out: dict[str, Any] = {}
    for name, item in value.items():
        path = f"{where}.{name}"
        if name in ("agent_name",):
            out[name] = check_str(path, item)
        elif name in ("model_name", "system_prompt", "api_base"):
            out[name] = check_str(path, item, empty=name == "system_prompt", none="for the default")
        elif name == "max_loops":
            out[name] = check_int(path, item, maximum=MAX_LOOPS)
        elif name == "max_tokens":
            out[name] = check_int(path, item, maximum=MAX_TOKENS, none="for the model's default")
        elif name == "retries":
            out[name] = check_int(path, item, minimum=0, maximum=100)
        elif name == "temperature":
            out[name] = check_number(path, item, minimum=0, maximum=MAX_TEMPERATURE, none="for the model's default")
        elif name in ("first_token_timeout", "stall_timeout"):
            out[name] = check_seconds(path, item, maximum=MAX_TIMEOUT, none="for no limit")
        else:
            out[name] = _offline(item, path)
    if "offline" in out and out.get("model_name") not in (None, "offline"):
        raise ConfigurationError(
            f"{where}.offline sets the offline model, but {where}.model_name is {out['model_name']!r}: "
            f"drop one of them (or set model_name to 'offline')"
        )
    return out


def _offline(value: object, where: str) -> dict[str, Any]:
    _object(value, where, OFFLINE_FIELDS)
    assert isinstance(value, Mapping)
    out: dict[str, Any] = {}
    for name, item in value.items():
        path = f"{where}.{name}"
        if name in ("pace", "first_token_delay"):
            out[name] = check_seconds(path, item, zero=True, maximum=60.0)
        elif name == "length":
            out[name] = check_int(path, item, maximum=1_000_000)
        else:
            out[name] = check_str(path, item, empty=True)
    return out


def _workflow(value: object, where: str) -> dict[str, Any]:
    _object(value, where, WORKFLOW_FIELDS)
    assert isinstance(value, Mapping)
    if "kind" not in value or "agents" not in value:
        missing = "kind" if "kind" not in value else "agents"
        raise ConfigurationError(f'{where}.{missing} is required: {where} needs "kind" and "agents"')
    out: dict[str, Any] = {"kind": check_choice(f"{where}.kind", value["kind"], ("concurrent", "sequential"))}
    agents = value["agents"]
    if not isinstance(agents, list) or not 1 <= len(agents) <= MAX_AGENTS:
        fail(f"{where}.agents", f"a list of 1 to {MAX_AGENTS} agent objects", agents)
    out["agents"] = [_agent(agent, f"{where}.agents[{i}]") for i, agent in enumerate(agents)]
    names = [agent.get("agent_name", "Agent") for agent in out["agents"]]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise ConfigurationError(
            f"{where}.agents: agent names must be unique, got {duplicates} more than once; give each agent_name"
        )
    for name, item in value.items():
        path = f"{where}.{name}"
        if name == "name":
            out[name] = check_str(path, item)
        elif name == "max_loops":
            out[name] = check_int(path, item, maximum=MAX_LOOPS)
        elif name == "max_concurrency":
            if out["kind"] != "concurrent":
                raise ConfigurationError(f"{path} applies to kind 'concurrent' only, got kind {out['kind']!r}")
            out[name] = check_int(path, item, none="to run every agent at once")
        elif name == "fail_fast":
            if out["kind"] != "concurrent":
                raise ConfigurationError(f"{path} applies to kind 'concurrent' only, got kind {out['kind']!r}")
            out[name] = check_bool(path, item)
    return out
