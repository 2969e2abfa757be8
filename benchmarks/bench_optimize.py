"""Cost of optimization per step: optimizer completions, task calls, tokens, embedding time.

Runs ``pytest --gpo-optimize --gpo-dry-run`` over the example project's ``ticket_router`` suite
on the simulated models, once per preset (``gpo`` = the default), each in a fresh copy with an
empty cache, and reads the JSON report (``--gpo-report``) and the live progress lines. A last
run repeats ``gpo`` over the filled cache (its checkpoint removed, so that it is not resumed).
The reference implementation's pattern (8 optimizer calls with n=8 for 8 candidates: 64
completions a step) is shown for comparison, derived from the measured ``gpo`` row, not run.

    .venv/bin/python benchmarks/bench_optimize.py [--presets gpo,ape,apo,opro,pe2]
        [--steps N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path
from typing import Any

import harness

EXAMPLE = harness.ROOT / "tests" / "fixtures" / "support_desk"
SUITE = "suites/ticket_router.gpo.yaml"
_STEP_RE = re.compile(r"step (\d+)/(\d+):.*calls (\d+) opt \+ (\d+) task")


def _copy_example(target: Path) -> None:
    shutil.copytree(EXAMPLE, target, ignore=shutil.ignore_patterns(".gpo", "__pycache__"))


def run_preset(workdir: Path, preset: str, steps: int | None) -> dict[str, Any]:
    """One optimize run; the JSON report's optimization record plus process figures."""
    args = [
        SUITE,
        "--gpo-optimize",
        "--gpo-dry-run",
        "--gpo-preset",
        preset,
        "--gpo-report",
        ".gpo/bench.md",
    ]
    if steps is not None:
        args += ["--gpo-steps", str(steps)]
    run = harness.check(
        harness.run_child(harness.pytest_cmd(*args), cwd=workdir), f"optimize with preset {preset}"
    )
    report = json.loads((workdir / ".gpo" / "bench.json").read_text(encoding="utf-8"))
    section = next(s for s in report["sections"] if s.get("title") == "Optimization")
    record: dict[str, Any] = section["data"]["ticket_router"]
    task_deltas: list[int] = []
    previous = None
    for match in _STEP_RE.finditer(run.stdout):
        task = int(match.group(4))
        if previous is not None:
            task_deltas.append(task - previous)
        previous = task
    return {"record": record, "run": run, "task_deltas": task_deltas}


def _row(label: str, got: dict[str, Any]) -> dict[str, Any]:
    rec = got["record"]
    run: harness.ChildRun = got["run"]
    steps = max(1, len(rec["steps"]))
    cfg = rec["config"]
    eval_size = int(rec["split_sizes"].get("eval", 0))
    completions = [int(s.get("completions", 0)) for s in rec["steps"]]
    opt, task = rec["optimizer_usage"], rec["task_usage"]
    deltas = got["task_deltas"]
    return {
        "run": label,
        "steps": len(rec["steps"]),
        "candidates": cfg["candidates"],
        "opt_requests": rec["optimizer_requests"] + rec["reflection_requests"],
        "opt_calls": opt["calls"],
        "opt_completions_per_step": round(sum(completions) / steps, 2),
        "task_calls_per_step_max": cfg["candidates"] * eval_size,
        "task_calls_per_step": round(sum(deltas) / len(deltas), 1) if deltas else "",
        "task_calls_total": task["calls"],
        "task_cache_hits": task["cache_hits"],
        "opt_prompt_tok_per_step": round(opt["prompt_tokens"] / steps),
        "opt_compl_tok_per_step": round(opt["completion_tokens"] / steps),
        "task_tok_per_step": round((task["prompt_tokens"] + task["completion_tokens"]) / steps),
        "embedding_s": round(float(rec.get("embedding_seconds") or 0.0), 2),
        "wall_s": round(run.seconds, 1),
        "peak_rss_mb": round(run.max_rss_mb),
        "torch_imported": run.probe.get("imported", {}).get("torch"),
        "test_before_after": (
            f"{rec['scores']['test']['before']:.3f}->{rec['scores']['test']['after']:.3f}"
        ),
    }


def main() -> None:
    """Run every preset, then gpo again over a warm cache."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="gpo,ape,apo,opro,pe2")
    parser.add_argument(
        "--steps", type=int, default=None, help="default: the suite's own (ticket_router: 6)"
    )
    harness.common_args(parser)
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    records: dict[str, Any] = {}
    with harness.workdir("optimize") as tmp:
        for preset in (p for p in args.presets.split(",") if p):
            work = tmp / preset
            _copy_example(work)
            got = run_preset(work, preset, args.steps)
            records[preset] = got["record"]
            rows.append(_row(f"preset {preset}" + (" (default)" if preset == "gpo" else ""), got))
            if preset == "gpo":
                # Without the finished run's checkpoint, or the re-run would just resume it.
                shutil.rmtree(work / ".gpo" / "runs", ignore_errors=True)
                warm = run_preset(work, preset, args.steps)
                rows.append(_row("preset gpo again, warm cache", warm))
                ref = dict(rows[0])
                ref.update(
                    {
                        "run": "reference pattern (derived: 8 calls x n=8)",
                        "opt_requests": 8 * ref["steps"],
                        "opt_calls": 8 * ref["steps"],
                        "opt_completions_per_step": 64,
                        "opt_prompt_tok_per_step": 8 * ref["opt_prompt_tok_per_step"],
                        "opt_compl_tok_per_step": 8 * ref["opt_compl_tok_per_step"],
                        "task_calls_per_step": "",
                        "task_calls_total": "",
                        "task_cache_hits": "",
                        "task_tok_per_step": "",
                        "embedding_s": "",
                        "wall_s": "",
                        "peak_rss_mb": "",
                        "torch_imported": "",
                        "test_before_after": "",
                    }
                )
                rows.append(ref)

    harness.table(
        "Optimization cost (ticket_router, simulated models)",
        rows,
        notes=[
            "per step: opt_completions = optimizer completions (one request with n=candidates); "
            "task_calls_per_step = mean over steps 2.. of the task-model calls a step made "
            "(cache hits and in-run duplicates excluded), against candidates x |eval|. "
            "The reference row multiplies the measured gpo optimizer figures by 8 (8 requests "
            "with n=8 instead of one with n=8)."
        ],
    )
    harness.write_json(
        args.json, "optimize", {"args": vars(args), "rows": rows, "records": records}
    )


if __name__ == "__main__":
    main()
