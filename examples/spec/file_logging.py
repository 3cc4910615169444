"""Spec: "File Logging", as written, with only ``from swarms`` -> ``from rxagents``.

The log file is written in the current directory. The spec's logger opens the file once per token and stamps
each token with the wall clock, with no newline between entries; ``log_to_file`` opens it once per run and
writes one escaped line per event: ``examples/file_logging.py``.
"""

import time

from rxagents import Agent


class StreamLogger:
    def __init__(self, log_file: str):
        self.log_file = log_file
        self.tokens = []

    def log_token(self, token: str):
        """
        Log token to file with timestamp
        """
        timestamp = time.strftime("%Y-%m-%d %H:%M:%S")
        with open(self.log_file, "a") as f:
            f.write(f"[{timestamp}] {token}")

        self.tokens.append(token)

    def get_full_response(self) -> str:
        return "".join(self.tokens)

# Create logger
logger = StreamLogger("agent_stream.log")

agent = Agent(
    model_name="gpt-4o-mini",
    streaming_on=True,
)

response = agent.run(
    task="Analyze quarterly results",
    streaming_callback=logger.log_token,
)

print(f"Full response logged to: {logger.log_file}")
