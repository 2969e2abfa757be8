"""Fully cached re-run with a ``semantic`` scorer against the same re-run without one.

Two projects share one file cache and hold the same ``--cases``-case suite (same prompt, same
cases, so the same cached answers): one scores with ``exact`` only, the other with ``exact``
plus ``semantic`` (the bundled all-MiniLM-L6-v2). The semantic project is run once to fill the
cache (answers and similarities; this run loads torch and embeds every case), the plain one
once to warm its bytecode; then both are re-run, each in a fresh ``pytest`` process, in
alternating order ``--repeats`` times, in ``rw`` and ``replay`` mode. Reported: the median
wall time of each, the ratio semantic / plain (target: <= 1.5), model calls (from the server),
and whether torch, sentence-transformers or litellm were imported.

    .venv/bin/python benchmarks/bench_semantic_cached.py [--cases 1000] [--repeats 5] [--json PATH]
"""

from __future__ import annotations

import argparse
import statistics
from typing import Any

import harness

TARGET = 1.5


def main() -> None:
    """Fill the cache, then time alternating cached re-runs with and without ``semantic``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    harness.common_args(parser)
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    ratios: dict[str, float] = {}
    with harness.workdir("semantic-cached") as tmp, harness.ServerProcess() as server:
        cache_dir = tmp / "cache"
        projects = {"plain": tmp / "plain", "semantic": tmp / "semantic"}
        scorers: dict[str, list[dict[str, Any]]] = {
            "plain": [{"type": "exact", "ignore_case": True}],
            "semantic": [{"type": "exact", "ignore_case": True}, {"type": "semantic"}],
        }
        for name, directory in projects.items():
            harness.write_suite(
                directory,
                "bench",
                cases=args.cases,
                api_base=server.base_url,
                scorers=scorers[name],
            )
            harness.write_ini(directory, gpo_cache_dir=str(cache_dir))

        fill = harness.check(
            harness.run_child(harness.pytest_cmd("--gpo-cache", "rw"), cwd=projects["semantic"]),
            "filling the cache (semantic)",
        )
        filled = server.stats()["chat_requests"]
        rows.append(_row("semantic, first run (cache empty, rw)", [fill], filled))
        harness.check(
            harness.run_child(harness.pytest_cmd("--gpo-cache", "rw"), cwd=projects["plain"]),
            "warming the plain project",
        )

        runs: dict[tuple[str, str], list[harness.ChildRun]] = {}
        calls: dict[tuple[str, str], int] = {}
        for rep in range(args.repeats):
            # alternate which goes first, so that drift in the machine's load hits both alike
            order = ("plain", "semantic") if rep % 2 == 0 else ("semantic", "plain")
            for mode in ("rw", "replay"):
                for name in order:
                    server.reset()
                    run = harness.check(
                        harness.run_child(
                            harness.pytest_cmd("--gpo-cache", mode), cwd=projects[name]
                        ),
                        f"{name} re-run ({mode})",
                    )
                    runs.setdefault((name, mode), []).append(run)
                    calls[(name, mode)] = calls.get((name, mode), 0) + int(
                        server.stats()["chat_requests"]
                    )

        for mode in ("rw", "replay"):
            plain = statistics.median(r.seconds for r in runs[("plain", mode)])
            for name in ("plain", "semantic"):
                row = _row(f"{name}, all cached ({mode})", runs[(name, mode)], calls[(name, mode)])
                if name == "semantic":
                    ratio = row["median_s"] / plain
                    ratios[mode] = ratio
                    row["vs_plain"] = round(ratio, 3)
                rows.append(row)

    notes = [
        f"{args.cases} cases; median (and best) of {args.repeats} alternating runs per row, each "
        "a fresh pytest process; vs_plain = median semantic / median plain, target <= "
        f"{TARGET}: " + ", ".join(f"{mode} {ratio:.2f}" for mode, ratio in ratios.items()) + "."
    ]
    harness.table(
        f"Fully cached re-run with a semantic scorer ({args.cases} cases)", rows, notes=notes
    )
    harness.write_json(
        args.json,
        "semantic_cached",
        {"args": vars(args), "rows": rows, "ratios": ratios, "target": TARGET},
    )


def _row(label: str, runs: list[harness.ChildRun], calls: int) -> dict[str, Any]:
    imported = [r.probe.get("imported", {}) for r in runs]
    return {
        "run": label,
        "median_s": round(statistics.median(r.seconds for r in runs), 3),
        "best_s": round(min(r.seconds for r in runs), 3),
        "model_calls": calls,
        "torch_imported": any(i.get("torch") for i in imported),
        "sentence_transformers_imported": any(i.get("sentence_transformers") for i in imported),
        "litellm_imported": any(i.get("litellm") for i in imported),
        "peak_rss_mb": round(max(r.max_rss_mb for r in runs)),
        "vs_plain": "",
    }


if __name__ == "__main__":
    main()
