"""The primitive: agent.stream(task) is a cold Observable of TokenEvents.

Here: count tokens and print the text as it arrives, then the usage, using plain reactivex operators.
Disposing the subscription (or leaving `async for` over agent.astream) cancels the run.
"""

import asyncio

from reactivex import operators as ops

from rxagents import Agent, EventKind, TokenEvent


async def main_async() -> None:
    agent = Agent(agent_name="Observable-Agent", model_name="offline", print_on=False)
    done = asyncio.get_running_loop().create_future()
    tokens = agent.stream("Explain cold observables").pipe(ops.filter(lambda e: e.kind is EventKind.TOKEN))

    def show(event: TokenEvent) -> None:
        print(event.text, end="", flush=True)

    tokens.pipe(ops.do_action(show), ops.count()).subscribe(
        on_next=lambda n: print(f"\n\n{n} tokens"),
        on_error=done.set_exception,
        on_completed=lambda: done.set_result(None),
    )
    await done  # the run executes on this loop

    async for event in agent.astream("Explain cold observables"):
        if event.kind is EventKind.USAGE:
            print(f"usage: {event.usage}")


def main() -> None:
    asyncio.run(main_async())


if __name__ == "__main__":
    main()
