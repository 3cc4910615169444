"""Basic streaming: tokens print live, run() returns the complete answer.

Runs as-is on a fresh machine: without OPENAI_API_KEY, "gpt-4o-mini" is served by the embedded
offline model. Set OPENAI_API_KEY (or OPENAI_BASE_URL for any OpenAI-compatible server) to use a real one.
"""

from rxagents import Agent


def main() -> None:
    agent = Agent(
        agent_name="Streaming-Agent",
        model_name="gpt-4o-mini",
        max_loops=1,
        streaming_on=True,  # print tokens as they arrive
    )
    response = agent.run("Write a detailed explanation of how neural networks work")
    print("\n=== Complete response ===")
    print(response)


if __name__ == "__main__":
    main()
