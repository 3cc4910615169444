"""The Agent: swarms-style configuration on top of a cold Observable of token events.

``agent.stream(task)`` is the primitive: a cold ``Observable[TokenEvent]`` (each subscription is
a new run; disposing it cancels the run and closes the HTTP stream). ``astream``, ``run`` and
``arun`` are built on it.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import AsyncIterator
from typing import Any, Literal

import reactivex
from reactivex import abc

from rxagents import _drive, _runtime
from rxagents._drive import StreamingCallback, check_callback
from rxagents._run import RetryPolicy, RunSpec, run_events, run_observable
from rxagents._swarms import AGENT_OPTIONS, AGENT_RUN, check_run_arguments
from rxagents._validate import (
    MAX_LOOPS,
    MAX_TEMPERATURE,
    MAX_TIMEOUT,
    MAX_TOKENS,
    check_bool,
    check_choice,
    check_int,
    check_keywords,
    check_number,
    check_seconds,
    check_str,
    fail,
)
from rxagents._validate import check_task as _check_task
from rxagents.events import TokenEvent
from rxagents.models import BACKENDS, ModelBackend, resolve_model
from rxagents.sinks import ConsolePrinter

__all__ = ["Agent", "StreamingCallback"]

def _check_retries(retries: object) -> RetryPolicy:
    if isinstance(retries, RetryPolicy):
        return retries
    count = check_int("retries", retries, minimum=0, hint="0 never retries; or pass a RetryPolicy(...)")
    return RetryPolicy(retries=count)


class Agent:
    """An LLM agent whose runs are streams.

    Args:
        agent_name: name shown in headers and carried by every event.
        model_name: a model name (``"gpt-4o-mini"``, ``"groq/llama-3.1-8b-instant"``,
            ``"anthropic/..."``, any name litellm knows), ``"offline"`` for the embedded offline model,
            or any name served by ``api_base``. With no key
            configured for a known provider, the offline model is used (with a warning).
        system_prompt: the system message.
        max_loops: how many times the agent answers, each loop seeing the conversation so far.
        streaming_on: print tokens as they arrive (when ``print_on``); runs always stream.
        stream: detailed mode: callbacks receive ``event.to_dict()`` instead of text.
        print_on: print to the console (``False``: silent).
        verbose: log each event at DEBUG on the ``rxagents`` logger.
        streaming_callback: default callback for :meth:`run`/:meth:`arun`.
        temperature, max_tokens: sampling settings sent to the model.
        api_base, api_key: an OpenAI-compatible endpoint and its key (key never logged or shown).
        llm: a model backend instance (e.g. ``OfflineModel(pace=0.02)``) instead of ``model_name``.
        backend: ``"direct"`` (rxagents reads the OpenAI-compatible stream itself) or ``"litellm"``;
            ``None`` (default): direct for OpenAI-compatible targets (any ``api_base``, OpenAI, Groq, ...),
            litellm for the rest (see ``docs/models.md``).
        on_callback_error: ``"log"`` (default): a raising callback is counted and logged once per
            run and the stream continues; ``"raise"``: the run stops and raises ``RunError``.
        retries: how a failed model request is retried: an int (retries per run, transient errors
            only: 429, 5xx, cut, malformed or empty streams) or a :class:`RetryPolicy`. Only a request
            that delivered nothing yet is retried silently (after the backoff and at least the
            provider's ``Retry-After``); after output the run fails with its partial text, unless
            ``RetryPolicy(after_tokens="restart")`` (a ``retry`` event, then the run again).
        first_token_timeout: seconds the model may take, after a request is sent, to deliver its
            first delta (covers slow headers; reasoning deltas count); then
            :class:`~rxagents.errors.StallTimeout`, not retried by default (a retry would start a
            slow model's work again and multiply the wait). ``None``: no limit. Default 60 s: a
            dead request surfaces within a minute, and models that think before answering without
            streaming their reasoning (OpenAI o-series) mostly answer within it; raise it for those.
        stall_timeout: seconds the model may go silent between deltas mid-stream (default 30 s);
            then ``StallTimeout`` with the partial text. ``None``: no limit.

    Every argument is checked here: a bad one raises :class:`~rxagents.errors.ConfigurationError`
    (a ``ValueError`` and a ``TypeError``) naming it, the value and the fix. Bounds: ``max_loops``
    1 to 1000, ``max_tokens`` 1 to 10,000,000, ``temperature`` 0 to 2, timeouts up to 86,400 s
    (a day; ``None`` for no limit); flags are ``True``/``False``.

    See ``docs/reliability.md`` for what each network fault does to a run.
    """

    def __init__(
        self,
        agent_name: str = "Agent",
        model_name: str | None = None,
        system_prompt: str | None = None,
        max_loops: int = 1,
        streaming_on: bool = False,
        stream: bool = False,
        print_on: bool = True,
        verbose: bool = False,
        streaming_callback: StreamingCallback | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        api_base: str | None = None,
        api_key: str | None = None,
        llm: ModelBackend | None = None,
        backend: Literal["direct", "litellm"] | None = None,
        on_callback_error: Literal["log", "raise"] = "log",
        retries: int | RetryPolicy = 2,
        first_token_timeout: float | None = 60.0,
        stall_timeout: float | None = 30.0,
        **swarms_options: Any,
    ) -> None:
        if "retry_attempts" in swarms_options:  # swarms counts attempts; rxagents counts retries
            retries = check_int("retry_attempts", swarms_options.pop("retry_attempts")) - 1
        check_keywords("Agent", swarms_options, AGENT_OPTIONS, _PARAMETERS)
        agent_name = check_str("agent_name", agent_name)
        model_name = check_str("model_name", model_name, empty=True, none="to choose from the environment")
        system_prompt = check_str("system_prompt", system_prompt, empty=True, none="for no system message")
        max_loops = check_int("max_loops", max_loops, maximum=MAX_LOOPS)
        streaming_on, stream = check_bool("streaming_on", streaming_on), check_bool("stream", stream)
        print_on, verbose = check_bool("print_on", print_on), check_bool("verbose", verbose)
        temperature = check_number(
            "temperature", temperature, minimum=0, maximum=MAX_TEMPERATURE, none="for the model's default"
        )
        max_tokens = check_int("max_tokens", max_tokens, maximum=MAX_TOKENS, none="for the model's default")
        api_base = check_str("api_base", api_base, empty=True, none="for the provider's endpoint")
        api_key = check_str("api_key", api_key, empty=True, secret=True, none="to read it from the environment")
        check_choice("on_callback_error", on_callback_error, ("log", "raise"))
        if backend is not None:
            check_choice("backend", backend, BACKENDS)
            if llm is not None:
                fail("backend", "None when llm= is given (llm= is the backend)", backend)
        check_callback("streaming_callback", streaming_callback)
        self.retry_policy = _check_retries(retries)
        self.first_token_timeout = check_seconds(
            "first_token_timeout", first_token_timeout, maximum=MAX_TIMEOUT, none="for no limit"
        )
        self.stall_timeout = check_seconds("stall_timeout", stall_timeout, maximum=MAX_TIMEOUT, none="for no limit")

        self.agent_name = agent_name
        self.system_prompt = system_prompt
        self.max_loops = max_loops
        self.streaming_on = streaming_on
        self.stream_detailed = stream
        self.print_on = print_on
        self.verbose = verbose
        self.streaming_callback = streaming_callback
        self.on_callback_error = on_callback_error
        if llm is not None:
            if not isinstance(llm, ModelBackend):
                fail("llm", "a model backend with .name and .stream(), such as OfflineModel(), or None", llm)
            self.llm: ModelBackend = llm
            self.model_name = model_name or llm.name
            self._api_base, self._api_key = api_base, api_key
        else:
            resolved = resolve_model(model_name, api_base=api_base, api_key=api_key, backend=backend)
            self.llm = resolved.backend
            self.model_name = resolved.model
            self._api_base, self._api_key = resolved.api_base, resolved.api_key
        self.backend = backend
        self.temperature = temperature
        self.max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"Agent(agent_name={self.agent_name!r}, model_name={self.model_name!r}, max_loops={self.max_loops})"

    # the primitive -------------------------------------------------------------------------------
    def _spec(self) -> RunSpec:
        return RunSpec(
            agent=self.agent_name,
            backend=self.llm,
            model=self.model_name,
            system_prompt=self.system_prompt,
            max_loops=self.max_loops,
            temperature=self.temperature,
            max_tokens=self.max_tokens,
            api_base=self._api_base,
            api_key=self._api_key,
            retry=self.retry_policy,
            first_token_timeout=self.first_token_timeout,
            stall_timeout=self.stall_timeout,
        )

    def stream(
        self, task: str, *, scheduler: abc.SchedulerBase | None = None, run_id: str | None = None
    ) -> reactivex.Observable[TokenEvent]:
        """The run as a cold ``Observable[TokenEvent]``.

        Each subscription starts a new run; disposing it cancels the run and closes its HTTP stream.
        Its events carry ``run_id``: by default a new :func:`~rxagents.events.new_run_id` per
        subscription; pass one to name the run yourself (a run submitted to a bus keeps the id chosen
        at submit time), and every subscription then uses it.
        Events are delivered on the loop the run executes on: the running asyncio loop of the
        subscribing thread, else the rxagents runtime thread. Pass ``scheduler=`` an asyncio
        scheduler to choose the loop, or a ``TestScheduler`` to play the offline model in virtual time.

        Example::

            agent.stream("Explain streams").pipe(ops.filter(lambda e: e.kind == "token"))
        """
        run_id = check_str("run_id", run_id, none="for a new run id per subscription")
        return run_observable(self._spec(), _check_task(task), scheduler, run_id)

    async def astream(self, task: str) -> AsyncIterator[TokenEvent]:
        """``async for event in agent.astream(task)``: the run's events on the current loop.

        Leaving the loop early (``break``) or cancelling the task ends the run and closes the HTTP
        stream. A failed run yields its ``error`` event, then raises the ``RxAgentsError``.
        """
        spec, task = self._spec(), _check_task(task)
        events = run_events(spec, task, _runtime.loop_clock(asyncio.get_running_loop()))
        try:
            async for event in events:
                yield event
        finally:
            await events.aclose()

    # swarms-style API ---------------------------------------------------------------------------
    def _source(self, task: str, record: list[TokenEvent]) -> _drive.Source:
        """The run of ``task``, keeping its events in ``record`` (the dispatcher reads them there)."""
        spec = self._spec()

        def source(scheduler: abc.SchedulerBase) -> reactivex.Observable[TokenEvent]:
            return run_observable(spec, task, scheduler, record=record)

        return source

    def _delivery(
        self, streaming_callback: StreamingCallback | None, *, awaiting: bool, record: list[TokenEvent]
    ) -> _drive.Delivery:
        check_callback("streaming_callback", streaming_callback)
        callback = streaming_callback or self.streaming_callback
        live = callback is None and self.print_on and self.streaming_on
        printer = ConsolePrinter(self.agent_name, self.max_loops) if live else None
        output = _drive.Output(callback, detailed=self.stream_detailed, verbose=self.verbose, printer=printer)
        handlers = output.handlers(awaiting=awaiting)
        return _drive.Delivery(self.agent_name, handlers, on_callback_error=self.on_callback_error, record=record)

    def _finish(self, text: str, streaming_callback: StreamingCallback | None) -> str:
        """Without a callback and without live printing, ``print_on`` prints the answer when the run is over."""
        if self.print_on and not self.streaming_on and (streaming_callback or self.streaming_callback) is None:
            printer = ConsolePrinter(self.agent_name, self.max_loops)
            print(printer.header() + text, flush=True)
        return text

    def run(self, task: str, streaming_callback: StreamingCallback | None = None, *args: Any, **kwargs: Any) -> str:
        """Run the agent and return its final answer (the last loop's text).

        ``streaming_callback`` (or the Agent's) gets each text delta as ``str`` — or each event's
        detailed dict with ``stream=True`` — on **the thread that called run()**, while the socket is
        read on the rxagents runtime loop, so a slow callback never stalls the stream. A raising
        callback is isolated (see ``on_callback_error``). Works from plain scripts and from inside a
        running event loop (Jupyter). Ctrl-C cancels the run and closes its connection. An ``async def``
        callback needs :meth:`arun` (``run`` cannot await it: ``ConfigurationError``).

        swarms' other ``run`` parameters are accepted unused, so that code written for swarms runs:
        ``img=None``, ``imgs=None``, ``correct_answer=None``, ``n=1``. Another value of one of them (rxagents
        sends text only, does not re-run until an answer matches, returns one answer), any other keyword and
        a third positional argument raise ``ConfigurationError`` naming it, before the run starts.

        Raises:
            RunError: the run failed; ``.partial_text`` and ``.events`` hold what arrived.
        """
        task = _check_task(task)
        check_run_arguments("Agent.run", args, kwargs, AGENT_RUN)
        record: list[TokenEvent] = []
        dispatcher = self._delivery(streaming_callback, awaiting=False, record=record).run(self._source(task, record))
        return self._finish(_drive.answer(dispatcher), streaming_callback)

    async def arun(
        self, task: str, streaming_callback: StreamingCallback | None = None, *args: Any, **kwargs: Any
    ) -> str:
        """``await agent.arun(task)``: as :meth:`run`, with the run and its callbacks on the current loop.

        ``streaming_callback`` is called **on the loop's thread**, in order, as every asyncio callback
        is (so it may call ``asyncio.create_task``). An ``async def`` callback, or any awaitable a callback
        returns, is awaited before the next token's call; the socket reader is a separate task with a
        bounded buffer between them (``rxagents._dispatch.CALLBACK_BUFFER`` events): when it is full the
        reader waits, so nothing is lost. A slow *sync* callback holds up the loop, as in any asyncio code.
        No executor thread is used: any number of ``arun`` calls can be gathered. Cancelling the awaiting
        task cancels the run and closes its HTTP stream. swarms' other parameters: as for :meth:`run`.

        Example::

            async def send(token: str) -> None:
                await websocket.send(token)

            answer = await agent.arun("Explain streams", streaming_callback=send)
        """
        task = _check_task(task)
        check_run_arguments("Agent.arun", args, kwargs, AGENT_RUN)
        record: list[TokenEvent] = []
        delivery = self._delivery(streaming_callback, awaiting=True, record=record)
        dispatcher = await delivery.arun(self._source(task, record))
        return self._finish(_drive.answer(dispatcher), streaming_callback)


#: Agent's named parameters, for the "did you mean" of an unknown keyword.
_PARAMETERS = frozenset(inspect.signature(Agent.__init__).parameters) - {"self", "swarms_options"}
