"""The wire format round-trips events exactly; the facade, connect_bus and the options check their arguments."""

from __future__ import annotations

import json
import subprocess
import sys
import types

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rxagents.bus as bus_package
from rxagents.bus import (
    BusError,
    NatsBus,
    RedisBus,
    RemoteRunError,
    connect_bus,
    decode_message,
    encode_message,
    event_from_wire,
    event_to_wire,
)
from rxagents.bus._nats import run_token
from rxagents.errors import ConfigurationError, StreamCutError
from rxagents.events import EventKind, TokenEvent, ToolCallDelta, Usage
from tests.strategies import token_runs


def _same(decoded: list[TokenEvent], original: list[TokenEvent]) -> None:
    assert decoded == original
    for y, x in zip(decoded, original, strict=True):  # TokenEvent equality ignores ``error``: compare it too
        if x.error is None:
            assert y.error is None
        else:
            assert isinstance(y.error, RemoteRunError)
            assert (y.error.type, y.error.message) == (type(x.error).__name__, str(x.error))


@given(token_runs(ending="any", retries=True, run_id="run/ü ."), st.integers(1, 6))
def test_messages_round_trip_any_run_exactly(run: list[TokenEvent], size: int) -> None:
    decoded: list[TokenEvent] = []
    for start in range(0, len(run), size):
        chunk = run[start : start + size]
        message = decode_message(encode_message(chunk, tokens=7))
        assert (message.run_id, message.first, message.last, message.tokens) == (
            chunk[0].run_id, chunk[0].seq, chunk[-1].seq, 7,
        )
        decoded.extend(message.events)
    _same(decoded, run)


@given(token_runs(ending="any"))
def test_single_events_round_trip_through_json(run: list[TokenEvent]) -> None:
    back = [event_from_wire(json.loads(json.dumps(event_to_wire(event)))) for event in run]
    _same(back, run)


def test_every_field_survives() -> None:
    event = TokenEvent(
        EventKind.TOOL_CALL, "agent", "run-1", 4, loop=3, text="x", tool_call=ToolCallDelta(1, "c1", "f", '{"a"'),
        usage=Usage(1, 2, 3), finish_reason="tool_calls", error=StreamCutError("cut"), time=12.25, model="gpt",
    )
    wire = event_to_wire(event)
    assert wire["error"] == {"type": "StreamCutError", "message": "cut"}
    assert set(wire) == {"kind", "agent", "run_id", "seq", "loop", "text", "tool_call", "usage", "finish_reason",
                         "error", "time", "model"}
    back = event_from_wire(wire)
    _same([back], [event])
    # relayed again, the remote error keeps the original type and message
    assert event_to_wire(back)["error"] == {"type": "StreamCutError", "message": "cut"}


def test_a_remote_run_error_says_what_failed() -> None:
    error = RemoteRunError("RateLimitError", "slow down", partial_text="Hel")
    assert str(error) == "RateLimitError: slow down"
    assert (error.type, error.message, error.partial_text) == ("RateLimitError", "slow down", "Hel")
    assert "RateLimitError" in repr(error)


@pytest.mark.parametrize(
    "payload",
    [b"not json", b"{}", b'{"v": 2, "run_id": "r", "agent": "", "model": "", "first": 0, "last": 0, "tokens": 0, '
     b'"events": [{"kind": "token"}]}', b'{"v": 1, "run_id": "r", "agent": "", "model": "", "first": 0, "last": 3, '
     b'"tokens": 0, "events": [{"kind": "token"}]}', b'{"v": 1, "run_id": "r", "agent": "", "model": "", '
     b'"first": 0, "last": 0, "tokens": 0, "events": [{"kind": "nonsense"}]}'],
)
def test_malformed_messages_raise_bus_error(payload: bytes) -> None:
    with pytest.raises(BusError, match="not an rxagents bus message"):
        decode_message(payload)


def test_encode_refuses_events_that_are_not_consecutive_events_of_one_run() -> None:
    a = TokenEvent(EventKind.TOKEN, "A", "r1", 0)
    with pytest.raises(ValueError, match="at least one"):
        encode_message([])
    with pytest.raises(ValueError, match="consecutive"):
        encode_message([a, TokenEvent(EventKind.TOKEN, "A", "r1", 2)])
    with pytest.raises(ValueError, match="consecutive"):
        encode_message([a, TokenEvent(EventKind.TOKEN, "A", "r2", 1)])


def test_run_tokens_are_subject_safe_and_distinct() -> None:
    ids = ["run-1", "run.1", "run 1", "run*", "=run", "run>", "Ünï", "a" * 300]
    tokens = [run_token(run_id) for run_id in ids]
    assert len(set(tokens)) == len(ids)
    assert tokens[0] == "run-1"
    assert all(not any(c in token for c in ".*> ") for token in tokens)


# --- connect_bus and options


def test_connect_bus_picks_the_adapter_by_scheme() -> None:
    assert isinstance(connect_bus("nats://127.0.0.1:4222"), NatsBus)
    assert isinstance(connect_bus("tls://127.0.0.1:4222"), NatsBus)
    assert isinstance(connect_bus("nats://a:4222,nats://b:4223"), NatsBus)
    assert isinstance(connect_bus("redis://127.0.0.1:6379/2"), RedisBus)
    assert isinstance(connect_bus("rediss://127.0.0.1:6379"), RedisBus)


@pytest.mark.parametrize("url", ["http://x:1", "kafka://x:9092", "", "nats://", 42])
def test_connect_bus_refuses_other_urls(url: object) -> None:
    with pytest.raises(ConfigurationError, match="url"):
        connect_bus(url)  # type: ignore[arg-type]


def test_urls_with_credentials_are_shown_without_them() -> None:
    nats = connect_bus("nats://alice:pa55word@127.0.0.1:4222,nats://t0kenvalue@127.0.0.1:4223")
    assert repr(nats) == "NatsBus('nats://127.0.0.1:4222,nats://127.0.0.1:4223', stream='RXAGENTS_RUNS')"
    redis = connect_bus("redis://bob:pa55word@127.0.0.1:6379/1")
    assert "pa55word" not in repr(redis) and "bob" not in repr(redis)
    with pytest.raises(ConfigurationError) as bad:
        connect_bus("ftp://alice:pa55word@host")
    assert "pa55word" not in str(bad.value)


@pytest.mark.parametrize(
    ("options", "name"),
    [({"max_age": 0}, "max_age"), ({"max_bytes": 0}, "max_bytes"), ({"max_msgs_per_run": -1}, "max_msgs_per_run"),
     ({"stream": "a.b"}, "stream"), ({"subject_prefix": "a.>"}, "subject_prefix"), ({"heartbeat": 0}, "heartbeat"),
     ({"credentials": "/no/such.creds"}, "credentials")],
)
def test_nats_options_are_checked(options: dict[str, object], name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        NatsBus("nats://127.0.0.1:4222", **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "name"),
    [({"max_age": -1}, "max_age"), ({"max_msgs_per_run": 0}, "max_msgs_per_run"), ({"prefix": ""}, "prefix"),
     ({"block": 0}, "block")],
)
def test_redis_options_are_checked(options: dict[str, object], name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        RedisBus("redis://127.0.0.1:6379", **options)  # type: ignore[arg-type]


def test_publish_and_attach_options_are_checked_when_built() -> None:
    from rxagents.bus import attach, publish

    bus = NatsBus()
    with pytest.raises(ConfigurationError, match="max_buffer"):
        publish(bus, max_buffer=0)
    with pytest.raises(ConfigurationError, match="coalesce"):
        publish(bus, coalesce="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="bus"):
        publish("nats://x")  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="from_seq"):
        attach(bus, "run-1", -1)
    with pytest.raises(ConfigurationError, match="run_id"):
        attach(bus, "")
    with pytest.raises(ConfigurationError, match="gap_timeout"):
        attach(bus, "run-1", gap_timeout=0)


def test_attaching_through_a_bus_that_is_not_connected_fails_on_subscribe() -> None:
    from rxagents.bus import attach

    errors: list[Exception] = []
    attach(NatsBus(), "run-1").subscribe(on_error=errors.append)
    assert len(errors) == 1 and isinstance(errors[0], BusError) and "not connected" in str(errors[0])


# --- the facade


def test_the_facade_exports_exactly_its_all() -> None:
    public = {
        name
        for name, value in vars(bus_package).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert public == set(bus_package.__all__)
    assert all(hasattr(bus_package, name) for name in bus_package.__all__)


def test_importing_rxagents_does_not_import_the_bus_or_its_clients() -> None:
    probe = "import sys, rxagents; print(sorted(m for m in ('rxagents.bus', 'nats', 'redis') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_importing_the_bus_does_not_import_the_broker_clients() -> None:
    probe = "import sys, rxagents.bus; print(sorted(m for m in ('nats', 'redis') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
