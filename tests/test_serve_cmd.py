"""``rxagents serve`` (rxagents/_serve_cmd.py): a ConcurrentWorkflow of N agents behind the SSE dashboard."""

from __future__ import annotations

import pytest

from rxagents._serve_cmd import serve_main


def test_rxagents_serve_starts_prints_its_url_and_stops(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_main(["--port", "0", "--agents", "2", "--exit-after", "0"]) == 0
    out = capsys.readouterr().out
    assert "dashboard at http://127.0.0.1:" in out and "2 agents on the offline model" in out
