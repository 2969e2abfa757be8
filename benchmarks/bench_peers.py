"""Peers on the same work: pytest-gpo, DSPy ``Evaluate`` and ``promptfoo eval``.

The same ``--cases`` cases (same prompt, same exact-match check) against the same local server
(its own process, ``--latency`` per answer), at the same concurrency, each tool as a whole
process: cache off; then cache on, a first run (fills it) and a re-run (timed, best of
``--repeats``). Every tool's cache lives in a fresh temporary directory. Calls are counted by
the server. The peers are installed outside the project by ``benchmarks/peers/setup_peers.sh``
(``/tmp/peer-dspy``, ``/tmp/peer-promptfoo``); a peer that is missing is reported, not run.

DSPy runs twice: with its default engine (``auto``: DSPy's own HTTP client for OpenAI-style
providers) and with ``engine="litellm"``, the library pytest-gpo calls through.

    bash benchmarks/peers/setup_peers.sh
    .venv/bin/python benchmarks/bench_peers.py [--cases 1000] [--latency 0.1]
        [--concurrency 32] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness

PEERS = harness.BENCH_DIR / "peers"
DSPY_PYTHON = Path("/tmp/peer-dspy/bin/python")
PROMPTFOO = Path("/tmp/peer-promptfoo/node_modules/.bin/promptfoo")


def _gpo(
    tmp: Path, server: harness.ServerProcess, args: argparse.Namespace
) -> Callable[[str], harness.ChildRun]:
    work = tmp / "gpo"
    harness.write_suite(work, "bench", cases=args.cases, api_base=server.base_url)
    harness.write_ini(work, gpo_concurrency=args.concurrency)

    def run(cache: str) -> harness.ChildRun:
        mode = "off" if cache == "off" else "rw"
        return harness.check(
            harness.run_child(harness.pytest_cmd("--gpo-cache", mode), cwd=work),
            f"pytest-gpo, cache {cache}",
        )

    return run


def _dspy(
    tmp: Path, server: harness.ServerProcess, args: argparse.Namespace, engine: str
) -> Callable[[str], harness.ChildRun]:
    work = tmp / f"dspy-{engine}"
    work.mkdir()
    cases = work / "cases.jsonl"
    cases.write_text(
        "".join(json.dumps(c) + "\n" for c in harness.case_lines(args.cases)), encoding="utf-8"
    )
    env = harness.bench_env(DSPY_CACHEDIR=str(work / "cache"))

    def run(cache: str) -> harness.ChildRun:
        got = harness.check(
            harness.run_child(
                [
                    str(DSPY_PYTHON),
                    str(PEERS / "dspy_eval.py"),
                    "--api-base",
                    server.base_url,
                    "--cases",
                    str(cases),
                    "--threads",
                    str(args.concurrency),
                    "--cache",
                    "off" if cache == "off" else "on",
                    "--engine",
                    engine,
                ],
                cwd=work,
                env=env,
                probe=False,
            ),
            f"DSPy ({engine}), cache {cache}",
        )
        got.probe = json.loads(got.stdout.strip().splitlines()[-1])
        return got

    return run


def _promptfoo(
    tmp: Path, server: harness.ServerProcess, args: argparse.Namespace
) -> Callable[[str], harness.ChildRun]:
    work = tmp / "promptfoo"
    work.mkdir()
    prompt = harness.PROMPT.replace("{{ ticket }}", "{{ticket}}")
    config = {
        "description": "pytest-gpo benchmark",
        "prompts": [prompt],
        "providers": [
            {
                "id": "openai:chat:bench",
                "config": {"apiBaseUrl": server.base_url, "apiKey": harness.BENCH_KEY},
            }
        ],
        "tests": [
            {
                "vars": {"ticket": c["vars"]["ticket"]},
                "assert": [{"type": "equals", "value": c["expected"]}],
            }
            for c in harness.case_lines(args.cases)
        ],
    }
    (work / "promptfooconfig.json").write_text(json.dumps(config), encoding="utf-8")
    env = harness.bench_env(
        PROMPTFOO_DISABLE_TELEMETRY="1",
        PROMPTFOO_DISABLE_UPDATE="1",
        PROMPTFOO_SELF_HOSTED="1",
        PROMPTFOO_CONFIG_DIR=str(work / "home"),
        PROMPTFOO_CACHE_PATH=str(work / "cache"),
        NO_COLOR="1",
    )

    def run(cache: str) -> harness.ChildRun:
        cmd = [
            "node",
            str(PROMPTFOO),
            "eval",
            "-c",
            str(work / "promptfooconfig.json"),
            "-j",
            str(args.concurrency),
            "--no-table",
            "--no-progress-bar",
            "--no-write",
            "--no-share",
            "-o",
            str(work / "out.json"),
        ]
        if cache == "off":
            cmd.append("--no-cache")
        got = harness.check(
            harness.run_child(cmd, cwd=work, env=env, probe=False), f"promptfoo, cache {cache}"
        )
        out = json.loads((work / "out.json").read_text(encoding="utf-8"))
        stats = out.get("results", {}).get("stats", {})
        got.probe = {"passed": stats.get("successes"), "failed": stats.get("failures")}
        return got

    return run


def main() -> None:
    """Run every available tool in each cache mode."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--tools", default="pytest-gpo,dspy,dspy-litellm,promptfoo")
    harness.common_args(parser)
    args = parser.parse_args()

    rows: list[dict[str, Any]] = []
    missing: list[str] = []
    with harness.workdir("peers") as tmp, harness.ServerProcess(latency=args.latency) as server:
        tools: dict[str, Callable[[str], harness.ChildRun]] = {}
        for name in (t for t in args.tools.split(",") if t):
            if name == "pytest-gpo":
                tools[name] = _gpo(tmp, server, args)
            elif name.startswith("dspy"):
                if not DSPY_PYTHON.exists():
                    missing.append(f"{name}: {DSPY_PYTHON} missing (run setup_peers.sh)")
                    continue
                engine = "litellm" if name == "dspy-litellm" else "auto"
                tools[f"DSPy Evaluate (engine={engine})"] = _dspy(tmp, server, args, engine)
            elif name == "promptfoo":
                if not PROMPTFOO.exists() or shutil.which("node") is None:
                    missing.append(f"promptfoo: {PROMPTFOO} or node missing (run setup_peers.sh)")
                    continue
                tools["promptfoo eval"] = _promptfoo(tmp, server, args)
        for name, run in tools.items():
            for label, cache, repeats in (
                ("cache off", "off", 1),
                ("cache on, first run", "on", 1),
                ("cache on, re-run", "on", args.repeats),
            ):
                best: harness.ChildRun | None = None
                calls = 0
                for _ in range(repeats):
                    server.reset()
                    got = run(cache)
                    if best is None or got.seconds < best.seconds:
                        best, calls = got, server.stats()["chat_requests"]
                assert best is not None
                rows.append(
                    {
                        "tool": name,
                        "run": label,
                        "wall_s": round(best.seconds, 2),
                        "server_calls": calls,
                        "peak_rss_mb": round(best.max_rss_mb),
                        "detail": _detail(best),
                    }
                )
                print(rows[-1], flush=True)

    ideal = -(-args.cases // args.concurrency) * args.latency
    harness.table(
        f"Peers: {args.cases} cases, {args.latency * 1000:.0f} ms latency, concurrency "
        f"{args.concurrency}",
        rows,
        notes=[
            f"ideal model-call time ceil(cases/c) x latency = {ideal:.1f} s; wall_s is the "
            "whole process (start-up, imports, calls, scoring, reporting); re-runs best of "
            f"{args.repeats}."
        ]
        + [f"not run: {m}" for m in missing],
    )
    harness.write_json(args.json, "peers", {"args": vars(args), "rows": rows, "not_run": missing})


def _detail(run: harness.ChildRun) -> str:
    probe = run.probe
    if "score" in probe:
        return (
            f"Evaluate {probe['seconds']:.2f} s, import {probe['import_seconds']:.2f} s, "
            f"score {probe['score']:.0f}%"
        )
    if "passed" in probe:
        return f"{probe['passed']} passed, {probe['failed']} failed"
    if "gpo_seconds" in probe:
        return f"suite item {probe['gpo_seconds']:.2f} s"
    return ""


if __name__ == "__main__":
    main()
