"""A local OpenAI-compatible HTTP server for tests and benchmarks.

It runs an aiohttp application on its own event loop in a background thread, bound to
127.0.0.1 on an ephemeral port, so latency sleeps never hold a thread and 64+ concurrent
connections are cheap. Faults can be scripted (one per upcoming request) or drawn at random,
and the server counts what it saw: requests, peak concurrency, headers, bodies.

    with OpenAIServer(latency=0.05) as server:
        server.script("429", "500")          # the next two requests fail, then normal answers
        ... litellm.acompletion(model="openai/x", api_base=server.base_url, api_key="sk-test")
        assert server.chat_requests == 3
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pytest
from aiohttp import web

Responder = Callable[[dict[str, Any]], str]

#: Bad replies served with HTTP 200: an answer made of nothing, or an error in a 200 body.
REPLY_SHAPES = frozenset(
    {
        "null_content",
        "empty_content",
        "blank_content",
        "tool_calls",
        "content_filter",
        "no_choices",
        "error_body",
    }
)

#: Fault kinds understood by :class:`Fault` and :meth:`OpenAIServer.script`.
FAULT_KINDS = (
    frozenset(
        {
            "ok",
            "429",
            "quota",
            "500",
            "502",
            "503",
            "400",
            "401",
            "403",
            "404",
            "hang",
            "malformed",
            "drop",
        }
    )
    | REPLY_SHAPES
)


@dataclass(frozen=True)
class Fault:
    """One injected fault.

    ``kind`` is an HTTP status (``"429"``, ``"500"``, ``"400"`` ...), ``"hang"`` (sleep past the
    client's timeout), ``"malformed"`` (200 with a truncated JSON body), ``"drop"`` (close the
    connection without answering), ``"quota"`` (OpenAI's 429 ``insufficient_quota``: out of
    credit, no wait helps) or ``"ok"`` (answer normally; useful inside a script).
    The reply shapes of :data:`REPLY_SHAPES` are 200 answers made of nothing: ``"null_content"``
    (``content: null``), ``"empty_content"`` (``""``), ``"blank_content"`` (only whitespace and
    zero-width characters), ``"tool_calls"`` (a tool call and no
    text), ``"content_filter"`` (no text, ``finish_reason: content_filter``), ``"no_choices"``
    (``choices: []``) and ``"error_body"`` (HTTP 200 whose body is an ``error`` object).
    ``retry_after`` is sent as the ``Retry-After`` header of a 429/503 (seconds or an HTTP date).
    """

    kind: str
    retry_after: float | str | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault {self.kind!r}; expected one of {sorted(FAULT_KINDS)}")


def default_responder(body: dict[str, Any]) -> str:
    """A deterministic answer derived from the last user message."""
    last = ""
    for message in body.get("messages", []):
        if message.get("role") == "user":
            content = message.get("content", "")
            last = content if isinstance(content, str) else json.dumps(content)
    return f"echo: {last}"


def _words(text: str) -> int:
    return len(text.split())


class OpenAIServer:
    """An OpenAI-compatible chat/embeddings server on 127.0.0.1 (see the module docstring).

    Options: ``responder(request_json) -> str`` makes each choice's text (default: echo the
    last user message); ``latency`` + uniform ``jitter`` seconds before each answer; ``faults``
    a script of faults for the next requests (see :meth:`script`); ``fault_rates`` maps a fault
    kind to the probability of serving it; ``retry_after`` is the default ``Retry-After`` of
    429/503; ``rate_limit`` answers 429 past that many requests in any 1 s window; ``hang``
    faults sleep ``hang_seconds`` (released at stop); ``max_choices`` caps and
    ``extra_choices`` pads the number of choices returned; ``reject_n`` answers 400 to n > 1;
    ``leak_key_in_errors`` echoes the Authorization header in error messages; ``api_keys``
    (when given) are the only keys accepted: any other key, or none, is answered 401 (served
    as fault ``"401"``, without consuming the script). ``prompt_tokens(request_json)`` sets
    the prompt tokens a reply reports (default: the words of the messages).

    Counters: ``requests``, ``chat_requests``, ``embedding_requests``, ``peak_concurrency``,
    ``headers_seen``, ``bodies``, ``arrivals`` (monotonic times) and ``faults_served``.
    """

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        latency: float = 0.0,
        jitter: float = 0.0,
        faults: Iterable[str | Fault] = (),
        fault_rates: Mapping[str, float] | None = None,
        retry_after: float | str | None = 1,
        rate_limit: int | None = None,
        hang_seconds: float = 30.0,
        max_choices: int | None = None,
        extra_choices: int = 0,
        reject_n: bool = False,
        leak_key_in_errors: bool = False,
        api_keys: Iterable[str] | None = None,
        seed: int = 0,
        prompt_tokens: Callable[[dict[str, Any]], int] | None = None,
    ) -> None:
        self.responder: Responder = responder or default_responder
        self.latency = latency
        self.jitter = jitter
        self.fault_rates: dict[str, float] = dict(fault_rates or {})
        for kind in self.fault_rates:
            Fault(kind)
        self.retry_after = retry_after
        self.rate_limit = rate_limit
        self.hang_seconds = hang_seconds
        self.max_choices = max_choices
        self.extra_choices = extra_choices
        self.reject_n = reject_n
        self.leak_key_in_errors = leak_key_in_errors
        self.api_keys = None if api_keys is None else frozenset(api_keys)
        self.prompt_tokens = prompt_tokens
        self._random = random.Random(seed)
        self._lock = threading.Lock()
        self._script: deque[Fault] = deque()
        self._window: deque[float] = deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self._stopping: asyncio.Event | None = None
        self.port = 0
        self.reset_counters()
        self.script(*faults)

    # -- configuration -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, ``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *faults: str | Fault) -> None:
        """Queue faults for the next requests, in order (one per request; ``"ok"`` skips one)."""
        with self._lock:
            for fault in faults:
                self._script.append(fault if isinstance(fault, Fault) else Fault(fault))

    def reset_counters(self) -> None:
        """Forget every request seen so far (the fault script is kept)."""
        with getattr(self, "_lock", threading.Lock()):
            self.requests = 0
            self.chat_requests = 0
            self.embedding_requests = 0
            self.concurrent = 0
            self.peak_concurrency = 0
            self.headers_seen: list[dict[str, str]] = []
            self.bodies: list[dict[str, Any]] = []
            self.arrivals: list[float] = []
            self.faults_served: list[str] = []

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> OpenAIServer:
        """Start the server thread and wait until the port is listening."""
        if self._thread is not None:
            return self
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._serve, args=(loop,), name="openai-server", daemon=True
        )
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._astart(), loop).result(timeout=10)
        return self

    def stop(self) -> None:
        """Release hanging requests, close every connection, stop the thread and the loop."""
        loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._astop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
        self._loop = None
        self._thread = None

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @staticmethod
    def _serve(loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        loop.run_forever()
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())

    async def _astart(self) -> None:
        self._stopping = asyncio.Event()
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/embeddings", self._embeddings)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", 0))
        self.port = sock.getsockname()[1]
        site = web.SockSite(self._runner, sock, backlog=1024)
        await site.start()

    async def _astop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    # -- request handling ----------------------------------------------------------------------

    def _next_fault(self, now: float) -> Fault | None:
        with self._lock:
            if self._script:
                fault = self._script.popleft()
                return None if fault.kind == "ok" else fault
            if self.rate_limit is not None:
                while self._window and now - self._window[0] >= 1.0:
                    self._window.popleft()
                if len(self._window) >= self.rate_limit:
                    wait = max(1, int(1.0 - (now - self._window[0]) + 0.999))
                    return Fault("429", retry_after=wait)
                self._window.append(now)
            for kind, rate in self.fault_rates.items():
                if self._random.random() < rate:
                    return Fault(kind)
        return None

    async def _enter(self, request: web.Request) -> tuple[dict[str, Any] | None, Fault | None]:
        now = time.monotonic()
        raw = await request.read()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        with self._lock:
            self.requests += 1
            self.concurrent += 1
            self.peak_concurrency = max(self.peak_concurrency, self.concurrent)
            self.headers_seen.append(dict(request.headers))
            self.bodies.append(body if isinstance(body, dict) else {"_raw": raw.decode("latin-1")})
            self.arrivals.append(now)
        fault = Fault("401") if self._key_refused(request) else self._next_fault(now)
        with self._lock:
            self.faults_served.append(fault.kind if fault else "ok")
        return (body if isinstance(body, dict) else None), fault

    def _key_refused(self, request: web.Request) -> bool:
        if self.api_keys is None:
            return False
        sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        return sent not in self.api_keys

    async def _delay(self) -> None:
        delay = self.latency + (self._random.uniform(0, self.jitter) if self.jitter else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)

    def _leave(self) -> None:
        with self._lock:
            self.concurrent -= 1

    async def _fault_response(
        self, request: web.Request, fault: Fault, body: dict[str, Any] | None = None
    ) -> web.StreamResponse:
        if fault.kind == "hang":
            assert self._stopping is not None
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.hang_seconds)
            return _error(503, "server stopped while hanging")
        if fault.kind == "drop":
            if request.transport is not None:
                request.transport.abort()
            # Nothing can be written to an aborted transport; tell aiohttp to drop the handler.
            raise asyncio.CancelledError
        if fault.kind == "malformed":
            return web.Response(
                status=200,
                text='{"id": "chatcmpl-broken", "choices": [{"mess',
                content_type="application/json",
            )
        if fault.kind in REPLY_SHAPES:
            return _bad_reply(fault.kind, body)
        if fault.kind == "quota":
            return _error(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                code="insufficient_quota",
            )
        status = int(fault.kind)
        headers: dict[str, str] = {}
        retry_after = fault.retry_after if fault.retry_after is not None else self.retry_after
        if status in (429, 503) and retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        messages = {
            429: ("Rate limit reached for requests", "rate_limit_exceeded"),
            500: ("The server had an error while processing your request", "server_error"),
            502: ("Bad gateway", "server_error"),
            503: ("The server is overloaded", "server_error"),
            400: ("Invalid request: injected bad request", "invalid_request_error"),
            401: ("Incorrect API key provided", "invalid_api_key"),
            403: ("You are not allowed to use this model", "permission_denied"),
            404: ("The model does not exist", "model_not_found"),
        }
        message, code = messages[status]
        if self.leak_key_in_errors:
            # Some providers echo the key they were given; clients must not repeat it.
            message += f" (you sent {request.headers.get('Authorization', 'no key')})"
        return _error(status, message, code=code, headers=headers)

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, fault = await self._enter(request)
        try:
            with self._lock:
                self.chat_requests += 1
            await self._delay()
            if fault is not None:
                return await self._fault_response(request, fault, body)
            if body is None:
                return _error(400, "request body is not JSON", code="invalid_request_error")
            n = int(body.get("n") or 1)
            if n > 1 and self.reject_n:
                return _error(400, "n > 1 is not supported by this model", code="invalid_n")
            count = n if self.max_choices is None else max(1, min(n, self.max_choices))
            count += self.extra_choices
            texts = [self.responder(body) for _ in range(count)]
            prompt_tokens = max(
                1, sum(_words(str(m.get("content", ""))) for m in body.get("messages", []))
            )
            if self.prompt_tokens is not None:
                prompt_tokens = self.prompt_tokens(body)
            completion_tokens = sum(_words(t) for t in texts)
            payload = {
                "id": f"chatcmpl-{self.requests}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model", "unknown"),
                "choices": [
                    {
                        "index": i,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": "stop",
                    }
                    for i, text in enumerate(texts)
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            }
            return web.json_response(payload)
        finally:
            self._leave()

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        body, fault = await self._enter(request)
        try:
            with self._lock:
                self.embedding_requests += 1
            await self._delay()
            if fault is not None:
                return await self._fault_response(request, fault)
            if body is None:
                return _error(400, "request body is not JSON", code="invalid_request_error")
            inputs = body.get("input", [])
            items = [inputs] if isinstance(inputs, str) else list(inputs)
            data = [
                {"object": "embedding", "index": i, "embedding": _vector(str(text))}
                for i, text in enumerate(items)
            ]
            tokens = sum(_words(str(text)) for text in items)
            return web.json_response(
                {
                    "object": "list",
                    "data": data,
                    "model": body.get("model", "unknown"),
                    "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
                }
            )
        finally:
            self._leave()


def _bad_reply(shape: str, body: dict[str, Any] | None) -> web.Response:
    """A 200 answer of one of :data:`REPLY_SHAPES` (one choice per requested ``n``)."""
    if shape == "error_body":
        # no code: litellm reads this as a 422, the case a client must not take as final
        error = {"message": "upstream model overloaded", "type": "server_error"}
        return web.json_response({"error": error})
    n = int((body or {}).get("n") or 1)
    message: dict[str, Any] = {"role": "assistant", "content": None}
    finish = "stop"
    if shape == "empty_content":
        message["content"] = ""
    elif shape == "blank_content":  # whitespace and characters that show nothing
        message["content"] = "  \n\t\u200b\ufeff "
    elif shape == "tool_calls":
        finish = "tool_calls"
        message["tool_calls"] = [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"q": "x"}'},
            }
        ]
    elif shape == "content_filter":
        finish = "content_filter"
    choices = [{"index": i, "message": dict(message), "finish_reason": finish} for i in range(n)]
    payload = {
        "id": "chatcmpl-bad",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": (body or {}).get("model", "unknown"),
        "choices": [] if shape == "no_choices" else choices,
        "usage": {"prompt_tokens": 3, "completion_tokens": 0, "total_tokens": 3},
    }
    return web.json_response(payload)


def _vector(text: str, dim: int = 8) -> list[float]:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    raw = [b - 127.5 for b in digest[:dim]]
    norm = sum(x * x for x in raw) ** 0.5 or 1.0
    return [x / norm for x in raw]


def _error(
    status: int,
    message: str,
    *,
    code: str = "error",
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    body = {"error": {"message": message, "type": code, "param": None, "code": code}}
    return web.json_response(body, status=status, headers=dict(headers or {}))


@pytest.fixture
def openai_server() -> Iterator[OpenAIServer]:
    """A started :class:`OpenAIServer` with default settings, stopped after the test."""
    with OpenAIServer() as server:
        yield server
