"""Importing rxagents is cheap and quiet: no litellm, no network, no logging changes, no .env."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROBE = textwrap.dedent(
    """
    import logging, os, socket, sys
    attempts = []
    def refuse(*args, **kwargs):
        attempts.append(args[:2])
        raise OSError("network disabled by test")
    socket.getaddrinfo = refuse
    socket.socket.connect = refuse
    socket.create_connection = refuse
    root_handlers = list(logging.getLogger().handlers)
    env_before = dict(os.environ)

    import rxagents

    assert "litellm" not in sys.modules, "import rxagents imported litellm"
    assert attempts == [], f"network attempts during import: {attempts}"
    assert logging.getLogger().handlers == root_handlers, "root logging was rewired"
    assert dict(os.environ) == env_before, "the environment changed (.env loaded?)"
    print("ok", rxagents.__version__)
    """
)


def test_import_is_offline_and_does_not_load_litellm(tmp_path: object) -> None:
    result = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ok ")


def test_public_names_match_all() -> None:
    import types

    import rxagents

    public = {
        name
        for name, value in vars(rxagents).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert set(rxagents.__all__) - {"__version__"} == public
