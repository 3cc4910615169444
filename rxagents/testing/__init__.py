"""Test doubles and conformance checks for rxagents and for pipelines built on it.

- :class:`LocalModelServer`: a local OpenAI-compatible streaming server (real HTTP, fault injection,
  connection counters), with :class:`Reply` and the fault values, and the ``local_model_server`` pytest fixture.
- Marble helpers for token streams on reactivex's ``TestScheduler`` (``events_from_marbles``, ``token_run``,
  ``record``, ``assert_well_formed_run`` ...).
- :func:`check_operator_laws` and :class:`Law`: the 13 operator laws of rxagents as hypothesis properties, for
  any operator, ours or yours. ``rxagents.testing.strategies``: hypothesis strategies for token events.

The law checker and strategies need ``hypothesis`` (a test dependency); they are imported on first use, so
``import rxagents.testing`` works without it.
"""

from __future__ import annotations

import importlib
from typing import Any

from rxagents.testing._faults import (
    DropAfter,
    EmptyStream,
    Fault,
    HttpError,
    MalformedAfter,
    NoDone,
    RawBody,
    Reply,
    SlowFirstByte,
    StallAfter,
    ToolCallSpec,
    words,
)
from rxagents.testing._marbles import (
    assert_seq_contiguous,
    assert_well_formed_run,
    cold_events,
    events_from_marbles,
    events_of_trace,
    hot_events,
    record,
    schedule_messages,
    text_of_items,
    text_of_trace,
    token_run,
)
from rxagents.testing._server import LocalModelServer, serve_main

_LAZY = {
    "GRACE": "rxagents.testing._laws",
    "Law": "rxagents.testing._laws",
    "LawReport": "rxagents.testing._laws",
    "LawViolation": "rxagents.testing._laws",
    "check_operator_laws": "rxagents.testing._laws",
}

__all__ = [
    "GRACE",
    "DropAfter",
    "EmptyStream",
    "Fault",
    "HttpError",
    "Law",
    "LawReport",
    "LawViolation",
    "LocalModelServer",
    "MalformedAfter",
    "NoDone",
    "RawBody",
    "Reply",
    "SlowFirstByte",
    "StallAfter",
    "ToolCallSpec",
    "assert_seq_contiguous",
    "assert_well_formed_run",
    "check_operator_laws",
    "cold_events",
    "events_from_marbles",
    "events_of_trace",
    "hot_events",
    "record",
    "schedule_messages",
    "serve_main",
    "strategies",
    "text_of_items",
    "text_of_trace",
    "token_run",
    "words",
]


def __getattr__(name: str) -> Any:
    if name == "strategies":
        return importlib.import_module("rxagents.testing._strategies")
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rxagents.testing' has no attribute {name!r}")
