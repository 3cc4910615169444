"""Every argument of the sinks, operators and the offline model is checked when it is built.

A bad value is a ``ConfigurationError`` whose message starts with the parameter's name — never a raw
``TypeError`` from deep inside, and never a value accepted that fails (or misbehaves) later. Each row names a
builder, a parameter and what a valid value is; hypothesis tries near-miss values on each.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from hypothesis import given
from rich.progress import Progress

from rxagents.errors import ConfigurationError
from rxagents.models import OfflineModel
from rxagents.operators._callbacks import CallbackStats, tap_safe
from rxagents.operators._chunk import chunk_by
from rxagents.operators._logging import log_to, log_to_file
from rxagents.operators._progress import track_progress
from rxagents.operators._retry import retry
from rxagents.operators._usage import UsageMeter, budget
from rxagents.sinks._console import ConsolePrinter, console_printer
from rxagents.sinks._dashboard import dashboard
from rxagents.sinks._panel import panel
from rxagents.sinks._terminal import TailBuffer
from rxagents.sinks._websocket import serve_websocket
from rxagents.workflows import race
from tests.strategies import junk_values

Valid = Callable[[Any], bool]


def _number(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _int(low: int, high: int | None = None) -> Valid:
    return lambda v: type(v) is int and low <= v and (high is None or v <= high)


def _seconds(v: Any) -> bool:  # >= 0
    return _number(v) and v >= 0


def _none_or(valid: Valid) -> Valid:
    return lambda v: v is None or valid(v)


def _bool(v: Any) -> bool:
    return type(v) is bool


def _str(v: Any) -> bool:
    return isinstance(v, str)


def _non_blank(v: Any) -> bool:
    return isinstance(v, str) and v.strip() != ""


def _one_of(*choices: str) -> Valid:
    return lambda v: isinstance(v, str) and v in choices


def _never(v: Any) -> bool:
    """No junk value is valid here (a scheduler, a logger...): only None or the default is."""
    return False


def _unit(v: Any) -> bool:
    if not isinstance(v, str) or not v or (re.fullmatch(r"[a-z]+", v) and v not in ("word", "line", "sentence")):
        return False
    try:
        re.compile(v)
    except re.error:
        return False
    return True


def _names(v: Any) -> bool:
    return isinstance(v, Sequence) and not isinstance(v, str | bytes) and all(_str(n) and n for n in v)


def _price(v: Any) -> bool:
    return _seconds(v) or (isinstance(v, tuple) and len(v) == 2 and all(_seconds(p) for p in v))


def _origins(v: Any) -> bool:  # junk never holds a valid origin: only an empty collection is valid
    return not isinstance(v, str | bytes) and hasattr(v, "__iter__") and len(v) == 0


def _fields(v: Any) -> bool:
    return not isinstance(v, str) and hasattr(v, "__iter__") and all(_str(f) and f for f in v)


def _never_called(request: dict[str, Any]) -> Any:
    raise AssertionError("not called")


def _printer(**options: Any) -> ConsolePrinter:
    return ConsolePrinter(options.pop("agent_name", None), options.pop("max_loops", None), **options)


#: (builder, parameter, what a valid value is). The builder gets only the parameter tried.
ROWS: list[tuple[str, Callable[..., Any], str, Valid]] = [
    ("console_printer", console_printer, "max_loops", _none_or(_int(1))),
    ("console_printer", console_printer, "width", _none_or(_int(1))),
    ("console_printer", console_printer, "wrap", _none_or(_bool)),
    ("console_printer", console_printer, "scheduler", _none_or(_never)),
    ("ConsolePrinter", _printer, "agent_name", _none_or(_non_blank)),
    ("ConsolePrinter", _printer, "max_loops", _none_or(_int(1))),
    ("ConsolePrinter", _printer, "width", _none_or(_int(1))),
    ("panel", panel, "title", _none_or(_str)),
    ("panel", panel, "border_style", _str),
    ("panel", panel, "refresh_per_second", lambda v: _number(v) and 0 < v <= 60),
    ("panel", panel, "scheduler", _none_or(_never)),
    ("dashboard", lambda **o: dashboard(o.pop("title", "t"), o.pop("agents", ["A"]), **o), "title", _str),
    ("dashboard", lambda **o: dashboard(o.pop("title", "t"), o.pop("agents", ["A"]), **o), "agents", _names),
    ("dashboard", lambda **o: dashboard("t", ["A"], **o), "compact", _none_or(_bool)),
    ("dashboard", lambda **o: dashboard("t", ["A"], **o), "tail_lines", _int(1)),
    ("dashboard", lambda **o: dashboard("t", ["A"], **o), "refresh_per_second", lambda v: _number(v) and 0 < v <= 60),
    ("TailBuffer", TailBuffer, "limit", _int(1)),
    ("serve_websocket", lambda **o: serve_websocket(_never_called, **o), "host", _non_blank),
    ("serve_websocket", lambda **o: serve_websocket(_never_called, **o), "port", _int(0, 65535)),
    (
        "serve_websocket",
        lambda **o: serve_websocket(_never_called, **o),
        "token",
        _none_or(lambda v: isinstance(v, str) and v != "" and v == v.strip()),
    ),
    ("serve_websocket", lambda **o: serve_websocket(_never_called, **o), "allowed_origins", _origins),
    ("serve_websocket", lambda **o: serve_websocket(_never_called, **o), "max_buffer", _int(1)),
    ("serve_websocket", lambda **o: serve_websocket(_never_called, **o), "socket_send_buffer", _none_or(_int(1))),
    ("serve_websocket", lambda **o: serve_websocket(_never_called, **o), "on_slow", _one_of("coalesce", "disconnect")),
    (
        "serve_websocket",
        lambda **o: serve_websocket(_never_called, **o),
        "request_timeout",
        _none_or(lambda v: _number(v) and v > 0),
    ),
    ("serve_websocket", lambda **o: serve_websocket(_never_called, **o), "required_fields", _fields),
    ("tap_safe", lambda **o: tap_safe(print, **o), "on_error", _one_of("log", "raise")),
    ("tap_safe", lambda **o: tap_safe(print, **o), "payload", _none_or(_one_of("text", "dict", "event"))),
    ("tap_safe", lambda **o: tap_safe(print, **o), "detailed", _bool),
    ("tap_safe", lambda **o: tap_safe(print, **o), "scheduler", _none_or(_never)),
    ("tap_safe", lambda **o: tap_safe(print, **o), "stats", _none_or(lambda v: isinstance(v, CallbackStats))),
    ("chunk_by", chunk_by, "unit", _unit),
    ("track_progress", lambda **o: track_progress(Progress(), **o), "total", _none_or(_int(1))),
    ("track_progress", lambda **o: track_progress(Progress(), **o), "estimate", _int(1)),
    ("track_progress", lambda **o: track_progress(Progress(), **o), "growth", lambda v: _number(v) and v > 1),
    ("track_progress", lambda **o: track_progress(Progress(), **o), "description", _none_or(_str)),
    ("retry", retry, "max_attempts", _int(1)),
    ("retry", retry, "backoff", _none_or(_seconds)),
    ("retry", retry, "retry_on", _never),
    ("retry", retry, "after_tokens", _one_of("fail", "restart")),
    ("retry", retry, "scheduler", _none_or(_never)),
    ("UsageMeter", UsageMeter, "cost_per_token", _price),
    ("budget", budget, "max_tokens", _int(0)),
    ("budget", lambda **o: budget(5, cost_per_token=1e-6, **o), "max_cost", _none_or(_seconds)),
    ("log_to_file", log_to_file, "path", lambda v: isinstance(v, str) and v != ""),
    ("log_to_file", lambda **o: log_to_file("x.log", **o), "mode", _one_of("a", "w", "x")),
    ("log_to", lambda **o: log_to("rxagents.test", **o), "level", _int(0)),
    ("log_to", lambda **o: log_to("rxagents.test", **o), "error_level", _int(0)),
    ("OfflineModel", OfflineModel, "pace", _seconds),
    ("OfflineModel", OfflineModel, "first_token_delay", _none_or(_seconds)),
    ("OfflineModel", OfflineModel, "length", _int(1)),
    ("OfflineModel", OfflineModel, "fail_after", _none_or(_int(0))),
    ("OfflineModel", OfflineModel, "stall_after", _none_or(_int(0))),
    ("OfflineModel", OfflineModel, "fail_times", _none_or(_int(0))),
    (
        "OfflineModel",
        OfflineModel,
        "reasoning",
        lambda v: isinstance(v, Sequence) and not isinstance(v, str) and all(_str(s) for s in v),
    ),
    (
        "OfflineModel",
        OfflineModel,
        "tool_calls",
        lambda v: isinstance(v, Sequence) and not isinstance(v, str) and not v,
    ),
    ("OfflineModel", OfflineModel, "error_status", _none_or(_int(100, 599))),
    ("OfflineModel", OfflineModel, "retry_after", _none_or(_seconds)),
    ("OfflineModel", OfflineModel, "text", _none_or(_str)),
    ("race", lambda **o: race(o["agents"], "task"), "agents", _never),
]


@pytest.mark.parametrize("row", ROWS, ids=lambda row: f"{row[0]}-{row[2]}")
@given(value=junk_values())
def test_a_builder_accepts_a_valid_value_or_names_the_parameter(
    row: tuple[str, Callable[..., Any], str, Valid], value: object
) -> None:
    owner, build, name, valid = row
    try:
        build(**{name: value})
    except ConfigurationError as exc:
        assert str(exc).startswith((f"{name} must be ", f"{name} entries must be ")), str(exc)
        assert not valid(value), f"{owner}({name}={value!r}) was refused: {exc}"
        if name == "token":
            assert str(exc).endswith(f"got a value of type {type(value).__name__}")  # a token is never shown
        return
    assert valid(value), f"{owner}({name}={value!r}) was accepted"


#: Builders (or builder and parameter) that cannot be built without the parameter tried.
_REQUIRED: set[object] = {"TailBuffer", "chunk_by", "race", ("budget", "max_tokens"), ("log_to_file", "path")}


@pytest.mark.parametrize("row", ROWS, ids=lambda row: f"{row[0]}-{row[2]}")
def test_every_row_accepts_its_default_shape(row: tuple[str, Callable[..., Any], str, Valid]) -> None:
    """Without the parameter tried each builder builds, so a refusal above is that parameter's."""
    owner, build, name, _ = row
    if owner in _REQUIRED or (owner, name) in _REQUIRED:
        return  # the tried parameter is required
    build()
