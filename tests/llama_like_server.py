"""A local server that behaves like llama.cpp's OpenAI-compatible server, for tests.

What llama-cpp-python 0.3.36's server does that a hosted API does not (seen on the real one,
``tests/test_llama_server.py``): it answers one request at a time; it ignores ``n`` (one
choice, whatever was asked); it has no default output limit, so a weak model can ramble for
thousands of tokens; and it keeps generating an answer after the client timed out and went
away, so the next request waits behind the abandoned one.

    with LlamaLikeServer(tokens_per_second=200, answer_tokens=None) as server:
        ...  # every answer rambles until max_tokens (or ``runaway_tokens``)
        assert server.abandoned == 1  # one generation finished after its client left
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from aiohttp import web
from openai_server import OpenAIServer, Responder


class LlamaLikeServer(OpenAIServer):
    """:class:`~openai_server.OpenAIServer` answering like llama.cpp (see the module docstring).

    ``tokens_per_second`` is the generation speed (one word is one token); ``answer_tokens``
    is where an answer ends on its own (``None``: it never does, it runs until ``max_tokens``
    or ``runaway_tokens``). The first words of an answer are the responder's text.

    Counters besides the base class's: ``generations`` (started), ``completed`` (finished),
    ``abandoned`` (finished after the client had gone), ``generated_tokens`` and
    ``peak_generating`` (at most 1: one slot).
    """

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        tokens_per_second: float = 500.0,
        answer_tokens: int | None = 8,
        runaway_tokens: int = 20_000,
    ) -> None:
        super().__init__(responder=responder)
        self.tokens_per_second = tokens_per_second
        self.answer_tokens = answer_tokens
        self.runaway_tokens = runaway_tokens
        self.generations = 0
        self.completed = 0
        self.abandoned = 0
        self.generated_tokens = 0
        self.generating = 0
        self.peak_generating = 0
        self._slot: asyncio.Lock | None = None
        self._jobs: set[asyncio.Task[dict[str, Any]]] = set()

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        body, _ = await self._enter(request)
        try:
            with self._lock:
                self.chat_requests += 1
            if body is None:
                return web.json_response({"error": {"message": "not JSON"}}, status=400)
            # The generation is not tied to the connection: like llama.cpp, it runs to its
            # end even when the client times out and closes the connection.
            job = asyncio.ensure_future(self._generate(body, request))
            self._jobs.add(job)
            job.add_done_callback(self._jobs.discard)
            payload = await asyncio.shield(job)
            return web.json_response(payload)
        finally:
            self._leave()

    async def _generate(self, body: dict[str, Any], request: web.Request) -> dict[str, Any]:
        if self._slot is None:
            self._slot = asyncio.Lock()
        async with self._slot:
            with self._lock:
                self.generations += 1
                self.generating += 1
                self.peak_generating = max(self.peak_generating, self.generating)
            try:
                words = self.responder(body).split() or ["ok"]
                natural = self.answer_tokens if self.answer_tokens is not None else None
                limit = body.get("max_tokens") or body.get("max_completion_tokens")
                cap = int(limit) if isinstance(limit, int) and limit > 0 else None
                ends = natural if natural is not None else self.runaway_tokens
                count = min(ends, cap) if cap is not None else ends
                cut = cap is not None and cap < ends
                await asyncio.sleep(count / self.tokens_per_second)
                text_words = [words[i] if i < len(words) else f"w{i}" for i in range(count)]
            finally:
                with self._lock:
                    self.generating -= 1
            with self._lock:
                self.completed += 1
                self.generated_tokens += count
                transport = request.transport
                if transport is None or transport.is_closing():
                    self.abandoned += 1
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body["messages"])
        return {
            "id": f"chatcmpl-llama-{self.generations}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model", "unknown"),
            # n is ignored: one choice, whatever was asked
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": " ".join(text_words)},
                    "finish_reason": "length" if cut else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": count,
                "total_tokens": prompt_tokens + count,
            },
        }

    async def _astop(self) -> None:
        for job in list(self._jobs):
            job.cancel()
        await super()._astop()

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Wait until no generation runs (abandoned ones included); False on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                busy = self.generations - self.completed
            if busy == 0 and not self._jobs:
                return True
            time.sleep(0.02)
        return False
