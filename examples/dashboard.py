"""A live dashboard of agents streaming at once: the ``dashboard`` operator on merged agent streams.

This is what ``ConcurrentWorkflow(..., show_dashboard=True)`` shows. One lane per agent — ⏳ waiting, 🔄 streaming,
✅ done, ❌ error — with the end of its text, its tokens and tokens/s. Frames are drawn at most 8 times a second
from the run's loop (never per token, never from worker threads); the final frame stays on screen. With more than
12 agents the lanes become one line each: try ``python examples/dashboard.py --many`` (60 agents). Piped or in a
CI log it prints a line per status change and each agent's text instead.

Runs as-is on a fresh machine: without OPENAI_API_KEY the embedded offline model answers (slowed down here so you
can watch it stream). Set OPENAI_API_KEY to use gpt-4o-mini.
"""

import os
import sys

import reactivex
from reactivex import operators as ops

from rxagents import Agent, EventKind
from rxagents.models import OfflineModel
from rxagents.sinks import dashboard

SPECIALISTS = {
    "Market-Researcher": "You are a market research specialist. Analyze market trends and provide insights.",
    "Financial-Analyst": "You are a financial analysis expert. Evaluate opportunities and assess risks.",
    "Technical-Analyst": "You are a technical analysis specialist. Analyze price patterns.",
}


def make_agent(name: str, system_prompt: str, pace: float) -> Agent:
    if os.environ.get("OPENAI_API_KEY"):
        model: dict[str, object] = {"model_name": "gpt-4o-mini"}
    else:
        model = {"llm": OfflineModel(pace=pace, length=120)}
    return Agent(agent_name=name, system_prompt=system_prompt, max_loops=1, streaming_on=True, print_on=False,
                 **model)


def main() -> None:
    if "--many" in sys.argv:
        agents = [make_agent(f"Analyst-{i:02d}", "You are an analyst.", 0.01 + 0.0005 * i) for i in range(60)]
    else:
        agents = [make_agent(name, prompt, pace) for (name, prompt), pace in zip(SPECIALISTS.items(),
                                                                                 (0.02, 0.03, 0.025), strict=True)]
    task = "Analyze the outlook for electric vehicle makers"

    streams = [agent.stream(task) for agent in agents]
    events = (
        reactivex.merge(*streams)
        .pipe(dashboard("Market Analysis Workflow", agents), ops.to_list())
        .run()
    )

    answers: dict[str, list[str]] = {}
    for event in events:
        if event.kind is EventKind.TOKEN:
            answers.setdefault(event.agent, []).append(event.text)
    print("\n=== Results ===")
    for name, parts in answers.items():
        text = "".join(parts)
        print(f"{name}: {text[:90]}{'...' if len(text) > 90 else ''}")


if __name__ == "__main__":
    main()
