"""Every law check can fail: for each law, a broken operator is caught, and the message says why."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from typing import Any

import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable

from rxagents.events import EventKind, TokenEvent
from rxagents.testing._laws import Law, check_operator_laws
from tests.testing.law_helpers import Op, caught, custom, is_token


def test_grammar_catches_emitting_after_completion() -> None:
    def subscribe(observer: abc.ObserverBase[Any], scheduler: Any, src: Observable[Any]) -> Any:
        def on_completed() -> None:
            observer.on_completed()
            observer.on_next("late")

        return src.subscribe(observer.on_next, observer.on_error, on_completed)

    message = caught(lambda s: custom(subscribe), Law.GRAMMAR)
    assert "after the terminal" in message


def test_serialised_catches_a_flush_from_inside_dispose() -> None:
    """Flushing buffered events when disposed re-enters the consumer that disposed from its on_next."""

    def subscribe(observer: abc.ObserverBase[Any], scheduler: Any, src: Observable[Any]) -> Any:
        held: list[TokenEvent] = []

        def on_next(ev: TokenEvent) -> None:
            held.append(ev)
            if len(held) == 2:
                observer.on_next(held.pop(0))

        def flush() -> None:
            while held:
                observer.on_next(held.pop(0))

        def on_completed() -> None:
            flush()
            observer.on_completed()

        upstream = src.subscribe(on_next, observer.on_error, on_completed)

        def dispose() -> None:
            upstream.dispose()
            flush()

        return Disposable(dispose)

    message = caught(lambda s: custom(subscribe), Law.SERIALISED)
    assert "while" in message and "in progress" in message


def test_serialised_catches_emitting_from_another_thread() -> None:
    def subscribe(observer: abc.ObserverBase[Any], scheduler: Any, src: Observable[Any]) -> Any:
        def on_next(ev: TokenEvent) -> None:
            worker = threading.Thread(target=observer.on_next, args=(ev,))
            worker.start()
            worker.join()

        return src.subscribe(on_next, observer.on_error, observer.on_completed)

    assert "foreign thread" in caught(lambda s: custom(subscribe), Law.SERIALISED)


def test_cancellation_catches_ignoring_dispose() -> None:
    def subscribe(observer: abc.ObserverBase[Any], scheduler: Any, src: Observable[Any]) -> Any:
        src.subscribe(observer.on_next, observer.on_error, observer.on_completed)
        return Disposable()  # forgets the upstream subscription

    message = caught(lambda s: custom(subscribe), Law.CANCELLATION)
    assert "after dispose" in message


def test_cancellation_catches_an_upstream_left_running_after_dispose() -> None:
    """Goes quiet on dispose but keeps reading the upstream: a leaked connection."""

    def subscribe(observer: abc.ObserverBase[Any], scheduler: Any, src: Observable[Any]) -> Any:
        quiet = False

        def on_next(ev: TokenEvent) -> None:
            if not quiet:
                observer.on_next(ev)

        def silence() -> None:
            nonlocal quiet
            quiet = True

        src.subscribe(on_next, lambda e: None, lambda: None)
        return Disposable(silence)

    assert "was not released by dispose" in caught(lambda s: custom(subscribe), Law.CANCELLATION)


def test_cleanup_catches_subscribing_the_upstream_twice() -> None:
    def subscribe(observer: abc.ObserverBase[Any], scheduler: Any, src: Observable[Any]) -> Any:
        counting = src.pipe(ops.count()).subscribe(lambda n: None)  # a second pass "to count tokens"
        return CompositeDisposable(counting, src.subscribe(observer))

    assert "subscribed 2 times" in caught(lambda s: custom(subscribe), Law.CLEANUP)


def test_cleanup_catches_a_timer_left_running_after_completion() -> None:
    def make(s: abc.SchedulerBase) -> Op:
        def subscribe(observer: abc.ObserverBase[Any], scheduler: Any, src: Observable[Any]) -> Any:
            assert isinstance(s, abc.PeriodicSchedulerBase)
            s.schedule_periodic(1.0, lambda state: state)  # a heartbeat nobody stops
            return src.subscribe(observer)

        return custom(subscribe)

    assert "timer left running" in caught(make, Law.CLEANUP)


def test_error_transparency_catches_replacing_the_error() -> None:
    def wrap(exc: Exception, _: Observable[Any]) -> Observable[Any]:
        return reactivex.throw(RuntimeError(f"wrapped: {exc}"))

    message = caught(lambda s: ops.catch(wrap), Law.ERROR_TRANSPARENCY)
    assert "same exception object" in message


def test_error_transparency_catches_swallowing_the_error() -> None:
    caught(lambda s: ops.catch(reactivex.empty()), Law.ERROR_TRANSPARENCY)


def test_error_transparency_relaxed_still_catches_an_unrelated_error() -> None:
    def wrap(exc: Exception, _: Observable[Any]) -> Observable[Any]:
        return reactivex.throw(RuntimeError("something else"))

    message = caught(lambda s: ops.catch(wrap), Law.ERROR_TRANSPARENCY, handles_errors=True)
    assert "nor caused by it" in message


def tail_dropping_buffer(size: int) -> Op:
    """Joins token texts in groups of ``size``; forgets the last, incomplete group (the spec's bug)."""

    def subscribe(observer: abc.ObserverBase[Any], scheduler: Any, src: Observable[Any]) -> Any:
        held: list[str] = []

        def on_next(ev: TokenEvent) -> None:
            if ev.kind is EventKind.TOKEN:
                held.append(ev.text)
                if len(held) == size:
                    observer.on_next("".join(held))
                    held.clear()

        return src.subscribe(on_next, observer.on_error, observer.on_completed)

    return custom(subscribe)


def test_completion_catches_a_buffer_that_drops_its_tail() -> None:
    assert "tail was lost" in caught(lambda s: tail_dropping_buffer(3), Law.COMPLETION)


def test_conservation_catches_a_buffer_that_drops_its_tail() -> None:
    caught(lambda s: tail_dropping_buffer(3), Law.CONSERVATION)


def test_completion_catches_an_output_that_never_completes() -> None:
    def subscribe(observer: abc.ObserverBase[Any], scheduler: Any, src: Observable[Any]) -> Any:
        return src.subscribe(observer.on_next, observer.on_error, lambda: None)

    assert "ended with no terminal" in caught(lambda s: custom(subscribe), Law.COMPLETION)


def test_conservation_catches_dropped_tokens() -> None:
    def subscribe(observer: abc.ObserverBase[Any], scheduler: Any, src: Observable[Any]) -> Any:
        count = itertools.count()

        def on_next(ev: TokenEvent) -> None:
            if ev.kind is not EventKind.TOKEN or next(count) % 2 == 0:
                observer.on_next(ev)

        return src.subscribe(on_next, observer.on_error, observer.on_completed)

    message = caught(lambda s: custom(subscribe), Law.CONSERVATION)
    assert "    in : " in message and "    out: " in message


def test_order_catches_swapped_tokens() -> None:
    def subscribe(observer: abc.ObserverBase[Any], scheduler: Any, src: Observable[Any]) -> Any:
        held: list[TokenEvent] = []

        def on_next(ev: TokenEvent) -> None:
            if ev.kind is not EventKind.TOKEN:
                observer.on_next(ev)
                return
            held.append(ev)
            if len(held) == 2:
                observer.on_next(held[1])
                observer.on_next(held[0])
                held.clear()

        def on_completed() -> None:
            for ev in held:
                observer.on_next(ev)
            observer.on_completed()

        return src.subscribe(on_next, observer.on_error, on_completed)

    caught(lambda s: custom(subscribe), Law.ORDER)


def test_order_catches_agents_text_interleaved_out_of_order_in_strings() -> None:
    def make(s: abc.SchedulerBase) -> Op:
        def reversed_text(e: TokenEvent) -> str:
            return e.text[::-1]  # reverses each piece

        return reactivex.compose(ops.filter(is_token), ops.map(reversed_text))

    caught(make, Law.ORDER)


def test_cold_repeatability_catches_state_shared_at_factory_level() -> None:
    def make(s: abc.SchedulerBase) -> Op:
        seen: set[tuple[str, int]] = set()  # built once per operator, shared by its subscriptions

        def subscribe(observer: abc.ObserverBase[Any], scheduler: Any, src: Observable[Any]) -> Any:
            def on_next(ev: TokenEvent) -> None:
                if (ev.run_id, ev.seq) not in seen:
                    seen.add((ev.run_id, ev.seq))
                    observer.on_next(ev)

            return src.subscribe(on_next, observer.on_error, observer.on_completed)

        return custom(subscribe)

    assert "second subscription" in caught(make, Law.COLD_REPEATABILITY)


_GLOBAL = itertools.count()


def test_determinism_catches_a_global_counter() -> None:
    def make(s: abc.SchedulerBase) -> Op:
        return ops.map(lambda e: dataclasses.replace(e, model=f"m{next(_GLOBAL)}"))

    assert "fresh scheduler" in caught(make, Law.DETERMINISM)


def test_callback_isolation_catches_a_tap_that_lets_the_callback_exception_through() -> None:
    def boom(ev: TokenEvent) -> None:
        if ev.kind is EventKind.TOKEN:
            raise ValueError("user callback failed")

    def make(s: abc.SchedulerBase) -> Op:
        def subscribe(observer: abc.ObserverBase[Any], scheduler: Any, src: Observable[Any]) -> Any:
            def on_next(ev: TokenEvent) -> None:
                boom(ev)  # not isolated
                observer.on_next(ev)

            return src.subscribe(on_next, observer.on_error, observer.on_completed)

        return custom(subscribe)

    assert "escaped from the operator into the producer" in caught(make, Law.CALLBACK_ISOLATION)


def test_callback_isolation_passes_a_tap_that_isolates_the_callback() -> None:
    def make(s: abc.SchedulerBase) -> Op:
        def safe(ev: TokenEvent) -> None:
            try:
                raise ValueError("user callback failed")
            except ValueError:
                pass

        return ops.do_action(on_next=safe)

    assert Law.CALLBACK_ISOLATION in check_operator_laws(make).checked


def test_callback_isolation_catches_restarting_the_run_when_the_consumer_raises() -> None:
    """The swarms defect: a raising callback treated as a model failure, tokens delivered twice."""

    def subscribe(observer: abc.ObserverBase[Any], scheduler: Any, src: Observable[Any]) -> Any:
        current = CompositeDisposable()

        def start() -> None:
            def on_next(ev: TokenEvent) -> None:
                try:
                    observer.on_next(ev)
                except Exception:
                    start()  # "retry on the fallback model"

            current.add(src.subscribe(on_next, observer.on_error, observer.on_completed))

        start()
        return current

    message = caught(lambda s: custom(subscribe), Law.CALLBACK_ISOLATION)
    assert "delivered twice" in message


def test_pure_factory_catches_scheduling_when_built() -> None:
    def make(s: abc.SchedulerBase) -> Op:
        s.schedule(lambda sch, state: None)  # warm-up work at construction
        return lambda src: src

    assert "scheduled 1 action" in caught(make, Law.PURE_FACTORY)


def test_pure_factory_catches_subscribing_when_applied() -> None:
    def op(src: Observable[TokenEvent]) -> Observable[TokenEvent]:
        src.subscribe(lambda e: None)  # eagerly "warms up" the source
        return src

    assert "subscribed to the upstream" in caught(lambda s: op, Law.PURE_FACTORY)


def test_no_duplication_catches_duplicated_events() -> None:
    def twice(e: TokenEvent) -> list[TokenEvent]:
        return [e, e] if is_token(e) else [e]

    assert "delivered twice" in caught(lambda s: ops.flat_map(twice), Law.NO_DUPLICATION)


def test_no_duplication_catches_a_retry_that_replays_tokens() -> None:
    assert "delivered twice" in caught(lambda s: ops.retry(3), Law.NO_DUPLICATION, handles_errors=True)


def test_no_duplication_catches_repeated_text_in_string_outputs() -> None:
    def make(s: abc.SchedulerBase) -> Op:
        def doubled(e: TokenEvent) -> str:
            return e.text * 2

        return reactivex.compose(ops.filter(is_token), ops.map(doubled))

    caught(make, Law.NO_DUPLICATION)


def test_failure_message_shows_the_output_trace() -> None:
    message = caught(lambda s: tail_dropping_buffer(3), Law.COMPLETION)

    assert "output:" in message and "on_completed()" in message
