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


def read_checkpoint(
    directory: str | Path, fingerprint_: str
) -> tuple[dict[str, Any] | None, str | None]:
    """``(state, problem)``: the saved state of this run, or ``None`` with why it was not used.

    No file, or another run's checkpoint (its fingerprint differs), is ``(None, None)``: a
    fresh start, nothing to say. A file that is not a checkpoint of this version (unreadable,
    not JSON, wrong fields or version) is ``(None, "why")`` so the caller can say it started
    afresh.
    """
    path = checkpoint_path(directory)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as exc:
        return None, f"cannot be read ({_first_line(exc)})"
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        return None, f"is not JSON ({_first_line(exc)})"
    if not isinstance(data, dict):
        return None, f"is not a checkpoint (a JSON {type(data).__name__}, not an object)"
    if data.get("version") != CHECKPOINT_VERSION:
        return None, f"has version {data.get('version')!r}, not {CHECKPOINT_VERSION}"
    if data.get("fingerprint") != fingerprint_:
        return None, None
    state = data.get("state")
    if not isinstance(state, dict):
        return None, "has no 'state' object"
    return state, None


def load_checkpoint(directory: str | Path, fingerprint_: str) -> dict[str, Any] | None:
    """The saved state of this run, or ``None`` (no file, unreadable, or another run's)."""
    return read_checkpoint(directory, fingerprint_)[0]


def _first_line(exc: BaseException, limit: int = 200) -> str:
    """An exception as one short line (a parser's message can run to a thousand lines)."""
    detail = str(exc).strip()
    text = type(exc).__name__ + (": " + detail.splitlines()[0] if detail else "")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def ignored_message(directory: str | Path, problem: str) -> str:
    """The one warning a run gives when its checkpoint cannot be used."""
    return f"checkpoint {checkpoint_path(directory)} ignored: {problem}; starting afresh"


def bad_state(exc: BaseException) -> str:
    """Why a checkpoint's state could not be restored (its fields have the wrong types)."""
    return "its state does not fit this version (" + _first_line(exc) + ")"
