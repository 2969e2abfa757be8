"""The HTTP connections of OpenAI-compatible calls, owned by pytest-gpo.

litellm builds the OpenAI SDK clients of ``openai/...`` (and every other OpenAI-compatible
provider) around ``litellm.aclient_session`` when one is set, a documented public setting, and
then never closes it: the session belongs to whoever set it. :func:`install` sets it to
:class:`LoopLocalClient`, an ``httpx.AsyncClient`` that hands every request to a connection pool
of the event loop it runs on, so one process-wide setting is safe for any number of loops.
:func:`close_loop_pool` closes the pool of the running loop: the session's event loop calls it
before it closes, which leaves no socket open (clean under ``-W error::ResourceWarning``)
without reaching into litellm's private client cache, whose keys change between releases.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any

import httpx


class LoopLocalClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` whose connections live in one pool per event loop.

    The OpenAI SDK builds requests on it and sends them with :meth:`send`; each send goes to the
    pool of the running loop, created on first use with httpx's defaults (environment proxies,
    ``SSL_CERT_FILE``, redirects followed as litellm does). A pool never crosses loops, so a
    pytest session and a user's own asyncio code can share the setting.
    """

    def __init__(self) -> None:
        super().__init__(follow_redirects=True)
        self._pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def _pool(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        with self._lock:
            pool = self._pools.get(loop)
            if pool is None or pool.is_closed:
                pool = httpx.AsyncClient(follow_redirects=True)
                self._pools[loop] = pool
        return pool

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        """Send ``request`` through the running loop's pool."""
        return await self._pool().send(request, **kwargs)

    async def close_pool(self) -> bool:
        """Close the running loop's pool; True when there was one to close."""
        loop = asyncio.get_running_loop()
        with self._lock:
            pool = self._pools.pop(loop, None)
        if pool is None:
            return False
        await pool.aclose()
        return True

    def open_pools(self) -> int:
        """How many loops hold an open pool (for tests and diagnostics)."""
        with self._lock:
            return sum(1 for pool in self._pools.values() if not pool.is_closed)


_CLIENT: LoopLocalClient | None = None
_INSTALL_LOCK = threading.Lock()


def install(litellm: Any) -> LoopLocalClient | None:
    """Make pytest-gpo's client litellm's ``aclient_session``, unless the user set their own.

    Returns the installed client, or None when a user's session is in place (then its lifetime
    is theirs, as litellm documents).
    """
    global _CLIENT
    with _INSTALL_LOCK:
        current = getattr(litellm, "aclient_session", None)
        if current is not None and current is not _CLIENT:
            return None
        if _CLIENT is None:
            _CLIENT = LoopLocalClient()
        litellm.aclient_session = _CLIENT
        return _CLIENT


async def close_loop_pool() -> bool:
    """Close the connections pytest-gpo opened on the running loop (none: False)."""
    if _CLIENT is None:
        return False
    return await _CLIENT.close_pool()
