"""Argument checks shared by the constructors and operators.

Every check returns the value it accepted (normalised: seconds as ``float``) or raises
:class:`~rxagents.errors.ConfigurationError` — a ``ValueError`` and a ``TypeError`` — whose message names
the parameter, the bad value and the fix::

    >>> check_int("max_loops", 0, maximum=MAX_LOOPS)
    Traceback (most recent call last):
    ...
    rxagents.errors.ConfigurationError: max_loops must be an int >= 1 and <= 1000, got 0
    >>> check_number("temperature", "0.5", minimum=0, maximum=MAX_TEMPERATURE)
    Traceback (most recent call last):
    ...
    rxagents.errors.ConfigurationError: temperature must be a number >= 0 and <= 2, got '0.5'; pass 0.5 without quotes

A secret (``secret=True``) is never shown: the message gives its type only.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Iterable
from typing import NoReturn, TypeGuard, overload

from reactivex import abc

from rxagents.errors import ConfigurationError
from rxagents.events import EventKind

__all__ = [
    "MAX_LOOPS",
    "MAX_TEMPERATURE",
    "MAX_TIMEOUT",
    "MAX_TOKENS",
    "check_bool",
    "check_choice",
    "check_int",
    "check_keywords",
    "check_kinds",
    "check_number",
    "check_scheduler",
    "check_seconds",
    "check_str",
    "check_task",
    "fail",
    "shown",
]

#: ``max_loops`` above this can only be a mistake: each loop is a model request carrying every answer so far.
MAX_LOOPS = 1000
#: ``max_tokens`` above this can only be a mistake: no model answers ten million tokens in one response.
MAX_TOKENS = 10_000_000
#: The sampling temperature range every provider accepts (OpenAI: 0 to 2; others narrower).
MAX_TEMPERATURE = 2.0
#: A silence limit above a day can only be a mistake; ``None`` means no limit.
MAX_TIMEOUT = 86_400.0

_SHOWN_CHARS = 80


def shown(value: object) -> str:
    """``repr(value)``, cut to 80 characters: how a message shows a bad value."""
    text = repr(value)
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


def fail(name: str, expected: str, value: object, *, hint: str = "", secret: bool = False) -> NoReturn:
    """Raise ``ConfigurationError("<name> must be <expected>, got <value>[; <hint>]")``.

    ``secret=True`` shows the value's type instead of the value (for API keys)."""
    got = f"a value of type {type(value).__name__}" if secret else shown(value)
    raise ConfigurationError(f"{name} must be {expected}, got {got}" + (f"; {hint}" if hint else ""))


def _or_none(expected: str, none: str | None) -> str:
    return expected if none is None else f"{expected}, or None {none}".rstrip()


def _unquote_hint(value: object, *, integer: bool) -> str:
    """For ``"10"`` given where a number belongs: the hint to pass it without quotes."""
    if not isinstance(value, str):
        return ""
    try:
        number = int(value) if integer else float(value)
    except ValueError:
        return ""
    return f"pass {number!r} without quotes"


@overload
def check_bool(name: str, value: object, *, none: None = ...) -> bool: ...
@overload
def check_bool(name: str, value: object, *, none: str) -> bool | None: ...
def check_bool(name: str, value: object, *, none: str | None = None) -> bool | None:
    """``True`` or ``False`` only: a string such as ``"no"`` would be truthy, so it is an error. None is accepted
    when ``none`` says what None means."""
    if value is None and none is not None:
        return None
    if not isinstance(value, bool):
        fail(name, "True or False" if none is None else f"True, False or None {none}".rstrip(), value)
    return value


@overload
def check_str(
    name: str, value: object, *, empty: bool = ..., secret: bool = ..., hint: str = ..., none: None = ...
) -> str: ...
@overload
def check_str(
    name: str, value: object, *, empty: bool = ..., secret: bool = ..., hint: str = ..., none: str
) -> str | None: ...
def check_str(
    name: str, value: object, *, empty: bool = False, secret: bool = False, hint: str = "", none: str | None = None
) -> str | None:
    """A string (non-empty unless ``empty``), or None when ``none`` says what None means. ``hint`` is added to the
    message (e.g. an example of a good value)."""
    if value is None and none is not None:
        return None
    if not isinstance(value, str) or (not empty and not value.strip()):
        expected = _or_none("a string" if empty else "a non-empty string", none)
        fail(name, expected, value, hint=hint, secret=secret)
    return value


def _number(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else repr(float(x))


def _in_range(value: object, minimum: float, maximum: float | None, *, above: bool) -> TypeGuard[int | float]:
    """Whether ``value`` is a number :func:`check_number` accepts (None aside)."""
    return (
        not isinstance(value, bool)
        and isinstance(value, int | float)
        and math.isfinite(value)
        and (value > minimum if above else value >= minimum)
        and (maximum is None or value <= maximum)
    )


def _bounds(minimum: float, maximum: float | None, *, above: bool = False) -> str:
    low = f"> {_number(minimum)}" if above else f">= {_number(minimum)}"
    return low if maximum is None else f"{low} and <= {_number(maximum)}"


@overload
def check_int(
    name: str, value: object, *, minimum: int = ..., maximum: int | None = ..., hint: str = ..., none: None = ...
) -> int: ...
@overload
def check_int(
    name: str, value: object, *, minimum: int = ..., maximum: int | None = ..., hint: str = ..., none: str
) -> int | None: ...
def check_int(
    name: str,
    value: object,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    hint: str = "",
    none: str | None = None,
) -> int | None:
    """An ``int`` (not ``bool``) from ``minimum`` to ``maximum``, or None when ``none`` says what None means.
    ``hint`` is added to the message (e.g. what else the parameter accepts)."""
    if value is None and none is not None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        expected = _or_none(f"an int {_bounds(minimum, maximum)}", none)
        fail(name, expected, value, hint="; ".join(h for h in (_unquote_hint(value, integer=True), hint) if h))
    return value


@overload
def check_number(
    name: str,
    value: object,
    *,
    minimum: float,
    maximum: float | None = ...,
    above: bool = ...,
    hint: str = ...,
    none: None = ...,
) -> float: ...
@overload
def check_number(
    name: str,
    value: object,
    *,
    minimum: float,
    maximum: float | None = ...,
    above: bool = ...,
    hint: str = ...,
    none: str,
) -> float | None: ...
def check_number(
    name: str,
    value: object,
    *,
    minimum: float,
    maximum: float | None = None,
    above: bool = False,
    hint: str = "",
    none: str | None = None,
) -> float | None:
    """A finite ``int`` or ``float`` (not ``bool``, not NaN) ``>= minimum`` (``> minimum`` when ``above``) and
    ``<= maximum``, as ``float``; or None when ``none`` says what None means. ``hint`` is added to the message."""
    if value is None and none is not None:
        return None
    if not _in_range(value, minimum, maximum, above=above):
        expected = _or_none(f"a number {_bounds(minimum, maximum, above=above)}", none)
        fail(name, expected, value, hint="; ".join(h for h in (_unquote_hint(value, integer=False), hint) if h))
    return float(value)


@overload
def check_seconds(
    name: str, value: object, *, zero: bool = ..., maximum: float | None = ..., hint: str = ..., none: None = ...
) -> float: ...
@overload
def check_seconds(
    name: str, value: object, *, zero: bool = ..., maximum: float | None = ..., hint: str = ..., none: str
) -> float | None: ...
def check_seconds(
    name: str,
    value: object,
    *,
    zero: bool = False,
    maximum: float | None = None,
    hint: str = "",
    none: str | None = None,
) -> float | None:
    """A finite number of seconds ``> 0`` (``>= 0`` when ``zero``) and ``<= maximum``, as ``float``. ``hint`` is
    added to the message."""
    if value is None and none is not None:
        return None
    if not _in_range(value, 0, maximum, above=not zero):
        unit = "a finite number of seconds" if maximum is None else "a number of seconds"
        expected = _or_none(f"{unit} {_bounds(0, maximum, above=not zero)}", none)
        fail(name, expected, value, hint="; ".join(h for h in (_unquote_hint(value, integer=False), hint) if h))
    return float(value)


def check_choice(name: str, value: object, choices: Collection[str]) -> str:
    """One of ``choices`` (strings)."""
    if not isinstance(value, str) or value not in choices:
        fail(name, " or ".join(repr(c) for c in choices), value)
    return value


def check_kinds(kinds: Iterable[EventKind | str] | None) -> frozenset[EventKind] | None:
    """A non-empty collection of event kinds (members, or values such as ``"token"``) as a frozenset, or None for
    all kinds. A lone kind is refused: ``kinds="token"`` would otherwise be read as its characters."""
    if kinds is None:
        return None
    if isinstance(kinds, str | EventKind):
        raise ConfigurationError(f"kinds must be a collection of event kinds, e.g. ({kinds!r},), got {kinds!r}")
    try:
        chosen = frozenset(EventKind(kind) for kind in kinds)
    except ValueError as exc:
        raise ConfigurationError(f"kinds: {exc}; valid kinds are {[k.value for k in EventKind]}") from None
    if not chosen:
        raise ConfigurationError("kinds must name at least one event kind, or be None for all kinds")
    return chosen


def check_scheduler(scheduler: object, name: str = "scheduler") -> abc.SchedulerBase | None:
    """A reactivex scheduler (``AsyncIOScheduler``, ``TestScheduler`` ...) or None."""
    if scheduler is not None and not isinstance(scheduler, abc.SchedulerBase):
        raise ConfigurationError(
            f"{name} must be a reactivex scheduler or None, got {type(scheduler).__name__} {shown(scheduler)}; "
            "pass e.g. reactivex.scheduler.eventloop.AsyncIOScheduler(loop) or a TestScheduler"
        )
    return scheduler


def check_task(task: object) -> str:
    """The task given to a run: a string with something in it."""
    if not isinstance(task, str) or not task.strip():
        fail("task", "a non-empty string", task)
    return task


def check_keywords(owner: str, given: Iterable[str], accepted: Collection[str], documented: Iterable[str] = ()) -> None:
    """Keyword arguments outside ``accepted`` are an error (a typo must not be ignored); the message suggests the
    closest name among ``accepted`` and ``documented`` (the owner's named parameters)."""
    unknown = sorted(set(given) - set(accepted))
    if not unknown:
        return
    names = sorted({*accepted, *documented})
    close = [m for name in unknown for m in difflib.get_close_matches(name, names, n=1)]
    hint = f"did you mean {', '.join(map(repr, close))}? Otherwise see" if close else "see"
    raise ConfigurationError(
        f"{owner}() got unexpected keyword argument(s) {unknown}; {hint} the {owner} docstring for the supported "
        "parameters"
    )
