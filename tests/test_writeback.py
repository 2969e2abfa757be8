"""Write-back: encoding kept, atomic replace, stale-file guard, CI policy, dry run."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_gpo import fsutil
from pytest_gpo.writeback import (
    PlannedWrite,
    WriteOutcome,
    WriteStatus,
    _lines,
    apply,
    atomic_write,
    encode_like,
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("original", "new", "expected"),
    [
        (b"old\n", "new text", b"new text\n"),
        (b"old", "new text\n", b"new text"),
        (b"a\r\nb\r\n", "x\ny", b"x\r\ny\r\n"),
        (b"\xef\xbb\xbfold\n", "neu \u00fc", b"\xef\xbb\xbfneu \xc3\xbc\n"),
        (b"old\n\n", "new\n\n\n", b"new\n\n"),  # the trailing blank line is kept
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


# -- issue 12: endings byte for byte, symlinks, read-only, code files, outside the root --------


line_text = st.text(st.characters(blacklist_characters="\r\n", codec="utf-8"), max_size=12)
ending = st.sampled_from(["\n", "\r\n", "\r"])


@st.composite
def files_and_edits(draw: st.DrawFn) -> tuple[bytes, list[tuple[str, str]], str]:
    drawn = draw(st.lists(st.tuples(line_text, ending), min_size=1, max_size=8))
    # a rewrite drops trailing blank lines (as it always has): end on a line with text
    drawn[-1] = (drawn[-1][0] + "z", "" if draw(st.booleans()) else drawn[-1][1])
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    original = bom + "".join(c + e for c, e in drawn).encode("utf-8")
    lines = _lines(original.decode("utf-8-sig"))  # how the file reads ("\r" + "\n" is one)
    new = [c for c, _ in lines]
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(new)))
        if draw(st.booleans()) and i < len(new):
            new[i] = draw(line_text)
        else:
            new.insert(i, draw(line_text))
    if not new[-1]:
        new[-1] = "end"
    return original, lines, "\n".join(new)


@settings(max_examples=400, deadline=None)
@given(files_and_edits())
def test_unchanged_lines_keep_their_endings_byte_for_byte(
    case: tuple[bytes, list[tuple[str, str]], str],
) -> None:
    original, lines, new_text = case
    out = encode_like(original, new_text)
    assert out.startswith(b"\xef\xbb\xbf") == original.startswith(b"\xef\xbb\xbf")
    written = _lines(out.decode("utf-8-sig"))
    # the content is the new text's, line for line, whatever the endings
    assert [c for c, _ in written] == new_text.split("\n")
    # a file with one ending style keeps it everywhere
    styles = {e for _, e in lines if e}
    if len(styles) == 1:
        assert {e for _, e in written if e} <= styles
    # the trailing newline is kept or not kept as it was
    assert bool(written[-1][1]) == bool(lines[-1][1])
    # rewriting with the same text gives the same bytes
    assert encode_like(original, "\n".join(c for c, _ in lines)) == original


def test_mixed_and_cr_only_files_keep_each_lines_ending() -> None:
    original = b"keep one\r\nkeep two\rchange me\nkeep four\r\n"
    out = encode_like(original, "keep one\nkeep two\nchanged\nkeep four\n")
    assert out == b"keep one\r\nkeep two\rchanged\r\nkeep four\r\n"
    assert encode_like(b"a\rb\r", "a\nB\n") == b"a\rB\r"
    # trailing blank lines are unchanged lines: kept (the rewrite's text comes stripped)
    kept = encode_like(b"\xef\xbb\xbfa\r\n\r\nT {{ t }}\r\n\r\n\r\n", "b\n\nT {{ t }}")
    assert kept == b"\xef\xbb\xbfb\r\n\r\nT {{ t }}\r\n\r\n\r\n"


def test_executable_files_and_git_internals_are_refused(tmp_path: Path) -> None:
    run = tmp_path / "hook.txt"
    run.write_bytes(b"old {{ t }}\n")
    run.chmod(0o755)
    git = tmp_path / ".git" / "notes.txt"
    git.parent.mkdir()
    git.write_bytes(b"old {{ t }}\n")
    outcomes = apply(
        [_planned(run, "new {{ t }}", tmp_path), _planned(git, "new {{ t }}", tmp_path)],
        dry_run=False,
        ci=False,
        allow_in_ci=False,
    )
    assert [o.status for o in outcomes] == [WriteStatus.REFUSED, WriteStatus.REFUSED]
    assert "executable" in outcomes[0].message and ".git" in outcomes[1].message


def _planned(path: Path, new: str, root: Path | None = None) -> PlannedWrite:
    return PlannedWrite("s", path, sha(path.read_bytes()), new, root=root)


def _rewrite(root: Path, relative: str) -> tuple[Path, WriteOutcome]:
    """A prompt file at ``root/relative`` holding ``old {{ t }}``, and what applying a plan to
    rewrite it did."""
    target = root / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"old {{ t }}\n")
    (outcome,) = apply(
        [_planned(target, "new {{ t }}", root)], dry_run=False, ci=False, allow_in_ci=False
    )
    return target, outcome


def test_a_symlinked_prompt_is_written_through_to_its_target(tmp_path: Path) -> None:
    target = tmp_path / "shared" / "router.txt"
    target.parent.mkdir()
    target.write_bytes(b"old {{ t }}\n")
    link = tmp_path / "router.txt"
    link.symlink_to(target)
    (outcome,) = apply(
        [_planned(link, "new {{ t }}", tmp_path)], dry_run=False, ci=False, allow_in_ci=False
    )
    assert outcome.status == WriteStatus.WRITTEN
    assert link.is_symlink() and target.read_bytes() == b"new {{ t }}\n"


@pytest.mark.parametrize(
    "name",
    [
        "conftest.py",
        "helpers.py",
        "pyproject.toml",
        "setup.cfg",
        "evil.yml",
        "deploy.sh",
        "Makefile",
        "cases.jsonl",
        "s.gpo.yaml.bak",
    ],
)
def test_code_and_configuration_files_are_never_written(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text('"""Route: {{ t }}"""\n', encoding="utf-8")
    before = path.read_bytes()
    (outcome,) = apply(
        [_planned(path, "x {{ t }}", tmp_path)], dry_run=False, ci=False, allow_in_ci=False
    )
    assert outcome.status == WriteStatus.REFUSED and "not a prompt file" in outcome.message
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    "name",
    ["CMakeLists.txt", "requirements.txt", "requirements-dev.txt", "constraints.txt", "AGENTS.md"],
)
def test_files_other_tools_read_as_code_or_configuration_are_refused(
    tmp_path: Path, name: str
) -> None:
    """A .txt or .md suffix does not make a prompt: CMake runs CMakeLists.txt, pip obeys
    requirements files, coding agents follow AGENTS.md."""
    target = tmp_path / name
    target.write_bytes(b"old {{ t }}\n")
    (outcome,) = apply(
        [_planned(target, "new {{ t }}", tmp_path)], dry_run=False, ci=False, allow_in_ci=False
    )
    assert outcome.status == WriteStatus.REFUSED and "code or configuration" in outcome.message
    assert target.read_bytes() == b"old {{ t }}\n"


def test_read_only_and_outside_the_root_are_refused(tmp_path: Path) -> None:
    ro = tmp_path / "ro.txt"
    ro.write_bytes(b"old {{ t }}\n")
    ro.chmod(0o444)
    outside = tmp_path / "outside.txt"
    outside.write_bytes(b"old {{ t }}\n")
    root = tmp_path / "project"
    root.mkdir()
    escaping = root / "escape.txt"
    escaping.symlink_to(outside)
    outcomes = apply(
        [_planned(ro, "new {{ t }}", tmp_path), _planned(escaping, "new {{ t }}", root)],
        dry_run=False,
        ci=False,
        allow_in_ci=False,
    )
    assert [o.status for o in outcomes] == [WriteStatus.REFUSED, WriteStatus.REFUSED]
    assert "read-only" in outcomes[0].message and "outside" in outcomes[1].message
    assert ro.read_bytes() == outside.read_bytes() == b"old {{ t }}\n"


REFUSED_PATHS = [
    "runtime.txt",  # Heroku's / the Python buildpack's runtime
    ".python-version.txt",
    ".cursorrules.md",
    ".windsurfrules.txt",
    ".clinerules.md",
    "requirements/base.txt",  # a requirements folder (pip -r)
    "requirements-files/dev.txt",
    "constraints/pins.txt",
    ".venv/lib/python3.11/site-packages/foo-1.0.dist-info/entry_points.txt",
    "venv/notes.txt",
    "lib/site-packages/x.txt",
    "usr/dist-packages/x.txt",
    "node_modules/pkg/README.md",
    ".tox/py311/log.txt",
    ".nox/tests/log.txt",
    "__pycache__/x.txt",
    "build/foo-1.0.dist-info/METADATA.txt",
    "src/foo.egg-info/SOURCES.txt",
    ".cursor/rules/r.md",
    ".vscode/notes.md",
    ".idea/notes.txt",
    ".devcontainer/README.md",
    ".claude/commands/c.md",
    ".windsurf/rules/r.md",
    ".continue/prompts/p.prompt",
    ".clinerules/rules.md",
    # a third tester's list: more agents' rule folders, aider's conventions, CI folders
    ".junie/guidelines.md",
    ".roo/rules.md",
    ".kiro/steering.md",
    ".amazonq/rules/r.md",
    ".aiassistant/rules/r.md",
    "CONVENTIONS.md",
    "QWEN.md",
    "AGENT.md",
    ".gitlab/issue_templates/bug.md",
    ".circleci/notes.txt",
]


@pytest.mark.parametrize("relative", REFUSED_PATHS)
def test_files_in_tool_folders_and_tool_names_are_refused(tmp_path: Path, relative: str) -> None:
    """Found by strangers' trials: each of these was rewritten when a suite named it."""
    target, outcome = _rewrite(tmp_path, relative)
    assert outcome.status == WriteStatus.REFUSED, outcome.message
    assert "never rewrites it; keep prompts in files of their own" in outcome.message
    assert target.read_bytes() == b"old {{ t }}\n"


TOOL_DIRS = [
    *(".git", ".github", ".venv", "venv", "site-packages", "node_modules", ".tox", "__pycache__"),
    *("requirements", "constraints-dev", "foo-1.0.dist-info", "pkg.egg-info", ".cursor"),
    *(".vscode", ".claude", ".junie", ".roo", ".kiro", ".amazonq", ".gitlab", ".circleci"),
]


@settings(max_examples=150, derandomize=True, deadline=None)
@given(
    st.sampled_from(TOOL_DIRS),
    st.lists(st.booleans(), min_size=20, max_size=20),  # longer than any folder name
    st.lists(st.sampled_from(["prompts", "a b", "x.y", "ü"]), max_size=2),
    st.sampled_from(["p.txt", "p.md", "rules.prompt"]),
)
def test_a_tool_folder_anywhere_in_any_letter_case_is_never_written(
    tmp_path_factory: pytest.TempPathFactory,
    folder: str,
    upper: list[bool],
    above: list[str],
    name: str,
) -> None:
    """A tool's folder at any depth below the rootdir, in any mix of letter case (macOS and
    Windows file systems ignore case): the prompt file inside it is refused and unchanged."""
    cased = "".join(c.upper() if up else c for c, up in zip(folder, upper, strict=False))
    root = tmp_path_factory.mktemp("root")
    relative = "/".join([*above, cased, name])
    target, outcome = _rewrite(root, relative)
    assert outcome.status == WriteStatus.REFUSED, (relative, outcome.message)
    assert target.read_bytes() == b"old {{ t }}\n"


@pytest.mark.parametrize("relative", ["wb/.Github/g.md", ".GIT/notes.txt", "a/.GitHub/x.md"])
def test_git_folders_are_refused_in_any_letter_case(tmp_path: Path, relative: str) -> None:
    """On a case-insensitive file system (macOS) .Github is the .github folder."""
    target, outcome = _rewrite(tmp_path, relative)
    assert outcome.status == WriteStatus.REFUSED and ".github" in outcome.message
    assert target.read_bytes() == b"old {{ t }}\n"


def test_a_hard_linked_prompt_is_refused_and_both_names_keep_it(tmp_path: Path) -> None:
    """Two names of one file (two suites' prompts, say): an atomic rewrite would split them
    silently, so it is refused and both names still hold the same prompt."""
    (tmp_path / "prompts").mkdir()
    first = tmp_path / "prompts" / "lang.txt"
    first.write_bytes(b"old {{ t }}\n")
    second = tmp_path / "lang_hard.txt"
    os.link(first, second)
    (outcome,) = apply(
        [_planned(first, "new {{ t }}", tmp_path)], dry_run=False, ci=False, allow_in_ci=False
    )
    assert outcome.status == WriteStatus.REFUSED and "2 hard links" in outcome.message
    assert first.read_bytes() == second.read_bytes() == b"old {{ t }}\n"
    assert os.path.samefile(first, second)


@pytest.mark.parametrize(
    "relative",
    ["prompts/env/p.txt", "prompts/runtime_prompt.txt", "myrequirements/p.txt", "venv_x/p.md"],
)
def test_prompt_files_near_tool_names_are_still_written(tmp_path: Path, relative: str) -> None:
    _, outcome = _rewrite(tmp_path, relative)
    assert outcome.status == WriteStatus.WRITTEN, outcome.message


@pytest.mark.parametrize("relative", [".gpo/report.md", ".gpo/prompts/p.txt", "out/r.md"])
def test_pytest_gpos_own_files_and_folders_are_refused(tmp_path: Path, relative: str) -> None:
    """The report, the cache and ``.gpo/`` belong to the tool: a prompt there was reported as
    rewritten, then overwritten by the report."""
    target = tmp_path / relative
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"old {{ t }}\n")
    own = (tmp_path / ".gpo", tmp_path / "out" / "r.md", tmp_path / "out" / "r.json")
    plan = PlannedWrite(
        "s", target, sha(target.read_bytes()), "new {{ t }}", root=tmp_path, protected=own
    )
    (outcome,) = apply([plan], dry_run=False, ci=False, allow_in_ci=False)
    assert outcome.status == WriteStatus.REFUSED, outcome.message
    assert "pytest-gpo's own file or folder" in outcome.message
    assert "keep prompts in files of their own" in outcome.message
    assert target.read_bytes() == b"old {{ t }}\n"
