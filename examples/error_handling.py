"""The spec's "Error Handling" example, as an operator pipeline.

The spec wraps its callback's body in try/except by hand. `tap_safe` does it for any callback: an exception
is counted, reported once when the run ends (one warning with the first traceback), and never stops the
stream or makes the run restart. Model failures are the model's business: `first_token_timeout` and `retry`
retry a run that fails before its first token, transparently.
"""

import asyncio
import logging

from rxagents import Agent
from rxagents.operators import CallbackStats, first_token_timeout, retry, tap_safe, to_async_iter


def show(token: str) -> None:
    print(token, end="", flush=True)


def send_to_api(token: str) -> None:
    if token.strip().endswith("."):
        raise ConnectionError("the API refused a sentence end")  # an unreliable downstream service


async def main_async() -> None:
    agent = Agent(agent_name="Safe-Streamer", model_name="offline", streaming_on=True, print_on=False)
    stats = CallbackStats()
    stream = agent.stream("Generate content").pipe(
        first_token_timeout(30), retry(3), tap_safe(show), tap_safe(send_to_api, stats=stats)
    )
    async for _ in to_async_iter(stream):
        pass
    print(f"\n\nsend_to_api failed {stats.errors} of {stats.calls} times; every token was still delivered once")


def main() -> None:
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main_async())


if __name__ == "__main__":
    main()
