"""Model backends: each turns one request into an async iterator of deltas."""

from __future__ import annotations

from rxagents.models._base import Delta, ModelBackend, ModelRequest
from rxagents.models._litellm import LiteLLMModel
from rxagents.models._offline import STALL, OfflineModel, Step, tokenize
from rxagents.models._openai_compat import OpenAICompatibleModel
from rxagents.models._resolve import BACKENDS, Resolved, provider_key_variables, provider_of, resolve_model
from rxagents.models._tool_calls import ToolCallSpec

__all__ = [
    "BACKENDS",
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
    "provider_key_variables",
    "provider_of",
    "resolve_model",
    "tokenize",
]
