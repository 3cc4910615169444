"""The rxagents command, in-process and as the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from rxagents.cli import main


def test_run_streams_text_from_the_offline_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "Explain streams", "--model", "offline"]) == 0
    out = capsys.readouterr().out
    assert "🤖 Agent: Agent | Loops: 1" in out
    assert "offline model" in out


def test_run_json_prints_one_event_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "Explain streams", "--model", "offline", "--json"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert events[0]["type"] == "start" and events[-1]["type"] == "finish"
    assert [e["seq"] for e in events] == list(range(len(events)))
    assert all({"type", "agent", "run_id", "seq", "model"} <= e.keys() for e in events)
    assert all(("content" in e) == (e["type"] == "token") for e in events)
    assert "offline model" in "".join(e["content"] for e in events if e["type"] == "token")
    assert [e["type"] for e in events if "usage" in e] == ["usage"] and events[-2]["usage"]["total_tokens"] > 0
    assert [e.get("finish_reason") for e in events if "finish_reason" in e] == ["stop"]


def test_demo_streams_an_offline_answer(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--pace", "0"]) == 0
    out = capsys.readouterr().out
    assert "Demo-Agent" in out and "offline model" in out


def test_unknown_model_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "task", "--model", "no-such-model-xyz"]) == 2
    assert "no-such-model-xyz" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("rxagents") is None, reason="console script not installed (run via tox)")
def test_console_script_is_installed() -> None:
    result = subprocess.run(["rxagents", "run", "hi", "--model", "offline"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "offline model" in result.stdout


def test_serve_test_model_passes_its_options_through(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve-test-model", "--help"])
    assert info.value.code == 0
    assert "--token-delay" in capsys.readouterr().out


def test_unknown_option_is_rejected(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "task", "--no-such-flag"])
    assert info.value.code == 2
    assert "--no-such-flag" in capsys.readouterr().err


def test_doctor_is_wired_and_reports_the_offline_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["doctor", "--model", "offline"]) == 0
    out = capsys.readouterr().out
    assert "offline" in out and "litellm" in out


def test_serve_is_wired_to_the_sse_dashboard(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["serve", "--help"])
    assert info.value.code == 0
    assert "--agents" in capsys.readouterr().out
