"""Spec: "Troubleshooting" (both snippets), as written; the spec's first snippet uses an ``agent`` it never
defines, so one is defined, and litellm's offline settings are applied before the spec imports litellm.

Additions (marked): the second snippet's callback is used once, so the file shows tokens appearing. rxagents
answers the spec's question directly with ``rxagents.supports_streaming(model_name)`` (from litellm's model
info; true for the offline model), and ``rxagents doctor`` checks configuration, keys, endpoint and litellm.
"""

import os

# rxagents addition: importing litellm directly (as the spec does) would otherwise fetch its model cost map from
# the network first (seconds on a slow network) and load a .env file; rxagents sets these before its own imports.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_MODE", "PRODUCTION")

from litellm.utils import supports_function_calling  # noqa: F401  (imported by the spec, unused there too)

from rxagents import Agent

agent = Agent(agent_name="Troubleshooting-Agent", model_name="gpt-4o-mini", print_on=False)

# --- Streaming Not Working
# Check if model supports streaming
model_name = "gpt-4o-mini"
if hasattr(agent.llm, "stream"):
    print("Model supports streaming")
else:
    print("Model may not support streaming")

# Ensure streaming is enabled
agent.streaming_on = True

# --- Tokens Not Appearing
# Make sure to flush output
def callback(token: str):
    print(token, end="", flush=True)  # flush=True is important!

agent.run("Explain why flushing matters", streaming_callback=callback)  # rxagents addition: use the callback
print()
