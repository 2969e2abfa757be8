"""Write improved prompts back to their files: plan, show, apply.

A write goes to the suite's prompt file only, atomically (a temp file in the same directory,
fsync, ``os.replace``, then fsync of the directory), keeping the file's encoding (a UTF-8 BOM),
its line endings byte for byte (each unchanged line keeps its own ending, CR-only and mixed
files included; new lines take the file's most common ending) and its trailing newline, and
only when the file is byte-identical to what was read when the run started: a file edited
meanwhile is skipped, never clobbered. A symlinked prompt is written through to its target
(the link stays a link); a read-only file, a file outside the root the plan allows, and a
Python or other code file are refused with the reason, never written.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from difflib import SequenceMatcher
from enum import StrEnum
from pathlib import Path

from pytest_gpo.fsutil import atomic_write_bytes
from pytest_gpo.suites.paths import display

BOM = b"\xef\xbb\xbf"

#: The file types write-back may rewrite: prompt templates, nothing that is run, parsed as
#: configuration or holds cases (an allowlist: a name not on it is refused with this list).
PROMPT_SUFFIXES = frozenset(
    {".txt", ".md", ".prompt", ".j2", ".jinja", ".jinja2", ".tmpl", ".tpl", ".text"}
)

#: Files with a prompt suffix that tools read as code or configuration (CMake runs
#: CMakeLists.txt, pip reads -e and --index-url from requirements files, agents follow
#: AGENTS.md): never rewritten, whatever a suite file names as its prompt.
CODE_NAMES = re.compile(
    r"^(cmakelists\.txt|(dev-|test-)?requirements([-_.][\w.-]*)?\.(txt|in)"
    r"|constraints([-_.][\w.-]*)?\.txt|pip\.conf|robots\.txt|codeowners|runtime\.txt"
    r"|(agents?|claude|gemini|qwen|copilot-instructions|conventions|security|license|licence"
    r"|notice|copying)"
    r"(\.md|\.txt)?|llms(-full)?\.txt|.*\.(cmake|mk)\.txt"
    r"|\.(python|node|ruby|java|go|terraform)-version(\.\w+)?|\.tool-versions(\.\w+)?"
    r"|\.nvmrc(\.\w+)?|\.(cursor|windsurf|cline)rules(\.\w+)?)$",
    re.IGNORECASE,
)

#: Folders whose files other tools read or own: pip's requirements folders, virtualenvs and
#: installed packages, caches, editors' and coding agents' settings and rules. A prompt is
#: never rewritten inside one (the part of the path below the rootdir is checked).
TOOL_FOLDERS = re.compile(
    r"^((requirements|constraints)([-_.][\w.-]*)?|\.venv|venv|site-packages|dist-packages"
    r"|node_modules|\.tox|\.nox|__pycache__|.+\.dist-info|.+\.egg-info"
    r"|\.cursor|\.vscode|\.idea|\.devcontainer|\.claude|\.windsurf|\.continue"
    r"|\.clinerules|\.junie|\.roo|\.kiro|\.amazonq|\.aiassistant|\.gemini|\.codex|\.aider.*"
    r"|\.gitlab|\.circleci|\.buildkite|\.husky)$",
    re.IGNORECASE,
)

_LINE = re.compile(r"([^\r\n]*)(\r\n|\r|\n|$)")


class WriteStatus(StrEnum):
    """What happened to one planned write (its value is what reports show)."""

    WRITTEN = "written"
    DRY_RUN = "dry_run"
    REFUSED_CI = "refused_ci"
    REFUSED = "refused"
    STALE = "stale"
    UNCHANGED = "unchanged"
    ERROR = "error"
    #: not attempted: the session was interrupted (Ctrl-C), so no prompt file is written
    INTERRUPTED = "interrupted"


@dataclass(frozen=True)
class PlannedWrite:
    """One prompt file to rewrite: where, what it held when read, and the new template text."""

    suite: str
    path: Path
    original_sha256: str
    new_text: str
    #: writes must stay inside this directory (symlinks resolved); None: anywhere
    root: Path | None = None
    #: pytest-gpo's own files and folders (reports, cache, ``.gpo/``): never written
    protected: tuple[Path, ...] = ()
    #: the other suites of the run whose prompt is this file too: the write is refused
    shared_with: tuple[str, ...] = ()


@dataclass(frozen=True)
class WriteOutcome:
    """What happened to one planned write."""

    suite: str
    path: Path
    status: WriteStatus
    message: str

    @property
    def written(self) -> bool:
        """True when the file now holds the new prompt."""
        return self.status == WriteStatus.WRITTEN


def _lines(text: str) -> list[tuple[str, str]]:
    """(content, ending) per line; the last line's ending may be ''."""
    found = [(m.group(1), m.group(2)) for m in _LINE.finditer(text)]
    if found and found[-1] == ("", ""):
        found.pop()
    return found


def encode_like(original: bytes, new_text: str) -> bytes:
    """Encode ``new_text`` the way ``original`` was: BOM, each line's ending, trailing newline.

    Lines the new text keeps (matched by content) keep their original ending byte for byte;
    new lines take the most common ending of the file (LF for a file without any).
    """
    has_bom = original.startswith(BOM)
    body = original[len(BOM) :] if has_bom else original
    old = _lines(body.decode("utf-8", errors="surrogateescape"))
    endings = Counter(end for _, end in old if end)
    usual = endings.most_common(1)[0][0] if endings else "\n"
    new = [content for content, _ in _lines(new_text.rstrip("\r\n"))]
    if not new:
        new = [""]
    # the file's trailing blank lines are lines the rewrite keeps (the text comes stripped)
    blank = 0
    while blank < len(old) - 1 and old[-1 - blank][0] == "" and old[-2 - blank][1]:
        blank += 1
    new += [""] * blank
    out_endings = [usual] * len(new)
    matcher = SequenceMatcher(a=[c for c, _ in old], b=new, autojunk=False)
    for tag, i1, i2, j1, _ in matcher.get_opcodes():
        if tag == "equal":
            for k in range(i2 - i1):
                if old[i1 + k][1]:
                    out_endings[j1 + k] = old[i1 + k][1]
    ends_with_newline = bool(old) and bool(old[-1][1])
    if not ends_with_newline:
        out_endings[-1] = ""
    elif old:
        out_endings[-1] = old[-1][1]
    for i in range(len(new) - 1):
        # a CR ending followed by an empty line ending in LF would read back as one CRLF
        if out_endings[i] == "\r" and new[i + 1] == "" and out_endings[i + 1].startswith("\n"):
            out_endings[i] = "\r\n"
    text = "".join(c + e for c, e in zip(new, out_endings, strict=True))
    data = text.encode("utf-8")
    return BOM + data if has_bom else data


def refusal(path: Path, root: Path | None, protected: Iterable[Path] = ()) -> str | None:
    """Why ``path`` must not be written, or None (checked on the resolved target).

    ``protected`` are pytest-gpo's own files and folders (reports, cache, ``.gpo/``).
    """
    try:
        target = path.resolve()
    except (OSError, RuntimeError) as exc:
        return f"it cannot be resolved ({exc})"
    if path.suffix.lower() not in PROMPT_SUFFIXES or target.suffix.lower() not in PROMPT_SUFFIXES:
        return (
            "it is not a prompt file: write-back only rewrites "
            + ", ".join(sorted(PROMPT_SUFFIXES))
            + " files (code, configuration and case files are never written)"
        )
    if CODE_NAMES.match(path.name) or CODE_NAMES.match(target.name):
        return (
            f"{target.name} is read as code or configuration by other tools "
            "(write-back never rewrites it; keep prompts in files of their own)"
        )
    # case-insensitive file systems (macOS, Windows) treat .GitHub as .github
    if {".git", ".github"} & {part.casefold() for part in target.parts}:
        return "it is inside a .git or .github folder"
    for own in protected:
        where = _resolved(own)
        if target == where or target.is_relative_to(where):
            return (
                f"it is pytest-gpo's own file or folder ({display(own)}: reports, cache, "
                "checkpoints; write-back never rewrites it; keep prompts in files of their own)"
            )
    base = _resolved(root) if root is not None else None
    inside = target.relative_to(base) if base is not None and target.is_relative_to(base) else None
    for folder in (inside or target).parts[:-1]:
        if TOOL_FOLDERS.match(folder):
            return (
                f"it is inside {folder}, a folder other tools read or own (requirements, "
                "virtualenvs and packages, caches, editor and agent settings; write-back never "
                "rewrites it; keep prompts in files of their own)"
            )
    if root is not None and not target.is_relative_to(root.resolve()):
        return f"it resolves to {target}, outside {root.resolve()}"
    if not target.is_file():
        return "it is not a regular file"
    if target.stat().st_mode & 0o111:
        return "it is executable"
    if target.stat().st_nlink > 1:
        return (
            f"it has {target.stat().st_nlink} hard links: the atomic rewrite would split them "
            "(the other names would keep the old prompt, and another suite may use one); "
            "give the prompt a file of its own"
        )
    if not os.access(target, os.W_OK) or not (target.stat().st_mode & 0o200):
        return "it is read-only (make it writable to accept rewrites)"
    return None


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` atomically (see :mod:`pytest_gpo.fsutil`)."""
    atomic_write_bytes(path, data)


def apply(
    plans: Iterable[PlannedWrite], *, dry_run: bool, ci: bool, allow_in_ci: bool
) -> list[WriteOutcome]:
    """Apply planned writes under the guards; returns one outcome per plan."""
    outcomes: list[WriteOutcome] = []
    written: dict[Path, str] = {}  # resolved path -> the suite whose prompt it now holds
    for plan in plans:
        target = _resolved(plan.path)
        if plan.shared_with:  # judged on this suite's cases only, it could hurt the others
            outcomes.append(
                WriteOutcome(
                    plan.suite,
                    plan.path,
                    WriteStatus.REFUSED,
                    f"{display(plan.path)} is also the prompt of {', '.join(plan.shared_with)}: "
                    f"a rewrite judged on {plan.suite}'s held-out cases alone could make them "
                    "worse; select one suite with -k to optimize it",
                )
            )
            continue
        if target in written:  # several suites share one prompt file (promptfoo providers)
            outcomes.append(
                WriteOutcome(
                    plan.suite,
                    plan.path,
                    WriteStatus.STALE,
                    f"{display(plan.path)} not written: it already holds the prompt optimized "
                    f"for {written[target]} in this run (suites sharing a prompt file are "
                    "optimized one by one; select one with -k)",
                )
            )
            continue
        outcome = _apply_one(plan, dry_run=dry_run, ci=ci, allow_in_ci=allow_in_ci)
        if outcome.written:
            written[target] = plan.suite
        outcomes.append(outcome)
    return outcomes


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def _apply_one(plan: PlannedWrite, *, dry_run: bool, ci: bool, allow_in_ci: bool) -> WriteOutcome:
    def out(status: WriteStatus, message: str) -> WriteOutcome:
        return WriteOutcome(plan.suite, plan.path, status, message.replace(full, shown))

    full, shown = str(plan.path), display(plan.path)

    try:
        current = plan.path.read_bytes()
    except OSError as exc:
        return out(WriteStatus.ERROR, f"cannot read {plan.path}: {exc}")
    if hashlib.sha256(current).hexdigest() != plan.original_sha256:
        return out(
            WriteStatus.STALE,
            f"{plan.path} changed while the optimizer ran: not written "
            "(re-run --gpo-optimize to optimize the new content)",
        )
    try:
        data = encode_like(current, plan.new_text)
    except UnicodeEncodeError as exc:
        return out(
            WriteStatus.ERROR,
            f"{plan.path} not written: the new prompt is not valid text "
            f"({exc.reason} at character {exc.start}); the old file is intact",
        )
    if data == current:
        return out(WriteStatus.UNCHANGED, f"{plan.path} already holds the optimized prompt")
    why = refusal(plan.path, plan.root, plan.protected)
    if why is not None:
        return out(WriteStatus.REFUSED, f"{plan.path} not written: {why}")
    if dry_run:
        return out(
            WriteStatus.DRY_RUN, f"{plan.path} would be rewritten (--gpo-dry-run: not written)"
        )
    if ci and not allow_in_ci:
        return out(
            WriteStatus.REFUSED_CI,
            f"{plan.path} not written: CI is set; pass --gpo-optimize=write "
            "to write prompt files in CI",
        )
    try:
        # through a symlink: the target is replaced, the link stays a link
        atomic_write(plan.path.resolve(), data)
    except OSError as exc:
        return out(WriteStatus.ERROR, f"cannot write {plan.path}: {exc} (the old file is intact)")
    return out(WriteStatus.WRITTEN, f"{plan.path} rewritten")
