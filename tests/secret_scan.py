"""Helpers of the secret tests: a pytest run in a clean environment, and the scan of every
file it wrote and everything it printed for sentinel secrets."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any


def last_word_responder(body: dict[str, Any]) -> str:
    """Answers a task request with its last word, an optimizer request with a valid candidate."""
    text = " ".join(str(m.get("content", "")) for m in body["messages"])
    if "<START>" in text:  # an optimizer request
        return "<START>Answer with the last word only: {{ word }}<END>"
    return str(body["messages"][-1]["content"]).split()[-1]


def run_pytest(project: Path, env_extra: Mapping[str, str], *args: str) -> tuple[str, str]:
    """``pytest`` in ``project`` in a subprocess, without the caller's GPO_/OPENAI_/CI
    variables: (stdout, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GPO_", "OPENAI_"))}
    env.pop("CI", None)
    env.update(env_extra)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    return proc.stdout, proc.stderr


def written_files(project: Path, inputs: Mapping[Path, bytes]) -> list[Path]:
    """Every file under ``project`` the runs created or changed (``inputs``: before them)."""
    return [
        p
        for p in project.rglob("*")
        if p.is_file() and (p not in inputs or p.read_bytes() != inputs[p])
    ]


def leaks(
    project: Path,
    written: Iterable[Path],
    outputs: Sequence[tuple[str, str]],
    needles: Sequence[str],
) -> list[tuple[str, str]]:
    """(where, needle) for each needle found in a written file or a run's stdout/stderr."""
    found = [
        (str(p.relative_to(project)), needle)
        for p in written
        for needle in needles
        if needle.encode() in p.read_bytes()
    ]
    for i, (stdout, stderr) in enumerate(outputs):
        found += [
            (f"run {i} {stream}", needle)
            for stream, text in (("stdout", stdout), ("stderr", stderr))
            for needle in needles
            if needle in text
        ]
    return found
