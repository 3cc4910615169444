"""The bus commands: ``rxagents serve --bus``, ``worker``, ``submit`` and ``cancel`` check their arguments and
say where they are, never showing a broker's credentials."""

from __future__ import annotations

import argparse

import pytest

from rxagents._serve_cmd import _spec, serve_main
from rxagents._worker_cmd import cancel_main, submit_main, worker_main
from rxagents.bus import LocalNatsServer
from rxagents.bus._spec import check_spec


def test_serve_with_a_bus_serves_its_runs_and_stops(
    nats_server: LocalNatsServer, capsys: pytest.CaptureFixture[str]
) -> None:
    assert serve_main(["--bus", nats_server.url, "--port", "0", "--exit-after", "0"]) == 0
    out = capsys.readouterr().out
    assert "dashboard at http://127.0.0.1:" in out and f"runs on {nats_server.url}" in out


def test_serve_with_a_bus_submits_the_same_agents_as_without() -> None:
    args = argparse.Namespace(agents=3, model="offline", pace=0.05, length=150, api_base=None)
    spec = check_spec(_spec(args))
    agents = spec["workflow"]["agents"]
    assert [a["agent_name"] for a in agents] == ["Researcher", "Analyst", "Critic"]
    assert agents[0]["offline"] == {"pace": 0.05, "length": 150}


def test_serve_with_an_unreachable_bus_fails_with_status_1(capsys: pytest.CaptureFixture[str]) -> None:
    assert serve_main(["--bus", "nats://user:hunter22@127.0.0.1:1", "--port", "0", "--exit-after", "0"]) == 1
    err = capsys.readouterr().err
    assert "BusUnavailable" in err and "hunter22" not in err


@pytest.mark.parametrize(
    ("main", "argv", "message"),
    [
        (worker_main, ["--bus", "nats://127.0.0.1:4222", "--concurrency", "0"], "--concurrency: must be an integer"),
        (worker_main, ["--concurrency", "2"], "the following arguments are required: --bus"),
        (submit_main, ["--bus", "nats://127.0.0.1:4222", "task", "--spec", "[1]"], "--spec: must be a JSON object"),
        (cancel_main, ["--bus", "nats://127.0.0.1:4222"], "the following arguments are required: run_id"),
    ],
)
def test_bad_arguments_are_usage_errors(main: object, argv: list[str], message: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:  # fmt: skip
    with pytest.raises(SystemExit) as exited:
        main(argv)  # type: ignore[operator]
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_submit_with_a_bad_spec_exits_2_naming_the_field(capsys: pytest.CaptureFixture[str]) -> None:
    spec = '{"agent": {"api_key": "sk-abc123456"}}'
    assert submit_main(["--bus", "nats://127.0.0.1:1", "task", "--spec", spec]) == 2
    err = capsys.readouterr().err
    assert "spec.agent.api_key: provider keys never travel" in err and "sk-abc123456" not in err
