"""Usage guards: ``usage_meter`` (running totals) and ``budget`` (cancel a run over a token or cost budget)."""

from __future__ import annotations

import dataclasses
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass

import reactivex
from reactivex import Observable, abc
from reactivex.disposable import Disposable

from rxagents._validate import check_int, check_number, fail
from rxagents.events import EventKind, TokenEvent, Usage
from rxagents.operators._errors import BudgetExceeded, Relay

__all__ = ["UsageMeter", "UsageTotals", "budget", "usage_meter"]

Operator = Callable[[Observable[TokenEvent]], Observable[TokenEvent]]


@dataclass(frozen=True, slots=True)
class UsageTotals:
    """Token counts (and cost) of the runs seen by a :class:`UsageMeter` or a budget.

    Until a run's ``usage`` event arrives its completion tokens are estimated as its token events (one
    event ≈ one token) and its prompt tokens are unknown (0); the usage event then replaces the estimate.

    Attributes:
        prompt_tokens, completion_tokens, total_tokens: the counts (reported, or estimated as above).
        token_events: token events seen.
        runs: runs seen (``start`` events).
        reported: runs whose ``usage`` event arrived.
        cost: prompt and completion tokens priced with the meter's ``cost_per_token``.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    token_events: int = 0
    runs: int = 0
    reported: int = 0
    cost: float = 0.0

    def __add__(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
            self.token_events + other.token_events,
            self.runs + other.runs,
            self.reported + other.reported,
            self.cost + other.cost,
        )


_ZERO = UsageTotals()
_START = UsageTotals(runs=1)
_TOKEN = UsageTotals(completion_tokens=1, total_tokens=1, token_events=1)


def _prices(cost_per_token: float | tuple[float, float]) -> tuple[float, float]:
    pair = cost_per_token if isinstance(cost_per_token, tuple) else (cost_per_token, cost_per_token)
    if len(pair) != 2 or not all(
        isinstance(p, int | float) and not isinstance(p, bool) and math.isfinite(p) and p >= 0 for p in pair
    ):
        fail("cost_per_token", "a price >= 0 per token, or a pair (prompt_price, completion_price)", cost_per_token)
    return float(pair[0]), float(pair[1])


class _Tally:
    """Per subscription: the usage change each event makes (estimates replaced by reported usage)."""

    __slots__ = ("estimates", "prices", "reported")

    def __init__(self, prices: tuple[float, float]) -> None:
        self.prices = prices
        self.estimates: dict[tuple[str, str], int] = {}
        self.reported: dict[tuple[str, str], Usage] = {}

    def delta(self, event: TokenEvent) -> UsageTotals:
        kind = event.kind
        if kind is EventKind.TOKEN:
            key = (event.agent, event.run_id)
            return UsageTotals(token_events=1) if key in self.reported else self._priced(_TOKEN)
        if kind is EventKind.START:
            return _START
        if kind is EventKind.USAGE and event.usage is not None:
            key = (event.agent, event.run_id)
            usage = event.usage
            before = self.reported.get(key)
            if before is None:
                estimate = self.estimates.get(key, 0)
                before = Usage(0, estimate, estimate)
            return self._priced(
                UsageTotals(
                    usage.prompt_tokens - before.prompt_tokens,
                    usage.completion_tokens - before.completion_tokens,
                    usage.total_tokens - before.total_tokens,
                    reported=0 if key in self.reported else 1,
                )
            )
        return _ZERO

    def _priced(self, change: UsageTotals) -> UsageTotals:
        prompt, completion = self.prices
        cost = change.prompt_tokens * prompt + change.completion_tokens * completion
        return dataclasses.replace(change, cost=cost) if cost else change

    def commit(self, event: TokenEvent) -> None:
        key = (event.agent, event.run_id)
        if event.kind is EventKind.TOKEN and key not in self.reported:
            self.estimates[key] = self.estimates.get(key, 0) + 1
        elif event.kind is EventKind.USAGE and event.usage is not None:
            self.reported[key] = event.usage
            self.estimates.pop(key, None)


class UsageMeter:
    """Running usage totals of every stream piped through :func:`usage_meter` with this meter.

    Thread-safe; read :attr:`totals` at any time (e.g. for a status line, or after the run).

    Args:
        cost_per_token: the price of a token (prompt and completion alike), or a pair
            ``(prompt_price, completion_price)``; 0 by default (cost not tracked).
    """

    def __init__(self, *, cost_per_token: float | tuple[float, float] = 0.0) -> None:
        self.prices = _prices(cost_per_token)
        self._lock = threading.Lock()
        self._totals = _ZERO

    @property
    def totals(self) -> UsageTotals:
        with self._lock:
            return self._totals

    def reset(self) -> UsageTotals:
        """Start again from zero; returns the totals so far."""
        with self._lock:
            totals, self._totals = self._totals, _ZERO
            return totals

    def _add(self, change: UsageTotals) -> None:
        if change is not _ZERO:
            with self._lock:
                self._totals = self._totals + change

    def __repr__(self) -> str:
        t = self.totals
        return (
            f"UsageMeter(prompt_tokens={t.prompt_tokens}, completion_tokens={t.completion_tokens}, "
            f"runs={t.runs}, cost={t.cost:g})"
        )


def usage_meter(meter: UsageMeter) -> Operator:
    """Add the usage of every event to ``meter``'s running totals; pass every event through unchanged.

    Completion tokens are counted from token events as they arrive and replaced by the run's reported usage
    when its ``usage`` event arrives (runs always request usage), so ``meter.totals`` is live during the run
    and exact after it. Several streams (or subscriptions) can share one meter.

    .. code-block:: text

        source:  -s--a--b--c--u(p=7,c=4)--f-|
        output:  -s--a--b--c--u-----------f-|
        meter:    0  1  2  3  4 (prompt 7)          completion_tokens after each event

    Args:
        meter: the :class:`UsageMeter` to add to.

    Returns:
        An operator passing every event through unchanged.

    Example::

        meter = UsageMeter(cost_per_token=(0.15e-6, 0.6e-6))
        async for event in to_async_iter(agent.stream(task).pipe(usage_meter(meter))):
            ...
        print(meter.totals.completion_tokens, f"${meter.totals.cost:.6f}")
    """
    if not isinstance(meter, UsageMeter):
        fail("meter", "a UsageMeter", meter, hint="create one with UsageMeter()")

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            tally = _Tally(meter.prices)

            def on_next(event: TokenEvent) -> None:
                meter._add(tally.delta(event))
                tally.commit(event)
                observer.on_next(event)

            return source.subscribe(on_next, observer.on_error, observer.on_completed, scheduler=scheduler)

        return reactivex.create(subscribe)

    return operator


def budget(
    max_tokens: int | None = None,
    max_cost: float | None = None,
    *,
    cost_per_token: float | tuple[float, float] | None = None,
) -> Operator:
    """Cancel the run and fail with :class:`BudgetExceeded` when it goes over a token or cost budget.

    Completion tokens are counted from token events (one event ≈ one token) and corrected by the run's
    ``usage`` event when it arrives; cost prices prompt and completion tokens with ``cost_per_token`` (prompt
    tokens are known only from the usage event). The event that would cross the budget is not delivered:
    the upstream run is disposed (its HTTP stream closed), an ``error`` event ends the run and the stream
    fails with ``BudgetExceeded`` carrying the text delivered. Over a merged multi-agent stream the budget
    is shared by all its runs.

    .. code-block:: text

        source:  -s--a--b--c--d--f-|
        output:  -s--a--b--X               budget(max_tokens=2): X = error event, on_error(BudgetExceeded)
                                           partial_text "ab"; the run is cancelled at "c"

    Args:
        max_tokens: the most completion tokens allowed.
        max_cost: the most cost allowed (needs ``cost_per_token``).
        cost_per_token: the price of a token, or a pair ``(prompt_price, completion_price)``.

    Returns:
        An operator passing events through unchanged while within budget.

    Example::

        stream = agent.stream(task).pipe(budget(max_tokens=500, max_cost=0.01, cost_per_token=(1e-6, 4e-6)))
    """
    if max_tokens is None and max_cost is None:
        fail("max_tokens", "an int >= 0 when max_cost is None", None, hint="budget needs max_tokens and/or max_cost")
    check_int("max_tokens", max_tokens, minimum=0, none="(no token limit)")
    if max_cost is not None:
        check_number("max_cost", max_cost, minimum=0)
        if cost_per_token is None:
            fail(
                "cost_per_token",
                "a price per token, or (prompt_price, completion_price), when max_cost is given",
                cost_per_token,
            )
    prices = _prices(cost_per_token if cost_per_token is not None else 0.0)

    def over(totals: UsageTotals) -> tuple[str, float, float] | None:
        if max_tokens is not None and totals.completion_tokens > max_tokens:
            return "max_tokens", max_tokens, totals.completion_tokens
        if max_cost is not None and totals.cost > max_cost + 1e-12:
            return "max_cost", max_cost, totals.cost
        return None

    def operator(source: Observable[TokenEvent]) -> Observable[TokenEvent]:
        def subscribe(
            observer: abc.ObserverBase[TokenEvent], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            relay: Relay[TokenEvent] = Relay(observer, keep_events=True)
            tally = _Tally(prices)
            state = {"totals": _ZERO}

            def on_next(event: TokenEvent) -> None:
                with relay.lock:
                    if relay.done:
                        return
                    change = tally.delta(event)
                    totals = state["totals"] + change if change is not _ZERO else state["totals"]
                    crossed = over(totals) if change is not _ZERO else None
                    if crossed is not None:
                        limit, allowed, used = crossed
                        unit = "completion tokens" if limit == "max_tokens" else "cost"
                        error = BudgetExceeded(
                            f"budget exceeded: {limit}={allowed:g} but the run reached {used:g} {unit}; "
                            "the run was cancelled and the text so far is in .partial_text — raise the "
                            "budget, or set the agent's max_tokens so the model stops first",
                            limit=limit,
                            allowed=allowed,
                            used=used,
                        )
                        relay.fail(error, event.time)
                        return
                    state["totals"] = totals
                    tally.commit(event)
                    relay.on_next(event)

            relay.upstream.disposable = source.subscribe(
                on_next, relay.on_error, relay.on_completed, scheduler=scheduler
            )
            return Disposable(relay.dispose)

        return reactivex.create(subscribe)

    return operator
