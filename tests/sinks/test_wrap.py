"""StreamWrap: line breaks between words, decided as the pieces arrive; nothing reordered, lost or held long."""

from __future__ import annotations

import doctest

from hypothesis import given
from hypothesis import strategies as st
from rich.cells import cell_len

from rxagents.sinks import _wrap
from rxagents.sinks._wrap import StreamWrap
from tests.strategies import texts_split


def wrapped(pieces: list[str], width: int) -> tuple[str, list[str]]:
    """All output (after a final flush), and the output after each piece."""
    wrap = StreamWrap(lambda: width)
    steps = [wrap.feed(piece) for piece in pieces]
    return "".join(steps) + wrap.flush(), steps


def inserted_breaks(out: str, text: str) -> list[int] | None:
    """Positions in ``out`` of the line breaks that are not in ``text``; None if ``out`` is not ``text`` with
    only line breaks inserted."""
    inserted: list[int] = []
    i = 0
    for j, ch in enumerate(out):
        if i < len(text) and ch == text[i]:
            i += 1
        elif ch == "\n":
            inserted.append(j)
        else:
            return None
    return inserted if i == len(text) else None


def test_a_word_that_does_not_fit_goes_to_the_next_line_whole() -> None:
    out, _ = wrapped(["Please ", "Expl", "ain the", " plan"], 12)
    assert out == "Please \nExplain the \nplan"


def test_a_partial_word_is_held_only_until_it_is_known_to_fit() -> None:
    _, steps = wrapped(["Please ", "Expl", "ain", " it"], 12)
    assert steps == ["Please ", "", "\nExplain", " "]  # "Expl" could still fit; "Explain" cannot; "it" may go on


def test_a_word_at_the_start_of_a_line_is_written_at_once() -> None:
    wrap = StreamWrap(lambda: 40)
    assert [wrap.feed(piece) for piece in ["Neu", "ral", " ne", "tworks", " "]] == ["Neu", "ral", " ", "", "networks "]
    # "Neural" starts the line: it can never move; "networks" starts mid-line: held until it ends


def test_a_word_longer_than_the_width_gets_its_own_line() -> None:
    out, _ = wrapped(["see https://example.com/a/long/path now"], 10)
    assert out == "see \nhttps://example.com/a/long/path\n now"


def test_newlines_in_the_text_start_a_new_line() -> None:
    out, _ = wrapped(["one two\nthree four five"], 10)
    assert out == "one two\nthree \nfour five"  # "three four" is 10 cells, but the space after it is not


def test_wide_characters_count_two_cells() -> None:
    out, _ = wrapped(["ab 界界界"], 7)
    assert out == "ab \n界界界"


def test_tabs_advance_to_the_next_tab_stop() -> None:
    out, _ = wrapped(["ab\tcd\tef"], 12)
    assert out == "ab\tcd\n\tef"  # "ab", a tab -> 8, "cd" -> 10, a tab -> 16 > 12: on the next line


def test_the_width_is_read_again_at_each_new_line() -> None:
    widths = iter([10, 20, 20])
    wrap = StreamWrap(lambda: next(widths))
    out = wrap.feed("aaaa bbbb cccc dddd eeee ffff") + wrap.flush()
    assert out == "aaaa bbbb \ncccc dddd eeee ffff"


def test_text_written_around_the_wrapper_is_counted() -> None:
    wrap = StreamWrap(lambda: 10)
    wrap.wrote("[A] ")
    assert wrap.feed("abcde fg") + wrap.flush() == "abcde \nfg"  # 4 + 8 cells: "fg" does not fit


def test_docstring_example() -> None:
    results = doctest.testmod(_wrap)
    assert results.failed == 0 and results.attempted >= 2


def _cells(text: str) -> int:
    return cell_len(text)


@given(texts_split(alphabet="abcdé界 \n", max_pieces=30, max_piece_size=8), st.integers(1, 30))
def test_wrapping_only_inserts_line_breaks_between_words(pieces: list[str], width: int) -> None:
    text = "".join(pieces)
    out, steps = wrapped(pieces, width)
    breaks = inserted_breaks(out, text)
    assert breaks is not None, (out, text)  # nothing reordered, lost or added but line breaks
    for line in out.split("\n"):  # no line too wide, except one holding a single longer word
        assert _cells(line) <= width or " " not in line, (line, width)
    for at in breaks:  # never inside a word
        assert out[at - 1 : at] in ("", " ", "\n") or out[at + 1 : at + 2] in ("", " ", "\n"), (out, at)
    # what is held back after a piece is only the start of the last word, never more
    written = ""
    for n, step in enumerate(steps, start=1):
        written += step
        so_far = "".join(pieces[:n])
        shown = written.replace("\n", "")
        held = so_far.replace("\n", "")[len(shown) :]
        assert so_far.replace("\n", "").startswith(shown)
        assert " " not in held and "\n" not in so_far[len(so_far) - len(held) :]
