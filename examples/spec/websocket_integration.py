"""Spec: "WebSocket Integration", as written, with ``from swarms`` -> ``from rxagents`` and the missing
``import json``; beside it, the same handler with ``await agent.arun(...)``, which streams. Deviations, each
marked below:

- websockets >= 13 calls a handler with the connection only (the path is ``websocket.request.path``), so
  ``path`` gets a default; without it every connection fails with a TypeError.
- The port is ``PORT`` (default 8765, as in the spec) so a test can pick a free one.
- websockets >= 14 creates a server only inside a running event loop, so the spec's last two lines become
  ``main()``; the spec's script also exited right after starting the server, ``main()`` serves forever. With
  ``RXAGENTS_EXAMPLE_SMOKE=1`` (set by the test suite) it instead connects once to each handler as a client,
  prints what arrives, and exits.
- One server serves three handlers by path: ``/`` the spec's, ``/arun`` the spec's with ``await agent.arun``,
  ``/arun-async`` the same with an ``async def`` callback.

What it shows: the spec's ``agent.run`` is synchronous, so it blocks the event loop; the token sends are only
*scheduled* (``create_task``) and cannot run until the handler awaits, so the client receives no token before
"complete", and the sends then fail because the handler has returned and the connection is closed (``main()``
counts them). ``await agent.arun(...)`` with the very same callback streams: the callback runs on the loop's
thread as the tokens arrive, each send goes out at once, and ``arun`` awaits the sends (in order) before it
returns, so "complete" comes after the last token. An ``async def`` callback (``streamer.send_token`` itself)
works the same way. ``examples/websocket_server.py`` serves the same agent with rxagents' WebSocket server: every
token is sent the moment it exists, and a client that disconnects cancels the run.
"""

import asyncio
import json
import os
import time

import websockets

from rxagents import Agent

PORT = int(os.environ.get("PORT", "8765"))  # rxagents deviation: the spec hard-codes 8765


class WebSocketStreamer:
    def __init__(self, websocket):
        self.websocket = websocket

    async def send_token(self, token: str):
        """Send token to WebSocket client"""
        await self.websocket.send(json.dumps({
            "type": "token",
            "content": token,
        }))

async def handle_client(websocket, path=None):  # rxagents deviation: `path=None` (websockets >= 13)
    # Create agent
    agent = Agent(
        model_name="gpt-4o-mini",
        streaming_on=True,
        print_on=False,
    )

    # Create streamer
    streamer = WebSocketStreamer(websocket)

    # Stream to WebSocket
    response = agent.run(
        task="Generate analysis",
        streaming_callback=lambda token: asyncio.create_task(
            streamer.send_token(token)
        ),
    )

    # Send completion
    await websocket.send(json.dumps({
        "type": "complete",
        "content": response,
    }))

# rxagents addition: the spec's handler with `await agent.arun(...)` instead of `agent.run(...)`; the callback
# is unchanged. It runs on the loop's thread as each token arrives, so create_task works and each send goes
# out at once; arun awaits the tasks the callback returns, in order, before it returns.
async def handle_client_arun(websocket, path=None):
    agent = Agent(
        model_name="gpt-4o-mini",
        streaming_on=True,
        print_on=False,
    )
    streamer = WebSocketStreamer(websocket)
    response = await agent.arun(
        task="Generate analysis",
        streaming_callback=lambda token: asyncio.create_task(
            streamer.send_token(token)
        ),
    )
    await websocket.send(json.dumps({
        "type": "complete",
        "content": response,
    }))


# rxagents addition: the same with an `async def` callback: arun awaits each call, in order.
async def handle_client_async_callback(websocket, path=None):
    agent = Agent(
        model_name="gpt-4o-mini",
        streaming_on=True,
        print_on=False,
    )
    streamer = WebSocketStreamer(websocket)
    response = await agent.arun(
        task="Generate analysis",
        streaming_callback=streamer.send_token,
    )
    await websocket.send(json.dumps({
        "type": "complete",
        "content": response,
    }))


HANDLERS = {"/arun": handle_client_arun, "/arun-async": handle_client_async_callback}


async def route(websocket):
    """rxagents addition: one server, a handler per path (``/``: the spec's)."""
    path = websocket.request.path
    await HANDLERS.get(path, handle_client)(websocket, path)


# Start WebSocket server
# rxagents deviation: websockets >= 14 creates its server inside a running event loop, and
# asyncio.get_event_loop() outside one is deprecated, so the spec's last two lines
#     start_server = websockets.serve(handle_client, "localhost", 8765)
#     asyncio.get_event_loop().run_until_complete(start_server)
# become main() below, which also keeps serving (the spec's script exits right after starting the server).
async def main():
    # rxagents addition: count the token sends that fail (see the module docstring) instead of letting asyncio
    # print a traceback for each one.
    failed_sends = []

    def on_loop_error(loop, context):
        if isinstance(context.get("exception"), websockets.ConnectionClosed):
            failed_sends.append(context["exception"])
        else:
            loop.default_exception_handler(context)

    asyncio.get_running_loop().set_exception_handler(on_loop_error)

    async with websockets.serve(route, "localhost", PORT) as server:
        if os.environ.get("RXAGENTS_EXAMPLE_SMOKE"):  # set by the test suite: connect once per handler, exit
            await smoke_client("/", "agent.run()")
            await smoke_client("/arun", "await agent.arun(), create_task callback")
            await smoke_client("/arun-async", "await agent.arun(), async def callback")
        else:
            print(f"serving on ws://localhost:{PORT} (paths: / spec, /arun, /arun-async; Ctrl-C to stop)")
            await server.serve_forever()
    if failed_sends:
        print(f"{len(failed_sends)} token sends failed: agent.run() blocked the loop, so they ran only after the "
              "handler had returned and the connection was closed")


async def smoke_client(path: str, label: str) -> None:
    """rxagents addition: one client that reports what a handler sends, in order, and when."""
    before, after, complete = 0, 0, None
    first_token_at = complete_at = None
    # open_timeout=None: client and server share this loop, which the spec's agent.run() blocks for the whole run
    async with websockets.connect(f"ws://localhost:{PORT}{path}", open_timeout=None) as client:
        try:
            async for raw in client:
                message = json.loads(raw)
                if message["type"] == "complete":
                    complete, complete_at = message["content"], time.monotonic()
                elif complete is None:
                    before += 1
                    first_token_at = first_token_at or time.monotonic()
                else:
                    after += 1
        except websockets.ConnectionClosed:
            pass
    print(f"{label}: token messages before 'complete': {before}; after it: {after}")
    if first_token_at is not None and complete_at is not None:
        print(f"  first token {complete_at - first_token_at:.3f} s before 'complete'")
    print(f"  complete: {complete}")


asyncio.run(main())
