"""Markdown, JSON and terminal renderings of an optimization result."""

from __future__ import annotations

import json

from pytest_gpo.llm.types import Usage
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.result import (
    CandidateRecord,
    CaseOutcome,
    OptimizationResult,
    SplitScore,
    StepRecord,
)
from pytest_gpo.optimize.retrieval import TrajectoryEntry
from pytest_gpo.report.optimization import (
    escape_cell,
    optimize_json,
    optimize_markdown,
    optimize_terminal_lines,
    word_diff_markdown,
)
from pytest_gpo.results import RunResult
from pytest_gpo.serial import from_data, to_data

BEFORE = "Route the ticket.\nAnswer with one word.\nTicket: {{ ticket }}"
AFTER = "Route the support ticket.\nAnswer with one lowercase word.\nTicket: {{ ticket }}"


def _result(**kw: object) -> OptimizationResult:
    steps = [
        StepRecord(
            t=1,
            budget=49,
            batch=["c1", "c2"],
            candidates=[
                CandidateRecord("Route the support ticket. x", 2, "accepted", score=0.7),
                CandidateRecord("a | b\nnew line", 60, "over_budget", "60 > 49 words"),
                CandidateRecord("x\u2060y\U000e0100z", 1, "hidden_characters", "U+2060"),
            ],
            chosen=0,
            current_score=0.7,
            best_score=0.7,
        ),
        StepRecord(
            t=2,
            budget=None,
            batch=["c3"],
            candidates=[CandidateRecord(AFTER, 3, "accepted", score=0.8)],
            chosen=0,
            current_score=0.8,
            best_score=0.8,
        ),
    ]
    opt = Usage(calls=2, prompt_tokens=500, completion_tokens=80, cost=0.002)
    task = Usage(calls=40, cache_hits=4, prompt_tokens=4000, completion_tokens=40, cost=0.01)
    args: dict[str, object] = {
        "suite": "ticket_router",
        "initial_prompt": BEFORE,
        "best_prompt": AFTER,
        "accepted": True,
        "reason": "accepted: held-out test improved (0.500 → 0.750)",
        "config": OptimizeConfig(seed=7),
        "optimizer_model": "openai/gpt-4o",
        "task_model": "openai/gpt-4o-mini",
        "dataset_hash": "ab" * 32,
        "scores": {
            "train": SplitScore(0.55, 0.7),
            "eval": SplitScore(0.6, 0.8),
            "test": SplitScore(0.5, 0.75),
        },
        "test_before": [
            CaseOutcome("case|1", 0.0, False, "Billing\nteam", "billing"),
            CaseOutcome("c2", 1.0, True, "bug", "bug"),
        ],
        "test_after": [
            CaseOutcome("case|1", 1.0, True, "billing", "billing"),
            CaseOutcome("c2", 1.0, True, "bug", "bug"),
        ],
        "steps": steps,
        "trajectory": [
            TrajectoryEntry(BEFORE, 0.6),
            TrajectoryEntry("Route the support ticket. x", 0.7),
            TrajectoryEntry(AFTER, 0.8),
        ],
        "rejected": {"over_budget": 1},
        "optimizer_usage": opt,
        "task_usage": task,
        "optimizer_requests": 2,
        "evaluations": 6,
        "split_sizes": {"train": 8, "eval": 6, "test": 6},
        "total_steps": 2,
    }
    args.update(kw)
    return OptimizationResult(**args)  # type: ignore[arg-type]


def test_markdown_has_diff_scores_flips_steps_chart_and_provenance() -> None:
    md = optimize_markdown(_result())
    assert md.startswith("### GPO: ticket\\_router\n")
    assert "✅ **accepted**: held-out test improved (0.500 → 0.750)" in md
    assert "```diff\n--- ticket_router (before)\n+++ ticket_router (after)\n" in md
    assert "-Route the ticket.\n-Answer with one word.\n+Route the support ticket.\n" in md
    assert "Word-level (2 words changed):" in md
    assert "> Route the **support** ticket. Answer with one **lowercase** word." in md
    assert "| test (held out) | 6       | 0.500    | 0.750   | +0.250   |" in md
    # flipped case: the pipe in the id and the newline in the output are escaped
    assert "case\\|1" in md and "Billing<br>team" in md
    assert "| 1      | 2 / 49" in md and "| 2      | 3 / ∞" in md
    assert "```mermaid\nxychart-beta\n" in md
    assert "line [60.0, 70.0, 80.0]" in md
    assert 'x-axis "step" [0, 1, 2]' in md
    assert "a \\| b<br>new line" in md  # a rejected candidate's text, escaped
    # a rejected candidate's invisible characters are shown, not hidden, to the reviewer
    assert "x\\u2060y\\U000e0100z" in md and "\u2060" not in md
    assert "1 over_budget (changed more words than the budget allows)" in md
    assert "openai/gpt-4o-mini" in md and "| seed" in md and "abababababababab" in md
    assert "$0.0120" in md
    for line in md.splitlines():
        if line.startswith("|"):
            cells = line.replace("\\|", "").count("|")
            assert cells >= 3, line


def test_unchanged_and_not_accepted() -> None:
    result = _result(
        best_prompt=BEFORE,
        accepted=False,
        reason="not accepted: no candidate beat the initial prompt on eval (0.600)",
        stopped_reason="call budget reached at the optimizer call (max calls)",
    )
    md = optimize_markdown(result)
    assert "❌ **not accepted**" in md and "```diff" not in md
    assert "No change" in md and "Stopped early after step 2/2" in md
    lines = optimize_terminal_lines(result)
    assert lines[0] == (
        "gpo ticket_router: not accepted: no candidate beat the initial prompt on eval (0.600)"
    )
    assert any("stopped early" in line for line in lines)


def test_fences_survive_backticks_in_prompts() -> None:
    md = optimize_markdown(_result(best_prompt=AFTER + "\nUse ```json``` blocks."))
    assert "````diff\n" in md


def test_json_and_terminal_lines() -> None:
    result = _result()
    data = optimize_json(result)
    json.dumps(data)
    assert data["should_write"] is True and data["words_changed"] == 2
    assert data["diff"].startswith("--- ticket_router (before)")
    assert [f["case_id"] for f in data["flipped"]] == ["case|1"]
    assert data["flipped"][0]["fixed"] is True
    assert to_data(from_data(OptimizationResult, data)) == to_data(result)
    lines = optimize_terminal_lines(result)
    assert lines[0] == "gpo ticket_router: accepted: held-out test improved (0.500 → 0.750)"
    assert "eval 0.600 -> 0.800 | test 0.500 -> 0.750 | train 0.550 -> 0.700" in lines[1]
    assert "1 rejected (over_budget 1)" in lines[2]
    assert "prompt: 2 words changed, accepted for write-back" in lines[3]


def test_escaping_helpers() -> None:
    assert escape_cell("a|b\nc<d>") == "a\\|b<br>c&lt;d&gt;"
    assert escape_cell("x" * 10, 5) == "xxxx…"
    assert word_diff_markdown("keep *this* old", "keep *this* new") == (
        "keep \\*this\\* ~~old~~ **new**"
    )


def test_missing_final_newline_is_marked_in_the_diff() -> None:
    md = optimize_markdown(_result(initial_prompt=BEFORE + "\n", best_prompt=AFTER))
    assert "+Ticket: {{ ticket }}\n\\ No newline at end of file\n" in md


def _samples(case_id: str, outputs: list[tuple[str, bool]], min_pass: int) -> CaseOutcome:
    runs = [
        RunResult(i, out, 1.0 if ok else 0.0, ok, "ok" if ok else "wrong")
        for i, (out, ok) in enumerate(outputs)
    ]
    passes = sum(ok for _, ok in outputs)
    score = sum(r.score for r in runs) / len(runs)
    return CaseOutcome(case_id, score, passes >= min_pass, runs[0].output, "179.99", runs, min_pass)


def test_a_repeated_flip_shows_every_sample_and_the_rule_that_decided() -> None:
    """Issue: `headphones-1 fail → pass` showed `179.99` before and after (the first sample's
    output, which passed both times), so the table contradicted its own verdict."""
    before = _samples("headphones-1", [("179.99", True), ("180", False), ("18", False)], 2)
    after = _samples("headphones-1", [("179.99", True), ("179.99", True), ("180", False)], 2)
    md = optimize_markdown(_result(test_before=[before], test_after=[after]))
    row = next(line for line in md.splitlines() if line.startswith("| headphones-1"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "fail: passed 1/3 runs (needs 2)"
    assert cells[2] == "pass: passed 2/3 runs (needs 2)"
    assert cells[4] == "#1 pass 1.000: 179.99<br>#2 fail 0.000: 180<br>#3 fail 0.000: 18"
    assert cells[5] == "#1 pass 1.000: 179.99<br>#2 pass 1.000: 179.99<br>#3 fail 0.000: 180"
    data = optimize_json(_result(test_before=[before], test_after=[after]))
    assert [r["output"] for r in data["flipped"][0]["before"]["runs"]] == ["179.99", "180", "18"]


def test_a_resumed_run_shows_what_this_session_sent() -> None:
    """Issue: a resumed run printed the whole run's calls as if this session had made them."""
    result = _result(resumed_from=2)
    session = Usage(calls=0, cache_hits=12)
    lines = optimize_terminal_lines(result, session)
    assert "calls over the whole run: 2 optimizer, 40 task" in lines[2]
    assert lines[3] == "  resumed after step 2 from its checkpoint; this session sent 0 calls"
    md = optimize_markdown(result, session)
    assert "| sent in this session | resumed after step 2 | 0 " in md
    fresh = optimize_markdown(_result(), Usage(calls=42))
    assert "sent in this session" not in fresh
