"""Which backend serves a ``model_name``, and why, decided without importing litellm.

Two backends reach real models. The **direct** backend (:class:`~rxagents.models.OpenAICompatibleModel`) reads
OpenAI's chat-completions stream off the socket itself; it serves every target that speaks that protocol. The
**litellm** backend (:class:`~rxagents.models.LiteLLMModel`) serves everything else (Anthropic, Gemini, Mistral,
Cohere, Bedrock, Vertex, Azure, Ollama's native API...). Rules, in order:

1. ``"offline"`` or ``"offline/..."`` → the embedded :class:`OfflineModel`.
2. An endpoint is configured (``api_base=`` or ``OPENAI_BASE_URL``/``OPENAI_API_BASE``) → the direct backend
   against it, the name sent as given (a ``provider/`` prefix of an OpenAI-compatible provider, as in
   ``openai/gpt-4o``, is dropped), so any server (vLLM, llama.cpp, Ollama's ``/v1``, LM Studio, a test server)
   works. A name with another provider's prefix (``anthropic/...``, ``ollama/...``) goes to litellm, which
   speaks that provider's protocol to the endpoint. The endpoint must be an ``http(s)`` URL with a host, else
   :class:`~rxagents.errors.ConfigurationError`.
3. A known provider or model family whose key is present (``api_key=`` or the provider's environment
   variable) → the direct backend at the provider's endpoint when the provider speaks OpenAI's protocol
   (:data:`DIRECT_PROVIDERS`: openai, groq, deepseek, together_ai, openrouter, xai), else litellm.
   Keyless local providers (``ollama/``) always go to litellm.
4. A bare model family (``gpt-4o-mini``, ``claude-...``) with no key → the offline model, with a
   warning naming the variable to set (:attr:`Resolved.fallback` is True). This is what makes every
   example run on a fresh machine.
5. An explicit ``provider/model`` with no key → :class:`~rxagents.errors.ConfigurationError` naming
   the variable to set: asking for a provider by name and silently getting the offline model would
   hide the mistake.
6. Anything else → :class:`~rxagents.errors.ConfigurationError` explaining the choices.

``backend="litellm"`` (or the name prefix ``litellm/``, as in ``litellm/openai/gpt-4o``) sends any model through
litellm instead, by the same rules; ``backend="direct"`` insists on the direct backend and refuses a target it
cannot serve. :attr:`Resolved.backend_name` and :attr:`Resolved.reason` say which backend serves and why.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from rxagents._urls import check_api_base, safe_url
from rxagents.errors import ConfigurationError
from rxagents.models._base import ModelBackend

__all__ = ["BACKENDS", "DIRECT_PROVIDERS", "Resolved", "provider_key_variables", "provider_of", "resolve_model"]

log = logging.getLogger("rxagents")
_warned: set[str] = set()  # fallback warnings already given, once per reason per process

#: The backends a model can be sent through: ``resolve_model(..., backend=...)``.
BACKENDS = ("direct", "litellm")
_LITELLM_PREFIX = "litellm/"

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
#: Providers whose streaming chat API is OpenAI's chat-completions protocol (``stream_options`` included), and
#: their endpoints: the direct backend serves them. docs/models.md has the table, and why others are not here.
DIRECT_PROVIDERS: Mapping[str, str] = {
    "openai": "https://api.openai.com/v1",
    "groq": "https://api.groq.com/openai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "together_ai": "https://api.together.xyz/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "xai": "https://api.x.ai/v1",
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
    "Use model_name='offline' for the embedded offline model; or a model name with its key "
    "(e.g. model_name='gpt-4o-mini' with OPENAI_API_KEY set, 'anthropic/claude-3-5-haiku-latest' with "
    "ANTHROPIC_API_KEY); or an OpenAI-compatible server via api_base='http://host:port/v1' "
    "(or OPENAI_BASE_URL)."
)


@dataclass(frozen=True, slots=True)
class Resolved:
    """The backend for a model name, the name to send it, and why (``api_key`` hidden from repr).

    ``reason`` says in a sentence why this backend serves (for ``rxagents doctor`` and logs; never holds
    a key). ``fallback_reason`` is set when the offline model stands in for the model asked for (its key is
    missing); :attr:`fallback` says the same as a bool.
    """

    backend: ModelBackend
    model: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    fallback_reason: str | None = None
    reason: str = ""

    @property
    def backend_name(self) -> str:
        """``"direct"``, ``"litellm"`` or ``"offline"``: the :attr:`backend`'s name."""
        return self.backend.name

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


def _endpoint(api_base: str | None, env: Mapping[str, str], api_key: str | None) -> tuple[str, str] | None:
    """The configured OpenAI-compatible endpoint (``api_base=``, else the environment), checked, and where
    it came from."""
    if api_base is not None and api_base != "":
        return check_api_base(api_base, parameter="api_base", secret=api_key), "api_base="
    for var in ("OPENAI_BASE_URL", "OPENAI_API_BASE"):
        if env.get(var):
            return check_api_base(env[var], parameter=var, secret=api_key), var
    return None


def _backend_choice(name: str, backend: str | None) -> tuple[str, str | None]:
    """The model name without a ``litellm/`` prefix, and the backend asked for (None: rxagents chooses)."""
    if backend is not None and backend not in BACKENDS:
        raise ConfigurationError(f"backend must be 'direct', 'litellm' or None (rxagents chooses), got {backend!r}")
    if not name.startswith(_LITELLM_PREFIX):
        return name, backend
    inner = name[len(_LITELLM_PREFIX) :].strip()
    if not inner:
        raise ConfigurationError(
            f"model_name {name!r} names no model after 'litellm/'; e.g. model_name='litellm/openai/gpt-4o-mini'"
        )
    if backend == "direct":
        raise ConfigurationError(f"model_name {name!r} asks for litellm, but backend='direct'; drop one of them")
    return inner, "litellm"


def _not_direct(name: str, provider: str) -> ConfigurationError:
    return ConfigurationError(
        f"model_name {name!r} is served by {provider!r}, whose streaming API rxagents does not read directly "
        f"(the direct backend speaks OpenAI's chat-completions protocol: {', '.join(DIRECT_PROVIDERS)} or any "
        f"api_base=). Use backend='litellm' (or model_name='litellm/{name}'), or leave backend unset."
    )


def resolve_model(
    model_name: str | None,
    *,
    api_base: str | None = None,
    api_key: str | None = None,
    env: Mapping[str, str] | None = None,
    backend: Literal["direct", "litellm"] | None = None,
) -> Resolved:
    """Pick the backend for ``model_name`` (see the module docstring for the rules).

    ``backend``: ``None`` (rxagents chooses: direct for OpenAI-compatible targets, litellm for the rest),
    ``"direct"`` or ``"litellm"``. The prefix ``litellm/`` in ``model_name`` is the same as ``backend="litellm"``.
    """
    from rxagents.models._litellm import LiteLLMModel
    from rxagents.models._offline import OfflineModel
    from rxagents.models._openai_compat import OpenAICompatibleModel

    env = os.environ if env is None else env
    name = (model_name or "").strip()
    if model_name is not None and not name:
        raise ConfigurationError(f"model_name must be a non-empty string or None, got {model_name!r}. {_HOW_TO}")
    name, chosen = _backend_choice(name, backend)
    if name == "offline" or name.startswith("offline/"):
        return Resolved(OfflineModel(), "offline", reason="model_name 'offline': the embedded offline model")

    endpoint = _endpoint(api_base, env, api_key)
    if endpoint:
        base, source = endpoint
        model = name or "gpt-4o-mini"
        prefix = model.split("/", 1)[0] if "/" in model else None
        provider = prefix if prefix in _PROVIDER_KEYS else None
        key = api_key or env.get("OPENAI_API_KEY") or "sk-no-key-required"
        where = f"{source} is set: the endpoint {safe_url(base)}"
        if chosen != "litellm" and (provider is None or provider in DIRECT_PROVIDERS):
            sent = model.split("/", 1)[1] if provider else model
            return Resolved(
                OpenAICompatibleModel(), sent, api_base=base, api_key=key,
                reason=f"{where}, read directly (OpenAI's chat-completions protocol)",
            )  # fmt: skip
        if chosen == "direct":
            raise _not_direct(model, str(provider))
        if provider is None:
            model = f"openai/{model}"  # litellm's name for "the OpenAI protocol, at api_base"
        why = "backend='litellm' was asked for" if chosen else f"{provider!r} has its own protocol"
        return Resolved(LiteLLMModel(), model, api_base=base, api_key=key, reason=f"{where}, through litellm ({why})")

    if not name:
        if env.get("OPENAI_API_KEY"):
            name = "gpt-4o-mini"
        else:
            reason = "no model_name and no OPENAI_API_KEY"
            return Resolved(OfflineModel(), "offline", fallback_reason=reason, reason=f"{reason}: the offline model")

    provider = provider_of(name)
    if provider is None:
        raise ConfigurationError(f"model_name {name!r} is not a model rxagents knows how to reach. {_HOW_TO}")
    key_var = _PROVIDER_KEYS[provider]
    provider_key = api_key or (env.get(key_var) if key_var else None)
    if not key_var or provider_key:
        has_key = "api_key= was given" if api_key else f"{key_var} is set" if key_var else "it needs no key"
        if chosen != "litellm" and provider in DIRECT_PROVIDERS:
            home = DIRECT_PROVIDERS[provider]
            sent = name.split("/", 1)[1] if "/" in name else name
            return Resolved(
                OpenAICompatibleModel(), sent, api_base=home, api_key=provider_key,
                reason=f"{provider} speaks OpenAI's chat-completions protocol at {home}, read directly ({has_key})",
            )  # fmt: skip
        if chosen == "direct":
            raise _not_direct(name, provider)
        why = "backend='litellm' was asked for" if chosen else f"{provider} has its own protocol"
        return Resolved(LiteLLMModel(), name, api_key=api_key, reason=f"{provider} through litellm ({why}; {has_key})")
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
    return Resolved(OfflineModel(), "offline", fallback_reason=reason, reason=f"{reason}: the offline model")
