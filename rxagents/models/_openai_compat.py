"""The direct backend: OpenAI's chat-completions streaming protocol, read straight off the socket.

One streaming ``POST {api_base}/chat/completions`` through the loop's pooled ``aiohttp`` session
(:mod:`rxagents.models._http_pool`), its ``text/event-stream`` body read by :class:`~rxagents.models._sse_reader.
SSEReader` and each ``data:`` event parsed with ``json.loads``. It serves every endpoint that speaks the protocol:
OpenAI, vLLM, llama.cpp, Ollama's ``/v1``, LM Studio, Groq, DeepSeek, Together, OpenRouter, xAI, any ``api_base``.

It yields the same :class:`~rxagents.models.Delta` values as the litellm backend, from each chunk's choices:
``delta.reasoning_content`` (or ``delta.reasoning``) as REASONING, ``delta.content`` as TOKEN, each
``delta.tool_calls`` piece as TOOL_CALL; the last ``usage`` (always asked for, ``stream_options={"include_usage":
true}``) as USAGE and the ``finish_reason`` as FINISH, both at the end. How a stream ends:

* ``data: [DONE]``, or the body's end after a ``finish_reason``: complete (``[DONE]`` without a finish reason
  counts as ``"stop"``, as litellm has it);
* the body's end with no finish reason and no ``[DONE]``: :class:`~rxagents.errors.StreamCutError`;
* complete with nothing in it (no text, reasoning, tool call or usage): :class:`~rxagents.errors.EmptyStreamError`;
* any other failure: the typed errors of :mod:`rxagents.models._openai_compat_errors`. The key is sent in the
  ``Authorization`` header only and never appears in an error or its chain.

Closing the iterator early (``aclose``, or cancelling the task reading it) closes the response's connection
at once rather than returning it to the pool half-read; a stream read to its end returns its connection to the
pool. Requests ask for ``Accept-Encoding: identity`` (a compressed stream would hold tokens back) and
connect within ``connect_timeout``; a silent stream is bounded by the run's own ``first_token_timeout`` and
``stall_timeout``, not by a read timeout here.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from rxagents._validate import MAX_TIMEOUT, check_int, check_seconds
from rxagents.events import EventKind, ToolCallDelta, Usage
from rxagents.models._base import Delta, ModelRequest, stream_end, text_delta
from rxagents.models._http_pool import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_CONNECTIONS,
    loop_session,
    new_session,
    proxy_for,
)
from rxagents.models._openai_compat_errors import malformed, status_error, stream_error, transport_error
from rxagents.models._sse_reader import SSEReader

__all__ = ["OPENAI_API_BASE", "OpenAICompatibleModel"]

#: OpenAI's own endpoint: where a request without ``api_base`` goes.
OPENAI_API_BASE = "https://api.openai.com/v1"
_DONE = b"[DONE]"
_TOKEN, _REASONING, _TOOL_CALL = EventKind.TOKEN, EventKind.REASONING, EventKind.TOOL_CALL


class OpenAICompatibleModel:
    """Streams chat completions from an OpenAI-compatible endpoint (the request's ``api_base``, else OpenAI's).

    ``connect_timeout``: seconds to connect (TCP and TLS) before :class:`~rxagents.errors.ProviderUnreachable`.
    ``max_connections``: the size of the event loop's connection pool, shared by every run on that loop
    (default 1,000; a request beyond it waits for a free connection). ``name`` is ``"direct"``.
    """

    def __init__(
        self, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT, max_connections: int = DEFAULT_MAX_CONNECTIONS
    ) -> None:
        self.connect_timeout = check_seconds("connect_timeout", connect_timeout, maximum=MAX_TIMEOUT)
        self.max_connections = check_int("max_connections", max_connections, maximum=1_000_000)
        self._timeout: Any = None  # aiohttp.ClientTimeout, made on first use (aiohttp is imported lazily)

    @property
    def name(self) -> str:
        return "direct"

    def __repr__(self) -> str:
        options = []
        if self.connect_timeout != DEFAULT_CONNECT_TIMEOUT:
            options.append(f"connect_timeout={self.connect_timeout:g}")
        if self.max_connections != DEFAULT_MAX_CONNECTIONS:
            options.append(f"max_connections={self.max_connections}")
        return f"OpenAICompatibleModel({', '.join(options)})"

    def stream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        return self._stream(request)

    def _body(self, request: ModelRequest, host: str) -> bytes:
        body: dict[str, Any] = {
            "model": request.model,
            "messages": [dict(message) for message in request.messages],
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.temperature is not None:
            body["temperature"] = request.temperature
        if request.max_tokens is not None:
            # OpenAI's own API calls it max_completion_tokens (its reasoning models refuse max_tokens);
            # other servers know max_tokens.
            body["max_completion_tokens" if host == "api.openai.com" else "max_tokens"] = request.max_tokens
        body.update(request.extra)
        return json.dumps(body, ensure_ascii=False).encode()

    async def _stream(self, request: ModelRequest) -> AsyncIterator[Delta]:
        import aiohttp

        url = _endpoint_url(request.api_base or OPENAI_API_BASE)
        host = urlsplit(url).hostname or ""
        headers = {
            "Content-Type": "application/json",
            "Accept": "text/event-stream",
            "Accept-Encoding": "identity",
        }
        if request.api_key:
            headers["Authorization"] = f"Bearer {request.api_key}"
        if self._timeout is None:
            self._timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout)
        session = await loop_session(self.max_connections)
        own = session is None
        if session is None:  # a loop that cannot close a pooled session at shutdown: one for this request
            session = new_session(self.max_connections)
        response: aiohttp.ClientResponse | None = None
        released = False
        try:
            try:
                response = await session.post(
                    url,
                    data=self._body(request, host),
                    headers=headers,
                    timeout=self._timeout,
                    proxy=proxy_for(url, host),
                    allow_redirects=False,  # a redirected POST turns into a GET, and would carry the key elsewhere
                )
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                raise transport_error(exc, request, url, self.connect_timeout, started=False) from exc
            if response.status != 200:
                raise await status_error(response, request, url)
            kind = response.headers.get("Content-Type", "")
            if kind.startswith("application/json"):
                raise malformed(request, "a JSON document, not an event stream: the server ignored stream=true")
            content = response.content
            reader = SSEReader()
            loads = _loads
            usage: Usage | None = None
            finish: str | None = None
            produced = False  # text, reasoning or a tool call arrived
            done = False
            while not done:
                try:
                    chunk = await content.readany()
                except (aiohttp.ClientError, OSError) as exc:
                    raise transport_error(exc, request, url, self.connect_timeout, started=True) from exc
                if not chunk:
                    break
                for data in reader.feed(chunk):
                    if data == _DONE:
                        done = True
                        break
                    try:
                        obj = loads(data.decode())
                    except UnicodeDecodeError as exc:
                        raise malformed(request, "invalid UTF-8", exc) from exc
                    except ValueError as exc:
                        raise malformed(request, "invalid JSON", exc) from exc
                    if type(obj) is not dict:
                        raise malformed(request, f"a JSON {type(obj).__name__}, not a chat-completion chunk")
                    choices = obj.get("choices")
                    if choices:
                        if type(choices) is not list:
                            raise malformed(request, "'choices' is not a list")
                        for choice in choices:
                            if type(choice) is not dict:
                                raise malformed(request, "a choice is not an object")
                            delta = choice.get("delta")
                            if delta:
                                if type(delta) is not dict:
                                    raise malformed(request, "'delta' is not an object")
                                reasoning = delta.get("reasoning_content") or delta.get("reasoning")
                                if reasoning:
                                    if type(reasoning) is not str:
                                        raise malformed(request, "reasoning that is not a string")
                                    produced = True
                                    yield text_delta(_REASONING, reasoning)
                                text = delta.get("content")
                                if text:
                                    if type(text) is not str:
                                        raise malformed(request, "'content' that is not a string")
                                    produced = True
                                    yield text_delta(_TOKEN, text)
                                calls = delta.get("tool_calls")
                                if calls:
                                    for call in _tool_calls(calls, request):
                                        produced = True
                                        yield Delta(_TOOL_CALL, tool_call=call)
                            reason = choice.get("finish_reason")
                            if reason:
                                finish = str(reason)
                    elif obj.get("error"):
                        raise stream_error(obj["error"], request)
                    counts = obj.get("usage")
                    if counts:
                        usage = _usage(counts, request) or usage
            reader.close()
            if done:
                finish = finish or "stop"
                if _drained(content):  # the body's end already arrived: the connection can be reused
                    response.release()
                    released = True
            else:
                response.release()  # the body ended cleanly
                released = True
            ends = stream_end(request.model, finish, produced, usage, cut="a finish_reason or [DONE]", empty="its end")
            for delta in ends:
                yield delta
        finally:
            if response is not None and not released:
                response.close()  # closes the connection: never back to the pool half-read
            if own:
                await session.close()


_scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]  # set in __init__, not in typeshed


def _loads(text: str) -> Any:
    """``json.loads(text)``, a step shorter for the usual chunk (one JSON value, nothing around it): the decoder's
    scanner at once, skipping ``loads``' wrapper and its two whitespace matches. Anything else (whitespace around
    the value, data after it, a byte-order mark, nothing to scan) goes through ``json.loads``, for its exact
    value or error."""
    try:
        obj, end = _scan(text, 0)
    except StopIteration:
        return json.loads(text)
    if end != len(text):
        return json.loads(text)
    return obj


def _endpoint_url(api_base: str) -> str:
    """``{api_base}/chat/completions``; a query string in ``api_base`` stays at the end."""
    parts = urlsplit(api_base)
    return urlunsplit(parts._replace(path=parts.path.rstrip("/") + "/chat/completions"))


def _drained(content: Any) -> bool:
    """Whether the body has ended, once what is buffered (after ``[DONE]``: ignored) is dropped."""
    try:
        content.read_nowait()
    except Exception:  # the connection failed after [DONE]: the answer is whole, the connection is not reusable
        return False
    return bool(content.is_eof())


def _tool_calls(calls: object, request: ModelRequest) -> list[ToolCallDelta]:
    if type(calls) is not list:
        raise malformed(request, "'tool_calls' is not a list")
    out = []
    for call in calls:
        function = call.get("function") if type(call) is dict else None
        if type(call) is not dict or not (function is None or type(function) is dict):
            raise malformed(request, "a tool call that is not an object")
        fn: dict[str, Any] = function or {}
        index, id_, name, arguments = call.get("index") or 0, call.get("id"), fn.get("name"), fn.get("arguments")
        if (
            type(index) is not int
            or not (id_ is None or type(id_) is str)
            or not (name is None or type(name) is str)
            or not (arguments is None or type(arguments) is str)
        ):
            raise malformed(request, "a tool call with a field of the wrong type")
        out.append(ToolCallDelta(index=index, id=id_, name=name, arguments=arguments or ""))
    return out


def _usage(counts: object, request: ModelRequest) -> Usage | None:
    if type(counts) is not dict:
        raise malformed(request, "'usage' is not an object")
    total = counts.get("total_tokens")
    if total is None:
        return None
    values = (counts.get("prompt_tokens") or 0, counts.get("completion_tokens") or 0, total)
    if not all(type(value) is int for value in values):
        raise malformed(request, "usage counts that are not integers")
    return Usage(*values)
