"""The spec's "Custom Streaming Panel", done with the ``panel`` operator.

The spec's callback clears the console and prints a Panel of the *whole* text on every token: n tokens cost
O(n²) (swarms took 114 s for 8,000 tokens), and the screen flickers. ``panel()`` appends each token (O(1)),
redraws at most 8 times a second from the run's loop showing the end of the text that fits the terminal, and
leaves the full text in the final frame. Piped or in a CI log it prints plain text instead (no box, no cursor
movement).

Runs as-is on a fresh machine: without OPENAI_API_KEY the embedded offline model answers (slowed down here so
you can watch it stream). Set OPENAI_API_KEY to use gpt-4o-mini.
"""

import os

from reactivex import operators as ops

from rxagents import Agent, EventKind
from rxagents.models import OfflineModel
from rxagents.sinks import panel


def main() -> None:
    if os.environ.get("OPENAI_API_KEY"):
        model: dict[str, object] = {"model_name": "gpt-4o-mini"}
    else:
        model = {"llm": OfflineModel(pace=0.01, length=250)}
    agent = Agent(agent_name="Custom-Display-Agent", streaming_on=True, print_on=False, **model)

    # The stream, shown in a panel as it arrives; every event passes through to to_list().
    events = (
        agent.stream("Write a creative story")
        .pipe(panel(title="🤖 Agent Thinking...", border_style="blue"), ops.to_list())
        .run()
    )
    response = "".join(e.text for e in events if e.kind is EventKind.TOKEN)
    print(f"\n{len(response.split())} words streamed.")


if __name__ == "__main__":
    main()
