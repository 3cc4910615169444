"""Spec: "Streaming with Callback", as written, with only ``from swarms`` -> ``from rxagents``.

The callback runs on the thread that called ``run()``; a callback that raises is isolated (logged once, the
stream continues, nothing is sent twice). Idiomatic twin: ``examples/streaming_callback.py``.
"""

from rxagents import Agent


def streaming_callback(token: str):
    """
    Callback function called for each streaming token

    Args:
        token (str): The new token from the stream
    """
    # Process token in real-time
    print(token, end="", flush=True)

    # Could also:
    # - Send to websocket
    # - Update UI
    # - Log to file
    # - Analyze sentiment

agent = Agent(
    agent_name="Interactive-Agent",
    model_name="gpt-4o-mini",
    max_loops=1,
    streaming_on=True,
)

response = agent.run(
    task="Explain quantum computing",
    streaming_callback=streaming_callback,
)
