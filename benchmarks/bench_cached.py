"""Cached re-run: a suite whose every answer is in the response cache, against pytest's floor.

A suite of ``--cases`` cases is run once to fill the file cache, then re-run (``rw`` and
``replay``), each timed as a whole ``pytest`` subprocess, best of ``--repeats``. The floor is
``pytest`` over a file of the same number of trivial test functions. Reported: model calls of
the re-run (from the server's request count), plugin time per case (the suite item's setup +
call time / cases), whether litellm was imported, and the wall-time ratio to the floor.

    .venv/bin/python benchmarks/bench_cached.py [--cases 1000] [--repeats 3] [--json PATH]
"""

from __future__ import annotations

import argparse
from typing import Any

import harness


def main() -> None:
    """Fill the cache, then time the re-runs and the trivial-test floor."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    harness.common_args(parser)
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    with harness.workdir("cached") as tmp, harness.ServerProcess() as server:
        gpo_dir = tmp / "gpo"
        harness.write_suite(gpo_dir, "bench", cases=args.cases, api_base=server.base_url)
        harness.write_ini(gpo_dir)
        trivial_dir = tmp / "trivial"
        harness.write_trivial_tests(trivial_dir, tests=args.cases)
        harness.write_ini(trivial_dir)

        first = harness.check(
            harness.run_child(harness.pytest_cmd("--gpo-cache", "rw"), cwd=gpo_dir),
            "filling the cache",
        )
        filled = server.stats()["chat_requests"]
        rows.append(_row("gpo, first run (cache empty, rw)", first, filled, args.cases))

        def timed(label: str, cmd: list[str], cwd: Any) -> harness.ChildRun:
            best: harness.ChildRun | None = None
            for _ in range(args.repeats):
                server.reset()
                run = harness.check(harness.run_child(cmd, cwd=cwd), label)
                run.probe["calls"] = server.stats()["chat_requests"]
                if best is None or run.seconds < best.seconds:
                    best = run
            assert best is not None
            return best

        trivial = timed("trivial tests", harness.pytest_cmd(), trivial_dir)
        rerun = timed("cached re-run", harness.pytest_cmd("--gpo-cache", "rw"), gpo_dir)
        replay = timed("replay re-run", harness.pytest_cmd("--gpo-cache", "replay"), gpo_dir)

        rows.append(_row(f"pytest, {args.cases} trivial tests", trivial, 0, args.cases))
        for label, run in (
            ("gpo re-run, all cached (rw)", rerun),
            ("gpo re-run, --gpo-cache replay", replay),
        ):
            row = _row(label, run, int(run.probe["calls"]), args.cases)
            row["vs_trivial"] = round(run.seconds / trivial.seconds, 3)
            rows.append(row)

    notes = [
        f"best of {args.repeats} for the re-runs and the trivial floor; "
        "ms_per_case = the suite item's setup+call time / cases (for trivial tests: per test)."
    ]
    harness.table(f"Cached re-run ({args.cases} cases)", rows, notes=notes)
    harness.write_json(args.json, "cached", {"args": vars(args), "rows": rows})


def _row(label: str, run: harness.ChildRun, calls: int, cases: int) -> dict[str, Any]:
    probe = run.probe
    item_seconds = probe.get("gpo_seconds") if probe.get("gpo_items") else probe.get("item_seconds")
    imported = probe.get("imported", {})
    return {
        "run": label,
        "wall_s": round(run.seconds, 3),
        "model_calls": calls,
        "ms_per_case": round(1000 * float(item_seconds or 0) / cases, 3),
        "litellm_imported": imported.get("litellm"),
        "torch_imported": imported.get("torch"),
        "peak_rss_mb": round(run.max_rss_mb),
        "vs_trivial": "",
    }


if __name__ == "__main__":
    main()
