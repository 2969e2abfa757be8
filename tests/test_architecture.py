"""The architecture's rules, checked: layers, the public API, module size, start-up weight."""

from __future__ import annotations

import ast
import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_gpo

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "pytest_gpo"

#: a module's size above which its job is probably two jobs (issue: "none over about 500")
MAX_LINES = 500


def test_import_linter_contracts_are_kept() -> None:
    """Layers point down the data flow; only plugin/ imports pytest; optimize/ is pure."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.fail("import-linter is not installed: pip install -e '.[lint]'")
    done = subprocess.run(
        [lint, "--config", str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "BROKEN" not in done.stdout


def test_public_api_names_resolve_and_stay_light() -> None:
    for name in pytest_gpo.__all__:
        assert getattr(pytest_gpo, name) is not None, name
    code = (
        "import sys, pytest_gpo\n"
        "heavy = [m for m in ('litellm', 'torch', 'jinja2', 'yaml', 'pytest_gpo.scorers.base')"
        " if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_every_module_is_small_and_says_its_job() -> None:
    too_big = []
    undocumented = []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        lines = text.count("\n")
        if lines > MAX_LINES:
            too_big.append(f"{path.relative_to(ROOT)}: {lines} lines")
        if not ast.get_docstring(ast.parse(text)):
            undocumented.append(str(path.relative_to(ROOT)))
    assert not too_big, too_big
    assert not undocumented, undocumented


def test_public_objects_have_docstrings() -> None:
    missing = []
    for name in pytest_gpo.__all__:
        value = getattr(pytest_gpo, name)
        if callable(value) and not (getattr(value, "__doc__", None) or "").strip():
            missing.append(name)
    assert not missing, missing


def test_only_the_plugin_package_imports_pytest() -> None:
    """Belt and braces for the import-linter contract, on the source text itself."""
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "plugin" in path.relative_to(PACKAGE).parts:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            if any(n.split(".")[0] in ("pytest", "_pytest", "pluggy") for n in names):
                offenders.append(str(path.relative_to(ROOT)))
    assert not offenders, offenders


def test_the_entry_point_module_is_the_plugin() -> None:
    hooks = importlib.import_module("pytest_gpo.plugin.hooks")
    assert hasattr(hooks, "pytest_addoption") and hasattr(hooks, "pytest_collect_file")
