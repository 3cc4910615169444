"""Realistic token boundaries for the offline model, in linear time.

A token is one of:

* a word of up to 6 characters, whole, with the whitespace before it (``" simply"``);
* the pieces of a longer word: its first 3 characters (7–8 character words) or 4 (longer ones), then
  pieces of up to 4 (``" net" "work" "s"``);
* a run of up to 4 punctuation or symbol characters, with the whitespace before it (``","``, ``" ..."``);
* a run of up to 16 whitespace characters that no word or punctuation follows closely enough to join.

Word characters are ``\\w`` (any script) plus ``'``, ``’`` and ``-``. Leading whitespace joins the next
token only if there are at most 16 characters of it, so no token is longer than 22 characters (16 of
whitespace and a 6-character word).

The whole tokenizer is one regular expression whose matches are the tokens: every match is bounded
(possessive quantifiers, no unbounded backtracking), so tokenizing or counting ``n`` characters costs
``O(n)``, whatever the text's shape (one huge word, only whitespace, only punctuation, any script), and the
work happens in the regex engine's C loop rather than per character in Python.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MAX_TOKEN_CHARS", "count_tokens", "tokenize"]

_W = r"[\w'’-]"  # a word character
_P = r"[^\w\s'’-]"  # punctuation or a symbol: neither a word character nor whitespace
_SPACE = 16  # at most this much whitespace joins the next token or forms one token
_PUNCT = 4  # punctuation characters in one token
_WORD = 6  # the longest word that stays whole

#: No token is longer than this many characters.
MAX_TOKEN_CHARS: Final = _SPACE + max(_WORD, _PUNCT)

_TOKEN: Final = re.compile(
    # optional leading whitespace, then a word's first token or a run of punctuation
    rf"\s{{0,{_SPACE}}}+(?:"
    rf"(?<!{_W})(?:"
    rf"{_W}{{1,{_WORD}}}+(?!{_W})"  # a word of 1-6 characters, whole
    rf"|{_W}{{3}}(?={_W}{{4,5}}+(?!{_W}))"  # the first 3 characters of a 7-8 character word
    rf"|{_W}{{4}}"  # the first 4 characters of a longer word
    rf")"
    rf"|{_P}{{1,{_PUNCT}}}+"
    rf")"
    rf"|(?<={_W}){_W}{{1,4}}"  # the next piece of a long word
    rf"|\s{{1,{_SPACE}}}"  # whitespace that joins nothing
)


def tokenize(text: str) -> list[str]:
    """Split ``text`` at realistic token boundaries; ``"".join(tokenize(t)) == t``.

    Example:
        >>> tokenize("Neural networks, simply.")
        ['Neural', ' net', 'work', 's', ',', ' simply', '.']
    """
    return _TOKEN.findall(text)


def count_tokens(text: str) -> int:
    """``len(tokenize(text))`` without building the list."""
    return _TOKEN.subn("", text)[1]
