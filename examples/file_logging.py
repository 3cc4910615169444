"""The spec's "File Logging" example, as an operator pipeline.

The spec's StreamLogger opens the file for every token and stamps lines with the wall clock. `log_to_file`
opens it once per run, writes one escaped line per event (timestamp from the event, kind, agent, seq, text),
flushes each line so a crash loses nothing, closes it exactly once, and creates it private (0600).
"""

import asyncio
import sys

from rxagents import Agent, EventKind
from rxagents.operators import log_to_file, to_async_iter


async def main_async(log_file: str) -> str:
    agent = Agent(model_name="offline", streaming_on=True, print_on=False)
    tokens: list[str] = []
    stream = agent.stream("Analyze quarterly results").pipe(log_to_file(log_file))
    async for event in to_async_iter(stream):
        if event.kind is EventKind.TOKEN:
            print(event.text, end="", flush=True)
            tokens.append(event.text)
    return "".join(tokens)


def main(log_file: str = "agent_stream.log") -> None:
    response = asyncio.run(main_async(log_file))
    print(f"\n\nFull response ({len(response)} characters) logged to: {log_file}")


if __name__ == "__main__":
    main(*sys.argv[1:2])
