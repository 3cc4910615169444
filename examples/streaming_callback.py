"""A streaming callback receives each text delta, on the thread that called run().

A callback that raises does not stop or restart the stream: its errors are counted and logged once.
"""

from rxagents import Agent


def streaming_callback(token: str) -> None:
    print(token, end="", flush=True)


def main() -> None:
    agent = Agent(agent_name="Interactive-Agent", model_name="gpt-4o-mini", streaming_on=True, print_on=False)
    response = agent.run(task="Explain quantum computing", streaming_callback=streaming_callback)
    print(f"\n\n({len(response)} characters)")


if __name__ == "__main__":
    main()
