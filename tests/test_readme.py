"""The README's tour is real: its suite runs as shown, its failure output is what pytest prints."""

from __future__ import annotations

from pathlib import Path

import pytest
from openai_server import OpenAIServer

README = Path(__file__).resolve().parent.parent / "README.md"


def _blocks(lang: str) -> list[str]:
    """The README's fenced code blocks tagged ``lang`` (``""``: untagged)."""
    blocks: list[str] = []
    tag: str | None = None
    lines: list[str] = []
    for line in README.read_text(encoding="utf-8").splitlines():
        if tag is None and line.startswith("```"):
            tag, lines = line[3:].strip(), []
        elif tag is not None and line.strip() == "```":
            if tag == lang:
                blocks.append("\n".join(lines) + "\n")
            tag = None
        elif tag is not None:
            lines.append(line)
    return blocks


def _answer(body: dict[str, object]) -> str:
    messages = body["messages"]
    assert isinstance(messages, list)
    text = str(messages[-1]["content"])
    if "crashes" in text:
        return "I think this ticket is about technical problems in the app."
    return "billing" if "charged" in text else "account"


def test_readme_failure_example_is_real_output(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    prompt = next(b for b in _blocks("text") if "{{ ticket }}" in b)
    suite = next(b for b in _blocks("yaml") if "name: router" in b and "cases:" in b)
    shown = next(b for b in _blocks("") if "gpo suite router" in b)
    (pytester.path / "prompts").mkdir()
    (pytester.path / "prompts" / "router.txt").write_text(prompt, encoding="utf-8")
    (pytester.path / "router.gpo.yaml").write_text(suite, encoding="utf-8")
    with OpenAIServer(responder=_answer) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        result = pytester.runpytest(
            "-p", "no:cacheprovider", "--gpo-model", "openai/gpt-4o-mini", "--gpo-cache", "off"
        )
    assert result.ret == 1
    out = result.stdout.lines
    expected = shown.rstrip("\n").splitlines()
    assert expected[0] in out, result.stdout.str()
    start = out.index(expected[0])
    assert out[start : start + len(expected)] == expected, result.stdout.str()
