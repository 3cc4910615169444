"""Spec: "Silent Streaming", as written, with only ``from swarms`` -> ``from rxagents``."""

from rxagents import Agent

# Silent streaming - no console output
agent = Agent(
    agent_name="Silent-Streamer",
    model_name="gpt-4o-mini",
    max_loops=1,
    streaming_on=True,
    print_on=False,  # Disable printing
)

# Chunks are collected but not displayed
response = agent.run("Generate a report on market trends")

# Process complete response
print("\n=== Final Response ===")
print(response)
