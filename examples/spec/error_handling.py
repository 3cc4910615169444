"""Spec: "Error Handling", as written; the spec's snippet uses ``Agent`` and ``logger`` without defining them,
so the import and a module logger are added.

rxagents already isolates a raising callback (counted, logged once per run, the stream continues, nothing is
sent twice), so the hand-written try/except is optional; ``tap_safe`` does it for any callback in a pipeline:
``examples/error_handling.py``.
"""

import logging

from rxagents import Agent

logger = logging.getLogger(__name__)

def safe_streaming_callback(token: str):
    """
    Callback with error handling
    """
    try:
        # Process token
        print(token, end="", flush=True)

        # Additional processing
        # send_to_api(token)

    except Exception as e:
        logger.error(f"Streaming error: {e}")
        # Continue streaming despite error

agent = Agent(
    model_name="gpt-4o-mini",
    streaming_on=True,
)

response = agent.run(
    task="Generate content",
    streaming_callback=safe_streaming_callback,
)
