"""Atomic file replacement, shared by everything that writes a file a user keeps.

Readers (and a process killed mid-write) see the old file or the new one, never a mix: the
data goes to a temp file in the same directory, is fsynced, then ``os.replace`` d over the
target, and the directory is fsynced so the rename itself survives a crash.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes, *, new_mode: int = 0o644) -> None:
    """Replace ``path`` with ``data``; an existing file keeps its permission bits."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        mode = new_mode
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".gpo-tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text.

    ``backslashreplace``: a lone surrogate (invalid Unicode from a provider) becomes the text
    ``\\ud800``, which is also its JSON escape, instead of failing the whole write.
    """
    atomic_write_bytes(path, text.encode("utf-8", errors="backslashreplace"))


def fsync_dir(directory: Path) -> None:
    """fsync a directory so a rename in it is durable (a no-op where that is impossible)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
