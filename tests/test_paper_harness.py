"""The paper harness (benchmarks/paper, issue #14): data, answer extraction, pre-flight, and a
quick end-to-end run on the simulated models that resumes without re-running."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.estimate import estimate_calls

ROOT = Path(__file__).resolve().parent.parent
HARNESS = ROOT / "benchmarks" / "paper"
sys.path.insert(0, str(HARNESS))

import answers  # noqa: E402
import bbh_data  # noqa: E402


def _run(*args: str, work: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    return subprocess.run(
        [sys.executable, str(HARNESS / "reproduce.py"), "--quick", "--work", str(work), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )


def test_cases_come_from_the_extract_in_bbh_form_with_fixed_seeded_splits() -> None:
    data, provenance = bbh_data.load_task_data(
        list(bbh_data.TASKS), cache=Path("/nonexistent"), archive=None, quick=True
    )
    assert provenance["sha256"] == (
        "1bb398a5512c6d798cdebe0dfa0ac03f67f6033fa6b39c6ef71df978c7cbc5c2"
    )
    for task, examples in data.items():
        cases = bbh_data.make_cases(task, examples, (8, 8, 16), seed=0)
        assert cases == bbh_data.make_cases(task, examples, (8, 8, 16), seed=0)
        assert cases != bbh_data.make_cases(task, examples, (8, 8, 16), seed=1)
        assert Counter(c["split"] for c in cases) == {"train": 8, "eval": 8, "test": 16}
        assert len({c["id"] for c in cases}) == 32
        for case in cases:
            index = int(case["id"].rsplit("-", 1)[1])
            source = examples[index]
            assert str(source["input"]).rstrip(".") in case["vars"]["input"]
    movie = bbh_data.make_cases("movie_recommendation", data["movie_recommendation"], (8, 8, 16), 0)
    # BIG-Bench lists the right movie first; the rendered options must not give it away
    assert len({c["expected"] for c in movie}) > 1
    for case in movie:
        letter = case["expected"]
        shown = case["vars"]["input"].split(f"({letter}) ", 1)[1].split("\n")[0]
        source = data["movie_recommendation"][int(case["id"].rsplit("-", 1)[1])]
        assert source["target_scores"][shown] == 1
    navigate = bbh_data.make_cases("navigate", data["navigate"], (8, 8, 16), 0)
    assert {c["expected"] for c in navigate} <= {"Yes", "No"}
    assert all(c["vars"]["input"].endswith("Options:\n- Yes\n- No") for c in navigate)
    counting = bbh_data.make_cases("object_counting", data["object_counting"], (8, 8, 16), 0)
    assert all(c["expected"].isdigit() for c in counting)


def test_too_few_examples_is_a_clear_error() -> None:
    data, _ = bbh_data.load_task_data(["navigate"], cache=Path("/x"), archive=None, quick=True)
    with pytest.raises(bbh_data.DataError, match="navigate: 40 examples, the splits need 240"):
        bbh_data.make_cases("navigate", data["navigate"], bbh_data.PAPER_SIZES, 0)


@pytest.mark.parametrize(
    ("output", "passed"),
    [
        ("Let's sort: b, a. So the answer is apple banana.", True),
        ("First apple, then banana.\nSorted: Apple, Banana", True),
        ("banana apple\nThe answer is banana apple.", False),
        ("I think it is apple banana cherry", False),
        ("", False),
    ],
)
def test_word_sorting_reads_the_final_answer_of_a_chain_of_thought(
    output: str, passed: bool
) -> None:
    ok, reason = answers.sorted_words(output, "apple banana")
    assert ok is passed, reason


def test_dry_run_prints_the_products_call_bounds_and_runs_nothing(tmp_path: Path) -> None:
    proc = _run(
        "--dry-run",
        "--tasks",
        "navigate",
        "--methods",
        "cot,gpo",
        "--steps",
        "18",
        "--candidates",
        "8",
        "--racing",
        "off",
        work=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    # cot: the 16 test cases; gpo: the product's own bound for 18 steps x 8 candidates on the
    # predefined 8/8/16 split, plus the final scoring of the 16 test cases
    keys: dict[str, Any] = {"preset": "gpo", "candidates": 8, "steps": 18}
    if "racing" in OptimizeConfig.setting_names():
        keys["racing"] = "off"
    bound = estimate_calls(OptimizeConfig.from_mapping(keys), 8, 16, 8, 18).task_calls_max + 16
    assert bound > 18 * 8 * 8
    assert "pre-flight: cot: <= 16 task calls" in proc.stdout
    assert f"pre-flight: gpo: <= {bound:,} task calls" in proc.stdout
    assert "simulated models: plumbing check, not the paper's numbers" in proc.stdout
    assert not (tmp_path / "runs").exists()


def test_quick_run_writes_the_table_and_a_second_run_resumes(tmp_path: Path) -> None:
    args = ("--tasks", "navigate,word_sorting", "--methods", "cot,ape")
    first = _run(*args, work=tmp_path)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "simulated models: plumbing check, not the paper's numbers" in first.stdout
    summary: dict[str, Any] = json.loads((tmp_path / "results.json").read_text())
    assert summary["simulated"] is True
    table = summary["table"]
    for method in ("cot", "ape"):
        assert table[method]["status"] == "ok"
        for task in ("navigate", "word_sorting"):
            cell = table[method]["tasks"][task]
            assert cell["n"] == 1 and 0 <= cell["mean"] <= 100
    efficiency = table["ape"]["efficiency"]
    assert efficiency["steps"] == 2 and efficiency["optimizer_requests"] == 2
    assert efficiency["reflection_requests"] == 0
    assert efficiency["task_calls"] > 0 and efficiency["optimizer_tokens_per_step"] > 0
    assert table["cot"]["efficiency"] is None
    for run in summary["runs"]:
        assert run["settings"]["task_model"] == "gpo-sim/task"
        assert run["settings"]["provenance_sha256"].startswith("1bb398a5")
    md = (tmp_path / "results.md").read_text()
    assert "| cot | " in md and "| ape | " in md and "optimizer tokens / step" in md
    logs = {p: p.stat().st_size for p in (tmp_path / "runs").rglob("pytest.log")}
    assert len(logs) == 4

    second = _run(*args, work=tmp_path)
    assert second.returncode == 0, second.stdout + second.stderr
    assert second.stdout.count("stored result, not re-run") == 4
    assert {p: p.stat().st_size for p in logs} == logs  # no pytest ran again
    again = json.loads((tmp_path / "results.json").read_text())
    assert again["table"] == table


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--methods", "gpo,gpoo"), "unknown method 'gpoo'"),
        (("--tasks", "navigat"), "unknown task(s) navigat"),
        (("--sizes", "30,30,30"), "navigate: 40 examples, the splits need 90"),
    ],
)
def test_bad_input_is_one_clear_line_and_exit_2(
    tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    proc = _run("--dry-run", *args, work=tmp_path)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
