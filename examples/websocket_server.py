"""WebSocket streaming: serve an agent over WebSocket; a client prints tokens as they arrive.

The spec's handler calls the blocking agent.run(), so its clients get nothing before "complete".
serve_websocket subscribes to agent.stream(task) on the server's loop instead: every token is sent the
moment it exists, a client that disconnects cancels the run, and a slow client gets a bounded buffer.

    python examples/websocket_server.py                 # serve, run one client against it, exit
    python examples/websocket_server.py --serve         # serve on ws://127.0.0.1:8765 until Ctrl-C
    python examples/websocket_server.py --client ws://127.0.0.1:8765 --task "Explain streams"
"""

import argparse
import asyncio
import json
from typing import Any

from reactivex import Observable
from websockets.asyncio.client import connect

from rxagents import Agent, TokenEvent
from rxagents.sinks import serve_websocket

agent = Agent(agent_name="WebSocket-Agent", model_name="gpt-4o-mini", print_on=False)


def stream(request: dict[str, Any]) -> Observable[TokenEvent]:
    return agent.stream(request["task"])  # one cold run per connection


async def client(url: str, task: str) -> None:
    async with connect(url, proxy=None, max_size=None) as ws:  # direct to the server; no 1 MiB message cap
        await ws.send(json.dumps({"task": task}))
        async for raw in ws:  # ends when the server closes the connection
            message = json.loads(raw)
            if message["type"] == "token":
                print(message["content"], end="", flush=True)
            elif message["type"] == "complete":
                print(f"\n\n[complete: {len(message['content'])} characters]")
            elif message["type"] == "error":
                print(f"\n[error: {message['message']}]")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--serve", action="store_true", help="serve until Ctrl-C")
    parser.add_argument("--client", metavar="URL", help="connect to a running server")
    parser.add_argument("--task", default="Generate analysis of streaming APIs")
    args = parser.parse_args()
    if args.client:
        return await client(args.client, args.task)
    async with serve_websocket(stream, port=8765 if args.serve else 0) as server:
        print(f"Serving {agent.agent_name} at {server.url}", flush=True)
        if args.serve:
            await asyncio.Future()  # until Ctrl-C
        await client(server.url, args.task)


if __name__ == "__main__":
    asyncio.run(main())
