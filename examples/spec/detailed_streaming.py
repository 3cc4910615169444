"""Spec: "Detailed Streaming (stream=True)", as written, with only ``from swarms`` -> ``from rxagents``.

rxagents' detailed dict always has the keys ``content``, ``usage`` and ``finish_reason`` (swarms' had no
``content`` and never filled the other two), so the spec's ``'usage' in token_info`` tests are always true and
this callback prints "Tokens used: None" / "Finished: None" after every event. Test the values instead
(``token_info['usage'] is not None``): see ``examples/detailed_streaming.py``.
"""

import json  # noqa: F401  (imported by the spec's example, unused there too)

from rxagents import Agent


def detailed_callback(token_info: dict):
    """
    Receive detailed token information

    Args:
        token_info (dict): Contains token, usage, finish_reason, etc.
    """
    # Access detailed information
    if 'content' in token_info:
        print(token_info['content'], end="", flush=True)

    # Access metadata
    if 'usage' in token_info:
        print(f"\n\nTokens used: {token_info['usage']}")

    if 'finish_reason' in token_info:
        print(f"Finished: {token_info['finish_reason']}")

agent = Agent(
    agent_name="Detailed-Streaming-Agent",
    model_name="gpt-4o-mini",
    max_loops=1,
    stream=True,  # Enable detailed streaming
)

response = agent.run(
    task="Analyze the current state of AI technology",
    streaming_callback=detailed_callback,
)
