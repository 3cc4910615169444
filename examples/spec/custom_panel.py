"""Spec: "Custom Streaming Panel", as written, with only ``from swarms`` -> ``from rxagents``.

It works, but it clears the screen and prints a Panel of the *whole* text on every token: n tokens cost O(n²)
and the screen flickers. The ``panel()`` sink does the same display in linear time: ``examples/custom_panel.py``.
"""

from rich.console import Console
from rich.live import Live  # noqa: F401  (imported by the spec's example, unused there too)
from rich.panel import Panel

from rxagents import Agent

console = Console()
collected_text = []

def custom_panel_callback(token: str):
    """
    Display streaming in custom panel
    """
    collected_text.append(token)
    full_text = "".join(collected_text)

    # Update display
    console.clear()
    console.print(Panel(
        full_text,
        title="🤖 Agent Thinking...",
        border_style="blue",
    ))

agent = Agent(
    agent_name="Custom-Display-Agent",
    model_name="gpt-4o-mini",
    streaming_on=True,
    print_on=False,
)

response = agent.run(
    task="Write a creative story",
    streaming_callback=custom_panel_callback,
)
