"""The embedded offline model: deterministic, no network, honest about what it is.

It answers any task with plain English that says it comes from rxagents' offline model (see
``_offline_answer``), split at realistic token boundaries (words and sub-word pieces with their leading
space, short runs of punctuation; see ``_tokenize``), at a configurable pace. It reports usage and a
finish reason like a real provider, and can emit reasoning and tool-call deltas and injected faults (an
error after N tokens, a stall) for tests.

The answer is a *script* — a list of (delay, step) pairs — so it can be played on an asyncio loop
(:meth:`OfflineModel.stream`) or on any reactivex scheduler, virtual time included
(see ``rxagents._run``), with identical results.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any, Final

from rxagents._validate import check_int, check_seconds, check_str, fail
from rxagents.errors import ModelError
from rxagents.events import EventKind, ToolCallDelta, Usage
from rxagents.models._base import Delta, ModelRequest
from rxagents.models._offline_answer import answer
from rxagents.models._tokenize import count_tokens, tokenize
from rxagents.models._tool_calls import ToolCallSpec

__all__ = ["STALL", "OfflineModel", "Step", "tokenize"]


class _Stall:
    """Script step: stop producing, without ending, until cancelled."""

    def __repr__(self) -> str:
        return "STALL"


STALL: Final = _Stall()

#: One step of a script: wait ``delay`` seconds, then yield the delta / raise the error / stall.
Step = tuple[float, Delta | BaseException | _Stall]


def _task_of(messages: Sequence[Mapping[str, Any]]) -> tuple[str, str, int]:
    """The system prompt, the first user message (the task) and how many assistant turns came before."""
    system = next((str(m.get("content", "")) for m in messages if m.get("role") == "system"), "")
    task = next((str(m.get("content", "")) for m in messages if m.get("role") == "user"), "")
    turns = sum(1 for m in messages if m.get("role") == "assistant")
    return system, task, turns


class OfflineModel:
    """A deterministic local model for demos and tests. No network, no keys.

    Args:
        pace: seconds between tokens (0 streams as fast as the loop allows).
        first_token_delay: seconds before the first token; defaults to ``pace``.
        length: about how many tokens an answer has (``max_tokens`` cuts it, finish ``"length"``).
        reasoning: reasoning deltas emitted before the answer (e.g. ``("Let me think", " step by step.")``).
        tool_calls: tool calls to stream after the answer text; finish becomes ``"tool_calls"``.
        fail_after: raise a :class:`~rxagents.errors.ModelError` after this many tokens (0: before any).
        stall_after: stop producing, without ending, after this many tokens (for timeout tests).
        fail_times: only the first ``fail_times`` requests fail (default: all of them, when faults are set).
        error_status: the HTTP-like status code the injected error reports (e.g. 503).
        retry_after: the ``retry_after`` seconds the injected error reports.
        text: a fixed answer text to stream instead of the generated one.
    """

    def __init__(
        self,
        *,
        pace: float = 0.0,
        first_token_delay: float | None = None,
        length: int = 60,
        reasoning: Sequence[str] = (),
        tool_calls: Sequence[ToolCallSpec] = (),
        fail_after: int | None = None,
        stall_after: int | None = None,
        fail_times: int | None = None,
        error_status: int | None = 500,
        retry_after: float | None = None,
        text: str | None = None,
    ) -> None:
        check_seconds("pace", pace, zero=True)
        check_seconds("first_token_delay", first_token_delay, zero=True, none="(the pace)")
        check_int("length", length, hint="the number of tokens to answer")
        for name, count in (("fail_after", fail_after), ("stall_after", stall_after), ("fail_times", fail_times)):
            check_int(name, count, minimum=0, none="(never)" if name != "fail_times" else "(every request)")
        for name, steps, kind in (("reasoning", reasoning, str), ("tool_calls", tool_calls, ToolCallSpec)):
            if isinstance(steps, str) or not isinstance(steps, Sequence) or not all(isinstance(s, kind) for s in steps):
                fail(name, f"a sequence of {kind.__name__}", steps, hint="put a single one in a tuple: (item,)")
        check_int("error_status", error_status, minimum=100, maximum=599, none="(no status)")
        check_seconds("retry_after", retry_after, zero=True, none="(not reported)")
        check_str("text", text, empty=True, none="(the generated answer)")
        self.pace = pace
        self.first_token_delay = pace if first_token_delay is None else first_token_delay
        self.length = length
        self.reasoning = tuple(reasoning)
        self.tool_calls = tuple(tool_calls)
        self.fail_after = fail_after
        self.stall_after = stall_after
        self.fail_times = fail_times
        self.error_status = error_status
        self.retry_after = retry_after
        self.text = text
        self.requests = 0

    @property
    def name(self) -> str:
        return "offline"

    def __repr__(self) -> str:
        return f"OfflineModel(pace={self.pace!r}, length={self.length!r})"

    def script(self, request: ModelRequest) -> list[Step]:
        """The steps answering ``request``. Each call counts as one request (for ``fail_times``)."""
        self.requests += 1
        faulty = self.fail_times is None or self.requests <= self.fail_times
        system, task, turns = _task_of(request.messages)
        text = self.text if self.text is not None else answer(system, task, turns, self.length)
        tokens = tokenize(text)
        finish = "stop"
        if request.max_tokens is not None and len(tokens) > request.max_tokens:
            tokens, finish = tokens[: request.max_tokens], "length"

        steps: list[Step] = []
        delay = self.first_token_delay
        for piece in self.reasoning:
            steps.append((delay, Delta(EventKind.REASONING, text=piece)))
            delay = self.pace
        for i, token in enumerate(tokens):
            if faulty and self.fail_after == i:
                steps.append((delay, self._error(i)))
                return steps
            if faulty and self.stall_after == i:
                steps.append((delay, STALL))
                return steps
            steps.append((delay, Delta(EventKind.TOKEN, text=token)))
            delay = self.pace
        if faulty and self.fail_after is not None and self.fail_after >= len(tokens):
            steps.append((delay, self._error(len(tokens))))
            return steps
        if faulty and self.stall_after is not None and self.stall_after >= len(tokens):
            steps.append((delay, STALL))
            return steps
        for index, call in enumerate(self.tool_calls):
            call_id = call.call_id(index, prefix="call_offline_")
            steps.append((delay, Delta(EventKind.TOOL_CALL, tool_call=ToolCallDelta(index, call_id, call.name, ""))))
            for piece in call.argument_pieces():
                steps.append((self.pace, Delta(EventKind.TOOL_CALL, tool_call=ToolCallDelta(index, arguments=piece))))
            finish = "tool_calls"
        prompt = sum(count_tokens(str(m.get("content", ""))) for m in request.messages)
        completion = len(tokens) + sum(count_tokens(p) for p in self.reasoning)
        steps.append((0.0, Delta(EventKind.USAGE, usage=Usage(prompt, completion, prompt + completion))))
        steps.append((0.0, Delta(EventKind.FINISH, finish_reason=finish)))
        return steps

    def _error(self, after: int) -> ModelError:
        return ModelError(
            f"offline model: injected failure after {after} tokens (status {self.error_status})",
            status_code=self.error_status,
            retry_after=self.retry_after,
        )

    async def stream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        """Play :meth:`script` on the running asyncio loop."""
        for delay, step in self.script(request):
            if delay > 0:
                await asyncio.sleep(delay)
            if isinstance(step, _Stall):
                await asyncio.Event().wait()
            elif isinstance(step, BaseException):
                raise step
            else:
                yield step
