"""The law checker: correct operators pass, reports, arguments, error handlers, logs held back
(a broken operator per law: test_law_checks.py)."""

from __future__ import annotations

import dataclasses
import threading
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable

from rxagents.events import EventKind, TokenEvent
from rxagents.testing._laws import Law, LawReport, check_operator_laws
from tests.testing.law_helpers import Op, custom

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
