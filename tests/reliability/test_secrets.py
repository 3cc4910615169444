"""Secrets: a recognisable fake API key never shows up where users or logs can see it.

The key is given both ways users give it (``OPENAI_API_KEY`` and ``api_key=``) and used for real HTTP requests to
the local server through both backends (the direct OpenAI-compatible backend, and litellm), with every logger (root,
``rxagents``, litellm's ``LiteLLM*``, ``httpx``, ``httpcore``, ``openai``, ``aiohttp``) at DEBUG. It must appear in
no event (repr, ``to_dict``, JSON), no log record, nothing written to stdout/stderr, no repr of the objects that
hold it, no exception in a failed run's chain (rxagents' own and the provider's wrapped ones: messages, args,
bodies, responses, request headers) - even when the provider echoes the key back in its error - and no
``log_to_file`` output. Also: no ``.env`` file is loaded implicitly, servers bind loopback by default, and log
files are created with mode 0600.
"""

from __future__ import annotations

import ast
import contextlib
import json
import logging
import os
import subprocess
import sys
import textwrap
import traceback
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

import rxagents
from rxagents import Agent, EventKind, ModelError, OfflineModel, RunError, RxAgentsError, TokenEvent
from rxagents.models import resolve_model
from rxagents.operators import log_to, log_to_file, to_async_iter
from rxagents.testing import HttpError, LocalModelServer, Reply, words
from tests.leak_search import secret_paths

# litellm 1.110.2 touches deprecated pydantic instance attributes on usage chunks (not ours to fix).
pytestmark = pytest.mark.filterwarnings(
    "ignore:Accessing the 'model_(computed_)?fields' attribute on the instance is deprecated:DeprecationWarning"
)

KEY = "sk-rxagents-FAKE-KEY-0123456789abcdef"
#: Distinctive pieces: a "masked" rendering that keeps most of the key is a leak too.
FRAGMENTS = (KEY, "FAKE-KEY-0123456789", "0123456789abcdef")
ROOT = Path(rxagents.__file__).resolve().parents[1]
LOGGERS = ("", "rxagents", "LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx", "httpcore", "openai", "aiohttp")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def _leaks(text: str) -> list[str]:
    return [fragment for fragment in FRAGMENTS if fragment in text]


class _Capture(logging.Handler):
    """Every record, formatted the way a DEBUG file handler would (message, args, traceback, stack)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        self.records: list[logging.LogRecord] = []
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.lines.append(self.format(record))


@pytest.fixture
def debug_logs() -> Iterator[_Capture]:
    """Root, rxagents, litellm, httpx, httpcore and openai loggers at DEBUG into one capturing handler."""
    capture = _Capture()
    saved = []
    for name in LOGGERS:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.setLevel(logging.DEBUG)
        logger.addHandler(capture)
    try:
        yield capture
    finally:
        for logger, level in saved:
            logger.removeHandler(capture)
            logger.setLevel(level)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalModelServer]:
    with LocalModelServer() as started:
        yield started


#: The backends every served test runs on, and the model-name prefix that chooses each.
BACKENDS = {"direct": "", "litellm": "litellm/"}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _from_provider(backend: str, exc: BaseException) -> bool:
    """Whether ``exc`` is the provider side's own exception: litellm's, or the HTTP client's (aiohttp)."""
    return type(exc).__module__.startswith("litellm" if backend == "litellm" else "aiohttp")


@pytest.fixture(params=["api_key", "env"])
def keyed_agent(
    request: pytest.FixtureRequest, backend: str, server: LocalModelServer, monkeypatch: pytest.MonkeyPatch
) -> Agent:
    """An agent on the local server whose key comes from ``api_key=`` or from ``OPENAI_API_KEY``."""
    # retries=0: each scripted failure is the run's outcome (a retry would fetch the server's default reply).
    options: dict[str, Any] = {"api_base": server.url, "print_on": False, "verbose": True, "retries": 0}
    if request.param == "env":
        monkeypatch.setenv("OPENAI_API_KEY", KEY)
    else:
        options["api_key"] = KEY
    agent = Agent(agent_name="Keeper", model_name=f"{BACKENDS[backend]}secret-{request.param}", **options)
    assert agent.llm.name == backend
    return agent


def _event_views(event: TokenEvent) -> list[str]:
    return [repr(event), str(event), str(event.to_dict()), json.dumps(event.to_dict(), default=str)]


def _error_views(error: BaseException) -> list[str]:
    """What rxagents shows of an error: str/repr of it and of every rxagents error in its cause chain."""
    views: list[str] = []
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, RxAgentsError):
            views += [str(current), repr(current), current.partial_text]
            views += [view for event in current.events for view in _event_views(event)]
        current = current.__cause__
    return views


async def _exercise(agent: Agent, server: LocalModelServer, log_path: Path) -> tuple[list[str], list[BaseException]]:
    """Successful and failing runs through astream, arun and stream(); returns what they showed."""
    model = agent.model_name.removeprefix("openai/")
    shown: list[str] = []
    errors: list[BaseException] = []

    server.enqueue(Reply(tokens=words("The key stays secret.")), model=model)
    events = [event async for event in agent.astream("Say something")]
    assert events[-1].kind is EventKind.FINISH
    shown += [view for event in events for view in _event_views(event)]

    server.enqueue(Reply(tokens=words("Arun answer.")), model=model)
    details: list[dict[str, Any]] = []
    shown.append(await agent.arun("Again", streaming_callback=details.append))
    shown += [json.dumps(d, default=str) for d in details]

    stream = agent.stream("Logged").pipe(log_to_file(log_path), log_to("rxagents.secret-test", logging.DEBUG))
    server.enqueue(Reply(tokens=words("Into the file.")), model=model)
    shown += [view async for event in to_async_iter(stream) for view in _event_views(event)]

    # Failures, with a provider that echoes the key in its error message (some do).
    for status in (401, 500):
        echo = HttpError(status, f"Incorrect API key provided: {KEY}. You can find your key at ...")
        server.enqueue(Reply(fault=echo), model=model)
        with pytest.raises(ModelError) as streamed:
            _ = [event async for event in agent.astream("Fail please")]
        server.enqueue(Reply(fault=echo), model=model)
        with pytest.raises(RunError) as ran:
            await agent.arun("Fail again")
        server.enqueue(Reply(fault=echo), model=model)
        with pytest.raises(ModelError) as observed:
            _ = [event async for event in to_async_iter(agent.stream("Fail logged").pipe(log_to_file(log_path)))]
        assert streamed.value.status_code == observed.value.status_code == status  # the failure we scripted
        for caught in (streamed.value, ran.value, observed.value):
            assert caught.__cause__ is not None
            errors.append(caught)
            shown += _error_views(caught)
            shown += [f"{path} holds the key" for path in secret_paths(caught, *FRAGMENTS)]
    return shown, errors


@pytest.mark.asyncio
async def test_key_appears_in_no_event_log_output_repr_error_or_file(
    keyed_agent: Agent,
    server: LocalModelServer,
    debug_logs: _Capture,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
) -> None:
    log_path = tmp_path / "runs.log"
    before = len(server.request_records)

    shown, errors = await _exercise(keyed_agent, server, log_path)

    # The key really was in use: every request carried one (the server never stores it).
    records = server.request_records[before:]
    assert len(records) == 9 and all(record.api_key_present for record in records)
    # The capture was live, at DEBUG, for rxagents (and for litellm, when it serves).
    names = {record.name for record in debug_logs.records}
    assert {"rxagents", "rxagents.secret-test"} <= names
    if keyed_agent.llm.name == "litellm":
        assert "LiteLLM" in names
        assert any(record.levelno == logging.DEBUG and record.name == "LiteLLM" for record in debug_logs.records)
    assert len(errors) == 6

    spec = keyed_agent._spec()
    reprs = [repr(keyed_agent), str(keyed_agent), repr(spec), repr(spec.request("task", [])),
             repr(resolve_model(keyed_agent.model_name, api_base=server.url, api_key=KEY))]  # fmt: skip
    out, err = capfd.readouterr()
    places = {
        "events and errors": "\n".join(shown),
        "log records": "\n".join(debug_logs.lines),
        "stdout": out,
        "stderr": err,
        "reprs": "\n".join(reprs),
        "log_to_file output": log_path.read_text(encoding="utf-8"),
    }
    assert "error" in places["log_to_file output"]  # the failures were logged, without the key
    leaked = {where: _leaks(text) for where, text in places.items() if _leaks(text)}
    assert leaked == {}


@pytest.mark.asyncio
async def test_traceback_of_a_failed_run_does_not_quote_an_echoed_key(server: LocalModelServer, backend: str) -> None:
    agent = Agent(agent_name="Keeper", model_name=BACKENDS[backend] + "secret-tb", api_base=server.url, api_key=KEY,
                  print_on=False, retries=0)  # fmt: skip
    server.enqueue(Reply(fault=HttpError(401, f"Incorrect API key provided: {KEY}")), model="secret-tb")
    with pytest.raises(RunError) as caught:
        await agent.arun("Fail")
    printed = "".join(traceback.format_exception(caught.value))
    assert "Incorrect API key provided" in printed  # the provider's message is kept...
    assert _leaks(printed) == []  # ...without the key


@pytest.mark.asyncio
@pytest.mark.parametrize("status", [401, 429, 500])
async def test_no_exception_in_the_chain_holds_an_echoed_key(
    server: LocalModelServer, backend: str, status: int
) -> None:
    """Not the provider's exceptions either: their ``args``, ``message``, ``body``, the response's text and the
    request's headers, through every ``__cause__``/``__context__`` link (what a debugger or error reporter reads)."""
    model = f"secret-chain-{status}-{backend}"
    agent = Agent(agent_name="Keeper", model_name=BACKENDS[backend] + model, api_base=server.url, api_key=KEY,
                  print_on=False, retries=0)  # fmt: skip
    server.enqueue(Reply(fault=HttpError(status, f"Incorrect API key provided: {KEY}")), model=model)
    with pytest.raises(RunError) as caught:
        await agent.arun("Fail")
    error = caught.value.__cause__
    provider = error.__cause__ if error else None
    assert provider is not None and _from_provider(backend, provider), repr(provider)
    assert "Incorrect API key provided: ***" in str(error)  # the provider's message is kept, key scrubbed
    assert secret_paths(caught.value, *FRAGMENTS) == []


@pytest.mark.asyncio
async def test_no_exception_in_the_chain_of_a_connection_error_holds_the_key(backend: str) -> None:
    """A refused connection: the request (with its Authorization header) is in the chain; the key is not."""
    import socket

    with socket.socket() as refusing:
        refusing.bind(("127.0.0.1", 0))
        agent = Agent(agent_name="Keeper", model_name=BACKENDS[backend] + "secret-refused", print_on=False,
                      retries=0, api_key=KEY, api_base=f"http://127.0.0.1:{refusing.getsockname()[1]}/v1")  # fmt: skip
        with pytest.raises(RunError) as caught:
            await agent.arun("Fail")
    assert secret_paths(caught.value, *FRAGMENTS) == []


def test_key_is_not_in_reprs_of_the_objects_that_hold_it() -> None:
    agent = Agent(agent_name="Holder", model_name="gpt-4o-mini", api_base="http://127.0.0.1:9/v1", api_key=KEY,
                  print_on=False)  # fmt: skip
    spec = agent._spec()
    assert spec.api_key == KEY and spec.request("t", []).api_key == KEY  # held, so hiding it means something
    for shown in (repr(agent), repr(spec), repr(spec.request("t", [])), repr(spec.backend),
                  repr(resolve_model("m", api_base="http://127.0.0.1:9/v1", api_key=KEY)),
                  repr(resolve_model("gpt-4o", env={"OPENAI_API_KEY": KEY}))):  # fmt: skip
        assert _leaks(shown) == [], shown


# --- .env is never loaded implicitly --------------------------------------------------------------------------

DOTENV_PROBE = textwrap.dedent(
    """
    import json, os, sys
    from rxagents import Agent
    from rxagents.testing import LocalModelServer

    answers = [Agent(agent_name="Offline", model_name="offline", print_on=False).run("offline task")]
    with LocalModelServer() as server:
        answers.append(Agent(agent_name="Direct", model_name="m", api_base=server.url, print_on=False).run("hi"))
        imported_by_direct = "litellm" in sys.modules
        # through litellm: this imports it, the way rxagents does
        answers.append(Agent(agent_name="Served", model_name="litellm/m", api_base=server.url,
                             print_on=False).run("hi"))
    print(json.dumps({
        "litellm_imported_by_direct": imported_by_direct,
        "answers": [bool(a) for a in answers],
        "litellm_imported": "litellm" in sys.modules,
        "OPENAI_API_KEY set": "OPENAI_API_KEY" in os.environ,
        "RXAGENTS_DOTENV_PROBE": os.environ.get("RXAGENTS_DOTENV_PROBE"),
    }), flush=True)
    # Skip interpreter finalization: with litellm's clients alive on the rxagents runtime loop (a daemon
    # thread), exit can deadlock on the import lock (about 1 run in 4, litellm 1.110.2) - a separate bug.
    os._exit(0)
    """
)


def _run_dotenv_probe(cwd: Path, **env: str) -> dict[str, Any]:
    (cwd / ".env").write_text(f"OPENAI_API_KEY={KEY}\nRXAGENTS_DOTENV_PROBE=loaded\n", encoding="utf-8")
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("OPENAI_", "LITELLM_", "RXAGENTS_DOTENV"))}  # fmt: skip
    # LITELLM_MODE is left unset on purpose: rxagents must keep litellm from loading .env by itself.
    clean.update(PYTHONPATH=str(ROOT), PYTHONWARNINGS="ignore", LITELLM_LOCAL_MODEL_COST_MAP="True", **env)
    # `python -c` has no __main__.__file__, so python-dotenv searches the working directory: the .env is found
    # if anything loads one.
    result = subprocess.run([sys.executable, "-c", DOTENV_PROBE], cwd=cwd, env=clean, capture_output=True,
                            text=True, timeout=180)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    probe: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return probe


def test_no_dotenv_is_loaded_implicitly(tmp_path: Path) -> None:
    probe = _run_dotenv_probe(tmp_path)
    assert probe["answers"] == [True, True, True] and probe["litellm_imported"]
    assert probe["litellm_imported_by_direct"] is False
    assert probe["OPENAI_API_KEY set"] is False
    assert probe["RXAGENTS_DOTENV_PROBE"] is None


def test_dotenv_probe_detects_loading(tmp_path: Path) -> None:
    """Control: with litellm's DEV mode forced, the same probe does see the .env (so the test above can fail)."""
    probe = _run_dotenv_probe(tmp_path, LITELLM_MODE="DEV")
    assert probe["RXAGENTS_DOTENV_PROBE"] == "loaded" and probe["OPENAI_API_KEY set"] is True


# --- servers bind loopback by default -------------------------------------------------------------------------


def _literal(node: ast.expr | None) -> object:
    """A default's value if it is a literal, else its source text (never loopback, so it gets reported)."""
    if node is None:
        return None
    return node.value if isinstance(node, ast.Constant) else ast.unparse(node)


def _host_defaults() -> list[tuple[str, object]]:
    """Every default for a ``host`` parameter or a ``--host`` option in the rxagents package."""
    found: list[tuple[str, object]] = []
    for path in sorted((ROOT / "rxagents").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        where = str(path.relative_to(ROOT))
        for node in ast.walk(tree):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                args = node.args
                positional = args.posonlyargs + args.args
                pairs = list(zip(positional[len(positional) - len(args.defaults) :], args.defaults, strict=True))
                pairs += [(a, d) for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
                for arg, default in pairs:
                    if arg.arg == "host":
                        found.append((f"{where}:{node.lineno} {node.name}(host=...)", _literal(default)))
            elif isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "add_argument":
                names = [a.value for a in node.args if isinstance(a, ast.Constant)]
                if "--host" in names:
                    option = next((k.value for k in node.keywords if k.arg == "default"), None)
                    found.append((f"{where}:{node.lineno} --host", _literal(option)))
    return found


def test_every_host_default_in_the_package_is_loopback() -> None:
    defaults = _host_defaults()
    assert any("_server.py" in where for where, _ in defaults)  # the scan sees the test server
    assert [(where, value) for where, value in defaults if value not in LOOPBACK] == []


def test_no_source_file_binds_all_interfaces() -> None:
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "rxagents").rglob("*.py")
                 if "0.0.0.0" in p.read_text(encoding="utf-8")]  # fmt: skip
    assert offenders == []


def test_local_model_server_listens_on_loopback_only() -> None:
    with LocalModelServer() as server:
        runner = server._runner
        assert runner is not None
        assert [address[0] for address in runner.addresses] == ["127.0.0.1"]
        assert server.url.startswith("http://127.0.0.1:")
        assert httpx.get(f"{server.url}/health", timeout=5).json() == {"status": "ok"}


# --- log files are private ------------------------------------------------------------------------------------


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


@pytest.mark.asyncio
@pytest.mark.parametrize("mode", ["a", "w", "x"])
async def test_log_to_file_creates_the_file_with_mode_0600(tmp_path: Path, mode: Literal["a", "w", "x"]) -> None:
    path = tmp_path / f"agent-{mode}.log"
    agent = Agent(agent_name="Private", llm=OfflineModel(text="Private words."), print_on=False)
    with _umask(0):  # a permissive umask: the 0600 must come from log_to_file itself
        events = [event async for event in to_async_iter(agent.stream("t").pipe(log_to_file(path, mode=mode)))]
    assert events[-1].kind is EventKind.FINISH
    assert path.read_text(encoding="utf-8").count("\n") == len(events)
    assert path.stat().st_mode & 0o777 == 0o600
