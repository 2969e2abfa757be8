"""The output limit sent when a request sets none, and which cached answers it keeps valid.

A server without a default output limit (llama.cpp's OpenAI-compatible server) lets a weak
model ramble: one answer ran 8,105 tokens in 379 s. So every request that sets neither
``max_tokens`` nor ``max_completion_tokens`` is sent with ``gpo_default_max_tokens`` (the
plugin's default: :data:`DEFAULT_MAX_TOKENS`; 0 turns it off).

The default is a safety limit, not part of what was asked, so it stays out of the cache key
(adding it would turn every committed cache into misses). That is exact for an answer that
ended on its own: any limit above its length gives the same answer. An answer *cut* at the
default is stored with the limit that cut it and served again only under that same limit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pytest_gpo.llm.types import Request

#: Output tokens sent when a request sets no limit (``gpo_default_max_tokens``).
DEFAULT_MAX_TOKENS = 1024

#: Request params that set an output limit: when a suite sets one, no default is added.
LIMIT_PARAMS = ("max_tokens", "max_completion_tokens")


def default_limit(request: Request, default: int | None) -> int | None:
    """The limit to add to ``request`` (None: it sets its own, or there is no default)."""
    if not default or any(request.params.get(name) is not None for name in LIMIT_PARAMS):
        return None
    return default


def limit_kwargs(request: Request, default: int | None) -> dict[str, Any]:
    """``{"max_tokens": default}`` when the default applies to ``request``, else ``{}``."""
    limit = default_limit(request, default)
    return {} if limit is None else {"max_tokens": limit}


def entry_fields(cut: Sequence[bool], request: Request, default: int | None) -> dict[str, Any]:
    """What a cache entry records about cut answers: ``cut`` flags, and the default that cut."""
    if not any(cut):
        return {}
    fields: dict[str, Any] = {"cut": [bool(c) for c in cut]}
    limit = default_limit(request, default)
    if limit is not None:
        fields["cut_limit"] = limit
    return fields


def entry_usable(entry: Mapping[str, Any], request: Request, default: int | None) -> bool:
    """Whether a cached answer holds under the limit this request would be sent with now.

    An answer cut at the default limit is usable only under that same limit; any other entry
    (not cut, or cut at a limit that is part of the request and so of its key) always is.
    """
    limit = entry.get("cut_limit")
    return limit is None or limit == default_limit(request, default)
