"""Spec: "Agent-Level Configuration", as written, with only ``from swarms`` -> ``from rxagents``.

The spec's snippet only builds the agent; the last line (an rxagents addition) prints it, so running the file
shows what was configured. ``interactive`` is accepted for compatibility and does not change streaming.
"""

from rxagents import Agent

agent = Agent(
    agent_name="Configured-Streamer",
    model_name="gpt-4o-mini",

    # Streaming options
    streaming_on=True,     # Enable basic streaming
    stream=False,          # Disable detailed streaming (default)
    print_on=True,         # Show output (default)
    verbose=True,          # Show detailed logs

    # Other options
    max_loops=1,
    interactive=True,
)

print(agent)  # rxagents addition: show the configured agent
