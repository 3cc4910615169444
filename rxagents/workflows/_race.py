"""race and switch: a run that cancels other runs.

* :func:`race` — several agents (or workflows) on one task; the first to answer wins, the others are
  cancelled (their HTTP streams closed).
* :func:`switch` — one agent on a stream of tasks; a new task cancels the run in progress (chat UIs:
  the user edits the question while the answer is still streaming).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import reactivex
from reactivex import Observer, abc
from reactivex import operators as ops
from reactivex.disposable import CompositeDisposable, SingleAssignmentDisposable

from rxagents import _runtime
from rxagents._validate import check_task, fail, shown
from rxagents.events import EventKind, TokenEvent
from rxagents.workflows._base import Streamable
from rxagents.workflows._results import WorkflowError, WorkflowResult

__all__ = ["race", "switch"]

#: The events that make an agent the winner of a race: the first piece of its answer.
_ANSWER_KINDS = frozenset({EventKind.TOKEN, EventKind.TOOL_CALL, EventKind.FINISH})


def _name_of(contender: Streamable, index: int) -> str:
    name = getattr(contender, "agent_name", None) or getattr(contender, "name", None)
    return name if isinstance(name, str) else f"contender-{index}"


def race(
    agents: Sequence[Streamable], task: str, *, scheduler: abc.SchedulerBase | None = None
) -> reactivex.Observable[TokenEvent]:
    """Run ``agents`` on ``task`` at once; the first to produce a token wins, the others are cancelled.

    The output is the winner's run alone, from its ``start`` event (events that arrived before it won are
    replayed first, in order), so it has the grammar of a single run. The moment a contender produces its
    first ``token`` (or ``tool_call``, or finishes without text), every other run is disposed: its task is
    cancelled and its HTTP stream closed. A contender that fails before anyone won is dropped from the race;
    when all fail, the stream ends with ``on_error(WorkflowError)`` naming each failure. Ties (same
    instant, e.g. in virtual time) go to the contender listed first whose event is delivered first.

    .. code-block:: text

        fast:    sF--f1--f2--fF|
        slow:    sS-----s1--s2--fS|
        race():  sF--f1--f2--fF|        (slow is disposed at f1)

    Args:
        agents: the contenders: ``Agent`` instances, or anything with ``stream(task, *, scheduler=None)``
            (a workflow races as one contender).
        task: the task every contender receives.
        scheduler: passed to each contender's ``stream`` (``TestScheduler`` for virtual time).

    Returns:
        A cold ``Observable[TokenEvent]``: each subscription is a new race.

    Example::

        answer = race([Agent(model_name="gpt-4o-mini"), Agent(model_name="claude-3-5-haiku-latest")], task)
        answer.pipe(rxagents.operators.collect_text()).subscribe(print)
    """
    if isinstance(agents, str) or not isinstance(agents, Sequence) or not agents:
        fail("agents", "a non-empty list of agents (the contenders of the race)", agents)
    for contender in agents:
        if not callable(getattr(contender, "stream", None)):
            fail(
                "agents",
                "a list of Agents (or anything with a stream(task) method)",
                agents,
                hint=f"{shown(contender)} has no stream method",
            )
    task = check_task(task)
    contenders = tuple(agents)
    names = [_name_of(contender, i) for i, contender in enumerate(contenders)]

    def subscribe(
        observer: abc.ObserverBase[TokenEvent], subscribe_scheduler: abc.SchedulerBase | None = None
    ) -> abc.DisposableBase:
        lock = threading.RLock()
        held: list[list[TokenEvent]] = [[] for _ in contenders]
        subscriptions = [SingleAssignmentDisposable() for _ in contenders]
        out: list[bool] = [False] * len(contenders)  # failed before anyone won
        winner: list[int] = []

        def win(index: int) -> None:
            winner.append(index)
            for other, subscription in enumerate(subscriptions):
                if other != index:
                    subscription.dispose()
            replay, held[:] = held[index], [[] for _ in contenders]
            for event in replay:
                observer.on_next(event)

        def on_next(index: int, event: TokenEvent) -> None:
            with lock:
                if winner:
                    if winner[0] == index:
                        observer.on_next(event)
                    return
                held[index].append(event)
                if event.kind in _ANSWER_KINDS:
                    win(index)

        def on_error(index: int, error: Exception) -> None:
            with lock:
                if winner:
                    if winner[0] == index:
                        observer.on_error(error)
                    return
                out[index] = True
                if all(out):
                    events = [event for run in held for event in run]
                    result = WorkflowResult.from_events("race", names, events)
                    observer.on_error(WorkflowError.of(result, stopped="every contender failed before answering"))

        def on_completed(index: int) -> None:
            with lock:
                if not winner:  # ended without an answer event: an empty answer still wins
                    win(index)
                if winner[0] == index:
                    observer.on_completed()

        def listen(index: int) -> abc.ObserverBase[TokenEvent]:
            def next_(event: TokenEvent) -> None:
                on_next(index, event)

            def error_(error: Exception) -> None:
                on_error(index, error)

            def completed_() -> None:
                on_completed(index)

            return Observer(next_, error_, completed_)

        for index, contender in enumerate(contenders):
            with lock:
                if winner:
                    break
            subscriptions[index].disposable = contender.stream(task, scheduler=scheduler).subscribe(
                listen(index), scheduler=subscribe_scheduler
            )
        return CompositeDisposable(*subscriptions)

    return reactivex.create(subscribe)


def switch(
    agent: Streamable,
    tasks: reactivex.Observable[str],
    *,
    continue_on_error: bool = False,
    scheduler: abc.SchedulerBase | None = None,
) -> reactivex.Observable[TokenEvent]:
    """Run ``agent`` on each task of ``tasks``; a new task cancels the run in progress.

    For chat UIs: push each question into a ``Subject`` and subscribe once; when the user sends a new
    question while an answer is streaming, that run is disposed (task cancelled, HTTP stream closed) and
    the new run starts. Events of a cancelled run never appear after the new run's first event. The stream
    completes when ``tasks`` completes and the last run has finished.

    .. code-block:: text

        tasks:     -q1-------q2---------|
        run(q1):    s1--a--b-X                 (disposed when q2 arrives)
        run(q2):             s2--c--d--f2|
        switch():  -s1--a--b--s2--c--d--f2-|

    Tasks are handed to the run's event loop (``scheduler`` if given, else the loop runs started from the
    subscribing thread use, see :mod:`rxagents._runtime`) before the switch, so switching and run events
    are serialised on that loop. Push tasks from one thread at a time.

    Args:
        agent: an ``Agent`` (or a workflow: anything with ``stream(task, *, scheduler=None)``).
        tasks: the tasks, e.g. a ``reactivex.subject.Subject[str]``.
        continue_on_error: ``False`` (default): a failed run ends the stream with its error (after its
            ``error`` event). ``True``: the failure stays in-band as the ``error`` event and the session
            goes on with the next task.
        scheduler: passed to each run's ``stream`` and used to deliver tasks (``TestScheduler`` for
            virtual time).

    Returns:
        A cold ``Observable[TokenEvent]`` (each subscription subscribes to ``tasks``).

    Example::

        questions: Subject[str] = Subject()
        switch(agent, questions).subscribe(send_to_browser)
        questions.on_next("Explain streams")
        questions.on_next("No, explain Observables")   # cancels the first answer
    """
    if not callable(getattr(agent, "stream", None)):
        fail("agent", "an Agent (or anything with a stream(task) method)", agent)
    if not isinstance(tasks, reactivex.Observable):
        fail("tasks", "an Observable of str", tasks, hint="e.g. a reactivex Subject[str]")

    def run(task: str) -> reactivex.Observable[TokenEvent]:
        def start(_: abc.SchedulerBase | None) -> reactivex.Observable[TokenEvent]:
            return agent.stream(check_task(task), scheduler=scheduler)

        observable = reactivex.defer(start)
        if continue_on_error:
            observable = observable.pipe(ops.catch(reactivex.empty()))
        return observable

    def subscribe(_: abc.SchedulerBase | None) -> reactivex.Observable[TokenEvent]:
        loop = _runtime.default_scheduler(scheduler)
        return tasks.pipe(ops.observe_on(loop), ops.map(run), ops.switch_latest())

    return reactivex.defer(subscribe)
