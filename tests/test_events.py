from __future__ import annotations

import dataclasses

import pytest

from rxagents.events import EventKind, TokenEvent, ToolCallDelta, Usage


def _event(kind: EventKind, **kw: object) -> TokenEvent:
    return TokenEvent(kind, "A", "run-1", 3, **kw)  # type: ignore[arg-type]


def test_detailed_dict_always_has_content_usage_and_finish_reason() -> None:
    for kind in EventKind:
        d = _event(kind).to_dict()
        assert {"content", "usage", "finish_reason", "type", "seq", "agent", "run_id"} <= d.keys()
        assert d["type"] == kind.value


def test_token_dict_carries_text_as_content() -> None:
    assert _event(EventKind.TOKEN, text="Hel").to_dict()["content"] == "Hel"


def test_usage_and_finish_dicts_carry_their_values() -> None:
    usage = _event(EventKind.USAGE, usage=Usage(3, 4, 7)).to_dict()
    assert usage["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert _event(EventKind.FINISH, finish_reason="stop").to_dict()["finish_reason"] == "stop"


def test_tool_call_and_error_dicts() -> None:
    d = _event(EventKind.TOOL_CALL, tool_call=ToolCallDelta(0, "c1", "f", '{"a"')).to_dict()
    assert d["tool_call"] == {"index": 0, "id": "c1", "name": "f", "arguments": '{"a"'}
    assert d["content"] == ""
    assert _event(EventKind.ERROR, error=ValueError("boom")).to_dict()["error"] == "ValueError: boom"


def test_events_are_frozen_and_slotted() -> None:
    event = _event(EventKind.TOKEN, text="x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.text = "y"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")


def test_repr_is_short_and_readable() -> None:
    assert repr(_event(EventKind.TOKEN, text="hi")) == "TokenEvent(token, agent='A', seq=3, text='hi')"


def test_usage_adds_up() -> None:
    assert Usage(1, 2, 3) + Usage(10, 20, 30) == Usage(11, 22, 33)
