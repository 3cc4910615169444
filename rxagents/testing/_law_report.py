"""The vocabulary of :func:`~rxagents.testing.check_operator_laws`: the laws, its report, its failure."""

from __future__ import annotations

import dataclasses
import enum

from rxagents.testing._logs import LoggedMessage

__all__ = ["Law", "LawReport", "LawViolation"]


class Law(enum.Enum):
    """The operator laws of docs/architecture.md, numbered as there."""

    GRAMMAR = 1
    SERIALISED = 2
    CANCELLATION = 3
    CLEANUP = 4
    ERROR_TRANSPARENCY = 5
    COMPLETION = 6
    CONSERVATION = 7
    ORDER = 8
    COLD_REPEATABILITY = 9
    DETERMINISM = 10
    CALLBACK_ISOLATION = 11
    PURE_FACTORY = 12
    NO_DUPLICATION = 13

    def __str__(self) -> str:
        return f"law {self.value} ({self.name})"


@dataclasses.dataclass(frozen=True, slots=True)
class LawReport:
    """What :func:`check_operator_laws` checked.

    Attributes:
        operator: a name for the operator factory that was checked.
        checked: the laws checked (and held on every example).
        not_applicable: ``(law, reason)`` pairs declared not to apply; they were not checked.
        examples: how many examples were run: three or four fixed ones (a clean run, a failing
            run, a burst, two agents) and up to ``max_examples`` generated ones.
        handles_errors: whether law 5 was relaxed for an error-handling operator.
        logged: what the operator logged on the ``rxagents`` logger during the check, counted by kind
            (held back rather than printed once per example; one summary line is logged instead).
    """

    operator: str
    checked: tuple[Law, ...]
    not_applicable: tuple[tuple[Law, str], ...]
    examples: int
    handles_errors: bool = False
    logged: tuple[LoggedMessage, ...] = ()

    def reason(self, law: Law) -> str | None:
        """Why ``law`` was declared not applicable, or None if it was checked."""
        return dict(self.not_applicable).get(law)

    def __str__(self) -> str:
        lines = [f"{self.operator}: {len(self.checked)} laws held on {self.examples} examples"]
        lines += [f"  checked  {law}" for law in self.checked]
        lines += [f"  n/a      {law}: {why}" for law, why in self.not_applicable]
        if self.handles_errors:
            lines.append("  (law 5 relaxed: the operator handles errors)")
        lines += [f"  logged   {message}" for message in self.logged]
        return "\n".join(lines)


class LawViolation(AssertionError):
    """A law was broken; the message names the law and shows the example."""
