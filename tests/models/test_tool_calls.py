from __future__ import annotations

import json

import pytest

from rxagents import testing
from rxagents.errors import ConfigurationError
from rxagents.models import ToolCallSpec


def test_one_tool_call_spec_serves_the_offline_model_and_the_test_server() -> None:
    assert testing.ToolCallSpec is ToolCallSpec


@pytest.mark.parametrize("arguments", [{"city": "Paris", "days": 3}, '{"city": "Paris", "days": 3}'])
def test_arguments_as_a_mapping_or_json_text_stream_the_same_json(arguments: object) -> None:
    call = ToolCallSpec("get_weather", arguments, pieces=4)  # type: ignore[arg-type]
    pieces = call.argument_pieces()
    assert 1 < len(pieces) <= 4
    assert json.loads("".join(pieces)) == {"city": "Paris", "days": 3}


def test_ids_default_to_the_position_with_a_prefix() -> None:
    assert ToolCallSpec("f").call_id(2) == "call_2"
    assert ToolCallSpec("f").call_id(0, prefix="call_offline_") == "call_offline_0"
    assert ToolCallSpec("f", id="c").call_id(2) == "c"


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"name": ""}, "name"), ({"name": "f", "arguments": 3}, "arguments"), ({"name": "f", "pieces": 0}, "pieces")],
)
def test_bad_values_name_the_parameter(kwargs: dict[str, object], name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        ToolCallSpec(**kwargs)  # type: ignore[arg-type]
