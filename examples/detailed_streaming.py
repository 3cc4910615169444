"""Detailed streaming (stream=True): the callback gets one dict per event.

Every dict has "content" (the text delta, "" when none), "usage" (a dict on the usage event, else None)
and "finish_reason" (on the finish event, else None), plus "type", "agent", "seq", "loop" and "time".
"""

from typing import Any

from rxagents import Agent


def detailed_callback(token_info: dict[str, Any]) -> None:
    print(token_info["content"], end="", flush=True)
    if token_info["usage"] is not None:
        print(f"\n\nTokens used: {token_info['usage']}")
    if token_info["finish_reason"] is not None:
        print(f"Finished: {token_info['finish_reason']}")


def main() -> None:
    agent = Agent(agent_name="Detailed-Streaming-Agent", model_name="gpt-4o-mini", max_loops=1, stream=True)
    agent.run(task="Analyze the current state of AI technology", streaming_callback=detailed_callback)


if __name__ == "__main__":
    main()
