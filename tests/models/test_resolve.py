from __future__ import annotations

import pytest

from rxagents.errors import ConfigurationError
from rxagents.models import (
    LiteLLMModel,
    OfflineModel,
    OpenAICompatibleModel,
    provider_key_variables,
    provider_of,
    resolve_model,
)
from rxagents.models._resolve import DIRECT_PROVIDERS


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


def test_openai_model_with_key_is_read_directly_from_openai() -> None:
    resolved = resolve_model("gpt-4o-mini", env={"OPENAI_API_KEY": "sk-test-123456"})
    assert isinstance(resolved.backend, OpenAICompatibleModel) and resolved.backend_name == "direct"
    assert (resolved.model, resolved.api_base) == ("gpt-4o-mini", "https://api.openai.com/v1")
    assert resolved.api_key == "sk-test-123456"  # read from the environment here: the backend sends it itself
    assert "OPENAI_API_KEY is set" in resolved.reason and "sk-test-123456" not in resolved.reason


@pytest.mark.parametrize(
    ("model", "variable", "sent", "base"),
    [
        ("openai/gpt-4o", "OPENAI_API_KEY", "gpt-4o", "https://api.openai.com/v1"),
        ("groq/llama-3.1-8b-instant", "GROQ_API_KEY", "llama-3.1-8b-instant", "https://api.groq.com/openai/v1"),
        ("deepseek/deepseek-chat", "DEEPSEEK_API_KEY", "deepseek-chat", "https://api.deepseek.com/v1"),
        ("deepseek-reasoner", "DEEPSEEK_API_KEY", "deepseek-reasoner", "https://api.deepseek.com/v1"),
        ("together_ai/meta-llama/Llama-3.3-70B-Instruct-Turbo", "TOGETHERAI_API_KEY",
         "meta-llama/Llama-3.3-70B-Instruct-Turbo", "https://api.together.xyz/v1"),
        ("openrouter/anthropic/claude-3.5-haiku", "OPENROUTER_API_KEY", "anthropic/claude-3.5-haiku",
         "https://openrouter.ai/api/v1"),
        ("xai/grok-2-latest", "XAI_API_KEY", "grok-2-latest", "https://api.x.ai/v1"),
        ("grok-2-latest", "XAI_API_KEY", "grok-2-latest", "https://api.x.ai/v1"),
    ],
)  # fmt: skip
def test_openai_compatible_providers_are_read_directly(model: str, variable: str, sent: str, base: str) -> None:
    resolved = resolve_model(model, env={variable: "key-123456"})
    assert resolved.backend_name == "direct" and isinstance(resolved.backend, OpenAICompatibleModel)
    assert (resolved.model, resolved.api_base, resolved.api_key) == (sent, base, "key-123456")
    assert variable in resolved.reason and base in resolved.reason


def test_the_direct_provider_table_is_the_documented_one() -> None:
    assert dict(DIRECT_PROVIDERS) == {
        "openai": "https://api.openai.com/v1",
        "groq": "https://api.groq.com/openai/v1",
        "deepseek": "https://api.deepseek.com/v1",
        "together_ai": "https://api.together.xyz/v1",
        "openrouter": "https://openrouter.ai/api/v1",
        "xai": "https://api.x.ai/v1",
    }


@pytest.mark.parametrize(
    ("model", "variable"),
    [("anthropic/claude-3-5-haiku-latest", "ANTHROPIC_API_KEY"), ("claude-3-5-haiku-latest", "ANTHROPIC_API_KEY"),
     ("gemini/gemini-2.0-flash", "GEMINI_API_KEY"), ("mistral/mistral-small-latest", "MISTRAL_API_KEY"),
     ("fireworks_ai/llama-v3p1-8b-instruct", "FIREWORKS_AI_API_KEY"), ("perplexity/sonar", "PERPLEXITYAI_API_KEY"),
     ("cohere/command-r", "COHERE_API_KEY")],
)  # fmt: skip
def test_other_providers_go_through_litellm(model: str, variable: str) -> None:
    resolved = resolve_model(model, env={variable: "k-123456"})
    assert isinstance(resolved.backend, LiteLLMModel) and resolved.backend_name == "litellm"
    assert resolved.model == model and resolved.api_base is None
    assert resolved.api_key is None  # litellm reads the provider's variable itself
    assert "through litellm" in resolved.reason and variable in resolved.reason


def test_provider_prefix_uses_that_providers_key() -> None:
    env = {"ANTHROPIC_API_KEY": "k-123456"}
    assert isinstance(resolve_model("anthropic/claude-3-5-haiku-latest", env=env).backend, LiteLLMModel)
    assert isinstance(resolve_model("anthropic/claude-3-5-haiku-latest", api_key="k-1", env={}).backend, LiteLLMModel)
    assert resolve_model("groq/llama-3.1-8b-instant", api_key="k-1", env={}).api_key == "k-1"


# --- choosing the backend


def test_backend_litellm_sends_any_model_through_litellm() -> None:
    resolved = resolve_model("gpt-4o-mini", env={"OPENAI_API_KEY": "sk-test-123456"}, backend="litellm")
    assert isinstance(resolved.backend, LiteLLMModel) and resolved.model == "gpt-4o-mini"
    assert "backend='litellm'" in resolved.reason
    served = resolve_model("my-model", api_base="http://127.0.0.1:9/v1", env={}, backend="litellm")
    assert isinstance(served.backend, LiteLLMModel)
    assert (served.model, served.api_base) == ("openai/my-model", "http://127.0.0.1:9/v1")


@pytest.mark.parametrize(
    ("model_name", "expected"),
    [("litellm/openai/gpt-4o", "openai/gpt-4o"), ("litellm/gpt-4o-mini", "gpt-4o-mini"),
     ("litellm/groq/llama-3.1-8b-instant", "groq/llama-3.1-8b-instant")],
)  # fmt: skip
def test_the_litellm_prefix_is_backend_litellm(model_name: str, expected: str) -> None:
    env = {"OPENAI_API_KEY": "sk-test-123456", "GROQ_API_KEY": "gsk-123456"}
    resolved = resolve_model(model_name, env=env)
    assert isinstance(resolved.backend, LiteLLMModel) and resolved.model == expected


def test_the_litellm_prefix_with_an_endpoint() -> None:
    resolved = resolve_model("litellm/my-model", api_base="http://127.0.0.1:9/v1", env={})
    assert isinstance(resolved.backend, LiteLLMModel) and resolved.model == "openai/my-model"


def test_backend_direct_is_the_default_where_it_can_serve() -> None:
    for backend in (None, "direct"):
        resolved = resolve_model("m", api_base="http://127.0.0.1:9/v1", env={}, backend=backend)
        assert isinstance(resolved.backend, OpenAICompatibleModel)


def test_backend_direct_refuses_a_provider_it_cannot_serve() -> None:
    with pytest.raises(ConfigurationError) as info:
        resolve_model("anthropic/claude-3-5-haiku-latest", env={"ANTHROPIC_API_KEY": "k-123456"}, backend="direct")
    message = str(info.value)
    assert "'anthropic'" in message and "backend='litellm'" in message and "k-123456" not in message


@pytest.mark.parametrize(
    ("call", "match"),
    [
        ({"model_name": "m", "backend": "httpx"}, "backend must be 'direct', 'litellm' or None"),
        ({"model_name": "litellm/", "backend": None}, "names no model after 'litellm/'"),
        ({"model_name": "litellm/m", "backend": "direct"}, "asks for litellm, but backend='direct'"),
    ],
)
def test_a_bad_backend_choice_is_refused(call: dict[str, object], match: str) -> None:
    with pytest.raises(ConfigurationError, match=match):
        resolve_model(api_base="http://127.0.0.1:9/v1", env={}, **call)  # type: ignore[arg-type]


def test_every_resolution_says_which_backend_and_why() -> None:
    cases = [
        resolve_model("offline", env={}),
        resolve_model("gpt-4o-mini", env={}),
        resolve_model("m", api_base="http://127.0.0.1:9/v1", env={}),
        resolve_model("ollama/llama3", env={}),
    ]
    assert [r.backend_name for r in cases] == ["offline", "offline", "direct", "litellm"]
    assert all(r.reason for r in cases)


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


def test_openai_base_url_routes_any_name_to_the_direct_backend() -> None:
    resolved = resolve_model("my-local-model", env={"OPENAI_BASE_URL": "http://127.0.0.1:9/v1"})
    assert isinstance(resolved.backend, OpenAICompatibleModel)
    assert resolved.model == "my-local-model"  # sent as given
    assert resolved.api_base == "http://127.0.0.1:9/v1"
    assert "OPENAI_BASE_URL is set" in resolved.reason


@pytest.mark.parametrize(
    ("model", "sent"),
    [("openai/gpt-4o", "gpt-4o"), ("meta-llama/Llama-3.1-8B-Instruct", "meta-llama/Llama-3.1-8B-Instruct"),
     ("groq/llama-3.1-8b-instant", "llama-3.1-8b-instant"), ("gpt-4o-mini", "gpt-4o-mini")],
)  # fmt: skip
def test_an_endpoint_gets_the_name_without_an_openai_compatible_providers_prefix(model: str, sent: str) -> None:
    resolved = resolve_model(model, api_base="http://127.0.0.1:9/v1", env={})
    assert isinstance(resolved.backend, OpenAICompatibleModel) and resolved.model == sent


def test_an_endpoint_with_another_providers_prefix_goes_through_litellm() -> None:
    resolved = resolve_model("anthropic/claude-3-5-haiku-latest", api_base="http://127.0.0.1:9/v1", env={})
    assert isinstance(resolved.backend, LiteLLMModel) and resolved.model == "anthropic/claude-3-5-haiku-latest"


def test_an_endpoint_without_a_key_sends_a_placeholder() -> None:
    assert resolve_model("m", api_base="http://127.0.0.1:9/v1", env={}).api_key == "sk-no-key-required"
    keyed = resolve_model("m", api_base="http://127.0.0.1:9/v1", env={"OPENAI_API_KEY": "sk-env-123456"})
    assert keyed.api_key == "sk-env-123456"


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
            served = resolve_model(f"{provider}/m", env={variable: "sk-x"}).backend
            assert isinstance(served, OpenAICompatibleModel if provider in DIRECT_PROVIDERS else LiteLLMModel)
