"""One (task, method, seed) of the paper harness: suite files written, pytest run, result kept.

Each unit lives in ``<work>/runs/<task>/<method>/seed-<seed>/`` with its own ``pytest.ini`` (so
it is its own rootdir, response cache and checkpoints) and two suites the product runs:

* ``optimize/<task>.gpo.yaml``: the train/eval(/test) cases and the method's ``optimize:``
  settings, run with ``pytest --gpo-optimize --gpo-dry-run``; the report's JSON gives the best
  prompt (by eval score) and the calls, tokens and steps;
* ``test/<task>.gpo.yaml``: the final instruction on the 144 sampled test cases, run as an
  ordinary pytest-gpo evaluation; its score is the number in the table.

Empty and CoT only have the second. ``result.json`` holds the outcome and the hash of the
settings it was run with; a unit whose result has the same hash is not run again, and an
interrupted optimize run resumes from the product's own checkpoint.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from bbh_data import TASKS
from bbh_methods import Method

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


@dataclass(frozen=True)
class RunSettings:
    """What every unit of one harness run shares (the models, sizes and product options)."""

    task_model: str
    optimizer_model: str
    sizes: tuple[int, int, int]
    data_seed: int
    steps: int | None
    candidates: int
    max_tokens: int
    max_calls: int | None
    max_cost: float | None
    concurrency: int | None
    predefined_splits: bool
    provenance_sha256: str
    racing: str | None = None
    task_api_base: str | None = None

    def record(self) -> dict[str, Any]:
        """The settings as recorded next to every result."""
        return dataclasses.asdict(self)


def predefined_splits_supported() -> bool:
    """True when the installed pytest-gpo reads a case's ``split`` field."""
    from pytest_gpo.suites.model import Case

    return "split" in {f.name for f in dataclasses.fields(Case)}


def racing_supported() -> bool:
    """True when the installed pytest-gpo has the ``racing`` optimize key."""
    from pytest_gpo.optimize.config import OptimizeConfig

    return "racing" in OptimizeConfig.setting_names()


def prompt_text(instruction: str) -> str:
    """The prompt template: the question, then the instruction (the reference's placement)."""
    return "{{ input }}\n" if not instruction else "{{ input }}\n\n" + instruction + "\n"


def settings_hash(
    task: str, method: Method, seed: int, settings: RunSettings, case_ids: Sequence[str]
) -> str:
    """What decides a unit's numbers; the caps and concurrency are left out (they do not)."""
    record = settings.record()
    for key in ("max_calls", "max_cost", "concurrency"):
        record.pop(key)
    if record.get("task_api_base") is None:
        record.pop("task_api_base", None)  # results stored before the option keep their hash
    payload = {
        "task": task,
        "method": dataclasses.asdict(method),
        "seed": seed,
        "settings": record,
        "cases": list(case_ids),
        "prompt_template": prompt_text("<instruction>"),
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _suite(
    folder: Path, task: str, template: str, cases: Sequence[Mapping[str, Any]], **extra: Any
) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "prompt.txt").write_text(template, encoding="utf-8")
    with (folder / "cases.jsonl").open("w", encoding="utf-8") as f:
        for case in cases:
            f.write(json.dumps(case, ensure_ascii=False) + "\n")
    if task == "word_sorting":
        shutil.copyfile(HERE / "answers.py", folder / "answers.py")
    suite: dict[str, Any] = {
        "name": task,
        "prompt": "prompt.txt",
        "cases": "cases.jsonl",
        "scorers": [dict(s) for s in TASKS[task].scorers],
        "threshold": 0.0,
        **extra,
    }
    path = folder / f"{task}.gpo.yaml"
    path.write_text(yaml.safe_dump(suite, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _pytest(
    unit: Path, suite: Path, args: Sequence[str], log: Path, echo: Callable[[str], None]
) -> dict[str, Any]:
    """Run pytest on one suite in ``unit``; the JSON report (``{}`` if none was written)."""
    report = suite.parent / "report.md"
    json_report = report.with_suffix(".json")
    json_report.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        str(suite.relative_to(unit)),
        "-c",
        "pytest.ini",
        "--rootdir",
        ".",
        "-p",
        "no:cacheprovider",
        "-q",
        "--gpo-report",
        str(report.relative_to(unit)),
        *args,
    ]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    env.pop("CI", None)  # a dry run writes nothing anyway; CI would refuse "write" modes
    with log.open("a", encoding="utf-8") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        proc = subprocess.Popen(
            cmd,
            cwd=unit,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            if line.startswith("[gpo]"):
                echo("    " + line.rstrip())
        code = proc.wait()
        out.write(f"exit status {code}\n")
    if not json_report.is_file():
        return {"_exit": code}
    data: dict[str, Any] = json.loads(json_report.read_text(encoding="utf-8"))
    data["_exit"] = code
    return data


def _tokens(usage: Mapping[str, Any]) -> int:
    return int(usage.get("prompt_tokens", 0)) + int(usage.get("completion_tokens", 0))


def _optimization(report: Mapping[str, Any], task: str) -> Mapping[str, Any] | None:
    for section in report.get("sections", []):
        data = section.get("data") or {}
        if isinstance(data, Mapping) and task in data:
            found: Mapping[str, Any] = data[task]
            return found
    return None


def _suite_score(report: Mapping[str, Any], task: str) -> tuple[float | None, str | None]:
    for suite in report.get("suites", []):
        if suite.get("suite") == task:
            error = (
                None
                if suite.get("status") != "error"
                else "; ".join(suite.get("verdict", {}).get("message", []))
            )
            return suite.get("score"), error
    return None, f"no result for suite {task} (exit status {report.get('_exit')})"


def run_unit(
    unit: Path,
    task: str,
    method: Method,
    seed: int,
    cases: Sequence[Mapping[str, Any]],
    settings: RunSettings,
    echo: Callable[[str], None],
) -> dict[str, Any]:
    """Run one unit (or return its stored result when the settings hash matches)."""
    digest = settings_hash(task, method, seed, settings, [c["id"] for c in cases])
    stored = unit / "result.json"
    if stored.is_file():
        old: dict[str, Any] = json.loads(stored.read_text(encoding="utf-8"))
        if old.get("settings_hash") == digest and old.get("status") != "error":
            old["resumed"] = True
            return old
    unit.mkdir(parents=True, exist_ok=True)
    # the harness is the user here: it trusts the endpoint it was given on its command line
    trusted = "gpo_trusted_params = api_base\n" if settings.task_api_base else ""
    (unit / "pytest.ini").write_text("[pytest]\n" + trusted, encoding="utf-8")
    log = unit / "pytest.log"
    common = ["--gpo-model", settings.task_model]
    if settings.concurrency:
        common += ["--gpo-concurrency", str(settings.concurrency)]
    params: dict[str, Any] = {"temperature": 0, "max_tokens": settings.max_tokens}
    if settings.task_api_base:
        params["api_base"] = settings.task_api_base
    result: dict[str, Any] = {
        "task": task,
        "method": method.name,
        "seed": seed,
        "settings_hash": digest,
        "settings": settings.record(),
        "status": "ok",
    }
    template = prompt_text(method.instruction)
    if method.optimize is not None:
        optimize: dict[str, Any] = {**method.optimize, "seed": seed}
        optimize["candidates"] = settings.candidates
        if settings.steps is not None:
            optimize["steps"] = settings.steps
        if settings.racing is not None:
            optimize["racing"] = settings.racing
        if settings.predefined_splits:
            opt_cases = [dict(c) for c in cases]
        else:
            # no predefined splits in this pytest-gpo: train+eval cases, split by its hash
            opt_cases = [
                {k: v for k, v in c.items() if k != "split"} for c in cases if c["split"] != "test"
            ]
            optimize["splits"] = [0.4, 0.4, 0.2]
        suite = _suite(
            unit / "optimize", task, template, opt_cases, params=params, optimize=optimize
        )
        args = [*common, "--gpo-optimize", "--gpo-dry-run"]
        args += ["--gpo-optimizer-model", settings.optimizer_model]
        if settings.max_calls is not None:
            args += ["--gpo-max-calls", str(settings.max_calls)]
        if settings.max_cost is not None:
            args += ["--gpo-max-cost", str(settings.max_cost)]
        report = _pytest(unit, suite, args, log, echo)
        opt = _optimization(report, task)
        if opt is None:
            _, error = _suite_score(report, task)
            result.update(status="error", error=error or "the optimize run wrote no result")
            stored.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
            return result
        template = str(opt["best_prompt"])
        steps = int(opt.get("steps_completed") or len(opt.get("steps", [])))
        result["optimize"] = {
            "optimize_settings": opt.get("config"),
            "best_prompt": opt["best_prompt"],
            "eval_before": (opt.get("scores", {}).get("eval") or {}).get("before"),
            "eval_best": (opt.get("scores", {}).get("eval") or {}).get("after"),
            "split_sizes": opt.get("split_sizes"),
            "steps": steps,
            "total_steps": opt.get("total_steps"),
            "stopped_reason": opt.get("stopped_reason"),
            "optimizer_calls": opt["optimizer_usage"]["calls"],
            "optimizer_requests": opt.get("optimizer_requests"),
            "reflection_requests": opt.get("reflection_requests"),
            "optimizer_tokens": _tokens(opt["optimizer_usage"]),
            "task_calls": opt["task_usage"]["calls"],
            "task_tokens": _tokens(opt["task_usage"]),
            "cache_hits": opt["optimizer_usage"].get("cache_hits", 0)
            + opt["task_usage"].get("cache_hits", 0),
        }
    test_cases = [
        {k: v for k, v in c.items() if k != "split"} for c in cases if c["split"] == "test"
    ]
    suite = _suite(unit / "test", task, template, test_cases, params=params)
    report = _pytest(unit, suite, common, log, echo)
    score, error = _suite_score(report, task)
    result["prompt"] = template
    result["test_score"] = score
    result["test_cases"] = len(test_cases)
    for s in report.get("suites", []):
        if s.get("suite") == task:
            result["test_task_calls"] = s.get("usage", {}).get("calls")
    if error is not None or score is None:
        result.update(status="error", error=error or "no score")
    stored.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    return result
