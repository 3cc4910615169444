from __future__ import annotations

import re
from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rxagents.models._offline_answer import _ABOUT_TASK, _GENERAL, _NOUNS, answer
from rxagents.models._tokenize import count_tokens

# What an answer may consist of: the fixed sentences, with the task and the system prompt only inside quotes.
_QUOTE_ENDING_A_SENTENCE = r'(?:"[^"\n]*[.!?…]"|"[^"\n]*"\.)'
_HEADER = (
    r"(?:\[offline model\] This answer comes from rxagents' built-in offline model, not an LLM: no provider was "
    rf"called\. (?:You wrote: {_QUOTE_ENDING_A_SENTENCE}|The task was empty\.)"
    r'|\[offline model, loop \d+\] This is another pass over (?:the task "[^"\n]+"|the empty task)\. '
    r"It still comes from rxagents' offline model, not an LLM\.)"
    rf"(?: A real model would also follow the system prompt: {_QUOTE_ENDING_A_SENTENCE})?"
)
_NOUN = "(?:" + "|".join(map(re.escape, _NOUNS)) + ")"


def _sentence_pattern(template: str) -> str:
    escaped = re.escape(template)
    return escaped.replace(re.escape("{a}"), _NOUN).replace(re.escape("{b}"), _NOUN).replace(
        re.escape("{t}"), r'"[^"\s][^"\n]*"'
    )


_SENTENCE = "(?:" + "|".join(_sentence_pattern(t) for t in (*_GENERAL, *_ABOUT_TASK)) + ")"
_ANSWER = re.compile(rf"{_HEADER}(?:(?:\n\n| ){_SENTENCE})*")

texts = st.one_of(
    st.text(),
    st.sampled_from(["", "?", "Explain streams", "What is 2+2?", "def f(x): return x", "Erkläre das!", "説明して"]),
)


@given(system=texts, task=texts, turns=st.integers(0, 3), length=st.integers(1, 300))
def test_any_task_gives_the_fixed_sentences_with_the_task_only_in_quotes(
    system: str, task: str, turns: int, length: int
) -> None:
    text = answer(system, task, turns, length)
    assert _ANSWER.fullmatch(text), text
    assert all(ch.isprintable() or ch == "\n" for ch in text)


@given(system=texts, task=texts, turns=st.integers(0, 3))
def test_the_same_inputs_give_the_same_answer(system: str, task: str, turns: int) -> None:
    assert answer(system, task, turns, 120) == answer(system, task, turns, 120)


def test_the_task_is_quoted_as_written_and_a_question_keeps_its_question_mark() -> None:
    assert 'You wrote: "What is the capital of France?"\n\n' in answer("", "What is the capital of France?", 0, 60)
    assert 'You wrote: "Analyze TSLA stock".\n\n' in answer("", "  Analyze\n TSLA   stock ", 0, 60)
    assert 'You wrote: "?"\n\n' in answer("", "?", 0, 60)
    assert "The task was empty.\n\n" in answer("", " \n ", 0, 60)


def test_a_long_task_is_shortened_at_a_word() -> None:
    quoted = re.search(r'You wrote: "([^"]*)"', answer("", "streaming " * 50, 0, 60))
    assert quoted is not None
    assert quoted.group(1).endswith("streaming...") and len(quoted.group(1)) <= 100


def test_quotes_and_control_characters_in_the_task_cannot_break_the_quote() -> None:
    text = answer("", 'Say "hi"\x1b[31m\x00 twice', 0, 60)
    assert "You wrote: \"Say 'hi' [31m twice\"." in text


def test_the_system_prompt_is_quoted_after_the_task() -> None:
    text = answer("You are a market research specialist.", "Analyze TSLA", 0, 60)
    assert 'You wrote: "Analyze TSLA". A real model would also follow the system prompt: "You are a market' in text


def test_later_loops_say_which_loop() -> None:
    assert answer("", "Explain streams", 2, 10).startswith(
        '[offline model, loop 3] This is another pass over the task "Explain streams".'
    )


def test_words_of_the_task_are_quoted_in_the_sentences_about_it() -> None:
    quoted = set(re.findall(r'"(\w+)"', answer("", "Explain backpressure with buffers", 0, 2_000)))
    assert quoted and quoted <= {"Explain", "backpressure", "buffers"}  # "with" is too common to quote


@pytest.mark.parametrize("length", [1, 120, 50_000])
def test_long_answers_have_about_length_tokens(length: int) -> None:
    tokens = count_tokens(answer("Be brief.", "Explain streams", 0, length))
    assert length <= tokens <= max(length, 80) + 40


@pytest.mark.parametrize("task", ["?", "Explain backpressure with buffers"])
def test_every_sentence_comes_once_before_any_repeats_and_never_twice_in_a_row(task: str) -> None:
    templates = [*_GENERAL, *(_ABOUT_TASK if task != "?" else ())]
    patterns = [re.compile(_sentence_pattern(t)) for t in templates]
    body = answer("", task, 0, 3_000).split("\n\n", 1)[1]
    found = list(re.finditer(_SENTENCE, body))
    used = [next(i for i, p in enumerate(patterns) if p.fullmatch(m.group(0))) for m in found]
    assert len(used) > 3 * len(templates)
    assert sorted(used[: len(templates)]) == list(range(len(templates)))
    assert all(a != b for a, b in pairwise(used))


def test_the_words_of_the_task_are_quoted_in_turn() -> None:
    quoted = re.findall(r'"(\w+)"', answer("", "Explain backpressure with buffers", 0, 3_000))
    assert len(quoted) > 6 and all(a != b for a, b in pairwise(quoted))
