"""rxagents._validate: each check accepts what it documents and names the parameter, the value and the fix."""

from __future__ import annotations

import math
from typing import Any

import pytest
from reactivex.testing import TestScheduler

from rxagents._validate import (
    MAX_LOOPS,
    check_bool,
    check_choice,
    check_int,
    check_keywords,
    check_kinds,
    check_number,
    check_scheduler,
    check_seconds,
    check_str,
    check_task,
)
from rxagents.errors import ConfigurationError
from rxagents.events import EventKind


def test_configuration_error_is_both_a_value_error_and_a_type_error() -> None:
    assert issubclass(ConfigurationError, ValueError) and issubclass(ConfigurationError, TypeError)
    with pytest.raises(TypeError):
        check_int("max_loops", "3")
    with pytest.raises(ValueError):
        check_int("max_loops", 0)


@pytest.mark.parametrize("value", [1, 7, MAX_LOOPS])
def test_check_int_accepts_ints_in_range(value: int) -> None:
    assert check_int("max_loops", value, maximum=MAX_LOOPS) == value


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "max_loops must be an int >= 1 and <= 1000, got 0"),
        (MAX_LOOPS + 1, "max_loops must be an int >= 1 and <= 1000, got 1001"),
        (1.5, "max_loops must be an int >= 1 and <= 1000, got 1.5"),
        (True, "max_loops must be an int >= 1 and <= 1000, got True"),
        (None, "max_loops must be an int >= 1 and <= 1000, got None"),
        ("3", "max_loops must be an int >= 1 and <= 1000, got '3'; pass 3 without quotes"),
    ],
)
def test_check_int_names_parameter_value_and_fix(value: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        check_int("max_loops", value, maximum=MAX_LOOPS)
    assert str(info.value) == message


def test_check_int_none_is_allowed_only_when_its_meaning_is_given() -> None:
    assert check_int("max_tokens", None, none="for the model's default") is None
    with pytest.raises(ConfigurationError, match=r"^max_tokens must be an int >= 1, or None for the model's default"):
        check_int("max_tokens", 0, none="for the model's default")


def test_check_int_adds_the_hint() -> None:
    with pytest.raises(ConfigurationError, match=r"^retries must be an int >= 0, got -1; or a RetryPolicy$"):
        check_int("retries", -1, minimum=0, hint="or a RetryPolicy")


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0.5", "temperature must be a number >= 0 and <= 2, got '0.5'; pass 0.5 without quotes"),
        (math.nan, "temperature must be a number >= 0 and <= 2, got nan"),
        (math.inf, "temperature must be a number >= 0 and <= 2, got inf"),
        (2.5, "temperature must be a number >= 0 and <= 2, got 2.5"),
        (-0.1, "temperature must be a number >= 0 and <= 2, got -0.1"),
        (False, "temperature must be a number >= 0 and <= 2, got False"),
        ("warm", "temperature must be a number >= 0 and <= 2, got 'warm'"),
    ],
)
def test_check_number_rejects_non_finite_out_of_range_and_strings(value: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        check_number("temperature", value, minimum=0, maximum=2)
    assert str(info.value) == message


def test_check_number_returns_a_float_and_honours_above() -> None:
    assert check_number("temperature", 1, minimum=0, maximum=2) == 1.0
    assert isinstance(check_number("temperature", 0, minimum=0, maximum=2), float)
    with pytest.raises(ConfigurationError, match=r"must be a number > 0,"):
        check_number("growth", 0, minimum=0, above=True)


@pytest.mark.parametrize("value", [0, -1, math.nan, math.inf, "5", True, 86_401])
def test_check_seconds_rejects(value: object) -> None:
    expected = r"^stall_timeout must be a number of seconds > 0 and <= 86400, or None for no limit, got "
    with pytest.raises(ConfigurationError, match=expected):
        check_seconds("stall_timeout", value, maximum=86_400, none="for no limit")


def test_check_seconds_accepts_and_normalises() -> None:
    assert check_seconds("stall_timeout", 30, maximum=86_400, none="for no limit") == 30.0
    assert check_seconds("stall_timeout", None, none="for no limit") is None
    assert check_seconds("pace", 0, zero=True) == 0.0
    with pytest.raises(ConfigurationError, match=r"^pace must be a finite number of seconds >= 0, got -1$"):
        check_seconds("pace", -1, zero=True)


def test_check_bool_refuses_truthy_stand_ins() -> None:
    assert check_bool("print_on", False) is False
    for value in ("no", 0, 1, None):
        with pytest.raises(ConfigurationError, match=r"^print_on must be True or False, got "):
            check_bool("print_on", value)


def test_check_bool_none_is_allowed_only_when_its_meaning_is_given() -> None:
    assert check_bool("wrap", None, none="(wrap on a terminal)") is None
    assert check_bool("wrap", True, none="(wrap on a terminal)") is True
    with pytest.raises(
        ConfigurationError, match=r"^wrap must be True, False or None \(wrap on a terminal\), got 'no'$"
    ):
        check_bool("wrap", "no", none="(wrap on a terminal)")
    with pytest.raises(ConfigurationError, match=r"^wrap must be True or False, got None$"):
        check_bool("wrap", None)


def test_the_hint_follows_the_unquote_hint() -> None:
    with pytest.raises(
        ConfigurationError, match=r"^growth must be a number > 1, got '2'; pass 2.0 without quotes; e.g. 1.5$"
    ):
        check_number("growth", "2", minimum=1, above=True, hint="e.g. 1.5")
    with pytest.raises(
        ConfigurationError, match=r"^backoff must be a finite number of seconds >= 0, got -1; or a function$"
    ):
        check_seconds("backoff", -1, zero=True, hint="or a function")
    with pytest.raises(ConfigurationError, match=r"^host must be a non-empty string, got ''; e.g. '127.0.0.1'$"):
        check_str("host", "", hint="e.g. '127.0.0.1'")


def test_check_str() -> None:
    assert check_str("agent_name", "A") == "A"
    assert check_str("system_prompt", "", empty=True) == ""
    assert check_str("system_prompt", None, none="for no system message") is None
    with pytest.raises(ConfigurationError, match=r"^agent_name must be a non-empty string, got '  '$"):
        check_str("agent_name", "  ")
    with pytest.raises(ConfigurationError, match=r"^model_name must be a string, or None to choose, got 123$"):
        check_str("model_name", 123, empty=True, none="to choose")


def test_a_secret_is_never_shown() -> None:
    class Key:
        def __repr__(self) -> str:
            return "sk-secret-value"

    with pytest.raises(ConfigurationError) as info:
        check_str("api_key", Key(), secret=True, none="to read it from the environment")
    assert "sk-secret" not in str(info.value)
    assert str(info.value).endswith("got a value of type Key")


def test_long_values_are_shortened() -> None:
    with pytest.raises(ConfigurationError) as info:
        check_int("max_loops", "x" * 10_000)
    assert len(str(info.value)) < 200 and str(info.value).endswith("...")


def test_check_choice() -> None:
    assert check_choice("on_callback_error", "raise", ("log", "raise")) == "raise"
    with pytest.raises(ConfigurationError, match=r"^on_callback_error must be 'log' or 'raise', got 'ignore'$"):
        check_choice("on_callback_error", "ignore", ("log", "raise"))


def test_check_kinds() -> None:
    assert check_kinds(None) is None
    assert check_kinds(["token", EventKind.FINISH]) == frozenset({EventKind.TOKEN, EventKind.FINISH})
    with pytest.raises(ConfigurationError, match=r"^kinds must be a collection of event kinds, e\.g\. \('token',\)"):
        check_kinds("token")
    with pytest.raises(ConfigurationError, match=r"^kinds: 'tokens' is not a valid EventKind; valid kinds are \["):
        check_kinds(["tokens"])
    with pytest.raises(ConfigurationError, match=r"^kinds must name at least one event kind, or be None for all"):
        check_kinds([])


def test_check_scheduler() -> None:
    scheduler = TestScheduler()
    assert check_scheduler(scheduler) is scheduler and check_scheduler(None) is None
    with pytest.raises(ConfigurationError, match=r"^scheduler must be a reactivex scheduler or None, got str 'fast'; "):
        check_scheduler("fast")


@pytest.mark.parametrize("task", ["", "  ", None, 42])
def test_check_task(task: Any) -> None:
    with pytest.raises(ConfigurationError, match=r"^task must be a non-empty string, got "):
        check_task(task)


def test_check_keywords_suggests_the_closest_name() -> None:
    check_keywords("Agent", ["top_p"], {"top_p"}, ["max_loops"])
    with pytest.raises(ConfigurationError, match=r"\['max_loop'\]; did you mean 'max_loops'\? Otherwise see"):
        check_keywords("Agent", ["max_loop"], {"top_p"}, ["max_loops"])
    with pytest.raises(ConfigurationError, match=r"\['zzz'\]; see the Agent docstring"):
        check_keywords("Agent", ["zzz"], {"top_p"}, ["max_loops"])
