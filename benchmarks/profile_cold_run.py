"""Where a cold run's time goes: py-spy over ``pytest`` on a 1,000-case suite, cache off.

Samples the thread holding the GIL (py-spy ``--gil``; py-spy is installed outside the
project, e.g. ``python3 -m venv /tmp/tools && /tmp/tools/bin/pip install py-spy``), so the
samples add up to the process's Python CPU time, and gives each sample to the innermost frame
of a known party: litellm's import, litellm and its HTTP stack (the event loop's
``litellm.acompletion`` and the request building litellm runs on its executor threads),
pytest-gpo's own code, imports, pytest, or asyncio's machinery.

    .venv/bin/python benchmarks/profile_cold_run.py [--py-spy PATH] [--json PATH]
"""

from __future__ import annotations

import argparse
import collections
import shutil
from pathlib import Path
from typing import Any

import harness

RATE = 200


def _category(stack: list[str]) -> str:
    # The innermost frame that belongs to a known party decides who is spending the CPU.
    text = ";".join(stack)
    if "import_litellm" in text:
        return "litellm's import (first model call)"
    for frame in reversed(stack[1:]):
        where = frame.rsplit("(", 1)[-1]
        if "pytest_gpo/" in where:
            return "pytest-gpo (render, cache key, client, scoring, gate, report)"
        if where.startswith(
            (
                "litellm/",
                "openai/",
                "httpx/",
                "httpcore/",
                "aiohttp/",
                "pydantic",
                "tiktoken",
                "_legacy_response",
                "openai.py",
                "litellm_logging",
                "cost_calc",
                "utils.py",
                "main.py",
            )
        ) or ("litellm" in where or "openai" in where):
            return "litellm and its HTTP stack (per model call)"
        if where.startswith(("asyncio/", "selectors", "concurrent/", "threading", "queue")):
            continue
        if "_find_and_load" in frame or "importlib" in where:
            return "imports (pytest, plugins, pytest-gpo modules)"
        if "_pytest/" in where or "pluggy/" in where:
            return "pytest itself"
    return "asyncio and thread machinery"


def main() -> None:
    """Profile one cold plugin run and print the breakdown."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--latency", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--py-spy", default=shutil.which("py-spy") or "/tmp/tools/bin/py-spy")
    harness.common_args(parser)
    args = parser.parse_args()
    if not Path(args.py_spy).exists():
        raise SystemExit(f"py-spy not found at {args.py_spy} (see the module docstring)")

    with harness.workdir("profile") as tmp, harness.ServerProcess(latency=args.latency) as srv:
        harness.write_suite(tmp, "bench", cases=args.cases, api_base=srv.base_url)
        harness.write_ini(tmp, gpo_concurrency=args.concurrency)
        raw = tmp / "samples.txt"
        # --gil: only the thread holding the GIL is sampled, so samples are Python CPU time.
        cmd = [
            args.py_spy,
            "record",
            "-o",
            str(raw),
            "-f",
            "raw",
            "-r",
            str(RATE),
            "--gil",
            "--",
            *harness.pytest_cmd("--gpo-cache", "off", probe=False),
        ]
        run = harness.run_child(cmd, cwd=tmp, probe=False)
        harness.check(run, "py-spy over pytest")
        seconds: dict[str, float] = collections.defaultdict(float)
        for line in raw.read_text(encoding="utf-8").splitlines():
            stack_text, _, count = line.rpartition(" ")
            seconds[_category(stack_text.split(";"))] += int(count) / RATE
    rows: list[dict[str, Any]] = [
        {"where": name, "seconds": round(value, 2)}
        for name, value in sorted(seconds.items(), key=lambda kv: -kv[1])
    ]
    harness.table(
        f"Cold run breakdown ({args.cases} cases, cache off, "
        f"{args.latency * 1000:.0f} ms, concurrency {args.concurrency})",
        rows,
        notes=[
            f"process wall {run.seconds:.1f} s under py-spy (sampling at {RATE} Hz slows it down)."
        ],
    )
    harness.write_json(
        args.json, "profile_cold_run", {"args": vars(args), "rows": rows, "wall_s": run.seconds}
    )


if __name__ == "__main__":
    main()
