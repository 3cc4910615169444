"""Spec: "Concurrent Workflow with Streaming", as written, with only ``from swarms`` -> ``from rxagents``.

In a terminal the dashboard is a live view with one lane per agent, redrawn at most 8 times a second from the
run's loop; piped or in CI it prints plain status lines. ``print(result)`` shows each agent's answer.
"""

from rxagents import Agent, ConcurrentWorkflow

# Create agents with streaming
market_researcher = Agent(
    agent_name="Market-Researcher",
    system_prompt="""You are a market research specialist. Analyze market trends
    and provide actionable insights.""",
    model_name="gpt-4o-mini",
    max_loops=1,
    streaming_on=True,
    print_on=False,  # Silent mode for concurrent workflows
)

financial_analyst = Agent(
    agent_name="Financial-Analyst",
    system_prompt="""You are a financial analysis expert. Evaluate investment
    opportunities and assess risks.""",
    model_name="gpt-4o-mini",
    max_loops=1,
    streaming_on=True,
    print_on=False,
)

technical_analyst = Agent(
    agent_name="Technical-Analyst",
    system_prompt="""You are a technical analysis specialist. Analyze price patterns
    and provide trading recommendations.""",
    model_name="gpt-4o-mini",
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
