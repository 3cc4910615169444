"""Silent streaming: print_on=False prints nothing; run() still returns the whole answer."""

from rxagents import Agent


def main() -> None:
    agent = Agent(agent_name="Silent-Streamer", model_name="gpt-4o-mini", streaming_on=True, print_on=False)
    response = agent.run("Generate a report on market trends")
    print("=== Final Response ===")
    print(response)


if __name__ == "__main__":
    main()
