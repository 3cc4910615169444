"""Each facade exports exactly its __all__ (as httpx's test_exported_members does)."""

from __future__ import annotations

import importlib
import types

import pytest

FACADES = ["rxagents", "rxagents.operators", "rxagents.models", "rxagents.sinks", "rxagents.workflows",
           "rxagents.testing"]


@pytest.mark.parametrize("name", FACADES)
def test_all_names_resolve(name: str) -> None:
    module = importlib.import_module(name)
    missing = [n for n in module.__all__ if not hasattr(module, n)]
    assert missing == []
    assert len(set(module.__all__)) == len(module.__all__)


@pytest.mark.parametrize("name", FACADES)
def test_no_public_name_outside_all(name: str) -> None:
    module = importlib.import_module(name)
    public = {
        n
        for n, v in vars(module).items()
        if not n.startswith("_") and not isinstance(v, types.ModuleType) and n != "annotations" and n != "Any"
    }
    assert public - set(module.__all__) == set()
