"""Reliability, concurrency: xdist workers and parallel jobs share one cache and one baseline.

Twelve suites run under ``pytest -n 4 --gpo-update-baseline``; pairs of suites ask the very same
questions, so workers race to write the same cache entries. Afterwards the baseline holds all
twelve suites, every cache entry decodes, nothing was quarantined and no temp file is left;
a replay run then answers everything from that cache. Two whole pytest sessions recording
different suites into one baseline at the same moment lose none. See docs/reliability.md.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pytest_gpo.gate.baseline import BaselineCase, BaselineEntry, BaselineStore
from pytest_gpo.llm.cache import decode_entry

pytest.importorskip("xdist")

TICKETS = [
    ("I was charged twice, please refund me", "billing"),
    ("The app crashes when I open settings", "technical"),
    ("I can't reset my password", "account"),
    ("My package never arrived", "shipping"),
    ("Do you have a student discount?", "other"),
    ("Where is my invoice for March?", "billing"),
]
PROMPT = (
    "Route this support ticket to one team: billing, technical, account, shipping or "
    "other.\nAnswer with only the category name.\n\nTicket: {{ ticket }}\n"
)


def make_project(root: Path) -> list[str]:
    """Twelve suites: a_0..a_5 and b_0..b_5, where a_i and b_i ask the same questions."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "pytest.ini").write_text("[pytest]\ngpo_model = gpo-sim/task\n", encoding="utf-8")
    names = []
    for i in range(6):
        cases = [
            {"id": f"t{j}", "vars": {"ticket": f"{text} (order {i}-{j})"}, "expected": label}
            for j, (text, label) in enumerate(TICKETS)
        ]
        for prefix in ("a", "b"):
            name = f"{prefix}_{i}"
            names.append(name)
            (root / f"{name}.txt").write_text(PROMPT, encoding="utf-8")
            (root / f"{name}.jsonl").write_text(
                "".join(json.dumps(c) + "\n" for c in cases), encoding="utf-8"
            )
            (root / f"{name}.gpo.yaml").write_text(
                f"name: {name}\nprompt: {name}.txt\ncases: {name}.jsonl\n"
                "scorers: [{type: exact, ignore_case: true}]\nthreshold: 0\n",
                encoding="utf-8",
            )
    return names


def run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for name in ("CI", "GPO_MODEL", "GPO_CACHE", "GITHUB_STEP_SUMMARY"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


def check_cache(cache_dir: Path) -> int:
    assert not (cache_dir / "corrupt").exists()
    assert not [p for p in cache_dir.rglob(".*") if p.is_file()], "temp files left behind"
    entries = list(cache_dir.rglob("*.json"))
    for path in entries:
        assert decode_entry(path.stem, path.read_bytes()) is not None, path
    return len(entries)


def baseline_suites(root: Path) -> dict[str, dict[str, object]]:
    data = json.loads((root / ".gpo" / "baseline.json").read_text(encoding="utf-8"))
    suites: dict[str, dict[str, object]] = data["suites"]
    return suites


def test_xdist_four_workers_and_parallel_sessions_share_cache_and_baseline(
    tmp_path: Path,
) -> None:
    root = tmp_path / "project"
    names = make_project(root)
    result = run(root, "-n", "4", "--gpo-update-baseline", "--gpo-report", ".gpo/report.md")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    assert "12 passed" in out and "INTERNALERROR" not in out
    suites = baseline_suites(root)
    assert sorted(suites) == sorted(names)
    assert all(len(s["cases"]) == len(TICKETS) for s in suites.values())  # type: ignore[arg-type]
    # 36 distinct questions (a_i and b_i share theirs), each cached once, all whole
    assert check_cache(root / ".gpo" / "cache") == 6 * len(TICKETS)
    report = json.loads((root / ".gpo" / "report.json").read_text(encoding="utf-8"))
    assert sorted(s["suite"] for s in report["suites"]) == sorted(names)

    # two whole sessions (parallel CI jobs) record different suites into one baseline at once;
    # --gpo-cache replay also proves the cache the workers wrote is complete
    (root / ".gpo" / "baseline.json").unlink()
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    env.pop("CI", None)
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pytest",
                "-p",
                "no:cacheprovider",
                "-k",
                prefix,
                "--gpo-update-baseline",
                "--gpo-cache",
                "replay",
            ],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for prefix in ("a_", "b_")
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    assert all("6 passed" in o and "model calls: 0," in o for o in outputs), outputs
    assert sorted(baseline_suites(root)) == sorted(names)


def _record(path: str, worker: int, start: float, rounds: int) -> None:
    while time.time() < start:
        time.sleep(0.001)
    store = BaselineStore(path)
    for r in range(rounds):
        entries = {
            f"w{worker}_s{k}": BaselineEntry(
                "p" * 64,
                "m",
                "s" * 64,
                {f"c{i}": BaselineCase(score=r / rounds, passed=True) for i in range(50)},
            )
            for k in range(3)
        }
        store.update(entries)


def test_concurrent_baseline_updates_from_processes_lose_no_suite(tmp_path: Path) -> None:
    path = tmp_path / ".gpo" / "baseline.json"
    ctx = multiprocessing.get_context("spawn")
    start = time.time() + 1.0
    procs = [ctx.Process(target=_record, args=(str(path), w, start, 5)) for w in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(timeout=120)
        assert proc.exitcode == 0
    suites = BaselineStore(path).load().suites
    assert sorted(suites) == sorted(f"w{w}_s{k}" for w in range(4) for k in range(3))
    # each worker's last round won for its own suites
    assert all(c.score == 0.8 for s in suites.values() for c in s.cases.values())
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
