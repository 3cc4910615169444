"""Spec: "Sequential Workflow with Streaming", as written, with only ``from swarms`` -> ``from rxagents``.

Each agent streams in turn (header, rule, live text); the Writer's prompt carries the Researcher's answer.
"""

from rxagents import Agent, SequentialWorkflow

# Agent 1: Researcher with streaming
researcher = Agent(
    agent_name="Researcher",
    system_prompt="Research the topic and provide detailed analysis",
    model_name="gpt-4o-mini",
    streaming_on=True,
)

# Agent 2: Writer with streaming
writer = Agent(
    agent_name="Writer",
    system_prompt="Write engaging content based on research",
    model_name="gpt-4o-mini",
    streaming_on=True,
)

# Create sequential workflow
workflow = SequentialWorkflow(
    agents=[researcher, writer],
    max_loops=1,
)

# Each agent streams output in sequence
final_output = workflow.run(
    "The future of renewable energy technology"
)
