"""The rxagents command, in-process and as the installed console script."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from rxagents import cli
from rxagents.cli import main
from rxagents.testing._faults import DropAfter, HttpError, Reply, words
from rxagents.testing._server import LocalModelServer


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


# --- input validation: usage errors exit 2 before anything is printed or started ---------------------------------


@pytest.fixture
def nothing_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """An invalid option must stop the command before it builds an agent, binds a port or runs a check."""

    def started(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"started despite an invalid option: {args!r} {kwargs!r}")

    from rxagents import _doctor, _serve_cmd
    from rxagents.testing import _server

    monkeypatch.setattr(cli, "Agent", started)
    monkeypatch.setattr(_serve_cmd, "serve_sse", started)
    monkeypatch.setattr(_server.LocalModelServer, "start", started)
    monkeypatch.setattr(_doctor, "run_checks", started)


def usage_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``argv``, expect a usage error (exit 2, nothing on stdout, no traceback); return stderr."""
    with pytest.raises(SystemExit) as info:
        main(argv)
    out, err = capsys.readouterr()
    assert info.value.code == 2, (out, err)
    assert out == "" and "Traceback" not in err
    return err


BAD_NUMBERS = [
    (["run", "task", "--max-loops", "0"], "--max-loops", "0"),
    (["run", "task", "--max-loops", "two"], "--max-loops", "two"),
    (["run", "task", "--max-tokens", "-5"], "--max-tokens", "-5"),
    (["demo", "--pace", "-1"], "--pace", "-1"),
    (["demo", "--pace", "nan"], "--pace", "nan"),
    (["serve", "--port", "99999"], "--port", "99999"),
    (["serve", "--port", "-1"], "--port", "-1"),
    (["serve", "--port", "http"], "--port", "http"),
    (["serve", "--pace", "nan"], "--pace", "nan"),
    (["serve", "--exit-after", "inf"], "--exit-after", "inf"),
    (["serve-test-model", "--port", "99999"], "--port", "99999"),
    (["serve-test-model", "--port", "-1"], "--port", "-1"),
    (["serve-test-model", "--tokens", "-3"], "--tokens", "-3"),
    (["serve-test-model", "--tokens", "0"], "--tokens", "0"),
    (["serve-test-model", "--token-delay", "-1"], "--token-delay", "-1"),
    (["serve-test-model", "--token-delay", "nan"], "--token-delay", "nan"),
    (["serve-test-model", "--first-byte-delay", "-1"], "--first-byte-delay", "-1"),
    (["doctor", "--timeout", "nan"], "--timeout", "nan"),
    (["doctor", "--timeout", "0"], "--timeout", "0"),
]


@pytest.mark.usefixtures("nothing_starts")
@pytest.mark.parametrize(
    ("argv", "option", "value"), BAD_NUMBERS, ids=[" ".join(a[:1] + a[-2:]) for a, _, _ in BAD_NUMBERS]
)
def test_bad_numbers_are_usage_errors_naming_option_value_and_range(
    capsys: pytest.CaptureFixture[str], argv: list[str], option: str, value: str
) -> None:
    err = usage_error(capsys, argv)
    command = argv[0]
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"rxagents {command}: error: argument {option}: must be "), err
    assert repr(value) in line
    assert f"usage: rxagents {command} " in err  # the subcommand's usage, not the top level's


@pytest.mark.usefixtures("nothing_starts")
@pytest.mark.parametrize("command", ["serve", "serve-test-model"])
def test_port_errors_say_the_range_and_that_zero_picks_a_free_port(
    capsys: pytest.CaptureFixture[str], command: str
) -> None:
    err = usage_error(capsys, [command, "--port", "65536"])
    assert "from 0 to 65535" in err and "0: any free port" in err


BAD_TEXTS = [
    (["run", ""], "task"),
    (["run", "   "], "task"),
    (["run", "task", "--model", ""], "--model"),
    (["run", "task", "--agent-name", ""], "--agent-name"),
    (["run", "task", "--api-base", " "], "--api-base"),
    (["serve", "--task", ""], "--task"),
    (["serve", "--host", ""], "--host"),
    (["serve", "--model", ""], "--model"),
    (["serve-test-model", "--host", ""], "--host"),
]


@pytest.mark.usefixtures("nothing_starts")
@pytest.mark.parametrize(("argv", "name"), BAD_TEXTS, ids=[f"{a[0]} {n}" for a, n in BAD_TEXTS])
def test_empty_texts_are_usage_errors(capsys: pytest.CaptureFixture[str], argv: list[str], name: str) -> None:
    err = usage_error(capsys, argv)
    assert f"rxagents {argv[0]}: error: argument {name}: must be a non-empty" in err


def test_demo_validates_before_printing_its_banner(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, ["demo", "--pace", "-0.5"])
    assert "--pace" in err and "'-0.5'" in err


def test_unknown_option_prints_the_subcommand_usage(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, ["run", "x", "--bogus"])
    assert err.startswith("usage: rxagents run ")
    assert err.strip().splitlines()[-1] == "rxagents run: error: unrecognized arguments: --bogus"


def test_unknown_option_of_demo_prints_demo_usage(capsys: pytest.CaptureFixture[str]) -> None:
    err = usage_error(capsys, ["demo", "--fast"])
    assert err.startswith("usage: rxagents demo ")


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    import importlib.metadata

    import rxagents

    try:
        expected = importlib.metadata.version("rxagents")
    except importlib.metadata.PackageNotFoundError:
        expected = rxagents.__version__
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out == f"rxagents {expected}\n"


def test_help_documents_the_exit_statuses(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert "exit status" in out.lower()
    for line in ("0 ", "1 ", "2 ", "130 "):
        assert any(row.strip().startswith(line) for row in out.splitlines()), line


# --- configuration errors (exit 2) and failed runs (exit 1): one message, no traceback ---------------------------


def test_a_configuration_error_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "task", "--model", "no-such-model-xyz"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("rxagents: error: model_name 'no-such-model-xyz'"), err


def test_a_configuration_error_while_running_is_exit_2(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from rxagents.errors import ConfigurationError
    from rxagents.models import OfflineModel

    def refuse(self: OfflineModel, request: object) -> list[object]:
        raise ConfigurationError("the endpoint refused the settings:\nset X to fix it")

    monkeypatch.setattr(OfflineModel, "script", refuse)
    monkeypatch.setattr(OfflineModel, "stream", refuse)
    assert main(["run", "task", "--model", "offline", "--json"]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["rxagents: error: the endpoint refused the settings: set X to fix it"]


def _fail_midway(server: LocalModelServer, name: str) -> None:
    server.enqueue(Reply(tokens=words("Partial answer that is cut"), fault=DropAfter(3)), model=name)


def test_a_failed_run_is_reported_once_and_exits_1(
    capsys: pytest.CaptureFixture[str], model_server: LocalModelServer
) -> None:
    _fail_midway(model_server, "cli-cut-text")
    code = main(["run", "task", "--model", "cli-cut-text", "--api-base", model_server.url])
    out, err = capsys.readouterr()
    assert code == 1
    assert "Partial answer that" in out and "[error]" not in out and out.endswith("\n")
    first, second = err.splitlines()  # the failure once, then a note on the partial answer
    assert first.startswith("rxagents: run failed: StreamCutError: model 'cli-cut-text'")
    assert second == f"rxagents: the answer above is incomplete ({len('Partial answer that')} characters)"


def test_a_failed_json_run_reports_once_on_stderr(
    capsys: pytest.CaptureFixture[str], model_server: LocalModelServer
) -> None:
    model_server.enqueue(Reply(fault=HttpError(401, message="bad key")), model="cli-401")
    code = main(["run", "task", "--model", "cli-401", "--api-base", model_server.url, "--json"])
    out, err = capsys.readouterr()
    assert code == 1
    events = [json.loads(line) for line in out.splitlines()]
    assert [e["type"] for e in events] == ["start", "error"]
    assert len(err.splitlines()) == 1 and err.startswith("rxagents: run failed: ModelError: ") and "bad key" in err


# --- the header says which model serves the run ----------------------------------------------------------------


def test_offline_header_is_marked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "Explain streams", "--model", "offline"]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert header == "🤖 Agent: Agent | Loops: 1 | offline model"


def test_offline_fallback_header_is_marked(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "Explain streams", "--model", "gpt-4o-mini"]) == 0  # no OPENAI_API_KEY (conftest)
    header = capsys.readouterr().out.splitlines()[0]
    assert header == "🤖 Agent: Agent | Loops: 1 | offline model (standing in for 'gpt-4o-mini')"


@pytest.mark.parametrize("model", ["offline", "claude-3-5-haiku-latest"])
def test_json_start_event_names_the_offline_backend(capsys: pytest.CaptureFixture[str], model: str) -> None:
    assert main(["run", "Explain streams", "--model", model, "--json"]) == 0
    start = json.loads(capsys.readouterr().out.splitlines()[0])
    assert start["type"] == "start" and start["backend"] == "offline"


def test_a_real_backend_is_named_in_the_header_and_start_event(
    capsys: pytest.CaptureFixture[str], model_server: LocalModelServer
) -> None:
    model_server.enqueue(Reply(tokens=words("Served over HTTP.")), model="cli-ok")
    assert main(["run", "task", "--model", "cli-ok", "--api-base", model_server.url]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "🤖 Agent: Agent | Loops: 1 | model: cli-ok"
    assert "Served over HTTP." in out and "offline" not in out
    model_server.enqueue(Reply(tokens=words("Served over HTTP.")), model="cli-ok")
    assert main(["run", "task", "--model", "cli-ok", "--api-base", model_server.url, "--json"]) == 0
    start = json.loads(capsys.readouterr().out.splitlines()[0])
    assert start["backend"] == "direct" and start["model"] == "cli-ok"
    model_server.enqueue(Reply(tokens=words("Served over HTTP.")), model="cli-ok")
    assert main(["run", "task", "--model", "litellm/cli-ok", "--api-base", model_server.url, "--json"]) == 0
    start = json.loads(capsys.readouterr().out.splitlines()[0])
    assert start["backend"] == "litellm" and start["model"] == "openai/cli-ok"


class _ClosedPipe:
    """A stdout whose reader went away (``rxagents run ... | head``)."""

    writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self) -> None:
        pass


@pytest.mark.parametrize(
    "argv", [["run", "task", "--model", "offline"], ["run", "task", "--model", "offline", "--json"], ["demo"]]
)
def test_a_closed_stdout_stops_the_run_quietly(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, argv: list[str]
) -> None:
    closed = _ClosedPipe()
    monkeypatch.setattr("sys.stdout", closed)
    assert main(argv) == 1
    assert capsys.readouterr().err == ""  # no traceback, no warning per token
    assert closed.writes == 1  # the run stopped at the first failed write
