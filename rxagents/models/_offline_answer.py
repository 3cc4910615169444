"""The offline model's answer text: plain English, deterministic, honest about what it is.

The answer is built from fixed sentences. The task and the system prompt only ever appear *quoted* —
the task as ``You wrote: "..."``, its words as ``"word"`` in places where any noun phrase fits — so any
task, in any language or shape (a question, code, ``"?"``, nothing at all), gives grammatical sentences.
Which sentences, in which order, and which quoted words follow from a hash of the system prompt, the task
and the loop number: the same inputs always give the same answer; different ones almost always differ.

Building an answer costs time linear in its length and, for huge tasks, only reads a bounded prefix of the
task besides hashing it once.
"""

from __future__ import annotations

import hashlib
import re
from typing import Final

from rxagents.models._tokenize import count_tokens

__all__ = ["answer"]

_PEEK = 2000  # characters of a task or system prompt read for quotes and terms
_TERM = re.compile(r"\b[^\W\d_]{4,24}\b")  # a whole word of 4-24 letters, any script
#: Common words not worth quoting back.
_STOPWORDS: Final = frozenset((
    "about", "above", "after", "again", "also", "always", "among", "another", "because", "been", "before", "being",
    "below", "between", "both", "could", "does", "doing", "down", "during", "each", "either", "every", "from",
    "further", "have", "having", "here", "into", "just", "like", "make", "makes", "many", "more", "most", "much",
    "must", "need", "only", "other", "over", "please", "same", "should", "since", "some", "such", "than", "that",
    "their", "them", "then", "there", "these", "they", "this", "those", "through", "under", "until", "upon", "very",
    "want", "what", "when", "where", "which", "while", "will", "with", "within", "without", "would", "your", "yours"
))  # fmt: skip
#: Plural noun phrases: every sentence using them agrees with a plural subject.
_NOUNS: Final = (
    "token streams", "operators", "events", "agents", "buffers", "schedulers", "pipelines",
    "callbacks", "dashboards", "subscribers",
)  # fmt: skip
#: Sentences about the library; ``{a}`` and ``{b}`` are two different entries of ``_NOUNS``.
_GENERAL: Final = (
    "In practice, {a} and {b} are composed so that nothing is lost.",
    "Each step keeps the {a} in order while the {b} stay responsive.",
    "A careful design treats {a} as values and {b} as transformations.",
    "When {a} slow down, {b} absorb the difference without blocking.",
    "Testing {a} in virtual time makes {b} reproducible.",
    "The key idea is that {a} describe what happens, while {b} decide when.",
    "These words arrive one token at a time, just as they would from a real provider.",
    "The same task and system prompt always produce the same answer, so tests can rely on it.",
)
#: Sentences about the task; ``{t}`` is a word of the task, in quotes.
_ABOUT_TASK: Final = (
    "A real model would begin by working out what {t} means in this task.",
    "An LLM would connect {t} to the rest of the request before answering.",
    "Here the offline model can only point at {t}; it does not understand it.",
    "A useful answer would explain how {t} fits into the bigger picture.",
    "With a provider key set, the same code would send {t} and the rest of the task to a real model.",
)
_PARAGRAPH = 4  # sentences per paragraph after the first


def _peek(text: str) -> str:
    """The start of ``text``, from its first non-whitespace character: all the answer ever quotes."""
    first = re.search(r"\S", text)
    return "" if first is None else text[first.start() : first.start() + _PEEK]


def _excerpt(text: str, limit: int) -> str:
    """The start of ``text`` on one line, at most ``limit`` characters, cut at a word with ``...``."""
    printable = "".join(ch if ch.isprintable() else " " for ch in _peek(text))
    line = " ".join(printable.split()).replace('"', "'")
    if len(line) <= limit:
        return line
    cut = line[: limit - 3]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:") + "..."


def _quoted(excerpt: str) -> str:
    """``"excerpt"`` ending a sentence: the quote's own final punctuation ends it, else a period."""
    return f'"{excerpt}"' if excerpt.endswith((".", "!", "?", "…")) else f'"{excerpt}".'


def _terms(text: str) -> list[str]:
    """Distinct content words of the start of ``text``, in order of appearance."""
    seen: set[str] = set()
    terms: list[str] = []
    for word in _TERM.findall(_peek(text)):
        key = word.casefold()
        if key not in seen and key not in _STOPWORDS:
            seen.add(key)
            terms.append(word)
    return terms


def _header(system: str, task: str, turns: int) -> str:
    topic = _excerpt(task, 100)
    if turns:
        said = f'over the task "{topic}"' if topic else "over the empty task"
        head = (
            f"[offline model, loop {turns + 1}] This is another pass {said}. "
            "It still comes from rxagents' offline model, not an LLM."
        )
    else:
        said = f"You wrote: {_quoted(topic)}" if topic else "The task was empty."
        head = (
            "[offline model] This answer comes from rxagents' built-in offline model, not an LLM: "
            f"no provider was called. {said}"
        )
    role = _excerpt(system, 60)
    if role:
        head += f" A real model would also follow the system prompt: {_quoted(role)}"
    return head


def _shuffled(size: int, digest: bytes, cycle: int) -> list[int]:
    """A permutation of ``range(size)`` drawn from ``digest`` (Fisher-Yates), a different one per ``cycle``."""
    order = list(range(size))
    for k in range(size - 1, 0, -1):
        j = digest[(k + 3 * cycle) % len(digest)] % (k + 1)
        order[k], order[j] = order[j], order[k]
    return order


def answer(system: str, task: str, turns: int, length: int) -> str:
    """The answer to ``task`` under ``system`` on loop ``turns + 1``: about ``length`` tokens, at least the header.

    The sentences come in a shuffled order, every one of them before any repeats, a new order each round.
    """
    digest = hashlib.sha256(
        "\x00".join((system, task, str(turns))).encode("utf-8", "surrogatepass")
    ).digest()
    terms = [f'"{term}"' for term in _terms(task)]
    pool = [*_GENERAL, *(_ABOUT_TASK if terms else ())]
    head = _header(system, task, turns)
    parts = [head]
    count = count_tokens(head)
    order: list[int] = []
    i = quoted = 0
    while count < length:  # counted sentence by sentence: linear in the answer's length
        if i % len(pool) == 0:
            previous = order[-1] if order else None
            order = _shuffled(len(pool), digest, i // len(pool))
            if order[0] == previous:  # never the same sentence twice in a row
                order[0], order[1] = order[1], order[0]
        a = digest[(i + 11) % len(digest)] % len(_NOUNS)
        b = (a + 1 + digest[(i + 19) % len(digest)] % (len(_NOUNS) - 1)) % len(_NOUNS)
        template = pool[order[i % len(pool)]]
        term = ""
        if "{t}" in template:  # the task's words in turn
            term, quoted = terms[(digest[5] + quoted) % len(terms)], quoted + 1
        sentence = template.format(a=_NOUNS[a], b=_NOUNS[b], t=term)
        parts.append(("\n\n" if i % _PARAGRAPH == 0 else " ") + sentence)
        count += count_tokens(parts[-1])
        i += 1
    return "".join(parts)
