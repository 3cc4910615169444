from __future__ import annotations

import dataclasses
import doctest
import pickle
import re

import pytest
from reactivex import operators as ops

from rxagents.events import EventKind, TokenEvent, ToolCallDelta, Usage, make_event


def _event(kind: EventKind, **kw: object) -> TokenEvent:
    return TokenEvent(kind, "A", "run-1", 3, **kw)  # type: ignore[arg-type]


IDENTITY = {"type", "agent", "run_id", "seq", "loop", "time", "model"}
# What each kind adds to the identity keys (docs/events.md has the same table).
PAYLOAD_KEYS: dict[EventKind, set[str]] = {
    EventKind.START: set(),
    EventKind.TOKEN: {"content"},
    EventKind.REASONING: {"content", "reasoning"},
    EventKind.TOOL_CALL: {"tool_call"},
    EventKind.RETRY: {"reason"},
    EventKind.USAGE: {"usage"},
    EventKind.FINISH: {"finish_reason"},
    EventKind.ERROR: {"error"},
}
_PAYLOADS: dict[EventKind, dict[str, object]] = {
    EventKind.TOKEN: {"text": "Hel"},
    EventKind.REASONING: {"text": "hmm"},
    EventKind.TOOL_CALL: {"tool_call": ToolCallDelta(0, "c1", "f", "{")},
    EventKind.RETRY: {"text": "connection reset"},
    EventKind.USAGE: {"usage": Usage(3, 4, 7)},
    EventKind.FINISH: {"finish_reason": "stop"},
    EventKind.ERROR: {"error": ValueError("boom")},
}


@pytest.mark.parametrize("kind", list(EventKind))
def test_detailed_dict_has_identity_keys_and_only_its_own_payload(kind: EventKind) -> None:
    d = _event(kind, **_PAYLOADS.get(kind, {})).to_dict()
    assert d.keys() == IDENTITY | PAYLOAD_KEYS[kind]
    assert d["type"] == kind.value and d["seq"] == 3 and d["agent"] == "A" and d["run_id"] == "run-1"


def test_the_spec_membership_tests_hold_once_per_run() -> None:
    """The spec's callback tests ``'usage' in info`` and ``'finish_reason' in info``: one event each."""
    kinds = [EventKind.START, EventKind.TOKEN, EventKind.REASONING, EventKind.TOOL_CALL, EventKind.RETRY,
             EventKind.TOKEN, EventKind.USAGE, EventKind.FINISH]
    dicts = [_event(kind, **_PAYLOADS.get(kind, {})).to_dict() for kind in kinds]
    assert [d["type"] for d in dicts if "usage" in d] == ["usage"]
    assert [d["type"] for d in dicts if "finish_reason" in d] == ["finish"]
    assert [d["type"] for d in dicts if "content" in d] == ["token", "reasoning", "token"]


def test_token_dict_carries_text_as_content() -> None:
    assert _event(EventKind.TOKEN, text="Hel").to_dict()["content"] == "Hel"


def test_reasoning_dict_carries_text_as_content_and_reasoning() -> None:
    d = _event(EventKind.REASONING, text="hmm").to_dict()
    assert d["content"] == d["reasoning"] == "hmm"


def test_retry_dict_carries_the_reason_not_content() -> None:
    assert _event(EventKind.RETRY, text="connection reset").to_dict()["reason"] == "connection reset"


def test_usage_and_finish_dicts_carry_their_values() -> None:
    usage = _event(EventKind.USAGE, usage=Usage(3, 4, 7)).to_dict()
    assert usage["usage"] == {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    assert _event(EventKind.FINISH, finish_reason="stop").to_dict()["finish_reason"] == "stop"


def test_finish_without_a_reason_still_has_the_key() -> None:
    assert _event(EventKind.FINISH).to_dict()["finish_reason"] is None


def test_tool_call_and_error_dicts() -> None:
    d = _event(EventKind.TOOL_CALL, tool_call=ToolCallDelta(0, "c1", "f", '{"a"')).to_dict()
    assert d["tool_call"] == {"index": 0, "id": "c1", "name": "f", "arguments": '{"a"'}
    assert _event(EventKind.ERROR, error=ValueError("boom")).to_dict()["error"] == "ValueError: boom"


def test_to_dict_docstring_examples() -> None:
    import rxagents.events

    results = doctest.testmod(rxagents.events)
    assert results.failed == 0 and results.attempted >= 2


def test_events_are_frozen_and_slotted() -> None:
    event = _event(EventKind.TOKEN, text="x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.text = "y"  # type: ignore[misc]
    assert not hasattr(event, "__dict__")


@pytest.mark.parametrize("kind", list(EventKind))
def test_make_event_gives_the_same_frozen_event_as_the_constructor(kind: EventKind) -> None:
    fields = {"kind": kind, "agent": "A", "run_id": "run-1", "seq": 3, "loop": 2, "text": "", "tool_call": None,
              "usage": None, "finish_reason": None, "error": None, "time": 12.5, "model": "m"}
    fields |= _PAYLOADS.get(kind, {})
    made, built = make_event(*fields.values()), TokenEvent(**fields)  # type: ignore[arg-type]
    assert type(made) is TokenEvent
    assert all(getattr(made, name) is value for name, value in fields.items())
    assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.seq = 4  # type: ignore[misc]
    assert dataclasses.replace(made, seq=4) == dataclasses.replace(built, seq=4)
    assert pickle.loads(pickle.dumps(made.to_dict())) == built.to_dict()
    if kind is not EventKind.ERROR:  # exceptions compare by identity
        assert pickle.loads(pickle.dumps(made)) == built


def test_make_event_takes_every_field_in_order() -> None:
    import inspect

    assert list(inspect.signature(make_event).parameters) == [f.name for f in dataclasses.fields(TokenEvent)]


def test_repr_is_short_and_readable() -> None:
    assert repr(_event(EventKind.TOKEN, text="hi")) == "TokenEvent(token, agent='A', seq=3, text='hi')"


def test_usage_adds_up() -> None:
    assert Usage(1, 2, 3) + Usage(10, 20, 30) == Usage(11, 22, 33)


def test_run_ids_are_unique_and_ordered_by_creation() -> None:
    from rxagents.events import new_run_id

    ids = [new_run_id() for _ in range(10_000)]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"run-[0-9a-f]{32}", i) for i in ids)
    stamps = [int(i[4:16], 16) for i in ids]  # the first 48 bits: Unix milliseconds
    assert stamps == sorted(stamps)


def test_each_run_gets_a_new_run_id() -> None:
    from rxagents import Agent

    agent = Agent(model_name="offline", print_on=False)
    first, second = ({e.run_id for e in agent.stream("Hi").pipe(ops.to_list()).run()} for _ in range(2))
    assert len(first) == len(second) == 1 and first != second
