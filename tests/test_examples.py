"""Every file in examples/ runs offline, exits 0 and prints something sensible."""

from __future__ import annotations

import ast
import os
import re
import runpy
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from rxagents.events import Usage
from rxagents.testing._faults import Reply, words
from rxagents.testing._server import LocalModelServer

REPO = Path(__file__).parent.parent
EXAMPLES_DIR = REPO / "examples"
# examples/*.py: the idiomatic versions; examples/spec/*.py: the spec page's examples as written there.
EXAMPLES = sorted(EXAMPLES_DIR.glob("*.py")) + sorted((EXAMPLES_DIR / "spec").glob("*.py"))
# What each example's output must contain to count as sensible (default: the offline model's answer).
# Keys are paths under examples/ ("spec/..." for the spec page's examples).
EXPECTED: dict[str, str] = {
    "spec/agent_configuration.py": "Agent(agent_name='Configured-Streamer'",
    # the spec's callback prints the usage and the finish reason once each, at the end
    "spec/detailed_streaming.py": "Finished: stop",
    "spec/file_logging.py": "Full response logged to: agent_stream.log",
    # the spec guesses total=100 and advances one step per token: the bar ends where the answer's length puts it
    "spec/progress_bar.py": "Generate comprehensive report",
    "spec/troubleshooting.py": "Model supports streaming",
    # the spec's server, with one client connecting (RXAGENTS_EXAMPLE_SMOKE); no tokens arrive before "complete"
    "spec/websocket_integration.py": "complete: [offline model]",
}
# Examples that slow the offline model down so their live view is worth watching: tokens/s of every agent stays
# below this (unpaced, the offline model streams tens of thousands of tokens a second).
PACED: dict[str, float] = {"concurrent_workflow.py": 100.0, "dashboard.py": 100.0}
# Examples whose point is to show an isolated callback error being logged with its traceback.
LOGS_A_TRACEBACK = {"error_handling.py"}


def _key(path: Path) -> str:
    return path.relative_to(EXAMPLES_DIR).as_posix()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _env() -> dict[str, str]:
    """No provider keys or endpoints; this checkout's rxagents first on the path (not an installed copy).
    Examples that would serve forever connect once as a client and exit; servers get a free port."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and not k.startswith("OPENAI_")}
    path = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env | {"RXAGENTS_EXAMPLE_SMOKE": "1", "PORT": str(_free_port()), "PYTHONPATH": path}


@pytest.mark.parametrize("path", EXAMPLES, ids=[_key(p) for p in EXAMPLES])
def test_example_runs_offline(path: Path, tmp_path: Path) -> None:
    env = _env()
    result = subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    if _key(path) not in LOGS_A_TRACEBACK:
        assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.stdout.strip(), "the example printed nothing"
    assert EXPECTED.get(_key(path), "offline model") in result.stdout
    if _key(path) in PACED:
        rates = [float(r.replace(",", "")) for r in re.findall(r"done · \d+ tokens · ([\d,.]+) tok/s", result.stdout)]
        assert rates and max(rates) < PACED[_key(path)], result.stdout[-3000:]


def test_spec_detailed_streaming_against_a_served_model(
    model_server: LocalModelServer, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The spec's "Detailed Streaming" example as written (only the import changed), over real HTTP through
    litellm: the text, then one "Tokens used:" line with the usage dict, then one "Finished: stop"."""
    text = "AI technology moves fast, and streams show it as it happens."
    usage = Usage(prompt_tokens=12, completion_tokens=11, total_tokens=23)
    monkeypatch.setenv("OPENAI_BASE_URL", model_server.url)
    model_server.enqueue(Reply(tokens=words(text), usage=usage), model="gpt-4o-mini")
    runpy.run_path(str(EXAMPLES_DIR / "spec" / "detailed_streaming.py"), run_name="__main__")
    out = capsys.readouterr().out
    lines = out.splitlines()
    used = [line for line in lines if line.startswith("Tokens used:")]
    assert len(used) == 1, out
    assert ast.literal_eval(used[0].removeprefix("Tokens used: ")) == usage.to_dict()
    assert [line for line in lines if line.startswith("Finished:")] == ["Finished: stop"]
    assert out == f"{text}\n\nTokens used: {usage.to_dict()}\nFinished: stop\n"
    assert model_server.requests[-1]["model"] == "gpt-4o-mini"


def test_spec_websocket_example_with_arun_streams_before_complete(tmp_path: Path) -> None:
    """The spec's WebSocket handler with ``await agent.arun(...)`` (create_task callback, and an ``async def``
    callback): 100 tokens paced at 15 ms by the local server; the client gets the first token well before
    "complete" (about 1.5 s; required: 0.5 s), every token before it. The verbatim ``agent.run`` form gets none."""
    with LocalModelServer(default_tokens=100, token_delay=0.015) as server:
        env = _env() | {"OPENAI_BASE_URL": server.url}
        path = EXAMPLES_DIR / "spec" / "websocket_integration.py"
        result = subprocess.run(
            [sys.executable, str(path)], capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env
        )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    out = result.stdout
    assert "agent.run(): token messages before 'complete': 0;" in out
    for label in ("await agent.arun(), create_task callback", "await agent.arun(), async def callback"):
        found = re.search(
            re.escape(label) + r": token messages before 'complete': (\d+); after it: (\d+)\n"
            r"  first token ([\d.]+) s before 'complete'",
            out,
        )
        assert found, out
        before, after, lead = int(found[1]), int(found[2]), float(found[3])
        assert (before, after) == (100, 0), out
        assert lead >= 0.5, out
