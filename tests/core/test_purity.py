"""The core is pure and low: it imports only the event model, the errors, the argument checks and the standard
library."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

import rxagents

CORE = Path(rxagents.__file__).parent / "_core"
#: ``rxagents._validate`` is as low: the argument checks, over the event model and the errors.
ALLOWED = ("rxagents.events", "rxagents.errors", "rxagents._validate", "rxagents._core")
#: Standard-library modules that would bring a clock, a loop or a thread into the core.
IMPURE = {"asyncio", "time", "threading", "concurrent", "datetime"}


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted(CORE.glob("*.py")), ids=lambda p: p.name)
def test_a_core_module_imports_nothing_above_it(path: Path) -> None:
    own = {name for name in imports(path) if name.split(".")[0] == "rxagents"}
    assert {name for name in own if not name.startswith(ALLOWED)} == set()
    stdlib = {name.split(".")[0] for name in imports(path)} - {"rxagents"}
    assert stdlib <= set(sys.stdlib_module_names) - IMPURE | {"__future__"}
