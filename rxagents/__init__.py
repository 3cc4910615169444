"""rxagents: every agent run is a cold reactivex Observable of typed token events."""

from __future__ import annotations

from rxagents._doctor import supports_streaming
from rxagents._run import RetryPolicy
from rxagents._supply_chain import SecurityWarning, check_litellm_version
from rxagents.agent import Agent
from rxagents.errors import (
    ConfigurationError,
    EmptyStreamError,
    MalformedStreamError,
    ModelError,
    ProviderUnavailable,
    ProviderUnreachable,
    RateLimitError,
    RunError,
    RxAgentsError,
    SilenceTimeout,
    StallTimeout,
    StreamCutError,
)
from rxagents.events import EventKind, TokenEvent, ToolCallDelta, Usage
from rxagents.models import OfflineModel
from rxagents.workflows import (
    AgentOutput,
    ConcurrentWorkflow,
    SequentialWorkflow,
    WorkflowError,
    WorkflowResult,
    race,
    switch,
)

__version__ = "0.1.0"

__all__ = [
    "Agent",
    "AgentOutput",
    "ConcurrentWorkflow",
    "ConfigurationError",
    "EmptyStreamError",
    "EventKind",
    "MalformedStreamError",
    "ModelError",
    "OfflineModel",
    "ProviderUnavailable",
    "ProviderUnreachable",
    "RateLimitError",
    "RetryPolicy",
    "RunError",
    "RxAgentsError",
    "SecurityWarning",
    "SequentialWorkflow",
    "SilenceTimeout",
    "StallTimeout",
    "StreamCutError",
    "TokenEvent",
    "ToolCallDelta",
    "Usage",
    "WorkflowError",
    "WorkflowResult",
    "__version__",
    "check_litellm_version",
    "race",
    "supports_streaming",
    "switch",
]

check_litellm_version()  # warns (never imports litellm) if a known-malicious release is installed
