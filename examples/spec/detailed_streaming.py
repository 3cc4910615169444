"""Spec: "Detailed Streaming (stream=True)", as written, with only ``from swarms`` -> ``from rxagents``.

rxagents' detailed dict has only the keys its event carries (see docs/events.md): ``content`` on text
deltas, ``usage`` on the one usage event at the end, ``finish_reason`` on the finish event. So the spec's
``'usage' in token_info`` tests do what they say: the text streams, then "Tokens used: {...}" and
"Finished: stop" are printed once each. (swarms' dicts had no ``content`` and never filled the other two.)
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
