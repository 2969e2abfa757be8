"""The paper's table from the harness's results: markdown and JSON.

Scores are test accuracy x 100, mean ± sample standard deviation over the seeds (± is 0.00 for
one seed). ``avg`` is the mean over tasks, per seed, then over seeds. ``gain vs CoT`` is the
method's average minus CoT's. ``up to`` is the paper's "improvement up to X%": per task the
relative gain ``(method - best baseline) / best baseline``, where the best baseline is the
highest-scoring of the baseline methods run (Empty, CoT, APE, APO, OPRO, PE2, SGDM; the
method itself left out), and the largest of those over the tasks. The efficiency table
counts, per optimize run and averaged over tasks and seeds, the optimizer requests (a request
asks for all of a step's candidates at once), reflection requests, task-model calls and
tokens per completed step, from the product's own report.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from bbh_methods import BASELINES

SIMULATED = "simulated models: plumbing check, not the paper's numbers"


def _stats(values: Sequence[float]) -> dict[str, Any]:
    return {
        "mean": statistics.fmean(values),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
        "values": list(values),
    }


def _cell(s: Mapping[str, Any] | None) -> str:
    return "–" if not s else f"{s['mean']:.2f} ± {s['sd']:.2f}"


def aggregate(
    results: Sequence[Mapping[str, Any]], tasks: Sequence[str], methods: Sequence[str]
) -> dict[str, Any]:
    """Per method: per-task and average score statistics, gains and efficiency."""
    table: dict[str, Any] = {}
    for m in methods:
        runs = [r for r in results if r["method"] == m]
        if runs and all(r.get("status") == "unavailable" for r in runs):
            table[m] = {"status": "unavailable", "note": runs[0].get("error")}
            continue
        ok = [r for r in runs if r.get("status") == "ok" and r.get("test_score") is not None]
        per_task: dict[str, Any] = {}
        for t in tasks:
            vals = [100 * float(r["test_score"]) for r in ok if r["task"] == t]
            if vals:
                per_task[t] = _stats(vals)
        seeds = sorted({r["seed"] for r in ok})
        per_seed = []
        for s in seeds:
            got = {r["task"]: 100 * float(r["test_score"]) for r in ok if r["seed"] == s}
            if all(t in got for t in tasks):
                per_seed.append(statistics.fmean(got[t] for t in tasks))
        opt = [r["optimize"] for r in ok if "optimize" in r]
        table[m] = {
            "status": "ok" if ok else "no results",
            "tasks": per_task,
            "avg": _stats(per_seed) if per_seed else None,
            "errors": [
                f"{r['task']} seed {r['seed']}: {r.get('error')}" for r in runs if r not in ok
            ],
            "efficiency": _efficiency(opt) if opt else None,
        }
    cot = table.get("cot", {}).get("avg")
    for m, row in table.items():
        if row["status"] != "ok":
            continue
        row["gain_vs_cot"] = None if not cot or not row["avg"] else row["avg"]["mean"] - cot["mean"]
        rel: dict[str, float] = {}
        for t, s in row["tasks"].items():
            base = [
                table[b]["tasks"][t]["mean"]
                for b in BASELINES
                if b != m and b in table and table[b]["status"] == "ok" and t in table[b]["tasks"]
            ]
            if base and max(base) > 0:
                rel[t] = 100 * (s["mean"] - max(base)) / max(base)
        row["rel_gain_vs_best_baseline"] = rel
        row["up_to"] = max(rel.values()) if rel else None
    return table


def _efficiency(opt: Sequence[Mapping[str, Any]]) -> dict[str, float]:
    def mean(key: str) -> float:
        return statistics.fmean(float(o.get(key) or 0) for o in opt)

    def per_step(key: str) -> float:
        return statistics.fmean(float(o.get(key) or 0) / max(1, int(o["steps"])) for o in opt)

    return {
        "steps": mean("steps"),
        "optimizer_requests": mean("optimizer_requests"),
        "reflection_requests": mean("reflection_requests"),
        "optimizer_calls": mean("optimizer_calls"),
        "task_calls": mean("task_calls"),
        "optimizer_tokens_per_step": per_step("optimizer_tokens"),
        "task_tokens_per_step": per_step("task_tokens"),
        "task_calls_per_step": per_step("task_calls"),
    }


def markdown(summary: Mapping[str, Any]) -> str:
    """The tables and the settings as markdown."""
    tasks: list[str] = summary["tasks"]
    table: Mapping[str, Any] = summary["table"]
    out = ["# GPO paper harness: BIG-Bench Hard results", ""]
    if summary["simulated"]:
        out += [f"**{SIMULATED}.**", ""]
    seeds = ", ".join(str(s) for s in summary["seeds"])
    out += [
        f"Test accuracy x 100 on {summary['settings']['sizes'][2]} test cases a task, "
        f"mean ± sd over seeds {seeds}.",
        "",
        "| method | " + " | ".join(tasks) + " | avg | gain vs CoT | up to (vs best baseline) |",
        "|---" * (len(tasks) + 4) + "|",
    ]
    for m, row in table.items():
        if row["status"] != "ok":
            note = row.get("note") or row["status"]
            out.append(f"| {m} | " + " | ".join("–" for _ in tasks) + f" | – | – | {note} |")
            continue
        gain = row.get("gain_vs_cot")
        up = row.get("up_to")
        out.append(
            f"| {m} | "
            + " | ".join(_cell(row["tasks"].get(t)) for t in tasks)
            + f" | {_cell(row['avg'])} | {'–' if gain is None else f'{gain:+.2f}'} | "
            + f"{'–' if up is None else f'{up:+.1f}%'} |"
        )
    out += [
        "",
        "## Cost per optimize run (mean over tasks and seeds)",
        "",
        "| method | steps | optimizer requests | reflection requests | task calls "
        "| optimizer tokens / step | task tokens / step |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, row in table.items():
        e = row.get("efficiency") if row["status"] == "ok" else None
        if not e:
            continue
        out.append(
            f"| {m} | {e['steps']:.1f} | {e['optimizer_requests']:.1f} | "
            f"{e['reflection_requests']:.1f} | {e['task_calls']:.1f} | "
            f"{e['optimizer_tokens_per_step']:.0f} | {e['task_tokens_per_step']:.0f} |"
        )
    errors = [e for row in table.values() for e in row.get("errors", [])]
    if errors:
        out += ["", "## Failed runs", ""] + [f"- {e}" for e in errors]
    out += ["", "## Settings", ""]
    for key, value in summary["settings"].items():
        out.append(f"- {key}: `{value}`")
    prov = summary["provenance"]
    out.append(
        f"- data: {prov.get('source')}, `{prov.get('archive')}` sha256 `{prov.get('sha256')}`"
        + (f" ({prov['extract']})" if prov.get("extract") else "")
    )
    out.append(f"- pytest-gpo: `{summary['product_version']}`; command: `{summary['command']}`")
    return "\n".join(out) + "\n"
