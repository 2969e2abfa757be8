"""Start-up: ``pytest --collect-only`` over N suite files against N trivial test files.

Each suite file has its own prompt file and a 10-case JSONL file; each trivial test file holds
one trivial test. Both trees are collected by ``pytest --collect-only -q`` in a subprocess,
best of ``--repeats`` (9), the two run alternately. Also timed: ``pytest --help`` with the
plugin and with ``-p no:gpo``.
The probe plugin reports whether litellm or torch were imported (they must not be).

    .venv/bin/python benchmarks/bench_startup.py [--files 50,500] [--repeats 9] [--json PATH]
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import harness


def _best_pair(
    a: tuple[list[str], Path, str], b: tuple[list[str], Path, str], repeats: int
) -> tuple[harness.ChildRun, harness.ChildRun, tuple[float, float]]:
    """Best of ``repeats`` for each of two commands, run alternately (a, b, a, b, ...).

    Alternating puts both under the same background load: on a shared machine, running all of
    one and then all of the other can move the ratio by more than the difference measured.
    The first run of each writes the bytecode caches that the later runs use. Returns the
    fastest run of each and the least CPU time of each.
    """
    runs: tuple[list[harness.ChildRun], list[harness.ChildRun]] = ([], [])
    for _ in range(repeats):
        for (cmd, cwd, what), out in zip((a, b), runs, strict=True):
            out.append(harness.check(harness.run_child(cmd, cwd=cwd), what))
    best = [min(r, key=lambda run: run.seconds) for r in runs]
    cpu = (min(r.cpu_seconds for r in runs[0]), min(r.cpu_seconds for r in runs[1]))
    return best[0], best[1], cpu


def _row(
    what: str, gpo: harness.ChildRun, trivial: harness.ChildRun, cpu: tuple[float, float]
) -> dict[str, Any]:
    """One table row: pytest-gpo's run against the trivial one, wall and CPU."""
    gpo_cpu, trivial_cpu = cpu
    return {
        "what": what,
        "gpo_s": round(gpo.seconds, 3),
        "trivial_s": round(trivial.seconds, 3),
        "ratio": round(gpo.seconds / trivial.seconds, 3),
        "gpo_cpu_s": round(gpo_cpu, 3),
        "trivial_cpu_s": round(trivial_cpu, 3),
        "cpu_ratio": round(gpo_cpu / trivial_cpu, 3),
        "litellm_imported": gpo.probe.get("imported", {}).get("litellm"),
        "torch_imported": gpo.probe.get("imported", {}).get("torch"),
        "gpo_peak_rss_mb": round(gpo.max_rss_mb),
    }


def main() -> None:
    """Generate the trees, collect them, time --help."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--files", default="50,500")
    parser.add_argument("--cases-per-suite", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=9)
    harness.common_args(parser)
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    with harness.workdir("startup") as tmp:
        for count in (int(n) for n in args.files.split(",") if n):
            gpo_dir = tmp / f"gpo{count}"
            for i in range(count):
                harness.write_suite(
                    gpo_dir / f"pkg{i // 50:02d}",
                    f"s{i:04d}",
                    cases=args.cases_per_suite,
                    api_base="http://127.0.0.1:9/v1",
                )
            harness.write_ini(gpo_dir)
            trivial_dir = tmp / f"trivial{count}"
            harness.write_trivial_tests(trivial_dir, tests=count, files=count)
            harness.write_ini(trivial_dir)

            gpo, trivial, cpu = _best_pair(
                (harness.pytest_cmd("--collect-only"), gpo_dir, f"collecting {count} suites"),
                (
                    harness.pytest_cmd("--collect-only"),
                    trivial_dir,
                    f"collecting {count} test files",
                ),
                args.repeats,
            )
            collected = gpo.stdout.count(".gpo.yaml::")
            if collected != count:
                raise RuntimeError(
                    f"collected {collected} of {count} suites:\n{gpo.stdout[-2000:]}"
                )
            rows.append(_row(f"--collect-only, {count} files", gpo, trivial, cpu))

        with_plugin, without, cpu = _best_pair(
            (harness.pytest_cmd("--help"), tmp, "pytest --help"),
            (harness.pytest_cmd("--help", "-p", "no:gpo"), tmp, "pytest --help -p no:gpo"),
            args.repeats,
        )
        rows.append(_row("pytest --help", with_plugin, without, cpu))

    harness.table(
        "Start-up",
        rows,
        notes=[
            f"best of {args.repeats}, run alternately (CPU = user + system, the least of the "
            "runs); for --help the 'trivial' column is pytest --help -p no:gpo (the plugin "
            "disabled)."
        ],
    )
    harness.write_json(args.json, "startup", {"args": vars(args), "rows": rows})


if __name__ == "__main__":
    main()
