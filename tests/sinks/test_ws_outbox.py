"""The WebSocket server's send buffer (rxagents/sinks/_ws_outbox.py): merging, the backlog and its bound."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from rxagents.events import EventKind, TokenEvent
from rxagents.sinks._websocket import _Counters
from rxagents.sinks._ws_outbox import OnSlow, Outbox, Pending
from tests.strategies import multi_agent_runs


def token(seq: int, text: str, agent: str = "A") -> Pending:
    return Pending(TokenEvent(EventKind.TOKEN, agent, f"run-{agent}", seq, text=text).to_dict())


def outbox(max_buffer: int = 4, max_buffer_bytes: int = 1000, on_slow: OnSlow = "coalesce") -> Outbox:
    return Outbox(max_buffer=max_buffer, max_buffer_bytes=max_buffer_bytes, on_slow=on_slow, counters=_Counters())


def drain(box: Outbox) -> list[dict[str, Any]]:
    out = []
    while box:
        out.append(json.loads(box.pop().encode()))
    return out


def test_a_burst_queued_while_the_client_keeps_up_is_merged_and_never_refused() -> None:
    box = outbox(max_buffer=4, max_buffer_bytes=100)
    for seq in range(10_000):
        assert box.put(token(seq, f" w{seq}"), behind=False) is None
    assert len(box) == 4 and box.bytes > 100 and box.backlog == 0  # not the client's doing: no backlog
    messages = drain(box)
    assert "".join(m["content"] for m in messages) == "".join(f" w{seq}" for seq in range(10_000))
    assert messages[-1]["coalesced"] == 10_000 - 3 and messages[-1]["last_seq"] == 9_999
    assert (box.bytes, box.backlog) == (0, 0)


def test_one_message_larger_than_the_limit_is_let_through_alone() -> None:
    box = outbox(max_buffer_bytes=1000)
    assert box.put(token(0, "x" * 5000), behind=True) is None  # nothing else waits: let through
    assert box.backlog > 1000
    refused = box.put(token(1, "y"), behind=True)  # but nothing more while the client is behind
    assert refused is not None and "max_buffer_bytes=1000" in refused
    box.clear()
    assert box.put(token(2, "x" * 5000), behind=True) is None
    box.pop()  # the client read it
    assert box.backlog == 0
    assert box.put(token(3, "y" * 900), behind=True) is None


def test_the_backlog_counts_only_what_was_queued_while_the_client_was_behind() -> None:
    box = outbox(max_buffer=100, max_buffer_bytes=1000)
    for seq in range(20):  # a burst: 20 messages of about 150 bytes
        assert box.put(token(seq, "b" * 40), behind=False) is None
    assert box.backlog == 0
    late = token(20, "c" * 40)
    assert box.put(late, behind=True) is None
    assert box.backlog == late.size
    while len(box) > 1:
        box.pop()
    assert box.backlog == late.size  # still waiting
    box.pop()
    assert (box.backlog, box.bytes) == (0, 0)


def test_disconnect_policy_refuses_a_full_outbox_only_when_the_client_is_behind() -> None:
    box = outbox(max_buffer=2, on_slow="disconnect")
    for seq in range(5):
        assert box.put(token(seq, "t"), behind=False) is None  # a burst: merged
    refused = box.put(token(5, "t"), behind=True)
    assert refused is not None and "max_buffer=2" in refused


@given(
    schedule=multi_agent_runs(ending="finish", max_tokens=25),
    data=st.data(),
    max_buffer=st.integers(1, 6),
    max_buffer_bytes=st.integers(100, 3000),
    on_slow=st.sampled_from(["coalesce", "disconnect"]),
)
def test_nothing_is_lost_or_reordered_and_the_backlog_stays_bounded(
    schedule: list[tuple[float, TokenEvent]], data: st.DataObject, max_buffer: int, max_buffer_bytes: int,
    on_slow: OnSlow,
) -> None:  # fmt: skip
    box = outbox(max_buffer, max_buffer_bytes, on_slow)
    sent: list[dict[str, Any]] = []
    refused: str | None = None
    for _, event in schedule:
        behind = data.draw(st.booleans(), label="behind")
        refused = box.put(Pending(event.to_dict()), behind=behind)
        if refused is not None:
            assert behind  # a burst is never refused
            break
        late = [item for item in box.items if item.late]
        assert box.backlog == sum(item.late for item in late)
        assert box.bytes == sum(item.size for item in box.items)
        assert box.backlog <= max_buffer_bytes or len(late) == 1  # the bound, or one message alone
        for _ in range(data.draw(st.integers(0, 2), label="reads")):
            if box:
                sent.append(json.loads(box.pop().encode()))
    if refused is None:
        sent.extend(drain(box))
        assert (box.bytes, box.backlog) == (0, 0)
    for agent in {event.agent for _, event in schedule}:
        mine = [m for m in sent if m["agent"] == agent]
        expected = 0  # every event of the run, in order: seq / last_seq leave no gap
        for m in mine:
            assert m["seq"] == expected
            expected = m.get("last_seq", m["seq"]) + 1
        text = "".join(m["content"] for m in mine if m["type"] == "token")
        full = "".join(e.text for _, e in schedule if e.agent == agent and e.kind is EventKind.TOKEN)
        assert text == full if refused is None else full.startswith(text)
