"""Suite-wide setup: offline litellm, no provider keys, hypothesis profile, the local model server."""

from __future__ import annotations

import os
from collections.abc import Iterator

# Before anything imports litellm: no network fetch at import, no implicit .env loading.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_MODE"] = "PRODUCTION"

import pytest
from hypothesis import HealthCheck, settings

from rxagents.testing._server import LocalModelServer

settings.register_profile(
    "rxagents", deadline=None, max_examples=40, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
# CI runs the same examples every time (a red build is then reproducible); local runs explore.
settings.register_profile("ci", parent=settings.get_profile("rxagents"), derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "rxagents"))

_PROVIDER_ENV = (
    "OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_BASE", "ANTHROPIC_API_KEY", "GEMINI_API_KEY",
    "MISTRAL_API_KEY", "GROQ_API_KEY", "DEEPSEEK_API_KEY", "XAI_API_KEY", "COHERE_API_KEY",
)


@pytest.fixture(autouse=True)
def _no_provider_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never reach a real provider: no keys or endpoints leak in from the environment."""
    for name in _PROVIDER_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def model_server() -> Iterator[LocalModelServer]:
    """One local OpenAI-compatible server for the session (tests script replies per model name)."""
    with LocalModelServer() as server:
        yield server
