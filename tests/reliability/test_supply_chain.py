"""Supply chain: the known-malicious litellm releases (1.82.7, 1.82.8) are caught.

* ``check_litellm_version()`` (run when rxagents is imported) warns with ``SecurityWarning`` if one of them is
  installed, reading distribution metadata only (it never imports litellm).
* CI (``.ci/run``) refuses to run when a ``litellm_init.pth`` (the payload those releases drop into
  site-packages) is on the path - checked here by running the exact snippet from ``.ci/run``.
* pyproject pins litellm exactly, to a version that is not one of them.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
import tomllib
import warnings
from pathlib import Path

import pytest

import rxagents
from rxagents import _supply_chain
from rxagents._supply_chain import MALICIOUS_LITELLM_VERSIONS, SecurityWarning, check_litellm_version

ROOT = Path(rxagents.__file__).resolve().parents[1]
CI_RUN = ROOT / ".ci" / "run"


def _fake_version(monkeypatch: pytest.MonkeyPatch, version: str | None) -> list[str]:
    """Make the installed litellm look like ``version`` (None: not installed); returns the names looked up."""
    asked: list[str] = []

    def version_of(name: str) -> str:
        asked.append(name)
        if version is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return version

    monkeypatch.setattr(importlib.metadata, "version", version_of)
    return asked


@pytest.mark.parametrize("bad", ["1.82.7", "1.82.8"])
def test_warns_for_the_malicious_litellm_releases(monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    asked = _fake_version(monkeypatch, bad)
    with pytest.warns(SecurityWarning) as caught:
        assert check_litellm_version() == bad
    assert asked == ["litellm"]
    assert len(caught) == 1
    message = str(caught[0].message)
    assert f"litellm {bad}" in message and "malicious" in message and "litellm_init.pth" in message
    assert "pip uninstall litellm" in message


def test_security_warning_is_a_user_warning() -> None:
    assert issubclass(SecurityWarning, UserWarning)
    assert sorted(MALICIOUS_LITELLM_VERSIONS) == ["1.82.7", "1.82.8"]


@pytest.mark.parametrize("good", ["1.110.2", "1.82.6", "1.82.9", "1.82.70", "11.82.7"])
def test_no_warning_for_other_versions(monkeypatch: pytest.MonkeyPatch, good: str) -> None:
    _fake_version(monkeypatch, good)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_litellm_version() == good


def test_no_warning_and_none_when_litellm_is_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_version(monkeypatch, None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_litellm_version() is None


def test_installed_pinned_litellm_passes_without_importing_it() -> None:
    code = (
        "import sys, warnings; warnings.simplefilter('error');"
        "from rxagents._supply_chain import check_litellm_version;"
        "print(check_litellm_version()); assert 'litellm' not in sys.modules, 'litellm was imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == importlib.metadata.version("litellm")


def test_importing_rxagents_warns_when_a_malicious_litellm_is_installed() -> None:
    code = (
        "import importlib.metadata as m, sys, warnings; warnings.simplefilter('always');"
        "m.version = lambda name: '1.82.8' if name == 'litellm' else m.distribution(name).version;"
        "import rxagents; assert 'litellm' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "SecurityWarning" in result.stderr and "litellm 1.82.8" in result.stderr


def test_the_check_reads_metadata_not_the_module() -> None:
    source = Path(_supply_chain.__file__).read_text(encoding="utf-8")
    assert "import litellm" not in source
    assert "importlib.metadata" in source


# --- pyproject pin ----------------------------------------------------------------------------------------------


def _litellm_requirement() -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    found = [dep for dep in project["dependencies"] if re.match(r"litellm\b(?![-_\w])", dep)]
    assert len(found) == 1, f"expected one litellm requirement, got {found}"
    return str(found[0])


def test_pyproject_pins_litellm_exactly_to_a_safe_version() -> None:
    requirement = _litellm_requirement().replace(" ", "")
    match = re.fullmatch(r"litellm==(\d+(?:\.\d+)*)", requirement)
    assert match, f"litellm must be pinned with an exact '==X.Y.Z', got {requirement!r}"
    assert match.group(1) not in MALICIOUS_LITELLM_VERSIONS


def test_installed_litellm_matches_the_pin() -> None:
    pinned = _litellm_requirement().replace(" ", "").removeprefix("litellm==")
    assert importlib.metadata.version("litellm") == pinned


# --- CI: refuse to run with litellm_init.pth on the path -------------------------------------------------------


def _ci_snippet() -> str:
    """The Python program ``.ci/run`` feeds to ``python3 - <<'PY' ... PY``."""
    text = CI_RUN.read_text(encoding="utf-8")
    match = re.search(r"python3? - <<'PY'\n(.*?)\nPY\n", text, re.S)
    assert match, ".ci/run has no `python3 - <<'PY'` supply-chain step"
    return match.group(1)


def _run_ci_check(extra_path: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(extra_path)}
    return subprocess.run([sys.executable, "-"], input=_ci_snippet(), capture_output=True, text=True, timeout=60,
                          env=env)  # fmt: skip


def test_ci_runs_the_pth_check_before_the_tests() -> None:
    text = CI_RUN.read_text(encoding="utf-8")
    snippet = _ci_snippet()
    assert "litellm_init.pth" in snippet and "sys.exit(" in snippet
    assert "set -e" in text  # a failing check stops the script
    assert text.index("litellm_init.pth") < text.index("tox")


def test_ci_check_passes_on_a_clean_path(tmp_path: Path) -> None:
    result = _run_ci_check(tmp_path)
    assert result.returncode == 0, result.stderr


def test_ci_check_fails_when_a_litellm_init_pth_is_on_the_path(tmp_path: Path) -> None:
    # Inert content: a .pth on PYTHONPATH is not executed (only site-packages .pth files are); the check must
    # find it by name.
    bad = tmp_path / "litellm_init.pth"
    bad.write_text("# stand-in for the malicious file\n", encoding="utf-8")
    result = _run_ci_check(tmp_path)
    assert result.returncode != 0
    assert "litellm_init.pth" in result.stderr and str(bad) in result.stderr
