"""The backend-side values: :func:`text_delta` makes the same frozen :class:`Delta` as the constructor."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxagents.events import EventKind
from rxagents.models._base import Delta, _DeltaSlots, text_delta


@given(kind=st.sampled_from([EventKind.TOKEN, EventKind.REASONING]), text=st.text())
def test_text_delta_is_the_constructors_delta(kind: EventKind, text: str) -> None:
    made, built = text_delta(kind, text), Delta(kind, text)
    assert type(made) is Delta
    assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
    assert made.kind is kind and made.text is text
    assert pickle.loads(pickle.dumps(made)) == built
    assert dataclasses.replace(made, text="y") == dataclasses.replace(built, text="y")


def test_a_text_delta_is_frozen() -> None:
    made = text_delta(EventKind.TOKEN, "x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.text = "y"  # type: ignore[misc]
    assert not hasattr(made, "__dict__")


def test_the_slots_twin_has_every_field_in_order() -> None:
    """A field added to Delta must reach text_delta (its twin's slots are Delta's; text_delta sets each)."""
    assert _DeltaSlots.__slots__ == tuple(field.name for field in dataclasses.fields(Delta))
    made = text_delta(EventKind.TOKEN, "x")
    assert all(hasattr(made, name) for name in _DeltaSlots.__slots__)
