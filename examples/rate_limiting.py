"""The spec's "Rate Limiting" example, as an operator pipeline.

The spec's `RateLimitedStreamer` calls `time.sleep` inside the streaming callback, i.e. in the thread that
reads the model's socket, so reading stalls with it. `pace(0.05)` spaces the printed tokens at least 50 ms
apart with timers on the event loop instead: the run reads at full speed, early tokens wait in a queue,
nothing is dropped. For a live display, `throttle_text` sends at most one frame of the running text per
interval, and always the final text.
"""

import asyncio

from reactivex import operators as ops

from rxagents import Agent
from rxagents.operators import pace, text_only, throttle_text, to_async_iter


async def main_async() -> None:
    agent = Agent(agent_name="Paced-Agent", model_name="offline", streaming_on=True, print_on=False)
    loop = asyncio.get_running_loop()
    start = loop.time()
    read: list[float] = []
    stream = agent.stream("Write story").pipe(ops.do_action(on_completed=lambda: read.append(loop.time())))
    async for token in to_async_iter(stream.pipe(text_only(), pace(0.05))):
        print(token, end="", flush=True)
    print(f"\n\nthe model was read in {read[0] - start:.2f}s; the paced output took {loop.time() - start:.2f}s\n")

    frames: list[str] = []
    async for frame in to_async_iter(agent.stream("Write story").pipe(throttle_text(0.1))):
        frames.append(frame)  # e.g. live.update(frame) in a rich Live display
    print(f"{len(frames)} display frame(s), at most 10 per second; the last is the final text:\n{frames[-1]}")


def main() -> None:
    asyncio.run(main_async())


if __name__ == "__main__":
    main()
