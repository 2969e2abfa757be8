"""Reliability, interrupted writes: SIGKILL never leaves a half-written file behind.

A child process rewrites a prompt file (:func:`pytest_gpo.writeback.apply`), the baseline
(:meth:`pytest_gpo.gate.baseline.BaselineStore.update`) and cache entries (:class:`FileCache`) in a
loop and is killed with SIGKILL at random moments; then real ``pytest --gpo-optimize=write`` and
``--gpo-update-baseline`` runs on the simulated models are killed, some at random times around
the end of the run and some the moment their temp file appears. Afterwards every prompt file
and the baseline hold either the old or the new complete content, and every cache entry either
decodes or is a miss. A naive writer killed the same way is caught, which shows the check can
fail. See docs/reliability.md.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_gpo.gate.baseline import Baseline, BaselineCase, BaselineEntry, BaselineStore
from pytest_gpo.llm.cache import FileCache, decode_entry
from pytest_gpo.writeback import encode_like

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

ROOT = Path(__file__).resolve().parent.parent
#: BOM + CRLF + no trailing newline: write-back must keep all three.
ORIGINAL = b"\xef\xbb\xbfRoute the ticket.\r\n" + b"Ticket: {{ ticket }}"
OLD_TEXT = "Route the ticket. " * 12000 + "\nTicket: {{ ticket }}"
NEW_TEXT = "Send the ticket to one team. " * 8000 + "\nTicket: {{ ticket }}"


def entries(tag: str, n: int = 400) -> dict[str, BaselineEntry]:
    cases = {f"case-{i:05d}": BaselineCase(score=(i % 7) / 7, passed=i % 2 == 0) for i in range(n)}
    return {
        "router": BaselineEntry(tag * 64, f"model-{tag}", tag * 64, cases),
        "other": BaselineEntry(tag * 64, f"model-{tag}", tag * 64, dict(list(cases.items())[:9])),
    }


def payload(tag: str) -> dict[str, object]:
    return {
        "texts": [tag * 5000],
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "cost": None,
        "model": "m",
        "created": 1.0,
    }


#: The writer: everything it writes comes from files the test prepared (inputs.json).
CHILD = textwrap.dedent(
    """
    import hashlib, json, sys
    from pathlib import Path
    from pytest_gpo.writeback import PlannedWrite, apply
    from pytest_gpo.gate.baseline import Baseline, BaselineStore
    from pytest_gpo.llm.cache import FileCache
    root = Path(sys.argv[1])
    inputs = json.loads((root / "inputs.json").read_text(encoding="utf-8"))
    prompt, store, cache = root / "prompt.txt", BaselineStore(root / "baseline.json"), \\
        FileCache(root / "cache")
    sets = {t: Baseline.from_text(inputs["baselines"][t]).suites for t in "ab"}
    keys = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(8)]
    turn = 0
    while True:
        tag = "ab"[turn % 2]
        current = prompt.read_bytes()
        plan = PlannedWrite("router", prompt, hashlib.sha256(current).hexdigest(),
                            inputs["texts"][tag])
        outcome = apply([plan], dry_run=False, ci=False, allow_in_ci=False)[0]
        assert outcome.status in ("written", "unchanged"), outcome
        store.update(sets[tag])
        cache.put(keys[turn % 8], inputs["payloads"][tag])
        if turn == 1:
            print("ready", flush=True)
        turn += 1
    """
)


def temp_files(root: Path) -> list[Path]:
    """Temp files of the atomic writers (``.<name>.<random>.tmp`` / ``.gpo-tmp``)."""
    return [p for p in root.rglob(".*tmp") if p.is_file()]


def check_cache(directory: Path, allowed: list[dict[str, object]]) -> None:
    """Every entry decodes to a known payload, or is a miss; none raises."""
    cache = FileCache(directory)
    for path in list(directory.rglob("*.json")):
        if "corrupt" in path.parts:
            continue
        got = cache.get(path.stem)
        assert got is None or any(got["texts"] == p["texts"] for p in allowed), path


def test_sigkill_during_writes_leaves_old_or_new_never_partial(tmp_path: Path) -> None:
    rng = random.Random(20240607)
    old_bytes = encode_like(ORIGINAL, OLD_TEXT)
    new_bytes = encode_like(ORIGINAL, NEW_TEXT)
    assert old_bytes.startswith(b"\xef\xbb\xbf") and b"\r\n" in old_bytes
    baselines = {t: Baseline(suites=dict(entries(t))).to_text() for t in "ab"}
    inputs = json.dumps(
        {
            "baselines": baselines,
            "texts": {"a": NEW_TEXT, "b": OLD_TEXT},
            "payloads": {t: payload(t) for t in "ab"},
        }
    )
    trials, torn_windows = 60, 0
    for trial in range(trials):
        root = tmp_path / f"t{trial}"
        root.mkdir()
        (root / "prompt.txt").write_bytes(old_bytes)
        (root / "inputs.json").write_text(inputs, encoding="utf-8")
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=root,
        )
        try:
            assert child.stdout is not None
            line = child.stdout.readline()
            assert line.strip() == b"ready", child.stderr.read() if child.stderr else b""
            if trial % 2:
                time.sleep(rng.uniform(0.0, 0.08))
            else:  # the moment a temp file shows up: inside a write, before its rename
                time.sleep(rng.uniform(0.0, 0.02))
                end = time.monotonic() + 2
                while not temp_files(root) and time.monotonic() < end:
                    pass
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        if temp_files(root):
            torn_windows += 1  # killed between creating a temp file and renaming it
        assert (root / "prompt.txt").read_bytes() in (old_bytes, new_bytes), trial
        text = (root / "baseline.json").read_text(encoding="utf-8")
        assert text in baselines.values(), trial
        Baseline.from_text(text)
        BaselineStore(root / "baseline.json").update(entries("a"))  # the lock is not stuck
        check_cache(root / "cache", [payload("a"), payload("b")])
    # the kills really landed inside writes, not only between them
    assert torn_windows >= 6, torn_windows


NAIVE_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    path = Path(sys.argv[1])
    datas = [b"A" * 2_000_000, b"B" * 2_000_000]
    turn = 0
    while True:
        with open(path, "wb") as handle:
            data = datas[turn % 2]
            for i in range(0, len(data), 65536):
                handle.write(data[i:i + 65536])
                handle.flush()
        if turn == 1:
            print("ready", flush=True)
        turn += 1
    """
)


def test_the_check_catches_a_naive_writer(tmp_path: Path) -> None:
    """Control: the same kill-and-check loop finds torn files when writes are not atomic."""
    rng = random.Random(7)
    torn = 0
    for trial in range(20):
        path = tmp_path / f"naive{trial}.txt"
        child = subprocess.Popen(
            [sys.executable, "-c", NAIVE_CHILD, str(path)], stdout=subprocess.PIPE
        )
        try:
            assert child.stdout is not None and child.stdout.readline().strip() == b"ready"
            time.sleep(rng.uniform(0.0, 0.03))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait(timeout=30)
        data = path.read_bytes()
        if data not in (b"A" * 2_000_000, b"B" * 2_000_000):
            torn += 1
    assert torn >= 3, torn


# -- real runs ----------------------------------------------------------------------------------

SUITE = """\
name: ticket_router
prompt: router.txt
params: {temperature: 0}
cases: tickets.jsonl
scorers:
  - {type: exact, ignore_case: true}
threshold: 0.0
optimize: {steps: 2, candidates: 4, retrieval: none}
"""


def all_entries_decode(directory: Path) -> int:
    """Every cache entry is whole (entries are renamed into place): count them."""
    seen = 0
    for path in directory.rglob("*.json"):
        assert "corrupt" not in path.parts, path
        assert decode_entry(path.stem, path.read_bytes()) is not None, path
        seen += 1
    return seen


def pytest_run(project: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    for name in ("CI", "GPO_MODEL", "GPO_CACHE", "GITHUB_STEP_SUMMARY"):
        env.pop(name, None)
    return subprocess.Popen(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def finish(proc: subprocess.Popen[bytes], timeout: float = 300) -> float:
    start = time.monotonic()
    proc.wait(timeout=timeout)
    return time.monotonic() - start


def kill_when(proc: subprocess.Popen[bytes], watch: Path, pattern: str, deadline: float) -> bool:
    """SIGKILL ``proc`` the moment a file matching ``pattern`` appears in ``watch``."""
    end = time.monotonic() + deadline
    while time.monotonic() < end and proc.poll() is None:
        if any(watch.glob(pattern)):
            proc.send_signal(signal.SIGKILL)
            return True
        time.sleep(0.0005)
    proc.send_signal(signal.SIGKILL)
    return False


def test_sigkill_real_optimize_and_baseline_runs(tmp_path: Path) -> None:
    rng = random.Random(99)
    project = tmp_path / "project"
    project.mkdir()
    example = ROOT / "tests" / "fixtures" / "support_desk"
    shutil.copy(example / "prompts" / "router.txt", project / "router.txt")
    shutil.copy(example / "suites" / "tickets.jsonl", project / "tickets.jsonl")
    (project / "ticket_router.gpo.yaml").write_text(SUITE, encoding="utf-8")
    (project / "pytest.ini").write_text(
        "[pytest]\ngpo_model = gpo-sim/task\ngpo_optimizer_model = gpo-sim/optimizer\n",
        encoding="utf-8",
    )
    prompt = project / "router.txt"
    baseline = project / ".gpo" / "baseline.json"
    cache_dir = project / ".gpo" / "cache"
    old = prompt.read_bytes()

    # a cold run killed while it writes cache entries (after 20 of ~250), then a whole one
    cold = pytest_run(project, "--gpo-optimize=write")
    end = time.monotonic() + 120
    while cold.poll() is None and time.monotonic() < end:
        if cache_dir.is_dir() and sum(1 for _ in cache_dir.rglob("*.json")) >= 20:
            break
        time.sleep(0.005)
    time.sleep(rng.uniform(0.0, 0.3))
    cold.send_signal(signal.SIGKILL)
    cold.wait(timeout=60)
    assert prompt.read_bytes() == old
    assert all_entries_decode(cache_dir) >= 20
    assert finish(pytest_run(project, "--gpo-optimize=write")) < 300
    new = prompt.read_bytes()
    assert new != old, "the optimizer must rewrite the prompt for this test to mean anything"
    # both baselines, recorded by complete runs (warm cache: no model calls)
    texts = {}
    for label, content in (("new", new), ("old", old)):
        prompt.write_bytes(content)
        finish(pytest_run(project, "--gpo-update-baseline"))
        texts[label] = baseline.read_bytes()
    assert texts["old"] != texts["new"]
    prompt.write_bytes(old)
    start = time.monotonic()
    finish(pytest_run(project, "--gpo-optimize=write"))
    warm = time.monotonic() - start
    assert prompt.read_bytes() == new

    watched = 0
    for trial in range(6):
        optimize = trial % 2 == 0
        if optimize:
            prompt.write_bytes(old)
            proc = pytest_run(project, "--gpo-optimize=write")
        else:
            prompt.write_bytes(rng.choice([old, new]))
            baseline.write_bytes(texts["old"] if prompt.read_bytes() == new else texts["new"])
            proc = pytest_run(project, "--gpo-update-baseline")
        if trial % 4 < 2:
            watch, pattern = (
                (project, ".router.txt.*") if optimize else (baseline.parent, ".baseline.json.*")
            )
            watched += kill_when(proc, watch, pattern, deadline=warm * 3)
        else:
            time.sleep(rng.uniform(0.6, 1.1) * warm)
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        assert prompt.read_bytes() in (old, new), trial
        if baseline.exists():
            data = baseline.read_bytes()
            assert data in (texts["old"], texts["new"]), trial
            Baseline.from_text(data.decode("utf-8"))
        # reports and optimizer checkpoints are replaced atomically too
        for path in [*project.glob(".gpo/report.json"), *project.glob(".gpo/runs/*/*.json")]:
            json.loads(path.read_text(encoding="utf-8"))
    assert watched >= 1
    assert all_entries_decode(cache_dir) > 100
    # and a last complete run still works on what the kills left behind
    prompt.write_bytes(old)
    proc = pytest_run(project, "--gpo-optimize=write")
    finish(proc)
    assert proc.returncode == 1 and prompt.read_bytes() == new
    assert json.loads(baseline.read_text(encoding="utf-8"))["suites"]


def test_invalid_unicode_never_breaks_or_truncates_a_file(tmp_path: Path) -> None:
    """A prompt or report holding a lone surrogate (a provider's half emoji) is refused or
    escaped; the file on disk is never left empty or half written."""
    from pytest_gpo.fsutil import atomic_write_text
    from pytest_gpo.writeback import PlannedWrite, apply

    prompt = tmp_path / "prompt.txt"
    prompt.write_bytes(ORIGINAL)
    digest = hashlib.sha256(ORIGINAL).hexdigest()
    outcome = apply(
        [PlannedWrite("s", prompt, digest, "cut emoji \ud83d {{ ticket }}")],
        dry_run=False,
        ci=False,
        allow_in_ci=False,
    )[0]
    assert outcome.status == "error" and "not valid text" in outcome.message
    assert prompt.read_bytes() == ORIGINAL and not temp_files(tmp_path)
    report = tmp_path / "report.json"
    atomic_write_text(report, json.dumps({"got": "cut \ud83d"}, ensure_ascii=False))
    assert json.loads(report.read_text(encoding="utf-8")) == {"got": "cut \ud83d"}
