"""Sinks: where a stream of TokenEvents ends up (console, panels, dashboards, servers).

The rich-based views (``panel``, ``dashboard``) and the servers are imported on first use, so
``import rxagents`` loads neither rich nor websockets.
"""

from __future__ import annotations

import importlib
from typing import Any

from rxagents.sinks._console import ConsolePrinter, console_printer

_LAZY = {
    "Dashboard": "rxagents.sinks._dashboard",
    "LaneStatus": "rxagents.sinks._dashboard",
    "LaneView": "rxagents.sinks._dashboard",
    "dashboard": "rxagents.sinks._dashboard",
    "StreamPanel": "rxagents.sinks._panel",
    "panel": "rxagents.sinks._panel",
    "RunInfo": "rxagents.sinks._sse_runs",
    "RunStatus": "rxagents.sinks._sse_runs",
    "SSEServer": "rxagents.sinks._sse",
    "serve_sse": "rxagents.sinks._sse",
    "WebSocketServer": "rxagents.sinks._websocket",
    "WebSocketStats": "rxagents.sinks._websocket",
    "serve_websocket": "rxagents.sinks._websocket",
}

__all__ = [
    "ConsolePrinter",
    "Dashboard",
    "LaneStatus",
    "LaneView",
    "RunInfo",
    "RunStatus",
    "SSEServer",
    "StreamPanel",
    "WebSocketServer",
    "WebSocketStats",
    "console_printer",
    "dashboard",
    "panel",
    "serve_sse",
    "serve_websocket",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rxagents.sinks' has no attribute {name!r}")
