"""Text of a stream: running text, the final text, text deltas, and per-kind filters.

The *answer text* of a stream is the concatenated ``text`` of its ``token`` events. A ``retry`` event
(emitted by :func:`rxagents.operators.retry` with ``after_tokens="restart"``) announces that the run
restarted and the text so far is void, so :func:`running_text` and :func:`collect_text` start again from
``""`` at a ``retry`` event. These operators are meant for the stream of one agent; for a workflow's merged
stream, split it by agent first (``group_by(lambda e: e.agent)``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from reactivex import Observable, abc
from reactivex.disposable import CompositeDisposable, Disposable

from rxagents._validate import fail
from rxagents.events import EventKind, TokenEvent

__all__ = ["collect_text", "exclude", "only", "running_text", "text_only"]

_TOKEN = EventKind.TOKEN
_RETRY = EventKind.RETRY


def running_text() -> Callable[[Observable[TokenEvent]], Observable[str]]:
    """The answer text so far, emitted after every token event that adds to it (a ``scan``).

    Token events with empty text add nothing and emit nothing; other kinds are dropped. A ``retry`` event
    resets the text to ``""`` (and emits ``""`` when text had been emitted, so a display clears the void
    attempt). Errors and completion pass through unchanged.

    .. code-block:: text

        source:  -s-a--b--c-f-|            a="The", b=" cat", c=" sat"
        output:  ---A--B--C---|            A="The", B="The cat", C="The cat sat"

        source:  -s-a-r-a-b-f-|            r = retry event
        output:  ---A-E-A-B---|            E="" (the first attempt is void)

    Each emission is a new string (O(length) to build), so a long answer costs O(n²) in total: for a live
    display, prefer :func:`throttle_text`, which emits at most one frame per interval.

    Returns:
        An operator from TokenEvents to the running answer text (``str``).

    Example::

        agent.stream(task).pipe(running_text()).subscribe(lambda text: label.update(text))
    """

    def operator(source: Observable[TokenEvent]) -> Observable[str]:
        def subscribe(
            observer: abc.ObserverBase[str], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            text = ""
            emit = observer.on_next

            def on_next(event: TokenEvent) -> None:
                nonlocal text
                kind = event.kind
                if kind is _TOKEN:
                    delta = event.text
                    if delta:
                        text += delta
                        emit(text)
                elif kind is _RETRY and text:
                    text = ""
                    emit(text)

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return operator


def collect_text() -> Callable[[Observable[TokenEvent | str]], Observable[str]]:
    """One string, the whole answer text, emitted when the stream completes.

    Collects the text of token events, and ``str`` items as they are (so it also ends a pipeline of text
    chunks: ``buffer_tokens(20), pace(0.1), collect_text()``). A ``retry`` event discards the text
    collected so far (the restarted attempt's text is the answer). An empty stream (or one with no token
    text) gives ``""``. An error passes through unchanged and nothing is
    emitted: the text that arrived before a failed run is in the error's ``partial_text`` (every
    :class:`~rxagents.errors.RxAgentsError` carries it), never returned as if the run had succeeded.

    The text is that of every token event in the stream, all loops included (``Agent.run`` returns the
    last loop's text; with the default ``max_loops=1`` they are the same).

    .. code-block:: text

        source:  -s-a--b--c-f-|            a="The", b=" cat", c=" sat"
        output:  -------------(T|)         T="The cat sat"

        source:  -s-a--b-#
        output:  --------#                 the same exception; its .partial_text is "The cat"

    Returns:
        An operator from TokenEvents to a single ``str``.

    Example::

        async with to_async_iter(agent.stream(task).pipe(collect_text())) as texts:
            async for text in texts:
                print(text)
    """

    def operator(source: Observable[TokenEvent | str]) -> Observable[str]:
        def subscribe(
            observer: abc.ObserverBase[str], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            parts: list[str] = []
            append = parts.append
            disposed = False

            def on_next(item: TokenEvent | str) -> None:
                if isinstance(item, str):
                    append(item)
                    return
                kind = item.kind
                if kind is _TOKEN:
                    append(item.text)
                elif kind is _RETRY:
                    parts.clear()

            def on_completed() -> None:
                observer.on_next("".join(parts))
                if not disposed:  # the consumer may dispose from inside on_next
                    observer.on_completed()

            def dispose() -> None:
                nonlocal disposed
                disposed = True

            upstream = source.subscribe(on_next, observer.on_error, on_completed, scheduler=scheduler)
            return CompositeDisposable(upstream, Disposable(dispose))

        return Observable(subscribe)

    return operator


def text_only() -> Callable[[Observable[TokenEvent]], Observable[str]]:
    """The text delta of each token event, as a ``str``; every other event is dropped.

    Token events with empty text are dropped too. ``retry`` events are dropped: put this after a
    :func:`retry` with ``after_tokens="fail"`` (the default), or use :func:`running_text`, if a restart
    must not mix two attempts' text.

    .. code-block:: text

        source:  -s-a--b--c-u-f-|          a="The", b=" cat", c=" sat"
        output:  ---a--b--c-----|          "The", " cat", " sat"

    Returns:
        An operator from TokenEvents to text deltas (``str``).

    Example::

        agent.stream(task).pipe(text_only()).subscribe(lambda t: print(t, end="", flush=True))
    """

    def operator(source: Observable[TokenEvent]) -> Observable[str]:
        def subscribe(
            observer: abc.ObserverBase[str], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            emit = observer.on_next

            def on_next(event: TokenEvent) -> None:
                if event.kind is _TOKEN and event.text:
                    emit(event.text)

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return operator


def _kinds(function: str, kinds: Iterable[Any]) -> frozenset[EventKind]:
    out: set[EventKind] = set()
    for kind in kinds:
        if isinstance(kind, EventKind):
            out.add(kind)
            continue
        try:
            out.add(EventKind(kind))
        except ValueError:
            valid = ", ".join(repr(k.value) for k in EventKind)
            fail(f"{function}() kinds", f"EventKind members or one of {valid}", kind)
    if not out:
        fail(f"{function}() kinds", "at least one event kind", (), hint=f"e.g. {function}(EventKind.TOKEN)")
    return frozenset(out)


def _filter(kinds: frozenset[EventKind], keep: bool) -> Callable[[Observable[TokenEvent]], Observable[TokenEvent]]:
    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            emit = observer.on_next

            if keep:

                def on_next(event: TokenEvent) -> None:
                    if event.kind in kinds:
                        emit(event)

            else:

                def on_next(event: TokenEvent) -> None:
                    if event.kind not in kinds:
                        emit(event)

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return Observable(subscribe)

    return operator


def only(*kinds: EventKind | str) -> Callable[[Observable[TokenEvent]], Observable[TokenEvent]]:
    """Keep the events of the given kinds, drop the rest.

    .. code-block:: text

        source:  -s-a-t-b-u-f-|            a, b token; t tool_call; u usage
        output:  ---a---b-----|            only(EventKind.TOKEN)

    Args:
        kinds: one or more :class:`~rxagents.events.EventKind` members or their values (``"token"``).

    Returns:
        An operator passing the matching events through unchanged.

    Raises:
        ValueError: no kinds, or an unknown kind.

    Example::

        agent.stream(task).pipe(only(EventKind.TOKEN, EventKind.FINISH)).subscribe(print)
    """
    return _filter(_kinds("only", kinds), keep=True)


def exclude(*kinds: EventKind | str) -> Callable[[Observable[TokenEvent]], Observable[TokenEvent]]:
    """Drop the events of the given kinds, keep the rest.

    .. code-block:: text

        source:  -s-a-r-b-u-f-|            a, b token; r reasoning; u usage
        output:  -s-a---b-u-f-|            exclude("reasoning")

    Args:
        kinds: one or more :class:`~rxagents.events.EventKind` members or their values (``"reasoning"``).

    Returns:
        An operator passing the other events through unchanged.

    Raises:
        ValueError: no kinds, or an unknown kind.

    Example::

        agent.stream(task).pipe(exclude(EventKind.REASONING)).subscribe(print)
    """
    return _filter(_kinds("exclude", kinds), keep=False)
