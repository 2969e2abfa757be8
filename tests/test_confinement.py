"""Suite files are data: their paths stay in the project (issue 12, confinement).

The property: whatever ``prompt``, ``system`` and ``cases`` a suite file names (relative
escapes, absolute paths, symlinks out, devices, pipes, huge files), loading either reads a
regular file inside the rootdir (or a folder the ini allows) or fails with a suite error naming
the key; it never reads anything else, never hangs, and the other suites still run.
"""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_gpo.errors import GpoError
from pytest_gpo.scorers.registry import builtin_registry
from pytest_gpo.suites.load import load_suite
from pytest_gpo.suites.paths import Confinement

SECRET = "TOP-SECRET-OUTSIDE-THE-PROJECT"


def _layout(tmp_path: Path) -> tuple[Path, Path]:
    outside = tmp_path / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "router.txt").write_text(f"{SECRET} {{{{ t }}}}\n", encoding="utf-8")
    (outside / "cases.jsonl").write_text('{"vars": {"t": "a"}, "expected": "x"}\n', "utf-8")
    (outside / "secret.txt").write_text(SECRET, encoding="utf-8")
    root = tmp_path / "project"
    (root / "suites").mkdir(parents=True, exist_ok=True)
    (root / "prompt.txt").write_text("Route: {{ t }}\n", encoding="utf-8")
    (root / "cases.jsonl").write_text('{"vars": {"t": "a"}, "expected": "x"}\n', "utf-8")
    link = root / "link.txt"
    if not link.is_symlink():
        link.symlink_to(outside / "router.txt")
    fifo = root / "pipe.txt"
    if not fifo.exists():
        os.mkfifo(fifo)
    return root, outside


escapes = st.sampled_from(
    [
        "../outside/router.txt",
        "../../outside/router.txt",
        "{outside}/router.txt",
        "../link.txt",
        "/dev/zero",
        "/dev/urandom",
        "/proc/self/environ",
        "../pipe.txt",
        "../suites",
        "../prompt.txt",
        "../cases.jsonl",
    ]
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(prompt=escapes, system=st.none() | escapes, cases=escapes)
def test_a_suite_reads_only_regular_files_inside_the_project(
    tmp_path: Path, prompt: str, system: str | None, cases: str
) -> None:
    root, outside = _layout(tmp_path)
    fill = {"outside": str(outside)}
    suite = root / "suites" / "s.gpo.yaml"
    lines = [f"prompt: {prompt.format(**fill)}", f"cases: {cases.format(**fill)}"]
    if system is not None:
        lines.append(f"system: {system.format(**fill)}")
    suite.write_text("\n".join(lines) + "\n", encoding="utf-8")
    try:
        loaded = load_suite(suite, builtin_registry(), Confinement(root))
    except GpoError as exc:
        assert exc.key in ("prompt", "cases", "system"), exc.render()
        return
    assert loaded.prompt_path.resolve().is_relative_to(root.resolve())
    assert SECRET not in loaded.prompt_text and SECRET not in (loaded.system or "")


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("prompt", "../outside/router.txt", "outside the project"),
        ("prompt", "link.txt", "outside the project"),
        ("prompt", "/dev/zero", "outside the project"),
        ("prompt", "pipe.txt", "not a regular file"),
        ("system", "../outside/secret.txt", "outside the project"),
        ("cases", "/dev/zero", "outside the project"),
    ],
)
def test_each_escape_is_a_named_suite_error(
    tmp_path: Path, key: str, value: str, words: str
) -> None:
    root, _ = _layout(tmp_path)
    spec = {"prompt": "prompt.txt", "cases": "cases.jsonl", key: value}
    suite = root / "s.gpo.yaml"
    suite.write_text("".join(f"{k}: {v}\n" for k, v in spec.items()), encoding="utf-8")
    with pytest.raises(GpoError) as info:
        load_suite(suite, builtin_registry(), Confinement(root))
    assert info.value.key == key and words in info.value.message, info.value.render()


def test_a_symlink_loop_is_a_named_suite_error(tmp_path: Path) -> None:
    root, _ = _layout(tmp_path)
    (root / "loop.txt").symlink_to(root / "loop.txt")
    suite = root / "s.gpo.yaml"
    suite.write_text("prompt: loop.txt\ncases: cases.jsonl\n", encoding="utf-8")
    with pytest.raises(GpoError) as info:
        load_suite(suite, builtin_registry(), Confinement(root))
    assert info.value.key == "prompt" and "cannot be resolved" in info.value.message


def test_an_allowed_folder_may_be_read(tmp_path: Path) -> None:
    root, outside = _layout(tmp_path)
    suite = root / "s.gpo.yaml"
    suite.write_text("prompt: ../outside/router.txt\ncases: cases.jsonl\n", encoding="utf-8")
    loaded = load_suite(suite, builtin_registry(), Confinement(root, (outside,)))
    assert SECRET in loaded.prompt_text


def test_escaping_suites_fail_and_the_others_run(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\ngpo_model = gpo-sim/task\n")
    root = pytester.path
    (root / "p.txt").write_text("Route: {{ t }}\n", encoding="utf-8")
    for name, prompt, cases in (
        ("zero", "p.txt", "/dev/zero"),
        ("environ", "/proc/self/environ", "[{vars: {t: a}}]"),
        ("fine", "p.txt", "[{vars: {t: a}, expected: x}]"),
    ):
        (root / f"{name}.gpo.yaml").write_text(
            textwrap.dedent(f"""
                prompt: {prompt}
                cases: {cases}
                scorers: [{{type: contains, value: x}}]
                threshold: 0
            """),
            encoding="utf-8",
        )
    result = pytester.runpytest("-p", "no:cacheprovider")
    out = result.stdout.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out
    assert out.count("outside the project") >= 2, out
    assert result.parseoutcomes().get("passed") == 1
