"""The spec's "Progress Bar Integration" example, as an operator pipeline.

The spec guesses `total=100` and advances forever. `track_progress` takes the total from `max_tokens` (or an
estimate that grows), ends at exactly 100% when the run finishes, shows tokens/s from the events' clock, and
marks the bar "failed" if the run fails.
"""

import asyncio

from rich.progress import Progress

from rxagents import Agent, EventKind
from rxagents.operators import progress_columns, to_async_iter, track_progress


async def progress_streaming(task_description: str) -> str:
    agent = Agent(model_name="offline", streaming_on=True, print_on=False, max_tokens=400)
    tokens: list[str] = []
    with Progress(*progress_columns()) as progress:
        tracked = track_progress(progress, total=agent.max_tokens, description=task_description)
        async for event in to_async_iter(agent.stream(task_description).pipe(tracked)):
            if event.kind is EventKind.TOKEN:
                tokens.append(event.text)
    return "".join(tokens)


def main() -> None:
    result = asyncio.run(progress_streaming("Generate comprehensive report"))
    print(result)


if __name__ == "__main__":
    main()
