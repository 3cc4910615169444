"""Serve a workflow to browsers over Server-Sent Events, and be its first client.

Starts ``serve_sse`` on 127.0.0.1 with a ConcurrentWorkflow of two agents, then plays a browser's part with
aiohttp: starts a run, reads part of its event stream, drops the connection, reconnects with
``Last-Event-ID`` and gets exactly the rest while the run went on without it. Prints what it saw and exits.

While it runs, open the printed URL in a browser to watch the same run live; ``--linger 30`` keeps the server up
for 30 more seconds after the run (``rxagents serve`` is the long-running version of this).

Offline by default (the embedded offline model, no network). With ``OPENAI_BASE_URL`` set (and
``OPENAI_API_KEY`` when the endpoint needs one) the agents use ``$MODEL`` (default ``gpt-4o-mini``) there.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
from collections import defaultdict
from typing import Any

import aiohttp

from rxagents import Agent, ConcurrentWorkflow
from rxagents.models import OfflineModel
from rxagents.sinks._sse import serve_sse


def make_agent(name: str, role: str) -> Agent:
    prompt = f"You are a {role}. Answer in three sentences."
    if os.environ.get("OPENAI_BASE_URL"):
        return Agent(agent_name=name, system_prompt=prompt, model_name=os.environ.get("MODEL", "gpt-4o-mini"),
                     api_base=os.environ["OPENAI_BASE_URL"], print_on=False)  # fmt: skip
    return Agent(agent_name=name, system_prompt=prompt, llm=OfflineModel(pace=0.01, length=70), print_on=False)


async def read_events(response: aiohttp.ClientResponse, limit: int | None = None) -> list[tuple[int, str, Any]]:
    """(id, event, data) of each SSE message, up to ``limit`` messages."""
    out: list[tuple[int, str, Any]] = []
    fields: dict[str, str] = {}
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if line.startswith(("id:", "event:", "data:")):
            name, _, value = line.partition(":")
            fields[name] = value.strip()
        elif not line and "data" in fields:
            out.append((int(fields.get("id", "0")), fields.get("event", "message"), json.loads(fields["data"])))
            fields = {}
            if limit is not None and len(out) == limit:
                break
    return out


async def main(linger: float) -> None:
    workflow = ConcurrentWorkflow(
        name="sse-demo", agents=[make_agent("Researcher", "researcher"), make_agent("Skeptic", "skeptic")]
    )
    async with serve_sse(workflow, title="rxagents SSE demo") as server, aiohttp.ClientSession() as http:
        print(f"Serving the dashboard at {server.url}/ (open it in a browser to watch)")
        async with http.post(f"{server.url}/runs", json={"task": "Why stream agent output?"}) as response:
            run = await response.json()
        events_url = server.url + run["events_url"]
        print(f"Started run {run['run_id']} with agents {run['agents']}")

        async with http.get(events_url) as response:  # a client that leaves early
            first = await read_events(response, limit=15)
        last_id = first[-1][0]
        print(f"Read {len(first)} events, disconnected at id {last_id}; the run goes on server-side")

        async with http.get(events_url, headers={"Last-Event-ID": str(last_id)}) as response:
            rest = await read_events(response)
        print(f"Reconnected with Last-Event-ID: {last_id}: got ids {rest[0][0]}..{rest[-1][0]}")

        ids = [ident for ident, _, _ in first + rest]
        assert ids == list(range(1, len(ids) + 1)), "ids must be contiguous: no gap, no duplicate"
        texts: dict[str, str] = defaultdict(str)
        for _, event, data in first + rest:
            if event == "token":
                texts[data["agent"]] += data["content"]
        complete = rest[-1][2]
        print(f"Run {complete['status']} after {complete['events']} events, no gap and no duplicate.\n")
        for agent, text in texts.items():
            print(f"--- {agent} ---\n{text}\n")
        if linger > 0:
            print(f"Serving for {linger:g} more seconds at {server.url}/ ...")
            await asyncio.sleep(linger)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--linger", type=float, default=0.0, help="seconds to keep serving after the run")
    asyncio.run(main(parser.parse_args().linger))
