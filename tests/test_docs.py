"""The docs describe what exists: every setting is documented, the README's commands exist."""

from __future__ import annotations

from pathlib import Path

from pytest_gpo.settings import OPTIONS

ROOT = Path(__file__).resolve().parent.parent


def test_every_setting_is_in_the_configuration_doc() -> None:
    text = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    missing = [
        name
        for opt in OPTIONS
        for name in (opt.flag, opt.env, opt.ini)
        if name and f"`{name}`" not in text
    ]
    assert not missing, f"undocumented settings: {missing}"


def test_readme_starts_with_the_two_commands() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    head = "\n".join(lines[:30])
    assert "bash scripts/demo.sh" in head and "bash scripts/test.sh" in head
    assert (ROOT / "scripts" / "demo.sh").is_file() and (ROOT / "scripts" / "test.sh").is_file()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "bash scripts/test.sh" in ci
