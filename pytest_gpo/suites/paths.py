"""Paths: which files are suites, where their paths point, how paths are shown (import-light)."""

from __future__ import annotations

import os
from pathlib import Path

from pytest_gpo.errors import SuiteError


def display(path: str | Path) -> str:
    """``suites/router.gpo.yaml`` rather than ``/home/me/project/suites/router.gpo.yaml``."""
    text = os.path.normpath(str(path))
    try:
        rel = os.path.relpath(text)
    except ValueError:  # another drive on Windows
        return text
    return text if rel.startswith("..") else rel


#: The file names pytest-gpo collects.
SUITE_SUFFIXES = (".gpo.yaml", ".gpo.yml")


def is_suite_file(path: Path) -> bool:
    """True for ``*.gpo.yaml`` / ``*.gpo.yml``."""
    return path.name.endswith(SUITE_SUFFIXES)


def suite_stem(path: Path) -> str:
    """The file name without ``.gpo.yaml`` / ``.gpo.yml``."""
    for suffix in SUITE_SUFFIXES:
        if path.name.endswith(suffix):
            return path.name[: -len(suffix)]
    return path.stem


def resolve_path(directory: Path, value: str, *, where: str, key: str) -> Path:
    """``value`` as a path relative to ``directory`` (``~`` expanded); bad paths are errors."""
    if "\0" in value:
        raise SuiteError(
            "the path contains a NUL character", path=where, key=key, fix="write a plain file path"
        )
    try:
        p = Path(value).expanduser()
    except RuntimeError as exc:  # ~user that does not exist, or no home directory
        raise SuiteError(
            f"cannot expand the path {value[:200]!r}: {exc}",
            path=where,
            key=key,
            fix="write the path relative to the suite file",
        ) from None
    return Path(os.path.normpath(p if p.is_absolute() else directory / p))
