"""The SSE reader follows the event-stream parsing rules, whatever the chunking."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rxagents.models._sse_reader import SSEReader
from tests.strategies import splits, sse_bodies


def _read(*chunks: bytes) -> list[bytes]:
    reader = SSEReader()
    out: list[bytes] = []
    for chunk in chunks:
        out += reader.feed(chunk)
    return out


@given(data=st.data())
def test_any_split_of_a_stream_gives_the_same_events(data: st.DataObject) -> None:
    body, expected = data.draw(sse_bodies())
    assert _read(body) == expected
    assert _read(*data.draw(splits(body))) == expected


@given(data=st.data())
def test_byte_at_a_time_gives_the_same_events(data: st.DataObject) -> None:
    body, expected = data.draw(sse_bodies())
    assert _read(*(body[i : i + 1] for i in range(len(body)))) == expected


def test_lf_crlf_and_cr_all_end_lines() -> None:
    for end in (b"\n", b"\r\n", b"\r"):
        assert _read(b"data: a" + end + end + b"data: b" + end + end) == [b"a", b"b"]


def test_a_crlf_split_between_chunks_is_one_line_end() -> None:
    # "\r" ends the line; the "\n" that opens the next chunk belongs to it (not a blank line dispatching early)
    assert _read(b"data: a\r", b"\ndata: b\r\n\r\n") == [b"a\nb"]


def test_a_cr_at_a_chunk_end_followed_by_another_line_is_a_line_end() -> None:
    assert _read(b"data: a\r", b"data: b\r\r") == [b"a\nb"]


def test_an_empty_chunk_changes_nothing() -> None:
    assert _read(b"data: a\r", b"", b"\ndata: b\r\n\r\n") == [b"a\nb"]


def test_comments_are_ignored() -> None:
    assert _read(b": keep-alive\n\n:\ndata: x\n: inside\n\n") == [b"x"]


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert _read(b"data: {\ndata:  \"a\": 1\ndata\ndata:}\n\n") == [b'{\n "a": 1\n\n}']


def test_only_one_leading_space_is_dropped() -> None:
    assert _read(b"data:x\n\ndata:  x\n\n") == [b"x", b" x"]


def test_an_event_without_data_is_not_dispatched() -> None:
    assert _read(b"event: ping\n\nid: 3\n\n\n\n") == []


def test_event_names_and_unknown_fields_are_ignored() -> None:
    assert _read(b"event: message\nfoo: bar\nnocolon\ndata: x\n\n") == [b"x"]


def test_id_and_retry_fields() -> None:
    reader = SSEReader()
    reader.feed(b"id: 7\nretry: 1500\ndata: x\n\n")
    assert (reader.last_event_id, reader.retry) == ("7", 1500)
    reader.feed(b"id: a\0b\nretry: soon\nretry: -1\nretry: \xd9\xa3\n\n")  # NUL in id, non-ASCII digit
    assert (reader.last_event_id, reader.retry) == ("7", 1500)  # all ignored, as the spec says
    reader.feed(b"id\n\n")
    assert reader.last_event_id == ""  # an empty id resets it


def test_an_unterminated_event_is_discarded() -> None:
    reader = SSEReader()
    assert reader.feed(b"data: done\n\ndata: half") == [b"done"]
    assert reader.feed(b"\n") == []  # the line ended, the event did not
    reader.close()
    assert reader.feed(b"\n") == []  # nothing left over after close()


def test_a_leading_byte_order_mark_is_skipped_even_split() -> None:
    assert _read(b"\xef\xbb\xbfdata: x\n\n") == [b"x"]
    assert _read(b"\xef", b"\xbb", b"\xbfdata: x\n\n") == [b"x"]
    assert _read(b"\xef", b"data: x\n\n") == []  # not a BOM: the first line is the field "\xefdata"


def test_data_is_handed_on_as_bytes_invalid_utf8_included() -> None:
    assert _read(b"data: \xff\xfe\n\n") == [b"\xff\xfe"]
