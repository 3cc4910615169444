"""Spec: "Basic Streaming", as written, with only ``from swarms`` -> ``from rxagents``.

Without OPENAI_API_KEY, "gpt-4o-mini" is served by the embedded offline model (a warning names the variable to
set); with OPENAI_API_KEY (or OPENAI_BASE_URL for any OpenAI-compatible server) the same file uses a real model.
"""

from rxagents import Agent

# Create agent with streaming enabled
agent = Agent(
    agent_name="Streaming-Agent",
    model_name="gpt-4o-mini",
    max_loops=1,
    streaming_on=True,  # Enable streaming
)

# Run task - output streams in real-time
response = agent.run(
    "Write a detailed explanation of how neural networks work"
)

print(response)  # Complete response after streaming
