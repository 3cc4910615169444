"""Spec: "Progress Bar Integration", as written, with only ``from swarms`` -> ``from rxagents``.

The spec guesses ``total=100`` and advances one step per token, so the bar ends wherever the answer's length
happens to put it (the offline model's short answer stops well short of 100%). ``track_progress`` takes the
total from ``max_tokens``, ends at exactly 100% and shows tokens/s: ``examples/progress_bar.py``.
"""

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn

from rxagents import Agent

console = Console()

def progress_streaming(task_description: str) -> str:
    """
    Stream with progress bar
    """
    tokens = []

    with Progress(
        TextColumn("[bold blue]{task.description}"),
        BarColumn(),
        TextColumn("[progress.percentage]{task.percentage:>3.0f}%"),
    ) as progress:

        task = progress.add_task(task_description, total=100)

        def callback(token: str):
            tokens.append(token)
            # Update progress (estimate)
            progress.update(task, advance=1)

        agent = Agent(
            model_name="gpt-4o-mini",
            streaming_on=True,
            print_on=False,
        )

        response = agent.run(
            task=task_description,
            streaming_callback=callback,
        )

    return response

result = progress_streaming("Generate comprehensive report")
