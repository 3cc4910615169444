"""The spec's "Buffer Management" example, as an operator pipeline.

The spec's `buffered_callback` prints every 20 tokens as one chunk, and never prints the tokens still in its
buffer when the run ends. `buffer_tokens(20)` makes the same chunks and flushes the tail at completion (and
before an error), so the chunks add up to the whole answer. `chunk_by("sentence")` re-splits the text at
sentence ends instead, wherever the tokens were cut.
"""

import asyncio

from rxagents import Agent
from rxagents.operators import buffer_tokens, chunk_by, to_async_iter


async def main_async() -> None:
    agent = Agent(agent_name="Buffered-Agent", model_name="offline", streaming_on=True, print_on=False)

    chunks: list[str] = []
    async for chunk in to_async_iter(agent.stream("Generate report").pipe(buffer_tokens(20))):
        print(chunk, end="", flush=True)
        chunks.append(chunk)
    print(f"\n\n{len(chunks)} chunks of up to 20 tokens; the last one is the tail the spec's callback loses\n")

    async for sentence in to_async_iter(agent.stream("Generate report").pipe(chunk_by("sentence"))):
        print(f"[sentence] {sentence.strip()}")

    print(f"\nFinal text: {''.join(chunks)}")


def main() -> None:
    asyncio.run(main_async())


if __name__ == "__main__":
    main()
