"""Spec: "Runtime Configuration", as written; the spec's snippet uses an ``agent`` it never defines, so one is
defined here first (the agent of "Agent-Level Configuration", minus the swarms-only ``interactive``).

A callback passed to ``run()`` replaces the agent's own printing for that run.
"""

from rxagents import Agent

agent = Agent(
    agent_name="Configured-Streamer",
    model_name="gpt-4o-mini",
    streaming_on=True,
    max_loops=1,
)

def dynamic_callback(token: str):
    print(token, end="", flush=True)

# Pass callback at runtime
response = agent.run(
    task="Analyze data",
    streaming_callback=dynamic_callback,  # Override default behavior
)
