"""Helpers of the law checker's tests: operators built from a subscribe function, and running the checker
with one law applicable."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import reactivex
from reactivex import Observable, abc

from rxagents.events import EventKind, TokenEvent
from rxagents.testing._laws import Law, check_operator_laws

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
