from __future__ import annotations

import gc
import time
from collections.abc import Callable

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from rxagents.models import tokenize
from rxagents.models._tokenize import MAX_TOKEN_CHARS, count_tokens

# Text of every shape the tokenizer distinguishes: words (any script), long words, punctuation runs,
# whitespace runs of any length.
pieces = st.sampled_from(["a", "ab", "Neural", "networks", "incomprehensibility", "don't", "流式输出", "é", "_1"])
shaped_text = st.lists(
    st.one_of(pieces, st.sampled_from([",", ".", "...", "?!", "✨", "(", '"']), st.text(" \t\n", max_size=40)),
    max_size=30,
).map("".join)


@given(st.text())
def test_tokenize_round_trips_any_text(text: str) -> None:
    assert "".join(tokenize(text)) == text


@given(st.one_of(st.text(), shaped_text))
@example(" " * 30 + "word")
@example("?" * 30)
def test_no_token_is_empty_or_longer_than_the_bound(text: str) -> None:
    assert all(0 < len(token) <= MAX_TOKEN_CHARS for token in tokenize(text))


@given(st.one_of(st.text(), shaped_text))
def test_count_tokens_counts_the_tokens(text: str) -> None:
    assert count_tokens(text) == len(tokenize(text))


def test_tokens_have_realistic_boundaries() -> None:
    # short words whole with their leading space, long ones in sub-word pieces, punctuation alone
    assert tokenize("Neural networks, simply.") == ["Neural", " net", "work", "s", ",", " simply", "."]
    assert tokenize("Well... don't stop!?") == ["Well", "...", " don't", " stop", "!?"]
    # 7-8 characters: 3 then the rest; longer: 4, then pieces of 4
    assert tokenize("streams operator") == ["str", "eams", " ope", "rato", "r"]
    assert tokenize(" incomprehensibility") == [" inco", "mpre", "hens", "ibil", "ity"]


def test_long_runs_of_whitespace_are_split_and_the_last_bit_joins_the_next_word() -> None:
    assert tokenize("\n\n  code") == ["\n\n  code"]
    assert tokenize(" " * 40 + "x") == [" " * 16, " " * 16, " " * 8 + "x"]
    assert tokenize(" " * 33) == [" " * 16, " " * 16, " "]


def test_punctuation_runs_are_split_in_fours() -> None:
    assert tokenize(" ==========") == [" ====", "====", "=="]


def _best_of(repeats: int, work: Callable[[], object]) -> float:
    """The least CPU time of ``repeats`` runs: CPU time leaves out the time other processes run (a loaded
    machine), the minimum leaves out this process's own hiccups."""
    gc.disable()
    try:
        times = []
        for _ in range(repeats):
            start = time.process_time()
            work()
            times.append(time.process_time() - start)
        return min(times)
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "unit",
    ["a", "ab ", " .,\n", "流式输出é ", "  \t"],
    ids=["one huge word", "many short words", "whitespace and punctuation", "unicode", "only whitespace"],
)
def test_tokenizing_takes_linear_time(unit: str) -> None:
    # 8 times the text must take about 8 times as long (64 times if quadratic); 16 leaves room for noise
    size = 100_000
    small, large = unit * (size // len(unit)), unit * (8 * size // len(unit))
    ratio = _best_of(5, lambda: tokenize(large)) / _best_of(5, lambda: tokenize(small))
    assert ratio < 16, f"8x the text took {ratio:.1f}x as long"
    assert max(map(len, tokenize(large))) <= MAX_TOKEN_CHARS
