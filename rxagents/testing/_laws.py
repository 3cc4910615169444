"""``check_operator_laws``: the 13 operator laws of docs/architecture.md as hypothesis properties.

Every example draws a timed input and runs five trials of the operator in virtual time, each on a
fresh ``TestScheduler`` with a fresh ``make(scheduler)``:

======  ==========================================================================================
trial   what it does
======  ==========================================================================================
main    one subscription at t=1, no dispose, run until ``GRACE`` s after the end of the input
again   the main trial once more (determinism)
cold    one operator value subscribed twice, the second 0-N s later, possibly overlapping
cancel  dispose at a random time or from inside the k-th ``on_next``, again at once, and later
raise   the consumer's ``on_next`` raises once, on the k-th item
======  ==========================================================================================

The input is one run (``start``, tokens with reasoning/tool-call deltas mixed in, maybe usage,
``finish`` or ``error``; token texts from a pool of words, separators, multi-byte and astral
characters, a combining mark and an emoji sequence split from their bases, empty deltas; a steady
tempo with random pauses, often several events in the same instant). When :attr:`Law.ORDER`
applies, a third of the examples interleave the runs of 2-3 agents instead (every run complete,
at most one failing, last); so an operator meant for a single run declares ORDER not applicable.
An error input ends with an ``error`` event, then ``on_error`` with the same exception.

How each law is checked:

1. GRAMMAR: at most one terminal notification and nothing after it (every trial).
2. SERIALISED: no notification starts while another is in progress (re-entrancy, e.g. a flush
   from inside ``dispose`` called by a consumer's ``on_next``), all arrive on the thread driving
   the scheduler, and the scheduler clock never goes backwards between them (every trial).
3. CANCELLATION: after ``dispose`` nothing arrives -- also when it is called from inside
   ``on_next``: not the rest of a batch, not a terminal notification --, every upstream
   subscription has ended when ``dispose`` returns, and disposing again is harmless.
4. CLEANUP: the upstream is subscribed exactly once (with ``handles_errors``: again only after it
   failed, one at a time); every upstream subscription has ended once the output ended or was
   disposed, and a finally-handler attached upstream ran exactly once per subscription; no work
   scheduled after that point runs (a timer left running).
5. ERROR_TRANSPARENCY: when the upstream delivered ``on_error(exc)`` to the operator, the output
   ends with ``on_error`` of that very object. With ``handles_errors=True`` the output may
   complete instead, and an error it ends with must be ``exc`` or have ``exc`` in its
   ``__cause__``/``__context__`` chain.
6. COMPLETION: when the upstream completed, the output completes (not errors, not hangs) within
   ``GRACE`` virtual seconds and, unless CONSERVATION is declared not applicable, with all the
   text: nothing left in a buffer. An operator that releases its upstream early must still end.
7. CONSERVATION: ``text_of(out)`` equals the text of the input's ``token`` events when the
   input completed and the output completed, else it is a prefix of it (error, dispose, early
   end); per agent for several agents (their alphabets are disjoint, so this works for any text
   output, events or strings).
8. ORDER: per agent, the output text is a subsequence of the input text (nothing reordered), and
   input events passed through unchanged keep increasing ``seq`` per run (a ``retry`` event
   restarts the run). Workflow-level order (concat sequential, ``merge(k)`` concurrency) is not
   in scope: the input here is one stream.
9. COLD_REPEATABILITY: two subscriptions to the same operator value give the same trace, shifted
   by the time between them (event ``time`` fields stamped from the clock are shifted too).
10. DETERMINISM: the same input on a fresh scheduler gives the same trace, times included.
11. CALLBACK_ISOLATION: no exception escapes from the operator into the producer (the upstream's
    calls of ``on_next``/``on_error``/``on_completed``) in any trial -- give ``make`` a raising
    user callback to test an operator that calls one; and after the consumer's ``on_next``
    raised (the consumer's bug: it may propagate), no token is delivered twice (the peer defect:
    a raising callback treated as a model failure, the run restarted).
12. PURE_FACTORY: ``make(scheduler)`` and applying the operator to a source schedule nothing and
    subscribe to nothing.
13. NO_DUPLICATION: no ``(run_id, seq)`` among the output's events (also inside lists/tuples)
    twice, unless a ``retry`` event of that run came in between; for other outputs, the
    output text per agent is a subsequence of the input text.

Whatever is declared, an operator that raises into the scheduler (a timer callback), fails to
subscribe, or keeps the scheduler busy for more than 50,000 actions in one trial fails the check.

A law that the operator cannot meet is declared in ``not_applicable`` with a reason; it is then
not checked and the returned :class:`LawReport` lists it. Nothing is skipped silently.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from hypothesis import HealthCheck, Phase, example, given, settings
from hypothesis import errors as hypothesis_errors

from rxagents.testing._law_checks import Checker, TextOfError
from rxagents.testing._law_harness import GRACE, SUBSCRIBE_AT, OperatorFactory, Plan, run_trial
from rxagents.testing._law_inputs import Scenario, explicit_scenarios, scenarios
from rxagents.testing._law_report import Law, LawReport, LawViolation
from rxagents.testing._logs import LogCollector
from rxagents.testing._marbles import text_of_items

__all__ = ["GRACE", "Law", "LawReport", "LawViolation", "check_operator_laws"]

log = logging.getLogger("rxagents")


def _name_of(make: Any) -> str:
    return str(getattr(make, "__qualname__", None) or getattr(make, "__name__", None) or repr(make))


def check_operator_laws(
    make: OperatorFactory,
    *,
    not_applicable: Mapping[Law, str] | None = None,
    text_of: Callable[[list[Any]], str] | None = None,
    handles_errors: bool = False,
    max_examples: int = 40,
) -> LawReport:
    """Check that an operator obeys the 13 laws of docs/architecture.md on generated streams in virtual time.

    Call it from a plain test (not from inside a hypothesis ``@given`` test: it runs its own).
    Settings not named here (database, derandomize, verbosity, ...) come from the loaded
    hypothesis profile; ``deadline`` is always off.

    Args:
        make: builds the operator for one example: ``make(scheduler)`` gets the example's
            ``TestScheduler`` and returns the operator (``Observable[TokenEvent] -> Observable``),
            e.g. ``lambda s: buffer_tokens(3)`` or ``lambda s: pace(0.1, scheduler=s)``. Pass the
            scheduler to every time-based operator. Give callbacks that raise to check an
            operator that calls user code (law 11).
        not_applicable: laws the operator cannot meet, each with the reason; they are not
            checked and the report lists them. Declaring ORDER not applicable also keeps
            multi-agent input away (for operators that handle one run).
        text_of: the text carried by a list of output items, compared with the text of the
            input's ``token`` events (default :func:`text_of_items`: ``token`` events, strings,
            and lists/tuples of those; a ``retry`` event restarts its run's text). For a running
            text, ``lambda items: items[-1] if items else ""``.
        handles_errors: True for an operator that exists to handle errors (retry, catch): it may
            resubscribe a failed upstream and replace its error (law 5 relaxed).
        max_examples: generated examples.

    What the operator logs on the ``rxagents`` logger while it is checked (a ``tap_safe`` with a
    raising callback logs a traceback per run: hundreds over all examples) is held back and counted:
    the report's ``logged`` lists it, one summary line is logged at the end, and a failure carries
    the summary and the first traceback as a note.

    Returns:
        A :class:`LawReport` of what was checked.

    Raises:
        AssertionError: a law was broken (a :class:`LawViolation`); the message names the law,
            the trial and the output, and hypothesis adds the shrunk input.
        ValueError: a bad argument (a reason missing, a key that is not a :class:`Law`).
        TypeError: ``text_of`` cannot read the output (pass one, or declare the text laws).

    Example:
        >>> from reactivex import operators as ops
        >>> report = check_operator_laws(lambda s: ops.map(lambda e: e), max_examples=10)
        >>> Law.GRAMMAR in report.checked
        True
        >>> report = check_operator_laws(
        ...     lambda s: ops.filter(lambda e: e.kind != "token"),
        ...     not_applicable={Law.CONSERVATION: "drops the text", Law.COMPLETION: "drops the text"},
        ...     max_examples=10,
        ... )
        >>> report.reason(Law.CONSERVATION)
        'drops the text'
    """
    if max_examples < 1:
        raise ValueError(f"max_examples must be >= 1, got {max_examples}")
    na: dict[Law, str] = {}
    for law, why in (not_applicable or {}).items():
        if not isinstance(law, Law):
            raise ValueError(f"not_applicable keys must be Law members, got {law!r}")
        if not isinstance(why, str) or not why.strip():
            raise ValueError(f"not_applicable[{law!r}] needs a reason (a non-empty str), got {why!r}")
        na[law] = why.strip()
    applicable = frozenset(law for law in Law if law not in na)
    name = _name_of(make)
    checker = Checker(name, applicable, text_of or text_of_items, handles_errors)
    multi = Law.ORDER in applicable
    examples = 0
    usage_error: TextOfError | None = None

    def law_property(sc: Scenario) -> None:
        nonlocal examples, usage_error
        if usage_error is not None:
            return
        examples += 1
        checker.sc = sc
        try:
            run_trials(sc)
        except TextOfError as exc:
            usage_error = exc

    test = given(sc=scenarios(multi))(law_property)
    for explicit in explicit_scenarios(multi):
        test = example(sc=explicit)(test)
    test = settings(
        max_examples=max_examples,
        deadline=None,
        report_multiple_bugs=False,
        phases=[p for p in (settings.default or settings()).phases if p is not Phase.explain],
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )(test)

    def run_trials(sc: Scenario) -> None:
        schedule = list(sc.schedule)
        # every trial runs whatever is declared: GRAMMAR, SERIALISED, PURE_FACTORY and
        # CALLBACK_ISOLATION (nothing escapes into the producer) are checked in all of them
        main = run_trial(make, schedule, [Plan(SUBSCRIBE_AT)])
        checker.main(main)
        checker.determinism(main, run_trial(make, schedule, [Plan(SUBSCRIBE_AT)]))
        checker.cold(run_trial(make, schedule, [Plan(SUBSCRIBE_AT), Plan(SUBSCRIBE_AT + sc.shift)]), sc.shift)
        plan = Plan(SUBSCRIBE_AT, dispose_at=sc.dispose_at, dispose_on=sc.dispose_on)
        checker.cancel(run_trial(make, schedule, [plan]))
        checker.raise_trial(run_trial(make, schedule, [Plan(SUBSCRIBE_AT, raise_on=sc.raise_on)]))

    collector = LogCollector()
    try:
        with collector:
            _run_test(test)
    except BaseException as exc:
        if collector.messages:
            exc.add_note(_logs_note(name, collector))
        raise
    if usage_error is not None:
        raise TypeError(str(usage_error)) from usage_error
    if collector.messages:
        log.log(collector.highest_level, "check_operator_laws(%s): %s (LawReport.logged)", name, collector.summary())
    return LawReport(
        operator=name,
        checked=tuple(law for law in Law if law in applicable),
        not_applicable=tuple((law, na[law]) for law in Law if law in na),
        examples=examples,
        handles_errors=handles_errors,
        logged=collector.messages,
    )


def _run_test(test: Callable[[], None]) -> None:
    try:
        test()
    except LawViolation:
        raise
    except hypothesis_errors.FlakyFailure as exc:
        first = _first_violation(exc)
        if first is None:
            raise
        raise LawViolation(f"{first}\n  (the failure did not reproduce on every run: flaky)") from exc


def _logs_note(name: str, collector: LogCollector) -> str:
    lines = [f"While {name} was checked, the rxagents logger got (held back, counted):"]
    lines += [f"  {message}" for message in collector.messages]
    if collector.first_traceback is not None:
        lines += ["The first of them with a traceback:", collector.first_traceback]
    return "\n".join(lines)


def _first_violation(exc: BaseException) -> BaseException | None:
    if isinstance(exc, LawViolation):
        return exc
    for inner in getattr(exc, "exceptions", ()):
        found = _first_violation(inner)
        if found is not None:
            return found
    return None
