"""What every workflow shares (rxagents/workflows/_base.py): the checks of its run methods."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest

from rxagents import Agent, ConfigurationError, OfflineModel
from rxagents.workflows import ConcurrentWorkflow, SequentialWorkflow, Workflow

WORKFLOWS = [ConcurrentWorkflow, SequentialWorkflow]
METHODS = ["run", "arun", "run_result", "arun_result"]


def _call(workflow: Workflow, method: str, *args: Any, **kwargs: Any) -> Any:
    outcome = getattr(workflow, method)("task", None, *args, **kwargs)
    return asyncio.run(outcome) if asyncio.iscoroutine(outcome) else outcome


# --- swarms' run parameters: img/imgs accepted unused, anything else refused before anything runs ---------------
@pytest.mark.parametrize("kind", WORKFLOWS)
@pytest.mark.parametrize("method", METHODS)
def test_every_run_method_accepts_swarms_image_parameters_unset(kind: type[Workflow], method: str) -> None:
    agents = [Agent(agent_name=name, llm=OfflineModel(text=text), print_on=False) for name, text in ("Aa", "Bb")]
    outcome = _call(kind(agents=agents), method, img=None, imgs=None)
    assert outcome == ("b" if kind is SequentialWorkflow and method in ("run", "arun") else {"A": "a", "B": "b"})


@pytest.mark.parametrize("kind", WORKFLOWS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize(
    ("args", "kwargs", "named"),
    [((), {"img": "cat.png"}, "^img must be None in rxagents, got 'cat.png'"),
     ((), {"imgs": ["a.png"]}, r"^imgs must be None in rxagents, got \['a.png'\]"),
     ((), {"n": 1}, r"^{call}\(\) got unexpected keyword argument\(s\) \['n'\]"),
     ((), {"stream": True}, r"^{call}\(\) got unexpected keyword argument\(s\) \['stream'\]"),
     (("extra",), {}, r"^{call}\(\) takes the task and streaming_callback positionally, got 1 more")],
)
def test_every_run_method_refuses_what_it_does_not_understand_naming_it(
    kind: type[Workflow], method: str, args: tuple[Any, ...], kwargs: dict[str, Any], named: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    agent = Agent(agent_name="A", llm=OfflineModel(text="a"), streaming_on=True)  # prints, were it to run
    with pytest.raises(ConfigurationError, match=named.format(call=re.escape(f"{kind.__name__}.{method}"))):
        _call(kind(agents=[agent]), method, *args, **kwargs)
    assert capsys.readouterr().out == ""
