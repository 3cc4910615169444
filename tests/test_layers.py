"""Imports flow one way: events/errors -> runtime -> models -> operators -> sinks and run core -> agent/workflows ->
the commands. Read from the source (every import, also those inside functions), so a new edge fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "rxagents"

#: Module (or package) -> layer: a module may import from its own layer and the layers below, never above.
LAYERS = {
    "rxagents.events": 0, "rxagents.errors": 0, "rxagents._urls": 0, "rxagents._validate": 0,
    "rxagents._cli_args": 0, "rxagents._supply_chain": 0,
    # The text a stream's consumers hold: a value over events (errors carry it), so it sits with the values.
    "rxagents._core.partial": 0,
    "rxagents._runtime": 1, "rxagents._loop_thread": 1, "rxagents._core": 1, "rxagents._web": 1,
    "rxagents.models": 2,
    "rxagents.operators": 3,
    "rxagents.sinks": 4, "rxagents._run": 4, "rxagents._dispatch": 4, "rxagents.testing": 4,
    "rxagents._drive": 5, "rxagents._swarms": 5, "rxagents.agent": 5, "rxagents.workflows": 5,
    # The bus's workers build agents and workflows from task specs, so the bus sits above them.
    "rxagents.bus": 5,
    "rxagents.cli": 6, "rxagents._serve_cmd": 6, "rxagents._worker_cmd": 6, "rxagents._doctor": 6, "rxagents": 6,
}


def _module_of(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _layer(module: str) -> int:
    while module not in LAYERS:
        module = module.rpartition(".")[0]
    return LAYERS[module]


def _imports(path: Path) -> list[tuple[str, str]]:
    """``(module, name)`` for each ``from rxagents... import name`` (``name`` "" for ``import rxagents...``)."""
    found: list[tuple[str, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "rxagents":
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names if alias.name.split(".")[0] == "rxagents"]
    return found


def _is_module(dotted: str) -> bool:
    relative = Path(*dotted.split(".")[1:])
    return (PACKAGE / relative).with_suffix(".py").exists() or (PACKAGE / relative).is_dir()


MODULES = sorted(PACKAGE.rglob("*.py"))


def _targets(path: Path) -> list[str]:
    """The rxagents modules ``path`` imports (``from rxagents import _runtime`` imports ``rxagents._runtime``)."""
    return [f"{module}.{name}" if _is_module(f"{module}.{name}") else module for module, name in _imports(path)]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_of(p))
def test_no_module_imports_from_a_layer_above_its_own(path: Path) -> None:
    module = _module_of(path)
    above = sorted({t for t in _targets(path) if _layer(t) > _layer(module)})
    assert above == [], f"{module} (layer {_layer(module)}) imports {above} from above"


def _package_of(module: str) -> str:
    return module if (PACKAGE / Path(*module.split(".")[1:])).is_dir() else module.rpartition(".")[0]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_of(p))
def test_no_private_name_is_taken_from_another_package(path: Path) -> None:
    """A private name stays in its package: another package uses that package's public functions."""
    package = _package_of(_module_of(path))
    taken = [f"{module}.{name}" for module, name in _imports(path)
             if name.startswith("_") and not _is_module(f"{module}.{name}") and _package_of(module) != package]
    assert taken == []


def test_the_run_driver_prints_nothing_itself() -> None:
    """Agent, workflows and the CLI inject their printers: the driver needs no sink, agent or workflow."""
    targets = _targets(PACKAGE / "_drive.py")
    assert [t for t in targets if t.startswith(("rxagents.sinks", "rxagents.agent", "rxagents.workflows"))] == []
