"""Reproduce the GPO paper's BIG-Bench Hard tables with pytest-gpo (issue #14).

For every task x method x seed it writes prompt suites into ``--work`` and runs ``pytest
--gpo-optimize`` / ``pytest`` on them (the product, not a copy of it), then writes the table
in the layout of the paper's Table 5 and Tables 2-3 as markdown and JSON. See
docs/reproducing-gpo.md.

    python benchmarks/paper/reproduce.py --task-model hosted_vllm/meta-llama/Llama-2-7b-chat-hf \\
        --optimizer-model openai/gpt-3.5-turbo --methods table5 --seeds 3
    python benchmarks/paper/reproduce.py --quick          # smoke test on the simulated models
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
# the pytest-gpo of this checkout, which the pytest runs use too (bbh_run puts it on PYTHONPATH)
sys.path.insert(1, str(HERE.parent.parent))

import bbh_data  # noqa: E402
import bbh_estimate  # noqa: E402
import bbh_methods  # noqa: E402
import bbh_run  # noqa: E402
import bbh_table  # noqa: E402

QUICK_SIZES = (8, 8, 16)


def _sizes(text: str) -> tuple[int, int, int]:
    parts = [int(p) for p in text.split(",")]
    if len(parts) != 3 or min(parts) < 1:
        raise argparse.ArgumentTypeError("--sizes takes train,eval,test counts, e.g. 48,48,144")
    return parts[0], parts[1], parts[2]


def _seeds(text: str) -> list[int]:
    if "," in text:
        return [int(p) for p in text.split(",") if p.strip()]
    n = int(text)
    if n < 1:
        raise argparse.ArgumentTypeError("--seeds takes a count >= 1 or a list such as 0,1,2")
    return list(range(n))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line (see docs/reproducing-gpo.md)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--task-model", help="litellm name of the task model (e.g. hosted_vllm/...)")
    p.add_argument("--optimizer-model", help="litellm name of the optimizer model")
    p.add_argument(
        "--task-api-base",
        default=None,
        help="endpoint of the task model only (the suites' params.api_base), e.g. a vLLM "
        "server at http://127.0.0.1:8000/v1",
    )
    p.add_argument("--tasks", default=None, help="comma list, 'lite' (default) or 'all'")
    p.add_argument(
        "--methods",
        default=None,
        help="comma list of methods or groups (table5, table2, table3, all); default table5",
    )
    p.add_argument("--seeds", type=_seeds, default=None, help="a count (3: seeds 0,1,2) or a list")
    p.add_argument("--work", type=Path, default=Path("paper-runs"), help="work directory")
    p.add_argument("--data-dir", type=Path, default=bbh_data.DEFAULT_CACHE)
    p.add_argument(
        "--bigbench-archive",
        type=Path,
        default=None,
        help="an existing bigbench-1.0.0.tar.gz instead of pip download",
    )
    p.add_argument("--sizes", type=_sizes, default=None, help="train,eval,test (48,48,144)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the case sampling")
    p.add_argument("--steps", type=int, default=None, help="optimizer steps (default: 3 epochs)")
    p.add_argument("--candidates", type=int, default=None, help="per step (default 8)")
    p.add_argument("--max-tokens", type=int, default=512, help="task model's max_tokens")
    p.add_argument("--max-calls", type=int, default=None, help="cap per optimize run")
    p.add_argument("--max-cost", type=float, default=None, help="cap per optimize run, USD")
    p.add_argument("--concurrency", type=int, default=None)
    p.add_argument(
        "--racing",
        choices=("on", "off"),
        default="on",
        help="candidate racing, where pytest-gpo has it (default on: the winner "
        "full evaluation picks, fewer calls)",
    )
    p.add_argument(
        "--price",
        type=float,
        nargs=2,
        metavar=("IN", "OUT"),
        default=None,
        help="USD per million input/output tokens, for the estimate of a model litellm has no "
        "price for",
    )
    p.add_argument("--dry-run", action="store_true", help="print the pre-flight estimate only")
    p.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: committed data extract, sizes 8,8,16, 2 steps, 4 candidates, "
        "1 seed, simulated models unless given",
    )
    p.add_argument("--out", type=Path, default=None, help="results stem (default WORK/results)")
    args = p.parse_args(argv)
    if args.quick:
        args.task_model = args.task_model or "gpo-sim/task"
        args.optimizer_model = args.optimizer_model or "gpo-sim/optimizer"
        args.tasks = args.tasks or "navigate,object_counting"
        args.methods = args.methods or "cot,ape,gpo"
        args.seeds = args.seeds or [0]
        args.sizes = args.sizes or QUICK_SIZES
        args.steps = args.steps or 2
        args.candidates = args.candidates or 4
    if not args.task_model or not args.optimizer_model:
        p.error("--task-model and --optimizer-model are required (or --quick)")
    args.tasks = args.tasks or "lite"
    args.methods = args.methods or "table5"
    args.seeds = args.seeds or [0, 1, 2]
    args.sizes = args.sizes or bbh_data.PAPER_SIZES
    args.candidates = args.candidates or 8
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the harness; 0 when every unit ran, 1 when one failed, 2 on bad input."""
    args = parse_args(argv)
    if args.tasks == "lite":
        tasks = list(bbh_data.LITE)
    elif args.tasks == "all":
        tasks = list(bbh_data.TASKS)
    else:
        tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    try:
        methods = bbh_methods.expand(args.methods)
        data, provenance = bbh_data.load_task_data(
            tasks, cache=args.data_dir, archive=args.bigbench_archive, quick=args.quick
        )
        cases = {t: bbh_data.make_cases(t, data[t], args.sizes, args.data_seed) for t in tasks}
    except (ValueError, bbh_data.DataError) as exc:
        print(f"[paper] error: {exc}", file=sys.stderr)
        return 2
    simulated = any(m.startswith("gpo-sim/") for m in (args.task_model, args.optimizer_model))
    if simulated:
        print(f"[paper] {bbh_table.SIMULATED}")
    settings = bbh_run.RunSettings(
        task_model=args.task_model,
        optimizer_model=args.optimizer_model,
        sizes=args.sizes,
        data_seed=args.data_seed,
        steps=args.steps,
        candidates=args.candidates,
        max_tokens=args.max_tokens,
        max_calls=args.max_calls,
        max_cost=args.max_cost,
        concurrency=args.concurrency,
        predefined_splits=bbh_run.predefined_splits_supported(),
        provenance_sha256=str(provenance.get("sha256")),
        racing=args.racing if bbh_run.racing_supported() else None,
        task_api_base=args.task_api_base,
    )
    print(
        f"[paper] data: {provenance.get('archive')} sha256 {provenance.get('sha256')}"
        + (" (committed extract)" if args.quick else "")
    )
    if not settings.predefined_splits:
        print(
            "[paper] this pytest-gpo has no predefined splits: each optimize run splits the "
            "train+eval cases by its own hash (0.4/0.4/0.2); the table's test cases stay the "
            "sampled ones"
        )
    plan = bbh_estimate.estimate(tasks, methods, args.seeds, cases, settings, args.price)
    for line in plan.lines():
        print(f"[paper] {line}")
    if args.dry_run:
        return 0
    units = [(t, m, s) for m in methods for t in tasks for s in args.seeds]
    results: list[dict[str, Any]] = []
    failed = 0
    for i, (task, name, seed) in enumerate(units, 1):
        method = bbh_methods.METHODS[name]
        missing = bbh_methods.unavailable(method)
        label = f"[paper] {i}/{len(units)} {task} {name} seed {seed}"
        if missing is not None:
            print(f"{label}: {missing}")
            results.append(
                {
                    "task": task,
                    "method": name,
                    "seed": seed,
                    "status": "unavailable",
                    "error": missing,
                }
            )
            continue
        started = time.monotonic()
        print(f"{label}: running", flush=True)
        unit = args.work / "runs" / task / name / f"seed-{seed}"
        result = bbh_run.run_unit(unit, task, method, seed, cases[task], settings, print)
        results.append(result)
        took = time.monotonic() - started
        if result.get("status") != "ok":
            failed += 1
            print(f"{label}: FAILED: {result.get('error')} (log: {unit / 'pytest.log'})")
        elif result.get("resumed"):
            print(f"{label}: test {100 * result['test_score']:.2f} (stored result, not re-run)")
        else:
            print(f"{label}: test {100 * result['test_score']:.2f} ({took:.1f} s)", flush=True)
    write_results(args, tasks, methods, results, settings, provenance, simulated, plan)
    return 1 if failed else 0


def write_results(
    args: argparse.Namespace,
    tasks: list[str],
    methods: list[str],
    results: list[dict[str, Any]],
    settings: bbh_run.RunSettings,
    provenance: dict[str, Any],
    simulated: bool,
    plan: bbh_estimate.Plan,
) -> None:
    """results.md and results.json (the table, every run's settings and numbers)."""
    import pytest_gpo

    summary: dict[str, Any] = {
        "simulated": simulated,
        "note": bbh_table.SIMULATED if simulated else None,
        "tasks": tasks,
        "methods": methods,
        "seeds": args.seeds,
        "settings": settings.record(),
        "provenance": provenance,
        "product_version": pytest_gpo.__version__,
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "estimate": plan.to_dict(),
        "table": bbh_table.aggregate(results, tasks, methods),
        "runs": results,
    }
    stem = args.out or args.work / "results"
    stem.parent.mkdir(parents=True, exist_ok=True)
    md = stem.with_suffix(".md")
    md.write_text(bbh_table.markdown(summary), encoding="utf-8")
    stem.with_suffix(".json").write_text(
        json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8"
    )
    print(f"[paper] table: {md} (JSON beside it)")
    if simulated:
        print(f"[paper] {bbh_table.SIMULATED}")


if __name__ == "__main__":
    sys.exit(main())
