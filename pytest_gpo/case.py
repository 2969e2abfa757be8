"""A fixture case: the variables a prompt is rendered with, and what a good answer looks like."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_gpo.calls import canonical_json


@dataclass(frozen=True)
class Case:
    """One case of a suite.

    ``id`` is stable across runs: given in the data, or derived from the content (vars and
    expected), so results and baselines can be compared run to run. ``source`` says where the
    case was read (``cases.jsonl:12``) for error messages.
    """

    id: str
    vars: Mapping[str, Any]
    expected: Any = None
    has_expected: bool = False
    source: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)


def derive_case_id(vars: Mapping[str, Any], expected: Any, has_expected: bool) -> str:
    """A content-derived id: ``c-`` + 10 hex digits of the sha256 of vars and expected."""
    payload = {"vars": dict(vars), "expected": expected if has_expected else None}
    digest = hashlib.sha256(canonical_json(payload).encode("utf-8")).hexdigest()
    return "c-" + digest[:10]
