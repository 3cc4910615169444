"""rxagents: every agent run is a cold reactivex Observable of typed token events."""

from __future__ import annotations

from rxagents.agent import Agent
from rxagents.errors import ConfigurationError, ModelError, RunError, RxAgentsError
from rxagents.events import EventKind, TokenEvent, ToolCallDelta, Usage
from rxagents.models import OfflineModel

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "ConfigurationError",
    "ModelError",
    "OfflineModel",
    "RunError",
    "RxAgentsError",
    "EventKind",
    "TokenEvent",
    "ToolCallDelta",
    "Usage",
    "__version__",
]
