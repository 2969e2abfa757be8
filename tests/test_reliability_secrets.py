"""Reliability, secrets: API keys and Authorization headers are written nowhere.

A run with a sentinel key in ``OPENAI_API_KEY`` and another in a suite's ``params: {api_key}``
talks to a local server that injects faults and echoes the Authorization header in its error
bodies. With ``--gpo-report``, ``--junitxml`` (logs included), ``--gpo-update-baseline``,
``-rA``, ``--log-file`` at DEBUG and an optimization run, no file the runs wrote and neither
stdout nor stderr contains either key. See docs/reliability.md.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

from openai_server import OpenAIServer
from secret_scan import last_word_responder, leaks, run_pytest, written_files

ENV_KEY = "sk-SENTINEL-ENV-4f1d9a7c0b2e"
PARAM_KEY = "sk-SENTINEL-PARAM-8c3e5b1a9d7f"
#: A key the server refuses (401): a refused key is not sent again in the run.
BAD_KEY = "sk-SENTINEL-BAD-6a2f8e4c1d3b"
#: What must never show up: the keys, and the distinctive parts of them.
NEEDLES = [ENV_KEY, PARAM_KEY, BAD_KEY, "SENTINEL", "4f1d9a7c0b2e", "8c3e5b1a9d7f", "6a2f8e4c1d3b"]


def suite(name: str, api_base: str, extra_params: str = "") -> str:
    cases = "\n".join(f"  - {{id: c{i}, vars: {{word: w{i}}}, expected: w{i}}}" for i in range(12))
    return (
        textwrap.dedent(f"""\
        name: {name}
        prompt: {name}.txt
        params: {{api_base: '{api_base}'{extra_params}}}
        threshold: 0
        optimize: {{steps: 1, candidates: 2, retrieval: none}}
        cases:
        """)
        + cases
        + "\n"
    )


def run(project: Path, server: OpenAIServer, *args: str) -> tuple[str, str]:
    return run_pytest(
        project,
        {
            "OPENAI_API_KEY": ENV_KEY,
            "OPENAI_BASE_URL": server.base_url,  # every openai/... call stays on 127.0.0.1
            "LITELLM_LOCAL_MODEL_COST_MAP": "True",
            "GITHUB_STEP_SUMMARY": str(project / "out" / "step_summary.md"),
        },
        *args,
    )


def test_keys_never_reach_files_reports_logs_or_output(tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "out").mkdir(parents=True)
    with OpenAIServer(
        responder=last_word_responder,
        faults=["400", "ok", "429", "500"],
        fault_rates={"429": 0.15, "500": 0.1, "400": 0.05},
        retry_after=0.01,
        leak_key_in_errors=True,
        api_keys=[ENV_KEY, PARAM_KEY],
        seed=3,
    ) as server:
        (project / "pytest.ini").write_text(
            "[pytest]\ngpo_model = openai/echo\ngpo_timeout = 5\n"
            # these suite files are the user's own: they may name the server and a key
            "gpo_trusted_params = api_base api_key\n",
            encoding="utf-8",
        )
        for name in ("with_param_key", "with_env_key", "with_bad_key"):
            (project / f"{name}.txt").write_text("Say {{ word }}\n", encoding="utf-8")
        (project / "with_param_key.gpo.yaml").write_text(
            suite("with_param_key", server.base_url, f", api_key: {PARAM_KEY}"), encoding="utf-8"
        )
        (project / "with_bad_key.gpo.yaml").write_text(
            suite("with_bad_key", server.base_url, f", api_key: {BAD_KEY}"), encoding="utf-8"
        )
        (project / "with_env_key.gpo.yaml").write_text(
            suite("with_env_key", server.base_url), encoding="utf-8"
        )
        inputs = {p: p.read_bytes() for p in project.rglob("*") if p.is_file()}
        outputs = [
            run(
                project,
                server,
                "--gpo-report",
                "out/report.md",
                "--junitxml",
                "out/junit.xml",
                "-o",
                "junit_logging=all",
                "--gpo-update-baseline",
                "-rA",
                "--log-file",
                "out/run.log",
                "--log-file-level",
                "DEBUG",
                "--log-level",
                "DEBUG",
                "--gpo-max-attempts",
                "3",
            ),
            run(
                project,
                server,
                "--gpo-optimize",
                "--gpo-optimizer-model",
                "openai/optimizer",
                "--gpo-report",
                "out/optimize.md",
                "--log-file",
                "out/optimize.log",
                "--log-file-level",
                "DEBUG",
                "-rA",
                "--gpo-max-attempts",
                "3",
            ),
        ]
        authorizations = [h.get("Authorization", "") for h in server.headers_seen]
        faults = set(server.faults_served)
    # the keys really were sent, and the error bodies really echoed them
    assert f"Bearer {ENV_KEY}" in authorizations and f"Bearer {PARAM_KEY}" in authorizations
    assert {"400", "401", "429", "500"} <= faults
    written = written_files(project, inputs)
    names = {p.name for p in written}
    assert {
        "report.md",
        "report.json",
        "junit.xml",
        "run.log",
        "baseline.json",
        "optimize.md",
        "optimize.json",
        "optimize.log",
        "step_summary.md",
    } <= names, names
    assert any(".gpo/cache" in str(p) for p in written)
    assert (project / "out" / "run.log").stat().st_size > 10_000  # DEBUG logs were captured
    for stdout, _ in outputs:
        assert "could not be scored" in stdout or "passed" in stdout, stdout[-2000:]
    found = leaks(project, written, outputs, NEEDLES)
    assert not found, found
    # the provider's echo of the key was shown, redacted
    assert "you sent Bearer ***" in outputs[0][0]
    # the refused key: one request, then not sent again; the suite names what to check
    # (at most the 8 sent at once, before the first refusal came back, in each of the two runs)
    assert 2 <= authorizations.count(f"Bearer {BAD_KEY}") <= 2 * 8
    assert "check the api_key in the suite's params" in outputs[0][0]
    # the scan itself works: the one file holding a key by the user's choice is the suite
    assert PARAM_KEY.encode() in (project / "with_param_key.gpo.yaml").read_bytes()
