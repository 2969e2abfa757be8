"""Paths: which files are suites, and how paths are shown to users (import-light)."""

from __future__ import annotations

import os
from pathlib import Path


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
