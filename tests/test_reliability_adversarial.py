"""The adversarial corpus (tests/adversarial/): every hostile entry run, every outcome counted.

Templates, regexes and answers are data files; checkpoints are a real run's checkpoint broken
one field at a time; suites run together end to end in one pytest process. The counts asserted
here are the figures docs/reliability.md gives (printed by ``python tests/adversarial/corpus.py``).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from openai_server import OpenAIServer

sys.path.insert(0, str(Path(__file__).parent / "adversarial"))

import corpus

pytest_plugins = ["pytester"]


def test_hostile_templates_are_rendered_bounded_or_suite_errors() -> None:
    tally = corpus.run_templates(measure_memory=False)
    assert tally.problems == []
    assert tally.outcomes["aborted"] == 0
    assert sum(tally.outcomes.values()) == len(corpus.entries("templates.yaml")) >= 50
    assert tally.outcomes["suite error"] >= 45  # each growth path is refused, not only slowed
    # the render deadline is 5 s; a loaded two-core machine may overrun it by a check's worth
    assert tally.max_seconds < 10, tally.slowest


def test_hostile_regexes_run_in_linear_time_or_are_refused_with_the_reason() -> None:
    tally = corpus.run_regexes()
    assert tally.problems == []
    assert tally.outcomes["aborted"] == 0
    assert tally.outcomes["refused"] >= 10 and tally.outcomes["no_match"] >= 8
    # each of these backtracks for minutes (or forever) on Python's re
    assert tally.max_seconds < 2, tally.slowest


def test_hostile_answers_are_escaped_on_screen_and_exact_in_json() -> None:
    tally = corpus.run_answers()
    assert tally.problems == []
    assert tally.outcomes["escaped"] == len(corpus.entries("answers.yaml")) >= 20


# -- checkpoints ----------------------------------------------------------------------------


def test_a_damaged_checkpoint_is_ignored_with_one_note_and_the_run_starts_afresh(
    tmp_path: Path,
) -> None:
    tally = corpus.run_checkpoints(tmp_path)
    assert tally.problems == []
    assert tally.outcomes["aborted"] == 0
    assert tally.outcomes["started afresh"] >= 140
    # only values of the right type resume: a huge count, empty usage, another model name,
    # no partly raced candidates
    for name in tally.resumed:
        assert re.search(
            r"= (1(0){30}|1\.5e\+308|\{\}|null|\"x\")$|^state.partial = \[\]$", name
        ), name


# -- suites, end to end ---------------------------------------------------------------------

_LINE = re.compile(r"^(?P<file>\S+?\.gpo\.yaml)(?:::\S*)? (?P<outcome>PASSED|FAILED|ERROR)\b")


def test_hostile_suite_files_end_to_end_no_internal_error(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    entries = corpus.entries("suites.yaml")
    expected: dict[str, str] = {}
    for entry in entries:
        for rel, text in entry["files"].items():
            path = pytester.path / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            if rel.endswith(".gpo.yaml"):
                expected[rel] = entry["outcome"]
        if "generate" in entry:
            gen = entry["generate"]
            (pytester.path / gen["path"]).write_text(corpus.source_of(gen), encoding="utf-8")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with OpenAIServer() as api:
        monkeypatch.setenv("OPENAI_BASE_URL", api.base_url)  # every call stays on 127.0.0.1
        pytester.makeini("[pytest]\ngpo_model = openai/echo\n")
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v", "--gpo-show-all")
    out = result.stdout.str() + result.stderr.str()
    assert "INTERNALERROR" not in out and "Traceback" not in out
    assert "errors during collection" not in out
    assert "\x1b" not in out and "\x00" not in out and "\u202e" not in out
    seen: dict[str, set[str]] = {}
    for line in result.stdout.lines:
        m = _LINE.match(line)
        if m:
            seen.setdefault(m["file"], set()).add(m["outcome"].lower())
    for rel, outcome in expected.items():
        assert outcome in seen.get(rel, set()), (rel, seen.get(rel), out[-3000:])
    for entry in entries:
        if "shows" in entry:
            assert entry["shows"] in out, entry["id"]
