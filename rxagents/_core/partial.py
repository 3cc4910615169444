"""The answer text of a stream as its consumers hold it: :class:`PartialText`, and a run's answer,
:class:`AnswerText`.

What text survives a ``retry`` is decided here, once: :meth:`PartialText.add`. Every other reading of a run's text
(the partial text of an error, the answer ``Agent.run`` returns, a workflow's answers and token counts) is made
with these."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from rxagents.events import EventKind, TokenEvent

__all__ = ["AnswerText", "PartialText", "RunKey", "answer_of"]

#: A run of a stream: ``(agent, run_id)``; None for text that belongs to no run (plain ``str`` items).
RunKey = tuple[str, str] | None

_TOKEN, _RETRY = EventKind.TOKEN, EventKind.RETRY  # read once: a member read from its class is a metaclass lookup


class PartialText:
    """The text of the ``token`` events seen so far, honouring ``retry``.

    A ``retry`` event says its run starts again and consumers discard that run's text so far: so does this
    (other runs of a merged stream keep theirs). Texts stay in arrival order, interleaved runs included.

    The one accumulator of partial text: :func:`rxagents.errors.partial_text_of`, the operators' ``Relay``
    (the ``partial_text`` of the errors operators raise), ``to_async_iter``'s ``SlowConsumerError`` and
    the marble helpers' ``text_of_items`` use it; :meth:`by_run` gives what the WebSocket session keeps per run.

    >>> from rxagents.events import EventKind as K, TokenEvent as E
    >>> text = PartialText([E(K.TOKEN, "A", "r1", 1, text="Hel"), E(K.RETRY, "A", "r1", 2)])
    >>> text.add(E(K.TOKEN, "A", "r1", 3, text="Hello"))
    >>> text.text
    'Hello'
    """

    __slots__ = ("_pieces",)

    def __init__(self, events: Iterable[TokenEvent] = ()) -> None:
        self._pieces: list[tuple[RunKey, str]] = []
        for event in events:
            self.add(event)

    def add(self, event: TokenEvent) -> None:
        """Take ``event`` into account: a token adds its text, a retry discards its run's text."""
        kind = event.kind
        if kind is _TOKEN:
            self._pieces.append(((event.agent, event.run_id), event.text))
        elif kind is _RETRY:
            self.discard((event.agent, event.run_id))

    def append(self, key: RunKey, text: str) -> None:
        """Add ``text`` for the run ``key`` (None: text of no run, never discarded)."""
        self._pieces.append((key, text))

    def discard(self, key: RunKey) -> None:
        """Forget the text of the run ``key`` so far."""
        if key is not None:
            self._pieces = [piece for piece in self._pieces if piece[0] != key]

    def clear(self) -> None:
        self._pieces.clear()

    @property
    def count(self) -> int:
        """How many texts are kept (for a stream of events: the ``token`` events not discarded)."""
        return len(self._pieces)

    @property
    def text(self) -> str:
        """All the text kept, in arrival order."""
        return "".join(text for _, text in self._pieces)

    def by_run(self) -> dict[RunKey, str]:
        """The text of each run, runs in the order of their first kept text."""
        out: dict[RunKey, list[str]] = {}
        for key, text in self._pieces:
            out.setdefault(key, []).append(text)
        return {key: "".join(parts) for key, parts in out.items()}

    def __repr__(self) -> str:
        return f"PartialText({self.text!r})"


class AnswerText:
    """The answer of one run, followed as its events pass (in order), keeping none of them: the text of its latest
    loop, of what survives its retries (:class:`PartialText` decides that: a ``retry`` starts the run, so the text,
    over). Once the run has finished it is the answer ``Agent.run`` returns; a workflow hands it to the next agent.

    >>> from rxagents.events import EventKind as K, TokenEvent as E
    >>> answer = AnswerText()
    >>> for event in [E(K.TOKEN, "A", "r1", 1, loop=1, text="draft"), E(K.TOKEN, "A", "r1", 2, loop=2, text="final")]:
    ...     answer.add(event)
    >>> answer.text
    'final'
    """

    __slots__ = ("_loop", "_text")

    def __init__(self) -> None:
        self._loop = 0
        self._text = PartialText()

    def add(self, event: TokenEvent) -> None:
        """Follow ``event`` (the next event of the run)."""
        loop = event.loop
        if loop != self._loop:
            if loop > self._loop:  # a later loop: the answer is its text alone
                self._text.clear()
            self._loop = loop  # (an earlier one only after a retry, which discarded the text)
        self._text.add(event)

    @property
    def text(self) -> str:
        return self._text.text


def answer_of(events: Sequence[TokenEvent]) -> str:
    """The answer of one run from its events, in order: :attr:`AnswerText.text` once all were added."""
    answer = AnswerText()
    for event in events:
        answer.add(event)
    return answer.text
