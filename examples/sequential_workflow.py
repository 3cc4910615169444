"""Sequential workflow with streaming: the Researcher answers, then the Writer works from that answer.

The spec's example, unchanged but for the import. Each agent streams its output in turn (header, rule, live
text); the Writer's prompt is the task followed by "Previous agent (Researcher) output:" and the Researcher's
answer. Runs as-is on a fresh machine: without OPENAI_API_KEY, "gpt-4o-mini" is served by the embedded
offline model.
"""

from rxagents import Agent, SequentialWorkflow


def main() -> None:
    # Agent 1: Researcher with streaming
    researcher = Agent(
        agent_name="Researcher",
        system_prompt="Research the topic and provide detailed analysis",
        model_name="gpt-4o-mini",
        streaming_on=True,
    )

    # Agent 2: Writer with streaming
    writer = Agent(
        agent_name="Writer",
        system_prompt="Write engaging content based on research",
        model_name="gpt-4o-mini",
        streaming_on=True,
    )

    # Create sequential workflow
    workflow = SequentialWorkflow(
        agents=[researcher, writer],
        max_loops=1,
    )

    # Each agent streams output in sequence
    final_output = workflow.run(
        "The future of renewable energy technology"
    )

    print(f"\n=== Final output ({len(final_output)} characters, from the Writer) ===")


if __name__ == "__main__":
    main()
