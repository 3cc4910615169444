from __future__ import annotations

import asyncio
import json
import time

import pytest

from rxagents.errors import ConfigurationError, ModelError
from rxagents.events import EventKind
from rxagents.models import STALL, Delta, ModelRequest, OfflineModel, Step, ToolCallSpec


def _request(task: str = "Explain streams", max_tokens: int | None = None, system: str | None = None) -> ModelRequest:
    messages = [{"role": "system", "content": system}] if system is not None else []
    messages.append({"role": "user", "content": task})
    return ModelRequest(model="offline", messages=messages, max_tokens=max_tokens)


def _text(steps: list[Step]) -> str:
    return "".join(step.text for _, step in steps if isinstance(step, Delta) and step.kind is EventKind.TOKEN)


async def _collect(model: OfflineModel, request: ModelRequest) -> list[Delta]:
    return [d async for d in model.stream(request)]


def test_answer_is_deterministic_and_honest() -> None:
    first = [d.text for d in asyncio.run(_collect(OfflineModel(), _request()))]
    second = [d.text for d in asyncio.run(_collect(OfflineModel(), _request()))]
    assert first == second
    assert "offline model" in "".join(first)
    assert "not an LLM" in "".join(first)


def test_the_answer_depends_on_the_task_and_the_system_prompt() -> None:
    task = "Analyze Tesla (TSLA) stock from market, financial, and technical perspectives"
    prompts = ["You are a market research specialist.", "You are a financial analysis expert.", ""]
    by_prompt = {_text(OfflineModel().script(_request(task, system=p))) for p in prompts}
    by_task = {_text(OfflineModel().script(_request(t))) for t in ("Explain streams", "Explain buffers", "?")}
    assert len(by_prompt) == 3 and len(by_task) == 3
    assert all("Tesla (TSLA)" in text for text in by_prompt)


def test_the_answer_is_the_same_on_asyncio_and_in_virtual_time() -> None:
    from reactivex.testing import TestScheduler

    from rxagents import Agent

    agent = Agent(agent_name="A", system_prompt="Be brief.", llm=OfflineModel(pace=0.5), print_on=False)
    scheduler = TestScheduler()
    results = scheduler.start(lambda: agent.stream("Explain streams", scheduler=scheduler), disposed=10_000)
    virtual = "".join(m.value.value.text for m in results.messages if m.value.kind == "N"
                      and m.value.value.kind is EventKind.TOKEN)  # fmt: skip
    fast = Agent(agent_name="A", system_prompt="Be brief.", llm=OfflineModel(), print_on=False)
    assert virtual == fast.run("Explain streams")
    assert "offline model" in virtual


@pytest.mark.parametrize("length", [1, 60, 5_000])
def test_length_is_about_how_many_tokens_the_answer_has(length: int) -> None:
    steps = OfflineModel(length=length).script(_request())
    tokens = sum(isinstance(s, Delta) and s.kind is EventKind.TOKEN for _, s in steps)
    assert length <= tokens <= max(length, 60) + 40  # the header always, then whole sentences


HUGE = 10_000_000  # characters


@pytest.mark.parametrize(
    ("unit", "tokens"),
    [
        ("a", HUGE // 4),  # "aaaa" "aaaa" ...
        ("ab ", HUGE // 3 + 1),  # "ab" " ab" ... " ab" " "
        (" .,\n!?", HUGE // 6 * 2),  # " .," "\n!?" ...
        ("流式输出é ✨", HUGE // 7 * 2),  # "流式输出é" " ✨" ...
        (" ", HUGE // 16),  # 16 spaces a token
    ],
    ids=["one huge word", "many short words", "whitespace and punctuation", "unicode", "only whitespace"],
)
def test_a_10_mb_task_of_any_shape_is_answered_promptly(unit: str, tokens: int) -> None:
    task = unit * (HUGE // len(unit))
    start = time.process_time()
    steps = OfflineModel().script(_request(task, system="Be brief."))
    elapsed = time.process_time() - start
    usage = steps[-2][1].usage if isinstance(steps[-2][1], Delta) else None
    assert usage is not None and usage.prompt_tokens == 3 + tokens  # "Be" " brief" "." and the task
    text = _text(steps)
    assert text.startswith("[offline model]") and len(text) < 2_000  # the task is quoted, shortened
    # about a second on a quiet machine; the quadratic tokenizer took minutes for one huge word
    assert elapsed < 30, f"{elapsed:.1f} s of CPU time for a {HUGE:,}-character task"


def test_usage_then_finish_close_the_stream() -> None:
    deltas = asyncio.run(_collect(OfflineModel(text="one two three"), _request()))
    kinds = [d.kind for d in deltas]
    assert kinds[-2:] == [EventKind.USAGE, EventKind.FINISH]
    usage = deltas[-2].usage
    assert usage is not None and usage.completion_tokens == 3
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    assert deltas[-1].finish_reason == "stop"


def test_max_tokens_cuts_the_answer_with_finish_length() -> None:
    deltas = asyncio.run(_collect(OfflineModel(), _request(max_tokens=5)))
    assert sum(d.kind is EventKind.TOKEN for d in deltas) == 5
    assert deltas[-1].finish_reason == "length"


def test_reasoning_comes_before_the_answer() -> None:
    deltas = asyncio.run(_collect(OfflineModel(text="Hi.", reasoning=("Let me", " think.")), _request()))
    assert [d.kind for d in deltas[:3]] == [EventKind.REASONING, EventKind.REASONING, EventKind.TOKEN]


def test_tool_call_deltas_reassemble_into_json() -> None:
    model = OfflineModel(text="Checking.", tool_calls=(ToolCallSpec("get_weather", {"city": "Paris", "days": 3}),))
    deltas = asyncio.run(_collect(model, _request()))
    calls = [d.tool_call for d in deltas if d.tool_call is not None]
    assert len(calls) > 2
    assert calls[0].name == "get_weather" and calls[0].id
    assert json.loads("".join(c.arguments for c in calls)) == {"city": "Paris", "days": 3}
    assert deltas[-1].finish_reason == "tool_calls"


def test_fail_after_raises_model_error_after_n_tokens() -> None:
    async def run() -> list[str]:
        got: list[str] = []
        with pytest.raises(ModelError) as info:
            async for d in OfflineModel(fail_after=4, error_status=503, retry_after=2.0).stream(_request()):
                got.append(d.text)
        assert info.value.status_code == 503 and info.value.retry_after == 2.0
        return got

    assert len(asyncio.run(run())) == 4


def test_fail_times_only_fails_the_first_requests() -> None:
    model = OfflineModel(fail_after=0, fail_times=1)
    with pytest.raises(ModelError):
        asyncio.run(_collect(model, _request()))
    assert asyncio.run(_collect(model, _request()))[-1].kind is EventKind.FINISH


def test_stall_after_is_a_stall_step_in_the_script() -> None:
    steps = OfflineModel(stall_after=2).script(_request())
    assert steps[-1][1] is STALL
    assert sum(isinstance(s, Delta) for _, s in steps) == 2


def test_pace_spaces_the_script() -> None:
    steps = OfflineModel(pace=0.5, first_token_delay=2.0, text="a b c").script(_request())
    assert [delay for delay, _ in steps[:3]] == [2.0, 0.5, 0.5]


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"pace": -1}, "pace"), ({"length": 0}, "length"), ({"fail_after": -2}, "fail_after")],
)
def test_bad_arguments_name_the_parameter(kwargs: dict[str, float], name: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        OfflineModel(**kwargs)  # type: ignore[arg-type]
