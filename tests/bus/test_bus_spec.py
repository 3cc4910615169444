"""Task specs are checked strictly, credentials refused anywhere; tasks round-trip through the queue's format."""

from __future__ import annotations

from typing import Any

import pytest

from rxagents.bus._spec import MAX_TASK_CHARS, check_spec, check_submitted_task
from rxagents.bus._submit import InvalidTask, SubmittedTask, decode_task, encode_task
from rxagents.errors import ConfigurationError

AGENT = {"agent_name": "writer", "model_name": "offline", "system_prompt": "Be brief.", "max_loops": 2,
         "temperature": 0.5, "max_tokens": 100, "retries": 1, "first_token_timeout": 10, "stall_timeout": None,
         "offline": {"pace": 0.01, "first_token_delay": 0, "length": 30, "text": "Hi."}}  # fmt: skip


def test_a_full_agent_spec_and_a_workflow_spec_pass_unchanged() -> None:
    assert check_spec({"agent": AGENT}) == {"agent": AGENT | {"first_token_timeout": 10.0}}
    workflow = {"kind": "concurrent", "name": "pair", "agents": [{"agent_name": "A"}, {"agent_name": "B"}],
                "max_loops": 1, "max_concurrency": 1, "fail_fast": True}  # fmt: skip
    assert check_spec({"workflow": workflow}) == {"workflow": workflow}


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"agent": {"API_KEY": "x"}}, r"spec\.agent\.API_KEY: provider keys never travel"),
        ({"workflow": {"kind": "sequential", "agents": [{"agent_name": "a", "offline": {"token": "x"}}]}},
         r"spec\.workflow\.agents\[0\]\.offline\.token: provider keys never travel"),
        ({"agent": {"headers": {"Authorization": "Bearer x"}}}, r"spec\.agent\.headers: provider keys"),
        ({"agent": {"offline": {"pace": -1}}}, r"spec\.agent\.offline\.pace must be a number of seconds"),
        ({"agent": {"offline": {"speed": 1}}}, r"spec\.agent\.offline\.speed is not a field"),
        ({"agent": {"model_name": "gpt-4o", "offline": {}}}, r"spec\.agent\.offline sets the offline model"),
        ({"agent": {"temperature": "0.5"}}, r"spec\.agent\.temperature must be a number"),
        ({"agent": {"max_loops": True}}, r"spec\.agent\.max_loops must be an int"),
        ({"workflow": {"kind": "sequential", "agents": [{}], "fail_fast": True}}, r"applies to kind 'concurrent'"),
        ({"workflow": {"kind": "concurrent", "agents": [{}, {}]}}, r"agent names must be unique"),
        ({"workflow": {"kind": "concurrent", "agents": []}}, r"spec\.workflow\.agents must be a list of 1 to 64"),
        ({"workflow": {"agents": [{}]}}, r"spec\.workflow\.kind is required"),
        ({"agent": "writer"}, r"spec\.agent must be a JSON object"),
        ([], r"spec must be a JSON object"),
        ({}, r"exactly one of"),
    ],
)
def test_a_bad_spec_names_the_field(spec: Any, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as caught:
        check_spec(spec)
    assert "Bearer" not in str(caught.value)


def test_tasks_are_non_empty_and_bounded() -> None:
    assert check_submitted_task("go") == "go"
    for bad in ("", "  ", None, 3):
        with pytest.raises(ConfigurationError, match="task must be a non-empty string"):
            check_submitted_task(bad)
    with pytest.raises(ConfigurationError, match=f"at most {MAX_TASK_CHARS}"):
        check_submitted_task("x" * (MAX_TASK_CHARS + 1))


def test_a_task_round_trips_and_a_bad_one_says_which_run() -> None:
    task = SubmittedTask("run-1", "Explain ünïcode", {"agent": {"agent_name": "w"}})
    assert decode_task(encode_task(task)) == task
    with pytest.raises(InvalidTask) as no_run:
        decode_task(b'{"v": 1, "task": "x"}')
    assert no_run.value.run_id is None
    bad_spec = encode_task(SubmittedTask("run-2", "x", {"agent": {"api_key": "sk-123456"}}))
    with pytest.raises(InvalidTask, match="provider keys never travel") as bad:
        decode_task(bad_spec)
    assert bad.value.run_id == "run-2" and isinstance(bad.value.__cause__, ConfigurationError)
    assert "sk-123456" not in str(bad.value)
