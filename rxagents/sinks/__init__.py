"""Sinks: where a stream of TokenEvents ends up (console, panels, dashboards, servers).

The rich-based views (``panel``, ``dashboard``) are imported on first use, so ``import rxagents``
does not load rich.
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
}

__all__ = [
    "ConsolePrinter",
    "Dashboard",
    "LaneStatus",
    "LaneView",
    "StreamPanel",
    "console_printer",
    "dashboard",
    "panel",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rxagents.sinks' has no attribute {name!r}")
