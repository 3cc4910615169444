"""Sinks: where a stream of TokenEvents ends up (console, panels, dashboards, files, servers)."""

from rxagents.sinks._console import ConsolePrinter

__all__ = ["ConsolePrinter"]
