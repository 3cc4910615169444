"""No connection, no HTTP status: refused, DNS, TLS and connect-timeout failures are ``ProviderUnreachable``.

Every endpoint here is on loopback or fails before any packet leaves the machine:

* **refused**: a socket bound on 127.0.0.1 but not listening (the kernel answers a SYN with RST);
* **DNS**: a name under ``.invalid`` (RFC 2606), which the resolver refuses locally;
* **TLS**: ``https://`` to the local server, which speaks plain HTTP (the handshake fails);
* **unreachable**: a loopback "black hole": a listener with ``backlog=0`` whose accept queue is already full,
  so the kernel drops every further SYN and the connect never completes - what a firewalled or vanished host
  looks like - until the connect timeout. No traffic goes anywhere but 127.0.0.1.

Attempts are counted where the connection is made (the event loop's ``sock_connect`` and ``getaddrinfo``),
so a retry hidden inside litellm, the openai SDK or aiohttp would show up as a second attempt. Every case runs
against both HTTP backends: litellm and the direct OpenAI-compatible backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import socket
import time
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeAlias, TypeVar

import pytest

from rxagents import _runtime
from rxagents._run import RetryPolicy
from rxagents.agent import Agent
from rxagents.errors import ProviderUnreachable, RunError
from rxagents.models import LiteLLMModel, ModelRequest, OpenAICompatibleModel
from rxagents.models._litellm import import_litellm
from rxagents.operators import is_transient
from rxagents.testing._server import LocalModelServer

_T = TypeVar("_T")
_names = itertools.count()
KEY = "sk-connect-test-0123456789"


def _on_runtime(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run on the rxagents runtime loop (litellm caches its HTTP clients per loop)."""
    return asyncio.run_coroutine_threadsafe(coro, _runtime.runtime_loop()).result(timeout=60)


@pytest.fixture(scope="module", autouse=True)
def _litellm_imported() -> None:
    import_litellm()  # its import takes seconds: keep it out of the timings below


@contextlib.contextmanager
def refusing_port() -> Iterator[int]:
    """A loopback port that refuses connections: bound (so nothing else takes it) but not listening."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        yield sock.getsockname()[1]


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A loopback port where connects hang: a ``backlog=0`` listener whose accept queue a first connection
    fills, so the kernel drops every later SYN (Linux); nothing ever accepts."""
    with socket.socket() as listener, contextlib.ExitStack() as fillers:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(2):
            filler = fillers.enter_context(socket.socket())
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        probe = fillers.enter_context(socket.socket())
        probe.settimeout(0.3)
        with pytest.raises(TimeoutError):  # the premise: a connect here does not complete
            probe.connect(("127.0.0.1", port))
        yield port


@dataclass
class Attempts:
    """Connection attempts seen by the event loop: TCP connects per (host, port), DNS lookups per host."""

    connects: list[tuple[str, int]] = field(default_factory=list)
    lookups: list[str] = field(default_factory=list)


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> Attempts:
    seen = Attempts()
    loop_class = type(_runtime.runtime_loop())
    sock_connect, getaddrinfo = loop_class.sock_connect, loop_class.getaddrinfo

    async def counting_connect(self: asyncio.AbstractEventLoop, sock: socket.socket, address: Any) -> None:
        seen.connects.append((str(address[0]), int(address[1])))
        await sock_connect(self, sock, address)

    async def counting_lookup(self: asyncio.AbstractEventLoop, host: Any, *args: Any, **kwargs: Any) -> Any:
        seen.lookups.append(host.decode() if isinstance(host, bytes) else str(host))
        return await getaddrinfo(self, host, *args, **kwargs)

    monkeypatch.setattr(loop_class, "sock_connect", counting_connect)
    monkeypatch.setattr(loop_class, "getaddrinfo", counting_lookup)
    return seen


Backend: TypeAlias = LiteLLMModel | OpenAICompatibleModel
BACKENDS = {"litellm": LiteLLMModel, "direct": OpenAICompatibleModel}


@pytest.fixture(params=list(BACKENDS))
def backend(request: pytest.FixtureRequest) -> type[Backend]:
    """Each test runs once per HTTP backend."""
    return BACKENDS[request.param]


def _request(api_base: str, backend: type[Backend] = LiteLLMModel) -> ModelRequest:
    prefix = "openai/" if backend is LiteLLMModel else ""  # litellm's name for "OpenAI's protocol at api_base"
    return ModelRequest(model=f"{prefix}connect-{next(_names)}", messages=[{"role": "user", "content": "hi"}],
                        api_base=api_base, api_key=KEY)  # fmt: skip


def _fail(model: Backend, request: ModelRequest) -> tuple[ProviderUnreachable, float]:
    """Stream ``request`` and return the error it must fail with, and the seconds it took."""

    async def consume() -> None:
        async for _ in model.stream(request):
            pytest.fail("a delta arrived from an endpoint that cannot be reached")

    started = time.monotonic()
    with pytest.raises(ProviderUnreachable) as caught:
        _on_runtime(consume())
    return caught.value, time.monotonic() - started


def _assert_unreachable(error: ProviderUnreachable, reason: str, url: str) -> None:
    assert type(error) is ProviderUnreachable
    assert error.reason == reason
    assert error.status_code is None and error.retry_after is None and error.partial_text == ""
    assert error.url is not None and error.url.startswith(url)
    message = str(error)
    assert url in message and "\n" not in message  # one line that names the URL
    assert KEY not in message and error.__cause__ is not None
    assert is_transient(error)  # the run's own retry policy may retry it


def test_connection_refused_fails_at_once_with_one_attempt(attempts: Attempts, backend: type[Backend]) -> None:
    with refusing_port() as port:
        url = f"http://127.0.0.1:{port}/v1"
        error, seconds = _fail(backend(), _request(url, backend))
    _assert_unreachable(error, "refused", url)
    assert "refused" in str(error)
    assert attempts.connects.count(("127.0.0.1", port)) == 1  # no retry behind our back
    assert seconds < 3.0  # it was 4-5 s (hidden retries, HTTP 500); now one refused connect


def test_dns_failure_fails_at_once_with_one_lookup(attempts: Attempts, backend: type[Backend]) -> None:
    url = "http://nohost.invalid/v1"
    error, seconds = _fail(backend(), _request(url, backend))
    _assert_unreachable(error, "dns", url)
    assert "nohost.invalid" in str(error) and "DNS" in str(error)
    assert attempts.lookups.count("nohost.invalid") == 1
    assert seconds < 10.0


def test_a_host_that_never_answers_fails_at_the_connect_timeout(attempts: Attempts, backend: type[Backend]) -> None:
    with black_hole() as port:
        url = f"http://127.0.0.1:{port}/v1"
        error, seconds = _fail(backend(connect_timeout=0.5), _request(url, backend))
    _assert_unreachable(error, "timeout", url)
    assert "0.5 s connect timeout" in str(error)
    assert attempts.connects.count(("127.0.0.1", port)) == 1
    assert 0.5 <= seconds < 10.0  # waited for the connect timeout, not litellm's 600 s


def test_tls_handshake_failure_is_unreachable_and_sends_nothing(
    model_server: LocalModelServer, backend: type[Backend]
) -> None:
    before = len(model_server.request_records)
    url = model_server.url.replace("http://", "https://")  # the local server speaks plain HTTP
    error, _ = _fail(backend(), _request(url, backend))
    _assert_unreachable(error, "tls", url)
    assert "TLS" in str(error)
    assert len(model_server.request_records) == before  # the server saw no request


def test_the_url_shown_has_no_credentials(backend: type[Backend]) -> None:
    with refusing_port() as port:
        request = _request(f"http://127.0.0.1:{port}/v1?api-key={KEY}&deployment=d1", backend)
        error, _ = _fail(backend(), request)
    assert error.url is not None and KEY not in error.url and KEY not in str(error)
    assert "api-key=***" in error.url and f"127.0.0.1:{port}" in error.url


@pytest.mark.parametrize("model_name", ["m", "litellm/m"])
def test_the_agent_retries_it_visibly_per_retries(attempts: Attempts, model_name: str) -> None:
    with refusing_port() as port:
        agent = Agent(agent_name="Unreachable", model_name=model_name, api_base=f"http://127.0.0.1:{port}/v1",
                      api_key=KEY, print_on=False, retries=RetryPolicy(retries=2, backoff=0.01))  # fmt: skip
        with pytest.raises(RunError) as caught:
            agent.run("task")
    error = caught.value.__cause__
    assert isinstance(error, ProviderUnreachable) and error.reason == "refused"
    assert error.retries == 2  # the run's own retries, counted on the error...
    assert attempts.connects.count(("127.0.0.1", port)) == 3  # ...and each one a single connect


@pytest.mark.parametrize("bad", [0, -1, float("nan"), float("inf"), True, "10"])
def test_a_bad_connect_timeout_is_refused(bad: Any, backend: type[Backend]) -> None:
    with pytest.raises(ValueError, match="connect_timeout must be"):
        backend(connect_timeout=bad)


def test_without_api_base_the_fix_is_about_the_network() -> None:
    """A provider's default endpoint (no api_base): the URL still comes from the request that failed."""
    import httpx

    from rxagents.models._litellm_errors import wrap_error

    url = "https://provider.test/v1/chat/completions"
    sent = httpx.Request("POST", url, headers={"Authorization": f"Bearer {KEY}"})
    failure = httpx.ConnectError("Cannot connect", request=sent)
    failure.__cause__ = ConnectionRefusedError(111, "Connection refused")
    error = wrap_error(failure, ModelRequest(model="openai/m", messages=[], api_key=KEY))
    assert isinstance(error, ProviderUnreachable) and error.reason == "refused"
    assert error.url == url
    assert "Check the network connection" in str(error) and "api_base" not in str(error)
    assert sent.headers["Authorization"] == "Bearer ***"  # the key is gone from the chain's request too
