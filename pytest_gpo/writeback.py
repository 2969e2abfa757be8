"""Write improved prompts back to their files: plan, show, apply.

A write goes to the suite's prompt file only, atomically (a temp file in the same directory,
fsync, ``os.replace``, then fsync of the directory), keeping the file's encoding (a UTF-8 BOM),
line endings and trailing newline, and only when the file is byte-identical to what was read
when the run started: a file edited meanwhile is skipped, never clobbered.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pytest_gpo.fsutil import atomic_write_bytes
from pytest_gpo.suites.paths import display

BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class PlannedWrite:
    """One prompt file to rewrite: where, what it held when read, and the new template text."""

    suite: str
    path: Path
    original_sha256: str
    new_text: str


@dataclass(frozen=True)
class WriteOutcome:
    """What happened to one planned write."""

    suite: str
    path: Path
    status: str  # written | dry_run | refused_ci | stale | unchanged | error
    message: str

    @property
    def written(self) -> bool:
        """True when the file now holds the new prompt."""
        return self.status == "written"


def encode_like(original: bytes, new_text: str) -> bytes:
    """Encode ``new_text`` the way ``original`` was: BOM, CRLF or LF, trailing newline."""
    has_bom = original.startswith(BOM)
    body = original[len(BOM) :] if has_bom else original
    crlf = b"\r\n" in body
    text = new_text.replace("\r\n", "\n")
    ends_with_newline = body.endswith(b"\n")
    text = text.rstrip("\n")
    if ends_with_newline:
        text += "\n"
    if crlf:
        text = text.replace("\n", "\r\n")
    data = text.encode("utf-8")
    return BOM + data if has_bom else data


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see :mod:`pytest_gpo.fsutil`)."""
    atomic_write_bytes(path, data)


def apply(
    plans: Iterable[PlannedWrite], *, dry_run: bool, ci: bool, allow_in_ci: bool
) -> list[WriteOutcome]:
    """Apply planned writes under the guards; returns one outcome per plan."""
    outcomes: list[WriteOutcome] = []
    for plan in plans:
        outcomes.append(_apply_one(plan, dry_run=dry_run, ci=ci, allow_in_ci=allow_in_ci))
    return outcomes


def _apply_one(plan: PlannedWrite, *, dry_run: bool, ci: bool, allow_in_ci: bool) -> WriteOutcome:
    def out(status: str, message: str) -> WriteOutcome:
        return WriteOutcome(plan.suite, plan.path, status, message.replace(full, shown))

    full, shown = str(plan.path), display(plan.path)

    try:
        current = plan.path.read_bytes()
    except OSError as exc:
        return out("error", f"cannot read {plan.path}: {exc}")
    if hashlib.sha256(current).hexdigest() != plan.original_sha256:
        return out(
            "stale",
            f"{plan.path} changed while the optimizer ran: not written "
            "(re-run --gpo-optimize to optimize the new content)",
        )
    try:
        data = encode_like(current, plan.new_text)
    except UnicodeEncodeError as exc:
        return out(
            "error",
            f"{plan.path} not written: the new prompt is not valid text "
            f"({exc.reason} at character {exc.start}); the old file is intact",
        )
    if data == current:
        return out("unchanged", f"{plan.path} already holds the optimized prompt")
    if dry_run:
        return out("dry_run", f"{plan.path} would be rewritten (--gpo-dry-run: not written)")
    if ci and not allow_in_ci:
        return out(
            "refused_ci",
            f"{plan.path} not written: CI is set; pass --gpo-optimize=write "
            "to write prompt files in CI",
        )
    try:
        atomic_write(plan.path, data)
    except OSError as exc:
        return out("error", f"cannot write {plan.path}: {exc} (the old file is intact)")
    return out("written", f"{plan.path} rewritten")
