"""Write-back: encoding kept, atomic replace, stale-file guard, CI policy, dry run."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from pytest_gpo import fsutil
from pytest_gpo.writeback import PlannedWrite, apply, atomic_write, encode_like


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("original", "new", "expected"),
    [
        (b"old\n", "new text", b"new text\n"),
        (b"old", "new text\n", b"new text"),
        (b"a\r\nb\r\n", "x\ny", b"x\r\ny\r\n"),
        (b"\xef\xbb\xbfold\n", "neu \u00fc", b"\xef\xbb\xbfneu \xc3\xbc\n"),
        (b"old\n\n", "new\n\n\n", b"new\n"),
    ],
)
def test_encode_like_keeps_bom_line_endings_and_trailing_newline(
    original: bytes, new: str, expected: bytes
) -> None:
    assert encode_like(original, new) == expected


def test_atomic_write_replaces_and_keeps_mode(tmp_path: Path) -> None:
    target = tmp_path / "p.txt"
    target.write_bytes(b"old\n")
    os.chmod(target, 0o640)
    atomic_write(target, b"new\n")
    assert target.read_bytes() == b"new\n"
    assert (target.stat().st_mode & 0o777) == 0o640
    assert [p.name for p in tmp_path.iterdir()] == ["p.txt"]


def test_atomic_write_failure_leaves_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "p.txt"
    target.write_bytes(b"old\n")

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(fsutil.os, "replace", broken_replace)
    with pytest.raises(OSError):
        atomic_write(target, b"new\n")
    assert target.read_bytes() == b"old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["p.txt"]


def _plan(path: Path, original: bytes, new: str = "better prompt") -> PlannedWrite:
    return PlannedWrite("s", path, sha(original), new)


def test_apply_writes_when_unchanged_since_read(tmp_path: Path) -> None:
    target = tmp_path / "p.txt"
    target.write_bytes(b"old\n")
    [out] = apply([_plan(target, b"old\n")], dry_run=False, ci=False, allow_in_ci=False)
    assert out.status == "written" and target.read_bytes() == b"better prompt\n"


def test_apply_skips_a_file_edited_meanwhile(tmp_path: Path) -> None:
    target = tmp_path / "p.txt"
    target.write_bytes(b"edited by a human\n")
    [out] = apply([_plan(target, b"old\n")], dry_run=False, ci=False, allow_in_ci=False)
    assert out.status == "stale" and "changed while the optimizer ran" in out.message
    assert target.read_bytes() == b"edited by a human\n"


def test_apply_dry_run_and_ci_policy(tmp_path: Path) -> None:
    target = tmp_path / "p.txt"
    target.write_bytes(b"old\n")
    [dry] = apply([_plan(target, b"old\n")], dry_run=True, ci=False, allow_in_ci=False)
    [ci] = apply([_plan(target, b"old\n")], dry_run=False, ci=True, allow_in_ci=False)
    assert dry.status == "dry_run" and ci.status == "refused_ci"
    assert "--gpo-optimize=write" in ci.message
    assert target.read_bytes() == b"old\n"
    [forced] = apply([_plan(target, b"old\n")], dry_run=False, ci=True, allow_in_ci=True)
    assert forced.status == "written"


def test_apply_reports_unchanged(tmp_path: Path) -> None:
    target = tmp_path / "p.txt"
    target.write_bytes(b"same\n")
    [out] = apply([_plan(target, b"same\n", "same")], dry_run=False, ci=False, allow_in_ci=False)
    assert out.status == "unchanged"


def test_apply_missing_file_is_an_error_outcome(tmp_path: Path) -> None:
    [out] = apply([_plan(tmp_path / "gone.txt", b"x")], dry_run=False, ci=False, allow_in_ci=False)
    assert out.status == "error" and "cannot read" in out.message
