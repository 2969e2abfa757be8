"""Reading ``--gpo-optimizer-params`` / ``gpo_optimizer_params`` into a parameter mapping."""

from __future__ import annotations

import json
from typing import Any


def parse_param_mapping(text: str) -> dict[str, Any]:
    """``{"max_tokens": 1024}`` (a JSON object) or ``max_tokens=1024,temperature=0.7``.

    In the ``KEY=VALUE`` form, pairs are separated by commas or line breaks and each value is
    read as JSON when it can be (``1024``, ``0.7``, ``true``), else kept as text.
    """
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not a JSON object: {exc}") from None
        if not isinstance(value, dict):
            raise ValueError("must be a JSON object")
        return value
    out: dict[str, Any] = {}
    for item in filter(None, (p.strip() for p in stripped.replace("\n", ",").split(","))):
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected KEY=VALUE, got {item!r}")
        try:
            out[key.strip()] = json.loads(raw.strip())
        except json.JSONDecodeError:
            out[key.strip()] = raw.strip()
    return out
