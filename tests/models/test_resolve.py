from __future__ import annotations

import pytest

from rxagents.errors import ConfigurationError
from rxagents.models import LiteLLMModel, OfflineModel, provider_key_variables, provider_of, resolve_model


def test_offline_by_name() -> None:
    assert isinstance(resolve_model("offline", env={}).backend, OfflineModel)


def test_offline_by_name_is_not_a_fallback() -> None:
    resolved = resolve_model("offline", env={})
    assert resolved.fallback is False and resolved.fallback_reason is None


def test_known_model_without_key_falls_back_to_offline_with_a_reason() -> None:
    resolved = resolve_model("gpt-4o-mini", env={})
    assert isinstance(resolved.backend, OfflineModel)
    assert resolved.fallback is True
    assert resolved.fallback_reason is not None and "OPENAI_API_KEY" in resolved.fallback_reason


def test_no_model_name_and_no_key_falls_back_too() -> None:
    resolved = resolve_model(None, env={})
    assert isinstance(resolved.backend, OfflineModel) and resolved.fallback is True


def test_a_served_or_keyed_model_is_not_a_fallback() -> None:
    assert resolve_model("gpt-4o-mini", env={"OPENAI_API_KEY": "sk-test-123456"}).fallback is False
    assert resolve_model("m", api_base="http://127.0.0.1:9/v1", env={}).fallback is False


def test_known_model_with_key_uses_litellm() -> None:
    resolved = resolve_model("gpt-4o-mini", env={"OPENAI_API_KEY": "sk-test-123456"})
    assert isinstance(resolved.backend, LiteLLMModel)
    assert resolved.model == "gpt-4o-mini"


def test_provider_prefix_uses_that_providers_key() -> None:
    env = {"ANTHROPIC_API_KEY": "k-123456"}
    assert isinstance(resolve_model("anthropic/claude-3-5-haiku-latest", env=env).backend, LiteLLMModel)
    assert isinstance(resolve_model("anthropic/claude-3-5-haiku-latest", api_key="k-1", env={}).backend, LiteLLMModel)


@pytest.mark.parametrize(
    ("model", "variable"),
    [("openai/gpt-4o", "OPENAI_API_KEY"), ("anthropic/claude-3-5-haiku-latest", "ANTHROPIC_API_KEY"),
     ("groq/llama-3.1-8b-instant", "GROQ_API_KEY")],
)  # fmt: skip
def test_an_explicit_provider_without_its_key_is_an_error_not_the_offline_model(model: str, variable: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_model(model, env={})
    message = str(info.value)
    assert model in message and variable in message  # what was asked for, and the variable to set
    assert "model_name='offline'" in message  # the other way out


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


@pytest.mark.parametrize(
    ("api_base", "problem"),
    [
        ("127.0.0.1:8000/v1", "not an http(s) URL"),
        ("localhost:8000/v1", "not an http(s) URL"),
        ("ftp://127.0.0.1/v1", "not an http(s) URL"),
        ("http:///v1", "no host"),
        ("http://127.0.0.1:99999/v1", "not a valid URL"),
        ("http://admin:hunter2@127.0.0.1:8000/v1", "user info"),
    ],
)
def test_a_bad_api_base_is_refused_up_front(api_base: str, problem: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_model("m", api_base=api_base, env={})
    message = str(info.value)
    assert message.startswith("api_base=") and problem in message
    assert "http://127.0.0.1:8000/v1" in message  # the fix: an example of a good one
    assert "hunter2" not in message


def test_a_bad_base_url_from_the_environment_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match=r"^OPENAI_BASE_URL='localhost:11434' is not usable"):
        resolve_model("m", env={"OPENAI_BASE_URL": "localhost:11434"})


def test_a_good_api_base_is_kept_as_given() -> None:
    assert resolve_model("m", api_base=" https://example.test/v1 ", env={}).api_base == "https://example.test/v1"


@pytest.mark.parametrize(
    ("model", "provider"),
    [("gpt-4o-mini", "openai"), ("claude-3-5-haiku-latest", "anthropic"), ("anthropic/claude-x", "anthropic"),
     ("ollama/llama3", "ollama"), ("mystery-model", None), ("nowhere/model", None)],
)
def test_provider_of_follows_resolve_models_rules(model: str, provider: str | None) -> None:
    assert provider_of(model) == provider


def test_provider_key_variables_name_each_known_providers_key_and_resolution_uses_them() -> None:
    variables = provider_key_variables()
    assert variables["openai"] == "OPENAI_API_KEY" and variables["ollama"] == ""
    variables["openai"] = "CHANGED"  # a copy: the resolver's own table is untouched
    assert provider_key_variables()["openai"] == "OPENAI_API_KEY"
    for provider, variable in provider_key_variables().items():
        if variable:
            assert isinstance(resolve_model(f"{provider}/m", env={variable: "sk-x"}).backend, LiteLLMModel)
