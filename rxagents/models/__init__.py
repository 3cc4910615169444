"""Model backends: each turns one request into an async iterator of deltas."""

from __future__ import annotations

from rxagents.models._base import Delta, ModelBackend, ModelRequest
from rxagents.models._litellm import LiteLLMModel
from rxagents.models._offline import STALL, OfflineModel, Step, ToolCallSpec, tokenize
from rxagents.models._openai_compat import OpenAICompatibleModel
from rxagents.models._resolve import Resolved, resolve_model

__all__ = [
    "STALL",
    "Delta",
    "LiteLLMModel",
    "ModelBackend",
    "ModelRequest",
    "OfflineModel",
    "OpenAICompatibleModel",
    "Resolved",
    "Step",
    "ToolCallSpec",
    "resolve_model",
    "tokenize",
]
