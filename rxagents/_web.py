"""Starting an aiohttp server: the one piece the SSE server and the local test model server share."""

from __future__ import annotations

from aiohttp import web

__all__ = ["listen"]


async def listen(runner: web.BaseRunner, host: str, port: int) -> tuple[str, int]:
    """Set ``runner`` up and listen on ``host:port`` (0: any free port); the address it listens on.

    If listening fails (the port is taken, the host cannot be bound) the runner is cleaned up before the
    error propagates, so nothing is left half started.
    """
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except BaseException:
        await runner.cleanup()
        raise
    bound_host, bound_port = runner.addresses[0][:2]
    return str(bound_host), int(bound_port)
