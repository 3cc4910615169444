"""swarms compatibility (rxagents/_swarms.py): swarms' run parameters are accepted only at their unused value."""

from __future__ import annotations

import doctest
import re
from typing import Any

import pytest

from rxagents import _swarms
from rxagents._swarms import AGENT_RUN, WORKFLOW_RUN, check_run_arguments
from rxagents.errors import ConfigurationError


def test_the_docstring_examples_hold() -> None:
    assert doctest.testmod(_swarms).failed == 0


@pytest.mark.parametrize("kwargs", [{}, {"img": None}, {"imgs": None}, {"correct_answer": None}, {"n": 1},
                                    {"img": None, "imgs": None, "correct_answer": None, "n": 1}])
def test_swarms_run_parameters_at_their_unused_value_are_accepted(kwargs: dict[str, Any]) -> None:
    check_run_arguments("Agent.run", (), kwargs, AGENT_RUN)


@pytest.mark.parametrize(
    ("name", "value", "fix"),
    [("img", "cat.png", "describe the image"), ("imgs", ["a.png"], "describe the images"),
     ("imgs", [], "describe the images"), ("correct_answer", "42", "compare the answer"),
     ("n", 2, "call run\\(\\) once per answer"), ("n", True, "once per answer"), ("n", 1.0, "once per answer")],
)
def test_any_other_value_names_the_parameter_the_value_and_the_fix(name: str, value: Any, fix: str) -> None:
    shown = re.escape(repr(value))
    with pytest.raises(ConfigurationError, match=rf"^{name} must be .* in rxagents, got {shown}; .*{fix}"):
        check_run_arguments("Agent.run", (), {name: value}, AGENT_RUN)


def test_an_unknown_keyword_names_itself_and_the_closest_parameter() -> None:
    with pytest.raises(ConfigurationError, match=r"Agent\.run\(\) got unexpected keyword argument\(s\) \['streaming_callbak'\]; did you mean 'streaming_callback'"):  # noqa: E501
        check_run_arguments("Agent.run", (), {"streaming_callbak": print}, AGENT_RUN)


def test_a_workflow_accepts_only_the_image_parameters_of_swarms_workflows() -> None:
    check_run_arguments("SequentialWorkflow.run", (), {"img": None, "imgs": None}, WORKFLOW_RUN)
    with pytest.raises(ConfigurationError, match=r"SequentialWorkflow\.run\(\) got unexpected keyword.*\['n'\]"):
        check_run_arguments("SequentialWorkflow.run", (), {"n": 1}, WORKFLOW_RUN)


def test_extra_positional_arguments_are_refused_with_their_count_and_values() -> None:
    with pytest.raises(ConfigurationError, match=r"Agent\.arun\(\) takes the task and streaming_callback "
                                                 r"positionally, got 2 more positional argument\(s\) \('x', 3\)"):
        check_run_arguments("Agent.arun", ("x", 3), {}, AGENT_RUN)
