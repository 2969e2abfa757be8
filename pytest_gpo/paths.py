"""How paths are shown to users: relative to the working directory when inside it."""

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
