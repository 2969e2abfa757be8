"""Checkpoints of an optimization run, so an interrupted run resumes from its last step.

One JSON file per run directory, replaced atomically after every completed step (write a
temporary file in the same directory, flush and fsync, then ``os.replace``): a crash leaves
either the old or the new checkpoint, never half of one. A checkpoint whose fingerprint does
not match the run (other prompt, settings, cases or optimizer model) is ignored.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pytest_gpo.fsutil import atomic_write_text
from pytest_gpo.llm.types import canonical_json

CHECKPOINT_NAME = "checkpoint.json"
CHECKPOINT_VERSION = 1


def fingerprint(payload: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of what makes two runs the same run."""
    return hashlib.sha256(canonical_json(dict(payload)).encode("utf-8")).hexdigest()


def checkpoint_path(directory: str | Path) -> Path:
    """The checkpoint file inside a run directory."""
    return Path(directory) / CHECKPOINT_NAME


def save_checkpoint(directory: str | Path, fingerprint_: str, state: Mapping[str, Any]) -> Path:
    """Atomically write ``state`` as the run's checkpoint; returns the file's path."""
    path = checkpoint_path(directory)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"version": CHECKPOINT_VERSION, "fingerprint": fingerprint_, "state": dict(state)}
    text = json.dumps(data, ensure_ascii=False, indent=1, sort_keys=True, allow_nan=False)
    atomic_write_text(path, text)
    return path


def load_checkpoint(directory: str | Path, fingerprint_: str) -> dict[str, Any] | None:
    """The saved state of this run, or ``None`` (no file, unreadable, or another run's)."""
    path = checkpoint_path(directory)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("version") != CHECKPOINT_VERSION
        or data.get("fingerprint") != fingerprint_
        or not isinstance(data.get("state"), dict)
    ):
        return None
    state: dict[str, Any] = data["state"]
    return state
