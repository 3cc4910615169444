"""The run-grammar guard: ``assert_well_formed`` (the grammar itself: :mod:`rxagents._core.grammar`)."""

from __future__ import annotations

from collections.abc import Callable

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxagents._core.grammar import RunGrammar
from rxagents.events import EventKind, TokenEvent
from rxagents.operators._errors import Relay, StreamGrammarError

__all__ = ["assert_well_formed"]

Operator = Callable[[Observable[TokenEvent]], Observable[TokenEvent]]


def assert_well_formed() -> Operator:
    """Fail with :class:`StreamGrammarError` as soon as the stream breaks the run grammar.

    Checked per run (``agent``, ``run_id``), so merged multi-agent streams work, with the grammar
    :func:`~rxagents.testing.assert_well_formed_run` uses (where a run may also be cut by an operator):
    ``start (token|reasoning|tool_call|retry)* usage? (finish|error)``, ``seq`` from 0 with no gap or
    duplicate, event times never going backwards, nothing after a terminal event, one start, one usage; and
    the stream may complete only when every started run has its terminal event, and fail only right after
    an ``error`` event (or with no run open): an error must be announced. Upstream errors of a well-formed
    stream pass through unchanged. On a violation the upstream is disposed and the stream fails
    (no ``error`` event is added: the run is already malformed). Use it in tests and while developing an
    operator or backend; it is cheap enough to leave in.

    .. code-block:: text

        source:  -s0--a1--b3--f4-|
        output:  -s0--a1--X              X = on_error(StreamGrammarError("gap in seq: #3 after #1"))

    Returns:
        An operator passing every event of a well-formed stream through unchanged.

    Example::

        stream = my_backend_stream.pipe(assert_well_formed())
    """

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            relay: Relay[TokenEvent] = Relay(observer, keep_events=True)
            grammar = RunGrammar()  # a run may be cut by an operator: error after usage is allowed

            def fail(message: str, event: TokenEvent | None, cause: BaseException | None = None) -> None:
                error = StreamGrammarError(message, event=event)
                error.__cause__ = cause
                relay.fail(error, 0.0, event=False)

            def on_next(event: TokenEvent) -> None:
                with relay.lock:
                    if relay.done:
                        return
                    if not isinstance(event, TokenEvent):
                        fail(f"not a TokenEvent: {type(event).__name__}", None)
                        return
                    problem = grammar.check(event)
                    if problem is not None:
                        fail(problem, event)
                        return
                    relay.on_next(event)

            def open_runs() -> str | None:
                names = [f"{run_id!r} of {agent!r}" for agent, run_id in grammar.open_runs()]
                return ", ".join(names) or None

            def on_error(error: Exception) -> None:
                with relay.lock:
                    announced = relay.last is not None and relay.last.kind is EventKind.ERROR
                    unfinished = None if announced else open_runs()
                    if unfinished is not None and not relay.done:
                        fail(
                            f"the stream failed with {type(error).__name__} but run {unfinished} has no "
                            "error event (an operator or backend ended it without announcing it)",
                            None,
                            error,
                        )
                        return
                    relay.on_error(error)

            def on_completed() -> None:
                with relay.lock:
                    unfinished = open_runs()
                    if unfinished is not None and not relay.done:
                        fail(f"the stream completed but run {unfinished} has no finish event", None)
                        return
                    relay.on_completed()

            relay.upstream.disposable = source.subscribe(on_next, on_error, on_completed, scheduler=scheduler)
            return Disposable(relay.dispose)

        return reactivex.create(subscribe)

    return operator
