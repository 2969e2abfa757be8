"""Paths: which files are suites, where their paths point, how paths are shown (import-light)."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
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


#: A one-line value that can only be meant as a text file: no spaces, no template, a prompt
#: or text suffix (``prompts/main.txt``), as promptfoo reads a bare prompt path.
_LOOKS_LIKE_TEXT_FILE = re.compile(
    r"^[\w.\-/\\~]+\.(txt|md|markdown|j2|jinja|jinja2|prompt|tmpl|njk|nunjucks|hbs)$",
    re.IGNORECASE,
)


def looks_like_text_file(value: str) -> bool:
    """True when ``value`` reads as a path to a prompt or text file rather than as text."""
    return _LOOKS_LIKE_TEXT_FILE.match(value.strip()) is not None


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


#: The largest prompt or system file, and the largest case file, a suite may name (bytes).
MAX_PROMPT_BYTES = 1_000_000
MAX_CASES_BYTES = 50_000_000


@dataclass(frozen=True)
class Confinement:
    """Where a suite file's paths may point: inside ``root`` or one of the ``allowed`` folders.

    Suite files are data, reviewed less carefully than code: ``prompt``, ``system`` and
    ``cases`` must resolve (symlinks followed) to regular files in these folders. ``None`` as
    root allows anything (for library use without a project).
    """

    root: Path | None = None
    allowed: Sequence[Path] = field(default_factory=tuple)

    def check(self, path: Path, *, where: str, key: str) -> Path:
        """``path`` resolved; a :class:`SuiteError` when it leaves the allowed folders."""
        try:
            target = path.resolve()
        except (OSError, RuntimeError) as exc:  # a symlink loop, a path too long
            raise SuiteError(
                f"{key} path {display(path)} cannot be resolved: {exc}",
                path=where,
                key=key,
                fix="point it at a plain file (not a symlink loop)",
            ) from None
        if self.root is None:
            return target
        folders = [self.root.resolve(), *(p.resolve() for p in self.allowed)]
        if not any(target.is_relative_to(folder) for folder in folders):
            raise SuiteError(
                f"{key} path {display(path)} resolves to {target}, outside the project "
                f"({folders[0]})",
                path=where,
                key=key,
                fix="keep prompts and cases inside the project, or allow the folder with the "
                "ini key gpo_allowed_paths",
            )
        return target


def read_confined(
    path: Path, confinement: Confinement, *, where: str, key: str, limit: int
) -> bytes:
    """The bytes of a regular file inside the confinement, at most ``limit`` of them."""
    target = confinement.check(path, where=where, key=key)
    try:
        info = target.stat()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SuiteError(
            f"cannot read {key} file {display(path)}: {exc}",
            path=where,
            key=key,
            fix="check the path and permissions",
        ) from None
    if not stat.S_ISREG(info.st_mode):
        raise SuiteError(
            f"{key} path {display(path)} is not a regular file",
            path=where,
            key=key,
            fix="point it at a plain text file (not a device, pipe or folder)",
        )
    if info.st_size > limit:
        raise SuiteError(
            f"{key} file {display(path)} is {info.st_size:,} bytes, over the limit of {limit:,}",
            path=where,
            key=key,
            fix="split or shorten the file",
        )
    with open(target, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise SuiteError(
            f"{key} file {display(path)} grew past {limit:,} bytes while being read",
            path=where,
            key=key,
            fix="split or shorten the file",
        )
    return data
