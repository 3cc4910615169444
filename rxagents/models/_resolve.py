"""Which backend serves a ``model_name``, decided without importing litellm.

Rules, in order:

1. ``"offline"`` or ``"offline/..."`` → the embedded :class:`OfflineModel`.
2. An endpoint is configured (``api_base=`` or ``OPENAI_BASE_URL``/``OPENAI_API_BASE``) → litellm
   against it; a name without a ``provider/`` prefix is sent as ``openai/<name>`` (the
   OpenAI-compatible protocol), so any server (vLLM, llama.cpp, Ollama, a test server) works.
   The endpoint must be an ``http(s)`` URL with a host, else :class:`~rxagents.errors.ConfigurationError`.
3. A known provider or model family whose key is present (``api_key=`` or the provider's
   environment variable) → litellm. Keyless local providers (``ollama/``) always go to litellm.
4. A bare model family (``gpt-4o-mini``, ``claude-...``) with no key → the offline model, with a
   warning naming the variable to set (:attr:`Resolved.fallback` is True). This is what makes every
   example run on a fresh machine.
5. An explicit ``provider/model`` with no key → :class:`~rxagents.errors.ConfigurationError` naming
   the variable to set: asking for a provider by name and silently getting the offline model would
   hide the mistake.
6. Anything else → :class:`~rxagents.errors.ConfigurationError` explaining the choices.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from rxagents._urls import check_api_base
from rxagents.errors import ConfigurationError
from rxagents.models._base import ModelBackend

__all__ = ["Resolved", "provider_key_variables", "provider_of", "resolve_model"]

log = logging.getLogger("rxagents")
_warned: set[str] = set()  # fallback warnings already given, once per reason per process

# provider prefix -> environment variable holding its key ("" = needs none)
_PROVIDER_KEYS: Mapping[str, str] = {
    "openai": "OPENAI_API_KEY",
    "anthropic": "ANTHROPIC_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
    "xai": "XAI_API_KEY",
    "cohere": "COHERE_API_KEY",
    "together_ai": "TOGETHERAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "fireworks_ai": "FIREWORKS_AI_API_KEY",
    "perplexity": "PERPLEXITYAI_API_KEY",
    "azure": "AZURE_API_KEY",
    "huggingface": "HF_TOKEN",
    "ollama": "",
    "ollama_chat": "",
    "hosted_vllm": "",
}
# bare model-name prefix -> provider
_FAMILIES: Mapping[str, str] = {
    "gpt-": "openai",
    "o1": "openai",
    "o3": "openai",
    "o4": "openai",
    "chatgpt": "openai",
    "claude": "anthropic",
    "gemini": "gemini",
    "mistral": "mistral",
    "codestral": "mistral",
    "deepseek": "deepseek",
    "grok": "xai",
    "command": "cohere",
}

_HOW_TO = (
    "Use model_name='offline' for the embedded offline model; or a litellm model name with its key "
    "(e.g. model_name='gpt-4o-mini' with OPENAI_API_KEY set, 'anthropic/claude-3-5-haiku-latest' with "
    "ANTHROPIC_API_KEY); or an OpenAI-compatible server via api_base='http://host:port/v1' "
    "(or OPENAI_BASE_URL)."
)


@dataclass(frozen=True, slots=True)
class Resolved:
    """The backend for a model name and the name to send it (``api_key`` hidden from repr).

    ``fallback_reason`` is set when the offline model stands in for the model asked for (its key is
    missing); :attr:`fallback` says the same as a bool.
    """

    backend: ModelBackend
    model: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    fallback_reason: str | None = None

    @property
    def fallback(self) -> bool:
        """True when the embedded offline model stands in for a model whose key is missing (not when
        ``"offline"`` was asked for)."""
        return self.fallback_reason is not None


def provider_of(model_name: str) -> str | None:
    """The provider ``model_name`` belongs to, as :func:`resolve_model` decides it; ``None`` when rxagents does
    not know it.

    A ``provider/model`` name gives its prefix (when rxagents knows that provider); a bare name gives the provider
    of its family (``gpt-*``, ``o1``... ``openai``; ``claude*``: ``anthropic``; ...).

    Example::

        >>> provider_of("gpt-4o-mini"), provider_of("anthropic/claude-3-5-haiku-latest"), provider_of("mystery")
        ('openai', 'anthropic', None)
    """
    if "/" in model_name:
        prefix = model_name.split("/", 1)[0]
        return prefix if prefix in _PROVIDER_KEYS else None
    lowered = model_name.lower()
    return next((p for fam, p in _FAMILIES.items() if lowered.startswith(fam)), None)


def provider_key_variables() -> dict[str, str]:
    """Each provider rxagents knows, and the environment variable its key is read from (``""``: it needs none).

    Names only: no value is read. Example::

        >>> provider_key_variables()["openai"], provider_key_variables()["ollama"]
        ('OPENAI_API_KEY', '')
    """
    return dict(_PROVIDER_KEYS)


def _endpoint(api_base: str | None, env: Mapping[str, str], api_key: str | None) -> str | None:
    """The configured OpenAI-compatible endpoint (``api_base=``, else the environment), checked."""
    if api_base is not None and api_base != "":
        return check_api_base(api_base, parameter="api_base", secret=api_key)
    for var in ("OPENAI_BASE_URL", "OPENAI_API_BASE"):
        if env.get(var):
            return check_api_base(env[var], parameter=var, secret=api_key)
    return None


def resolve_model(
    model_name: str | None,
    *,
    api_base: str | None = None,
    api_key: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Resolved:
    """Pick the backend for ``model_name`` (see the module docstring for the rules)."""
    from rxagents.models._litellm import LiteLLMModel
    from rxagents.models._offline import OfflineModel

    env = os.environ if env is None else env
    name = (model_name or "").strip()
    if model_name is not None and not name:
        raise ConfigurationError(f"model_name must be a non-empty string or None, got {model_name!r}. {_HOW_TO}")
    if name == "offline" or name.startswith("offline/"):
        return Resolved(OfflineModel(), "offline")

    base = _endpoint(api_base, env, api_key)
    if base:
        model = name or "gpt-4o-mini"
        if provider_of(model) is None or "/" not in model:
            model = f"openai/{model}"
        key = api_key or env.get("OPENAI_API_KEY") or "sk-no-key-required"
        return Resolved(LiteLLMModel(), model, api_base=base, api_key=key)

    if not name:
        if env.get("OPENAI_API_KEY"):
            return Resolved(LiteLLMModel(), "gpt-4o-mini", api_key=api_key)
        return Resolved(OfflineModel(), "offline", fallback_reason="no model_name and no OPENAI_API_KEY")

    provider = provider_of(name)
    if provider is None:
        raise ConfigurationError(f"model_name {name!r} is not a model rxagents knows how to reach. {_HOW_TO}")
    key_var = _PROVIDER_KEYS[provider]
    if not key_var or api_key or env.get(key_var):
        return Resolved(LiteLLMModel(), name, api_key=api_key)
    if "/" in name:
        raise ConfigurationError(
            f"model_name {name!r} asks for the provider {provider!r}, but {key_var} is not set. Set {key_var} "
            f"(or pass api_key=), or use model_name='offline' for the embedded offline model. (Only a bare model "
            f"name such as 'gpt-4o-mini' falls back to the offline model when its key is missing.)"
        )
    reason = f"{key_var} is not set for model_name {name!r}"
    if reason not in _warned:
        _warned.add(reason)
        log.warning("%s: using the embedded offline model instead. %s", reason, _HOW_TO)
    return Resolved(OfflineModel(), "offline", fallback_reason=reason)
