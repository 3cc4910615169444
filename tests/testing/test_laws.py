"""The law checker: correct operators pass; for every law, a broken operator is caught."""

from __future__ import annotations

import dataclasses
import itertools
import threading
from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, Disposable

from rxagents.events import EventKind, TokenEvent
from rxagents.testing._laws import Law, LawReport, check_operator_laws

Op = Callable[[Observable[TokenEvent]], Observable[Any]]
Subscribe = Callable[[abc.ObserverBase[Any], abc.SchedulerBase | None, Observable[TokenEvent]], Any]


def only(law: Law) -> dict[Law, str]:
    """Declare every other law not applicable, so the test shows that ``law`` alone catches the bug."""
    return {other: f"this test is about {law.name}" for other in Law if other is not law}


def custom(subscribe: Subscribe) -> Op:
    """An operator from a subscribe function that also gets the upstream."""

    def op(source: Observable[TokenEvent]) -> Observable[Any]:
        def on_subscribe(observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None = None) -> Any:
            return subscribe(observer, scheduler, source)

        return reactivex.create(on_subscribe)

    return op


def caught(make: Callable[[abc.SchedulerBase], Op], law: Law, **kwargs: Any) -> str:
    """Run the checker on ``make`` with only ``law`` applicable; return the failure message."""
    with pytest.raises(AssertionError, match=rf"breaks law {law.value} \({law.name}\)") as info:
        check_operator_laws(make, not_applicable=only(law), max_examples=60, **kwargs)
    return str(info.value)


def is_token(e: TokenEvent) -> bool:
    return e.kind is EventKind.TOKEN


# ---------------------------------------------------------------------------------------------
# Correct operators pass every law


def test_identity_operator_obeys_every_law() -> None:
    report = check_operator_laws(lambda s: lambda src: src)

    assert report.checked == tuple(Law)
    assert report.not_applicable == ()
    assert report.examples >= 40


def test_reactivex_map_obeys_every_law() -> None:
    report = check_operator_laws(lambda s: ops.map(lambda e: e))

    assert report.checked == tuple(Law)


def test_buffer_with_count_obeys_every_law_with_lists_of_events() -> None:
    report = check_operator_laws(lambda s: ops.buffer_with_count(3))

    assert report.checked == tuple(Law)


def test_time_based_operator_on_the_given_scheduler_obeys_every_law() -> None:
    report = check_operator_laws(lambda s: ops.buffer_with_time(0.3, scheduler=s))

    assert report.checked == tuple(Law)


def test_text_of_lets_operators_with_other_outputs_be_checked() -> None:
    def running_text(s: abc.SchedulerBase) -> Op:
        return ops.scan(lambda acc, e: acc + (e.text if e.kind is EventKind.TOKEN else ""), "")

    report = check_operator_laws(running_text, text_of=lambda items: items[-1] if items else "")

    assert Law.CONSERVATION in report.checked


def test_not_applicable_laws_are_reported_with_their_reason_and_not_checked() -> None:
    # ignore_elements emits no text, so conservation cannot hold
    report = check_operator_laws(
        lambda s: ops.ignore_elements(), not_applicable={Law.CONSERVATION: "emits nothing", Law.COMPLETION: "same"}
    )

    assert report.reason(Law.CONSERVATION) == "emits nothing"
    assert Law.CONSERVATION not in report.checked
    assert "n/a      law 7 (CONSERVATION): emits nothing" in str(report)


def test_a_law_broken_but_declared_not_applicable_does_not_fail() -> None:
    report = check_operator_laws(
        lambda s: ops.ignore_elements(),
        not_applicable={Law.COMPLETION: "drops text"} | {Law.CONSERVATION: "drops text"},
    )

    assert report.reason(Law.COMPLETION) == "drops text"


def test_report_is_frozen() -> None:
    report = check_operator_laws(lambda s: lambda src: src, max_examples=2)

    with pytest.raises(dataclasses.FrozenInstanceError):
        report.examples = 0  # type: ignore[misc]
    assert isinstance(report, LawReport)


def test_a_reason_is_required() -> None:
    with pytest.raises(ValueError, match="needs a reason"):
        check_operator_laws(lambda s: lambda src: src, not_applicable={Law.ORDER: " "})


def test_keys_must_be_laws() -> None:
    with pytest.raises(ValueError, match="must be Law members"):
        check_operator_laws(lambda s: lambda src: src, not_applicable={"ORDER": "why"})  # type: ignore[dict-item]


def test_max_examples_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_examples must be >= 1, got 0"):
        check_operator_laws(lambda s: lambda src: src, max_examples=0)


def test_an_output_without_text_needs_text_of_or_a_declaration() -> None:
    with pytest.raises(TypeError, match="pass text_of"):
        check_operator_laws(lambda s: ops.map(lambda e: e.seq), max_examples=5)


# ---------------------------------------------------------------------------------------------
# Error handlers: handles_errors relaxes law 5 and allows resubscribing after a failure


def retry_announced(times: int) -> Op:
    """A correct retry: resubscribes a failed upstream, announcing the restart with a retry event."""

    def subscribe(observer: abc.ObserverBase[Any], scheduler: abc.SchedulerBase | None, src: Observable[Any]) -> Any:
        current = CompositeDisposable()
        attempts = 0
        last: list[TokenEvent] = []

        def start() -> None:
            def on_error(exc: Exception) -> None:
                nonlocal attempts
                if attempts >= times:
                    observer.on_error(exc)
                    return
                attempts += 1
                if last:
                    ev = last[-1]
                    observer.on_next(TokenEvent(EventKind.RETRY, ev.agent, ev.run_id, ev.seq + 1, text="retry"))
                start()

            def on_next(ev: TokenEvent) -> None:
                last.append(ev)
                observer.on_next(ev)

            current.add(src.subscribe(on_next, on_error, observer.on_completed, scheduler=scheduler))

        start()
        return current

    return custom(subscribe)


def test_retry_that_announces_restarts_obeys_the_laws_as_an_error_handler() -> None:
    report = check_operator_laws(
        lambda s: retry_announced(2), handles_errors=True, not_applicable={Law.ORDER: "retries one run"}
    )

    assert report.handles_errors
    assert Law.NO_DUPLICATION in report.checked


def test_catch_obeys_the_laws_as_an_error_handler() -> None:
    report = check_operator_laws(lambda s: ops.catch(reactivex.empty()), handles_errors=True)

    assert Law.ERROR_TRANSPARENCY in report.checked


# ---------------------------------------------------------------------------------------------
# Broken operators, one law each


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


# --- what the checked operator logs is reported once -----------------------------------------------------
_RAISING_CALLBACK_SCRIPT = '''
import sys
from reactivex import operators as ops
from rxagents.operators import tap_safe
from rxagents.testing import LawViolation, check_operator_laws

def bad(token):
    raise ValueError("callback bug")

report = check_operator_laws(lambda s: tap_safe(bad, scheduler=s), max_examples=40)
print(sum(m.count for m in report.logged), "records", report.logged[0].level)
if sys.argv[1:] == ["fail"]:
    try:
        check_operator_laws(lambda s: ops.compose(tap_safe(bad, scheduler=s), ops.filter(lambda e: e.kind != "token")))
    except LawViolation as exc:
        print("NOTE:", "\\n".join(getattr(exc, "__notes__", [])))
'''


@pytest.mark.parametrize("mode", ["pass", "fail"])
def test_a_raising_callback_is_reported_once_not_per_example(mode: str) -> None:
    """Outside pytest (nothing captures logging), tap_safe's per-run warning with its traceback would be
    printed for every example and trial: hundreds of tracebacks. The checker holds them back and logs one
    line; a failure carries the summary and one traceback as a note."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.getcwd(), "HYPOTHESIS_PROFILE": "default"}
    result = subprocess.run(
        [sys.executable, "-c", _RAISING_CALLBACK_SCRIPT, mode], capture_output=True, text=True, timeout=600, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records, _, level = result.stdout.splitlines()[0].partition(" records ")
    assert int(records) > 40 and level == "WARNING"  # many were logged: one per run of the callback
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    summaries = [line for line in result.stderr.splitlines() if "tap_safe" in line]
    assert len(summaries) == 1 and summaries[0].startswith("check_operator_laws(<lambda>): "), result.stderr
    assert "log records collected" in summaries[0] and "WARNING tap_safe: callback bad raised" in summaries[0]
    if mode == "fail":
        note = result.stdout.split("NOTE:", 1)[1]
        assert "held back, counted" in note and note.count("Traceback") == 1 and "ValueError: callback bug" in note


def test_logged_records_are_in_the_report_and_other_threads_are_not_held_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    import logging

    other: list[threading.Thread] = []

    def make(s: abc.SchedulerBase) -> Op:
        def note(ev: TokenEvent) -> None:
            logging.getLogger("rxagents").info("saw %s", ev.kind.value)
            if not other:
                thread = threading.Thread(target=logging.getLogger("rxagents").warning, args=("from elsewhere",))
                other.append(thread)
                thread.start()
                thread.join()

        return ops.do_action(on_next=note)

    with caplog.at_level(logging.INFO, logger="rxagents"):
        report = check_operator_laws(make, max_examples=5)
    assert report.logged and all(m.level == "INFO" and m.message.startswith("saw ") for m in report.logged)
    assert "logged   " in str(report)
    messages = [r.getMessage() for r in caplog.records]
    assert "from elsewhere" in messages  # another thread's record went through
    assert not any(m.startswith("saw ") for m in messages)  # the checked operator's were held back
    assert sum(m.startswith("check_operator_laws(") for m in messages) == 1
