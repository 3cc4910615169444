"""The Host and Origin checks shared by the SSE and WebSocket servers (rxagents/sinks/_origin.py)."""

from __future__ import annotations

import pytest

from rxagents.sinks._origin import host_name, host_refusal, normalize_origins, origin_refusal


@pytest.mark.parametrize(
    ("header", "name"),
    [("127.0.0.1:8000", "127.0.0.1"), ("LocalHost:80", "localhost"), ("[::1]:8000", "::1"), ("[::1]", "::1"),
     ("localhost", "localhost"), ("evil.example:8000", "evil.example"), ("", "")],
)  # fmt: skip
def test_host_name_drops_the_port_and_brackets(header: str, name: str) -> None:
    assert host_name(header) == name


@pytest.mark.parametrize("bound", ["127.0.0.1", "localhost", "::1"])
def test_a_loopback_bind_answers_only_loopback_names(bound: str) -> None:
    for header in ("127.0.0.1:1", "localhost:1", "[::1]:1", "LOCALHOST"):
        assert host_refusal(bound, header) is None
    for header in ("evil.example:1", "127.0.0.1.nip.io:1", "", None):
        assert "loopback" in (host_refusal(bound, header) or "")


def test_another_bind_answers_any_host() -> None:
    assert host_refusal("0.0.0.0", "evil.example:1") is None


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "served"),
    [
        (None, "127.0.0.1:8000", frozenset(), True),  # not a page
        ("http://127.0.0.1:8000", "127.0.0.1:8000", frozenset(), True),  # the server's own origin
        ("https://app.example", "app.example", frozenset(), True),  # behind a TLS proxy
        ("http://127.0.0.1:8001", "127.0.0.1:8000", frozenset(), False),  # another port
        ("http://localhost:8000", "127.0.0.1:8000", frozenset(), False),  # another name
        ("http://evil.example", "127.0.0.1:8000", frozenset(), False),
        ("null", "127.0.0.1:8000", frozenset(), False),  # a file or sandboxed page
        ("null", "127.0.0.1:8000", frozenset({"null"}), True),
        ("http://localhost:5173", "127.0.0.1:8000", frozenset({"http://localhost:5173"}), True),
        ("http://localhost:5174", "127.0.0.1:8000", frozenset({"http://localhost:5173"}), False),
        ("http://127.0.0.1:8000", None, frozenset(), False),
    ],
)
def test_origin_refusal(origin: str | None, host: str | None, allowed: frozenset[str], served: bool) -> None:
    refusal = origin_refusal(origin, host, allowed)
    assert (refusal is None) is served
    if not served:
        assert "cross-origin" in (refusal or "") and repr(origin) in (refusal or "")


def test_normalize_origins() -> None:
    assert normalize_origins(["HTTP://LocalHost:5173/", "null", "https://app.example"]) == {
        "http://localhost:5173", "null", "https://app.example",
    }  # fmt: skip
    for bad in ("localhost:5173", "http://localhost:5173/app", "ftp://x", "http://", "http://a b", "*"):
        with pytest.raises(ValueError, match=f"allowed_origins entries must be origins.*got {bad!r}"):
            normalize_origins([bad])
    with pytest.raises(ValueError, match="must be a list of origins"):
        normalize_origins("http://localhost:5173")
