"""Concurrent workflow with streaming: three agents answer at once, shown live on a dashboard.

The spec's example (as written there: ``examples/spec/concurrent_workflow.py``), with one change: without
OPENAI_API_KEY or OPENAI_BASE_URL the agents run on the embedded offline model, slowed down to a few dozen
tokens a second so the dashboard has something to show for two or three seconds (unpaced, the offline model
answers in milliseconds and the live view would only ever show its final frame). With a key, "gpt-4o-mini"
answers. In a terminal the dashboard is a live view with one lane per agent; piped or in CI it prints plain
status lines instead. ``print(result)`` shows a report with each agent's answer; ``result["Market-Researcher"]``
is one agent's answer.
"""

import os

from rxagents import Agent, ConcurrentWorkflow
from rxagents.models import OfflineModel


def model(pace: float) -> dict[str, object]:
    """gpt-4o-mini when it can be reached; otherwise the offline model, ``pace`` seconds between tokens."""
    if os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"):
        return {"model_name": "gpt-4o-mini"}
    return {"llm": OfflineModel(pace=pace, length=80)}


def main() -> None:
    # Create agents with streaming
    market_researcher = Agent(
        agent_name="Market-Researcher",
        system_prompt="""You are a market research specialist. Analyze market trends
        and provide actionable insights.""",
        **model(0.02),
        max_loops=1,
        streaming_on=True,
        print_on=False,  # Silent mode for concurrent workflows
    )

    financial_analyst = Agent(
        agent_name="Financial-Analyst",
        system_prompt="""You are a financial analysis expert. Evaluate investment
        opportunities and assess risks.""",
        **model(0.03),
        max_loops=1,
        streaming_on=True,
        print_on=False,
    )

    technical_analyst = Agent(
        agent_name="Technical-Analyst",
        system_prompt="""You are a technical analysis specialist. Analyze price patterns
        and provide trading recommendations.""",
        **model(0.025),
        max_loops=1,
        streaming_on=True,
        print_on=False,
    )

    # Create concurrent workflow with dashboard
    workflow = ConcurrentWorkflow(
        name="market-analysis-workflow",
        agents=[market_researcher, financial_analyst, technical_analyst],
        max_loops=1,
        show_dashboard=True,  # Shows real-time streaming from all agents
    )

    # Run workflow - streams from all agents simultaneously
    result = workflow.run(
        "Analyze Tesla (TSLA) stock from market, financial, and technical perspectives"
    )

    print(result)


if __name__ == "__main__":
    main()
