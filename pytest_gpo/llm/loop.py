"""The one asyncio event loop a pytest session runs all its model calls on."""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Coroutine
from types import TracebackType
from typing import Any, TypeVar

from pytest_gpo.llm.types import ModelClient

T = TypeVar("T")


class EventLoopRunner:
    """One asyncio event loop for a whole pytest session, run in a background thread.

    ``run(coro)`` runs a coroutine to completion on that loop from synchronous code (any
    thread but the loop's own). ``close()`` closes the attached client, litellm's cached HTTP
    clients and the loop, leaving no unclosed sockets behind (clean under ``-W error``).
    """

    def __init__(self, client: ModelClient | None = None) -> None:
        #: The client closed by :meth:`close` (anything with ``async aclose()``).
        self.client: Any = client
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._serve, name="pytest-gpo-event-loop", daemon=True
        )
        self._closed = False
        self._thread.start()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The session's event loop."""
        return self._loop

    @property
    def closed(self) -> bool:
        """True once :meth:`close` has been called."""
        return self._closed

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_forever()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the session loop and return its result (or raise its exception)."""
        if self._closed:
            coro.close()
            raise RuntimeError("EventLoopRunner is closed")
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("EventLoopRunner.run() called from its own loop: await instead")
        future = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()
            raise

    def close(self) -> None:
        """Close the client, litellm's HTTP clients for this loop, then the loop itself."""
        if self._closed:
            return
        self._closed = True
        try:
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=60)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=60)
            if not self._loop.is_running():
                self._loop.close()

    def __enter__(self) -> EventLoopRunner:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    async def _shutdown(self) -> None:
        if self.client is not None:
            with contextlib.suppress(Exception):
                await self.client.aclose()
        if "litellm" in sys.modules:
            from pytest_gpo.llm import connections

            await connections.close_loop_pool()
        current = asyncio.current_task()
        others = [task for task in asyncio.all_tasks() if task is not current]
        for task in others:
            task.cancel()
        if others:
            await asyncio.gather(*others, return_exceptions=True)
        await self._loop.shutdown_asyncgens()
        await self._loop.shutdown_default_executor()
