"""Detailed streaming (stream=True): the callback gets one dict per event.

Every dict has "type", "agent", "run_id", "seq", "loop", "time" and "model"; the rest is what the event
carries: "content" on text ("token"/"reasoning"), "usage" on the usage event (once, at the end),
"finish_reason" on the finish event, "tool_call", "reason" (retry) or "error" on those. See docs/events.md.
"""

from typing import Any

from rxagents import Agent


def detailed_callback(token_info: dict[str, Any]) -> None:
    match token_info["type"]:
        case "token":
            print(token_info["content"], end="", flush=True)
        case "usage":
            usage = token_info["usage"]
            print(f"\n\nTokens used: {usage['total_tokens']} "
                  f"({usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion)")
        case "finish":
            print(f"Finished: {token_info['finish_reason']}")


def main() -> None:
    agent = Agent(agent_name="Detailed-Streaming-Agent", model_name="gpt-4o-mini", max_loops=1, stream=True)
    agent.run(task="Analyze the current state of AI technology", streaming_callback=detailed_callback)


if __name__ == "__main__":
    main()
