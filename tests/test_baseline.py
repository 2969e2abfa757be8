"""The baseline file: round trip, merge, deterministic bytes, atomic writes, concurrent writers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pytest_gpo.gate.baseline import (
    Baseline,
    BaselineCase,
    BaselineEntry,
    BaselineError,
    BaselineStore,
)
from pytest_gpo.gate.verdict import evaluate
from pytest_gpo.llm.types import ErrorKind
from pytest_gpo.plugin.finish import finish_session
from pytest_gpo.plugin.session import GpoSession, SuiteRecord
from pytest_gpo.results import CaseResult, RunResult, SuiteRun
from pytest_gpo.settings import Settings
from pytest_gpo.suites.model import Suite


def make_suite(name: str = "router", prompt: bytes = b"Route: {{ t }}") -> Suite:
    return Suite(
        name=name,
        path=Path(f"{name}.gpo.yaml"),
        prompt_path=Path(f"{name}.txt"),
        prompt_text=prompt.decode(),
        prompt_bytes=prompt,
        system=None,
        model=None,
        params={},
        cases=(),
        scorers=(),
        threshold=0.8,
    )


def make_run(name: str, scores: dict[str, list[float]], model: str = "sim/m") -> SuiteRun:
    cases = [
        CaseResult(
            case_id=cid,
            vars={},
            expected="x",
            runs=[
                RunResult(sample=i, output="x", score=s, passed=s >= 0.5, reason="")
                for i, s in enumerate(runs)
            ],
        )
        for cid, runs in scores.items()
    ]
    return SuiteRun(suite=name, model=model, prompt_text="p", cases=cases)


def entry(name: str, scores: dict[str, list[float]]) -> BaselineEntry:
    return BaselineEntry.from_run(make_suite(name), make_run(name, scores))


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".tmp"))


def test_missing_file_is_an_empty_baseline(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path / ".gpo" / "baseline.json")
    assert not store.exists()
    assert store.load().suites == {}
    assert store.entry("router") is None


def test_round_trip(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path / "baseline.json")
    e = entry("router", {"b": [1.0], "a": [0.0], "r": [1.0, 0.0, 1.0]})
    store.update({"router": e})
    loaded = BaselineStore(store.path).entry("router")
    assert loaded == e
    assert loaded.prompt_sha256 == make_suite().prompt_sha256
    assert loaded.scorer_config_hash == make_suite().scorer_config_hash()
    assert loaded.model == "sim/m"
    assert loaded.cases["a"] == BaselineCase(score=0.0, passed=False, pass_rate=0.0, runs=1)
    assert loaded.cases["r"].runs == 3
    assert loaded.cases["r"].pass_rate == pytest.approx(2 / 3, abs=1e-6)
    assert loaded.score == pytest.approx((1 + 0 + 2 / 3) / 3, abs=1e-6)


def test_exact_text_is_sorted_and_one_case_per_line(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path / "baseline.json")
    e = BaselineEntry(
        prompt_sha256="aa",
        model="sim/m",
        scorer_config_hash="bb",
        cases={
            "z": BaselineCase(score=0.1 + 0.2, passed=False, pass_rate=0.0, runs=1),
            "a": BaselineCase(score=1.0, passed=True, pass_rate=2 / 3, runs=3),
        },
    )
    store.update({"s2": e, "s1": BaselineEntry("cc", "m", "dd", {})})
    assert store.path.read_text(encoding="utf-8") == textwrap.dedent(
        """\
        {
          "format": "pytest-gpo baseline",
          "suites": {
            "s1": {
              "cases": {},
              "model": "m",
              "pass_rate": 0.0,
              "prompt_sha256": "cc",
              "runs_per_case": 1,
              "score": 0.0,
              "scorer_config_hash": "dd"
            },
            "s2": {
              "cases": {
                "a": {"pass_rate": 0.666667, "passed": true, "runs": 3, "score": 1.0},
                "z": {"passed": false, "score": 0.3}
              },
              "model": "sim/m",
              "pass_rate": 0.5,
              "prompt_sha256": "aa",
              "runs_per_case": 3,
              "score": 0.65,
              "scorer_config_hash": "bb"
            }
          },
          "version": 1
        }
        """
    )
    json.loads(store.path.read_text(encoding="utf-8"))  # and it is valid JSON


def test_bytes_do_not_depend_on_insertion_order(tmp_path: Path) -> None:
    scores = {f"c{i}": [i % 2 * 1.0] for i in range(30)}
    reversed_scores = dict(reversed(list(scores.items())))
    a, b = BaselineStore(tmp_path / "a.json"), BaselineStore(tmp_path / "b.json")
    a.update({"x": entry("x", scores), "y": entry("y", {"q": [1.0]})})
    b.update({"y": entry("y", {"q": [1.0]})})
    b.update({"x": entry("x", reversed_scores)})
    assert a.path.read_bytes() == b.path.read_bytes()


def test_merge_keeps_suites_not_run(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    BaselineStore(path).update({"a": entry("a", {"1": [1.0]})})
    BaselineStore(path).update({"b": entry("b", {"1": [0.0]})})
    BaselineStore(path).update({"a": entry("a", {"2": [1.0]})})  # replaces a whole
    suites = BaselineStore(path).load().suites
    assert sorted(suites) == ["a", "b"]
    assert list(suites["a"].cases) == ["2"]
    BaselineStore(path).update({}, remove=["b"])
    assert sorted(BaselineStore(path).load().suites) == ["a"]


def test_unchanged_content_is_not_rewritten(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path / "baseline.json")
    store.update({"a": entry("a", {"1": [1.0]})})
    before = store.path.stat()
    store.update({"a": entry("a", {"1": [1.0]})})
    after = store.path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_unknown_keys_survive_a_rewrite(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    data = json.loads(Baseline({"a": entry("a", {"1": [1.0]})}).to_text())
    data["suites"]["a"]["future_field"] = {"k": 1}
    path.write_text(json.dumps(data), encoding="utf-8")
    BaselineStore(path).update({"b": entry("b", {"1": [1.0]})})
    assert json.loads(path.read_text())["suites"]["a"]["future_field"] == {"k": 1}


@pytest.mark.parametrize("fail_at", ["replace", "fsync", "write"])
def test_failed_write_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fail_at: str
) -> None:
    store = BaselineStore(tmp_path / "baseline.json")
    store.update({"a": entry("a", {"1": [1.0]})})
    old = store.path.read_bytes()

    def boom(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    if fail_at == "replace":
        monkeypatch.setattr("pytest_gpo.fsutil.os.replace", boom)
    elif fail_at == "fsync":
        monkeypatch.setattr("pytest_gpo.fsutil.os.fsync", boom)
    else:
        # the serializer succeeds but the temp file's write fails half-way
        real_fdopen = os.fdopen

        class HalfWriter:
            def __init__(self, fh: object) -> None:
                self.fh = fh

            def __enter__(self) -> HalfWriter:
                return self

            def __exit__(self, *exc: object) -> None:
                self.fh.close()  # type: ignore[attr-defined]

            def write(self, text: str) -> None:
                self.fh.write(text[: len(text) // 2])  # type: ignore[attr-defined]
                raise OSError(28, "No space left on device")

        monkeypatch.setattr(
            "pytest_gpo.fsutil.os.fdopen", lambda *a, **k: HalfWriter(real_fdopen(*a, **k))
        )
    with pytest.raises(BaselineError, match="previous file is unchanged") as info:
        store.update({"b": entry("b", {"1": [0.0]})})
    assert info.value.path == str(store.path)
    assert store.path.read_bytes() == old
    assert leftovers(tmp_path) == []


def test_interrupt_during_write_leaves_the_old_file_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = BaselineStore(tmp_path / "baseline.json")
    store.update({"a": entry("a", {"1": [1.0]})})
    old = store.path.read_bytes()

    def interrupted(*args: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("pytest_gpo.fsutil.os.replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        store.update({"b": entry("b", {"1": [0.0]})})
    assert store.path.read_bytes() == old
    assert leftovers(tmp_path) == []


def test_new_file_gets_normal_permissions(tmp_path: Path) -> None:
    store = BaselineStore(tmp_path / "sub" / "baseline.json")
    store.update({"a": entry("a", {"1": [1.0]})})
    assert store.path.stat().st_mode & 0o777 == 0o644


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"suites": {', "not valid JSON (line 1"),
        ("<<<<<<< HEAD\n{}", "merge conflict"),
        ("[]", "no 'suites' object"),
        ('{"suites": {"a": 3}}', "suite 'a' must be an object"),
        ('{"suites": {"a": {"model": "m"}}}', "suite 'a' is malformed: 'prompt_sha256'"),
        (
            '{"suites": {"a": {"prompt_sha256": "x", "model": "m", "scorer_config_hash": "h",'
            ' "cases": {"c1": {"score": "high", "passed": true}}}}}',
            "case 'c1': 'score' must be a number from 0 to 1",
        ),
        (
            '{"suites": {"a": {"prompt_sha256": "x", "model": "m", "scorer_config_hash": "h",'
            ' "cases": {"c1": {"score": 1.5, "passed": true}}}}}',
            "case 'c1': 'score' must be a number from 0 to 1, got 1.5",
        ),
        (
            '{"suites": {"a": {"prompt_sha256": "x", "model": "m", "scorer_config_hash": "h",'
            ' "cases": {"c1": {"score": 1}}}}}',
            "missing key",
        ),
        ('{"suites": {}, "version": 99}', "format version 99"),
    ],
)
def test_corrupt_baseline_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "baseline.json"
    path.write_text(text, encoding="utf-8")
    store = BaselineStore(path)
    with pytest.raises(BaselineError) as info:
        store.load()
    rendered = str(info.value)
    assert message in rendered
    assert str(path) in rendered
    assert "fix:" in rendered
    # updating never overwrites a file it could not read (it would drop other suites)
    with pytest.raises(BaselineError):
        store.update({"b": entry("b", {"1": [1.0]})})
    assert path.read_text(encoding="utf-8") == text


def test_unreadable_bytes_are_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    path.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(BaselineError, match="cannot read the baseline file"):
        BaselineStore(path).load()


def test_lock_timeout_is_a_clear_error(tmp_path: Path) -> None:
    import filelock

    store = BaselineStore(tmp_path / "baseline.json", lock_timeout=0.1)
    with filelock.FileLock(str(store.lock_path)), pytest.raises(BaselineError, match="lock"):
        store.update({"a": entry("a", {"1": [1.0]})})


def test_baseline_path(tmp_path: Path) -> None:
    assert Settings(rootdir=tmp_path).baseline_path == tmp_path / ".gpo" / "baseline.json"
    ci = Settings(rootdir=tmp_path, baseline="ci/base.json")
    assert ci.baseline_path == tmp_path / "ci" / "base.json"
    absolute = Settings(rootdir=Path("/elsewhere"), baseline=str(tmp_path / "abs.json"))
    assert absolute.baseline_path == tmp_path / "abs.json"


WRITER = """
import sys
from pytest_gpo.gate.baseline import BaselineCase, BaselineEntry, BaselineStore
path, worker, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
store = BaselineStore(path)
for i in range(count):
    cases = {f"c{j}": BaselineCase(score=1.0, passed=True) for j in range(50)}
    store.update({f"w{worker}-s{i}": BaselineEntry("sha", "m", "h", cases)})
"""


def test_concurrent_writers_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / ".gpo" / "baseline.json"
    workers, per_worker = 4, 6
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(path), str(w), str(per_worker)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for w in range(workers)
    ]
    for p in procs:
        _, err = p.communicate(timeout=120)
        assert p.returncode == 0, err.decode()
    suites = BaselineStore(path).load().suites
    assert sorted(suites) == sorted(f"w{w}-s{i}" for w in range(workers) for i in range(per_worker))
    assert all(len(e.cases) == 50 for e in suites.values())
    assert leftovers(path.parent) == []


def test_update_skips_runs_that_did_not_complete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # what the plugin does at the end of `pytest --gpo-update-baseline`
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    settings = Settings(rootdir=tmp_path, baseline="baseline.json", update_baseline=True)
    BaselineStore(settings.baseline_path).update({"broken": entry("broken", {"old": [1.0]})})
    ok = make_run("ok", {"1": [1.0]})
    broken = make_run("broken", {"1": [0.0]})
    broken.error_kind, broken.errors = ErrorKind.CACHE_MISS, ["no cached response for case 1"]
    gs = GpoSession(settings=settings)
    gs.records["ok"] = SuiteRecord(
        "ok",
        "ok",
        "ok.gpo.yaml",
        run=ok,
        verdict=evaluate(make_suite("ok"), ok, None),
        gate_entry=BaselineEntry.from_run(make_suite("ok"), ok),
    )
    gs.records["broken"] = SuiteRecord(
        "broken", "broken", "broken.gpo.yaml", run=broken, error=broken.errors[0]
    )
    assert finish_session(gs, 0) is None
    suites = BaselineStore(settings.baseline_path).load().suites
    assert list(suites["broken"].cases) == ["old"]  # the old entry stays
    assert list(suites["ok"].cases) == ["1"]
    lines = gs.outcome.lines
    assert lines[0].startswith("baseline updated for 1 suite(s) in ") and "ok" in lines[0]
    assert "NOT updated for broken" in lines[1]


def test_load_and_look_up_a_suite(tmp_path: Path) -> None:
    path = tmp_path / "baseline.json"
    assert BaselineStore(path).entry("a") is None
    BaselineStore(path).update({"a": entry("a", {"1": [1.0]})})
    got = BaselineStore(path).entry("a")
    assert got is not None and list(got.cases) == ["1"]
