"""Text helpers shared by the simulated models: message text, token counts, seeds, phrases."""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

#: Chat messages as litellm passes them (``role`` and ``content``).
Messages = Sequence[Mapping[str, Any]]


def count_tokens(text: str) -> int:
    """Tokens as the simulated models count them: ``ceil(characters / 4)``."""
    return math.ceil(len(text) / 4)


def content_text(content: Any) -> str:
    """The text of a message's ``content`` (a string, or a list of text parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
        return "\n".join(str(p) for p in parts if p)
    return "" if content is None else str(content)


def seed_of(*parts: object) -> int:
    """A 64-bit seed from any JSON-able parts (stable across runs and machines)."""
    digest = hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode("utf-8"))
    return int.from_bytes(digest.digest()[:8], "big")


def any_match(patterns: Sequence[str], text: str) -> bool:
    """True when one of the regex ``patterns`` occurs in ``text`` (case-insensitive)."""
    return any(re.search(p, text, re.IGNORECASE) for p in patterns)
