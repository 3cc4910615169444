"""The law checks: what each of a law check's trials must show, law by law."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Any

from rxagents.events import EventKind, TokenEvent
from rxagents.testing._law_harness import BUDGET, EPS, GRACE, Consumer, Entry, Trial
from rxagents.testing._law_inputs import Scenario
from rxagents.testing._law_report import Law, LawViolation
from rxagents.testing._law_traces import chains_to, events_in, fmt_entry, fmt_trace, is_subsequence, trace_diff
from rxagents.testing._marbles import text_of_items

__all__ = ["Checker", "TextOfError"]


class TextOfError(TypeError):
    """``text_of`` cannot read the output: a usage error, reported without shrinking."""


class Checker:
    def __init__(
        self,
        name: str,
        applicable: frozenset[Law],
        text_of: Callable[[list[Any]], str],
        handles_errors: bool,
    ) -> None:
        self.name = name
        self.applicable = applicable
        self.text_of = text_of
        self.handles_errors = handles_errors
        self.sc: Scenario | None = None
        self.override: Law | None = None

    def fail(self, law: Law, what: str, trace: Sequence[Entry] | None = None, trial: str = "main") -> None:
        if self.override is not None:
            what = f"after the consumer's on_next raised once, {what}"
            law = self.override
        msg = [f"{self.name} breaks {law}: {what}", f"  trial: {trial}"]
        if trace is not None:
            msg += ["  output:", fmt_trace(trace)]
        raise LawViolation("\n".join(msg))

    def on(self, law: Law) -> bool:
        return law in self.applicable

    # text helpers ---------------------------------------------------------------------------
    def input_texts(self) -> dict[str | None, str]:
        assert self.sc is not None
        events = [ev for _, ev in self.sc.schedule]
        if not self.sc.alphabets:
            return {None: text_of_items(events)}
        return {agent: text_of_items([e for e in events if e.agent == agent]) for agent, _ in self.sc.alphabets}

    # per-trace checks -----------------------------------------------------------------------
    def generic(self, trial: Trial, label: str) -> None:
        if trial.stuck:
            raise LawViolation(
                f"{self.name}: trial {label} kept the scheduler busy for more than {BUDGET} actions "
                "(a timer that never stops?)"
            )
        for c in trial.consumers:
            if self.on(Law.GRAMMAR):
                terminals = [i for i, e in enumerate(c.trace) if e[1] != "N"]
                if terminals and terminals[0] != len(c.trace) - 1:
                    self.fail(Law.GRAMMAR, f"notification after the terminal #{terminals[0]}", c.trace, label)
            if self.on(Law.SERIALISED) and c.serial:
                self.fail(Law.SERIALISED, c.serial[0], c.trace, label)
        if self.on(Law.PURE_FACTORY):
            if trial.factory_subscribed:
                self.fail(
                    Law.PURE_FACTORY,
                    f"building the operator subscribed to the upstream {trial.factory_subscribed} time(s)",
                    trial=label,
                )
            if trial.factory_scheduled:
                self.fail(
                    Law.PURE_FACTORY,
                    f"building the operator scheduled {trial.factory_scheduled} action(s) before any subscription",
                    trial=label,
                )
        if self.on(Law.CALLBACK_ISOLATION):
            allowed = {id(c.raised) for c in trial.consumers if c.raised is not None}
            for t, exc in trial.producer.escaped:
                if id(exc) not in allowed:
                    self.fail(
                        Law.CALLBACK_ISOLATION,
                        f"{type(exc).__name__}: {exc} escaped from the operator into the producer at t={t}",
                        trial.consumers[0].trace,
                        label,
                    )
        if trial.crashes:
            raise LawViolation(
                f"{self.name}: trial {label}: {trial.crashes[0]}\n  output:\n" + fmt_trace(trial.consumers[0].trace)
            )

    def items(self, c: Consumer, upto: int | None = None) -> list[Any]:
        trace = c.trace if upto is None else c.trace[:upto]
        return [v for _, k, v in trace if k == "N"]

    def text(self, items: list[Any]) -> str:
        try:
            return self.text_of(items)
        except TypeError as exc:
            raise TextOfError(
                f"{exc}. Laws 6, 7, 8 and 13 compare the text of the output with the input's: pass "
                "text_of=... or declare the laws that do not apply in not_applicable"
            ) from exc

    def output_texts(self, items: list[Any]) -> dict[str | None, str]:
        assert self.sc is not None
        text = self.text(items)
        if not self.sc.alphabets:
            return {None: text}
        return {agent: "".join(ch for ch in text if ch in alpha) for agent, alpha in self.sc.alphabets}

    def foreign_chars(self, items: list[Any]) -> str:
        assert self.sc is not None
        if not self.sc.alphabets:
            return ""
        known = "".join(alpha for _, alpha in self.sc.alphabets)
        return "".join(ch for ch in self.text(items) if ch not in known)

    def text_laws(self, c: Consumer, label: str, *, complete: bool) -> None:
        """COMPLETION (the text part), CONSERVATION, ORDER and NO_DUPLICATION on one consumer."""
        items = self.items(c)
        if self.on(Law.NO_DUPLICATION):
            self.no_duplication(c, items, label, Law.NO_DUPLICATION)
        if self.on(Law.ORDER):
            self.order(c, items, label)
        if self.on(Law.CONSERVATION) or (complete and self.on(Law.COMPLETION)):
            self.conservation(c, items, label, complete=complete)

    def conservation(self, c: Consumer, items: list[Any], label: str, *, complete: bool) -> None:
        law = Law.CONSERVATION if self.on(Law.CONSERVATION) else Law.COMPLETION
        got = self.output_texts(items)
        foreign = self.foreign_chars(items)
        if foreign:
            self.fail(law, f"output text has characters no agent sent: {foreign!r}", c.trace, label)
        for agent, text_in in self.input_texts().items():
            text_out = got[agent]
            if complete and text_out != text_in:
                tail_lost = text_in.startswith(text_out)
                self.fail(
                    Law.COMPLETION if tail_lost and self.on(Law.COMPLETION) else law,
                    f"on completion the text{_of(agent)} must equal the input's "
                    f"({'the tail was lost' if tail_lost else 'it differs'}):{_in_out(text_in, text_out)}",
                    c.trace,
                    label,
                )
            if self.on(Law.CONSERVATION) and not text_in.startswith(text_out):
                self.fail(
                    Law.CONSERVATION,
                    f"the text{_of(agent)} is not a prefix of the input's:{_in_out(text_in, text_out)}",
                    c.trace,
                    label,
                )

    def subsequence(self, c: Consumer, items: list[Any], label: str, law: Law, wrong: str) -> None:
        """Each agent's output text must be a subsequence of its input text, else ``law`` fails: it ``wrong``."""
        got = self.output_texts(items)
        for agent, text_in in self.input_texts().items():
            if not is_subsequence(got[agent], text_in):
                self.fail(law, f"the text{_of(agent)} {wrong}:{_in_out(text_in, got[agent])}", c.trace, label)

    def order(self, c: Consumer, items: list[Any], label: str) -> None:
        assert self.sc is not None
        inputs = {(ev.run_id, ev.seq): ev for _, ev in self.sc.schedule}
        last: dict[str, int] = {}
        for ev in events_in(items):
            if ev.kind is EventKind.RETRY:
                last.pop(ev.run_id, None)
                continue
            if inputs.get((ev.run_id, ev.seq)) == ev:
                prev = last.get(ev.run_id)
                if prev is not None and ev.seq <= prev:
                    self.fail(Law.ORDER, f"{ev!r} of run {ev.run_id!r} came after seq {prev}", c.trace, label)
                last[ev.run_id] = ev.seq
        self.subsequence(c, items, label, Law.ORDER, "is out of order")

    def no_duplication(self, c: Consumer, items: list[Any], label: str, law: Law) -> None:
        seen: set[tuple[str, int]] = set()
        events = list(events_in(items))
        for ev in events:
            if ev.kind is EventKind.RETRY:
                seen = {k for k in seen if k[0] != ev.run_id}
                continue
            key = (ev.run_id, ev.seq)
            if key in seen:
                self.fail(law, f"{ev!r} (run {ev.run_id!r}, seq {ev.seq}) was delivered twice", c.trace, label)
            seen.add(key)
        if all(isinstance(item, TokenEvent) for item in items):
            return  # events only: the (run_id, seq) check is the whole story
        if any(ev.kind is EventKind.RETRY for ev in events):
            return  # the text legitimately restarts
        self.subsequence(c, items, label, law, "repeats or invents text")

    # trials ---------------------------------------------------------------------------------
    def main(self, trial: Trial) -> None:
        self.generic(trial, "main")
        c = trial.consumers[0]
        subs = trial.producer.subs
        delivered = {u.delivered for u in subs}
        last = c.trace[-1] if c.trace else None
        input_error = trial.producer.error
        if self.on(Law.ERROR_TRANSPARENCY) and "error" in delivered:
            assert input_error is not None
            if not self.handles_errors:
                if last is None or last[1] != "E" or last[2] is not input_error:
                    self.fail(
                        Law.ERROR_TRANSPARENCY,
                        f"the upstream failed with {type(input_error).__name__}: {input_error}; the output must "
                        "end with on_error of that same exception object",
                        c.trace,
                    )
            elif last is not None and last[1] == "E" and not chains_to(last[2], input_error):
                self.fail(
                    Law.ERROR_TRANSPARENCY,
                    f"the output failed with {type(last[2]).__name__}: {last[2]}, which is neither the upstream's "
                    f"{type(input_error).__name__} nor caused by it",
                    c.trace,
                )
        completed_input = "completed" in delivered and "error" not in delivered
        if self.on(Law.COMPLETION):
            if completed_input and (last is None or last[1] != "C"):
                what = "nothing" if last is None else ("on_error" if last[1] == "E" else "no terminal")
                self.fail(
                    Law.COMPLETION,
                    f"the upstream completed but the output ended with {what} within {GRACE} s",
                    c.trace,
                )
            if not delivered and c.terminated_at is None:
                self.fail(
                    Law.COMPLETION, "the operator released the upstream early but never ended its output", c.trace
                )
        if self.on(Law.CLEANUP):
            self.cleanup(trial, c, "main")
        complete = completed_input and last is not None and last[1] == "C"
        self.text_laws(c, "main", complete=complete)

    def cleanup(self, trial: Trial, c: Consumer, label: str) -> None:
        subs = trial.producer.subs
        if not subs and c.terminated_at is None and c.disposed_at is None:
            return
        if not self.handles_errors and len(subs) > 1:
            self.fail(
                Law.CLEANUP,
                f"the upstream was subscribed {len(subs)} times (at {[u.start for u in subs]}) for one subscriber",
                c.trace,
                label,
            )
        for prev, nxt in itertools.pairwise(subs):
            if prev.delivered != "error" or prev.end is None or prev.end > nxt.start + EPS:
                self.fail(
                    Law.CLEANUP,
                    f"the upstream was subscribed again at t={nxt.start} while/after a subscription that did not "
                    "fail (resubscribing is only for retrying a failed upstream, one at a time)",
                    c.trace,
                    label,
                )
        if c.terminated_at is not None or c.disposed_at is not None:
            for i, u in enumerate(subs):
                if u.end is None:
                    self.fail(
                        Law.CLEANUP,
                        f"upstream subscription {i} (from t={u.start}) was never released after the output ended",
                        c.trace,
                        label,
                    )
                if u.finally_runs != 1:
                    self.fail(
                        Law.CLEANUP,
                        f"the finally-handler of upstream subscription {i} ran {u.finally_runs} times, not once",
                        c.trace,
                        label,
                    )
            late = [i for i in trial.producer.scheduler.invoked_indices if i > (c.ended_scheduled or 1 << 62)]
            if late:
                self.fail(
                    Law.CLEANUP,
                    f"{len(late)} action(s) scheduled after the output ended or was disposed still ran "
                    "(a timer left running)",
                    c.trace,
                    label,
                )

    def determinism(self, a: Trial, b: Trial) -> None:
        self.generic(b, "again")
        if not self.on(Law.DETERMINISM):
            return
        diff = trace_diff(a.consumers[0].trace, b.consumers[0].trace, 0.0)
        if diff:
            self.fail(
                Law.DETERMINISM,
                f"the same input on a fresh scheduler gave a different trace: {diff}\n  first run:\n"
                + fmt_trace(a.consumers[0].trace),
                b.consumers[0].trace,
                "again",
            )

    def cold(self, trial: Trial, shift: float) -> None:
        self.generic(trial, "cold")
        if not self.on(Law.COLD_REPEATABILITY):
            return
        first, second = trial.consumers
        # Both are compared over the same span: the later subscription was observed for ``shift`` s less
        # (an operator that retries can outlast the horizon, and would otherwise look non-repeatable).
        limit = trial.horizon - shift
        first_trace = [entry for entry in first.trace if entry[0] <= limit]
        diff = trace_diff(first_trace, second.trace, shift)
        if diff:
            self.fail(
                Law.COLD_REPEATABILITY,
                f"a second subscription {shift} s later gave a different trace: {diff}\n  first subscription:\n"
                + fmt_trace(first.trace),
                second.trace,
                "cold",
            )

    def cancel(self, trial: Trial) -> None:
        self.generic(trial, "cancel")
        c = trial.consumers[0]
        if self.on(Law.CANCELLATION) and c.disposed_at is not None:
            if c.dispose_errors:
                exc = c.dispose_errors[0]
                self.fail(Law.CANCELLATION, f"dispose raised {type(exc).__name__}: {exc}", c.trace, "cancel")
            late = c.trace[c.disposed_at :]
            if late:
                self.fail(
                    Law.CANCELLATION,
                    f"{len(late)} notification(s) after dispose (the first: {fmt_entry(late[0]).strip()})",
                    c.trace,
                    "cancel",
                )
            t_dispose = c.disposed_time
            assert t_dispose is not None
            for i, u in enumerate(trial.producer.subs):
                if u.start > t_dispose + EPS:
                    self.fail(
                        Law.CANCELLATION,
                        f"the upstream was subscribed at t={u.start}, after dispose at t={t_dispose}",
                        c.trace,
                        "cancel",
                    )
                if u.end is None or u.end > t_dispose + EPS:
                    when = "never" if u.end is None else f"only at t={u.end}"
                    self.fail(
                        Law.CANCELLATION,
                        f"upstream subscription {i} (from t={u.start}) was not released by dispose at "
                        f"t={t_dispose} ({when})",
                        c.trace,
                        "cancel",
                    )
        if self.on(Law.CLEANUP):
            self.cleanup(trial, c, "cancel")
        if self.on(Law.CONSERVATION) or self.on(Law.ORDER) or self.on(Law.NO_DUPLICATION):
            self.text_laws(c, "cancel", complete=False)

    def raise_trial(self, trial: Trial) -> None:
        self.generic(trial, "raise")
        if not self.on(Law.CALLBACK_ISOLATION):
            return
        c = trial.consumers[0]
        items = self.items(c)
        self.override = Law.CALLBACK_ISOLATION
        try:
            events_only = all(isinstance(item, TokenEvent) for item in items)
            if events_only or self.on(Law.CONSERVATION):
                self.no_duplication(c, items, "raise", Law.CALLBACK_ISOLATION)
            if self.on(Law.CONSERVATION):
                self.conservation(c, items, "raise", complete=False)
        finally:
            self.override = None


def _of(agent: str | None) -> str:
    return f" of agent {agent}" if agent is not None else ""


def _in_out(text_in: str, text_out: str) -> str:
    return f"\n    in : {text_in!r}\n    out: {text_out!r}"
