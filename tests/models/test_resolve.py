from __future__ import annotations

import pytest

from rxagents.errors import ConfigurationError
from rxagents.models import LiteLLMModel, OfflineModel, resolve_model


def test_offline_by_name() -> None:
    assert isinstance(resolve_model("offline", env={}).backend, OfflineModel)


def test_known_model_without_key_falls_back_to_offline_with_a_reason() -> None:
    resolved = resolve_model("gpt-4o-mini", env={})
    assert isinstance(resolved.backend, OfflineModel)
    assert resolved.fallback_reason is not None and "OPENAI_API_KEY" in resolved.fallback_reason


def test_known_model_with_key_uses_litellm() -> None:
    resolved = resolve_model("gpt-4o-mini", env={"OPENAI_API_KEY": "sk-test-123456"})
    assert isinstance(resolved.backend, LiteLLMModel)
    assert resolved.model == "gpt-4o-mini"


def test_provider_prefix_uses_that_providers_key() -> None:
    env = {"ANTHROPIC_API_KEY": "k-123456"}
    assert isinstance(resolve_model("anthropic/claude-3-5-haiku-latest", env=env).backend, LiteLLMModel)
    assert isinstance(resolve_model("anthropic/claude-3-5-haiku-latest", env={}).backend, OfflineModel)


def test_openai_base_url_routes_any_name_through_the_openai_protocol() -> None:
    resolved = resolve_model("my-local-model", env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert isinstance(resolved.backend, LiteLLMModel)
    assert resolved.model == "openai/my-local-model"
    assert resolved.api_base == "http://127.0.0.1:9/v1"


def test_api_base_argument_wins_and_key_is_hidden_from_repr() -> None:
    resolved = resolve_model("gpt-4o-mini", api_base="http://127.0.0.1:9/v1", api_key="sk-secret-xyz", env={})
    assert resolved.api_base == "http://127.0.0.1:9/v1" and resolved.api_key == "sk-secret-xyz"
    assert "sk-secret-xyz" not in repr(resolved)


def test_unknown_model_explains_how_to_configure() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_model("no-such-model-xyz", env={})
    message = str(info.value)
    assert "no-such-model-xyz" in message and "offline" in message and "api_base" in message


def test_keyless_local_provider_goes_to_litellm() -> None:
    assert isinstance(resolve_model("ollama/llama3", env={}).backend, LiteLLMModel)
