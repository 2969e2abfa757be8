"""promptfoo configs run as pytest-gpo suites, end to end through pytester on the simulated
models: collection switch, prompt x provider matrix, test and var files, the gate and baseline,
reports, --gpo-optimize write-back, and per-config errors that never stop other suites."""

from __future__ import annotations

import json
import shutil
import textwrap
from pathlib import Path
from typing import Any

import pytest
from openai_server import OpenAIServer

pytest_plugins = ["pytester"]

SUPPORT_DESK = Path(__file__).resolve().parent / "fixtures" / "support_desk"
ROUTE = (
    "Route this support ticket to one team: billing, technical, account, shipping or other.\n"
    "Answer with only the category name.\n\nTicket: {{ticket}}\n"
)
CHATTY = "Route this support ticket.\n\nTicket: {{ticket}}\n"
CONFIG = """\
    description: Ticket router
    prompts:
      - id: file://prompts/route.txt
        label: route
    providers:
      - id: litellm:gpo-sim/task
        label: sim
        config: {temperature: 0, max_tokens: 50}
    defaultTest:
      assert:
        - {type: not-icontains, value: "I am a simulated model"}
    tests:
      - description: charged twice
        vars: {ticket: "I was charged twice, please refund me"}
        assert:
          - {type: equals, value: Billing}
      - description: crash
        vars: {ticket: "The app crashes when I open settings"}
        assert:
          - {type: icontains, value: technical}
          - {type: levenshtein, value: technical, threshold: 1}
      - vars: {ticket: file://tickets/password.txt}
        assert:
          - {type: contains-any, value: [account, Account]}
          - {type: regex, value: "^[A-Z][a-z]+$"}
"""


def write(pytester: pytest.Pytester, files: dict[str, str], *, ini: str = "") -> None:
    for name, text in files.items():
        path = pytester.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    pytester.makeini(
        "[pytest]\ngpo_promptfoo = true\ngpo_optimizer_model = gpo-sim/optimizer\n" + ini
    )


def router(pytester: pytest.Pytester, prompt: str = ROUTE, config: str = CONFIG) -> None:
    write(
        pytester,
        {
            "evals/router/promptfooconfig.yaml": config,
            "evals/router/prompts/route.txt": prompt,
            "evals/router/tickets/password.txt": "I can't reset my password",
        },
    )


def report(pytester: pytest.Pytester) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((pytester.path / ".gpo" / "report.json").read_text())
    return data


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest("-p", "no:cacheprovider", *args)


def test_configs_are_collected_only_with_the_ini_switch(pytester: pytest.Pytester) -> None:
    router(pytester)
    pytester.makeini("[pytest]\n")
    off = run(pytester, "--collect-only", "-q")
    assert "no tests collected" in off.stdout.str()
    # the user is told why their config did not run, and how to switch it on
    plain = run(pytester)
    assert "1 promptfoo config(s) not collected" in plain.stdout.str()
    assert "set gpo_promptfoo = true" in plain.stdout.str()
    pytester.makeini("[pytest]\ngpo_promptfoo = true\n")
    on = run(pytester, "--collect-only", "-q")
    on.stdout.fnmatch_lines(["evals/router/promptfooconfig.yaml::evals/router[[]route|sim[]]"])


def test_a_config_runs_unchanged_and_reports_each_test(pytester: pytest.Pytester) -> None:
    router(pytester)
    result = run(pytester, "--gpo-report", ".gpo/report.md")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*evals/router[[]route|sim[]]*1.000*PASS*"])
    (suite,) = report(pytester)["suites"]
    assert suite["suite"] == "evals/router[route|sim]"
    assert suite["file"] == "evals/router/promptfooconfig.yaml"
    assert suite["model"] == "gpo-sim/task"
    cases = {c["id"]: c for c in suite["cases"]}
    assert set(cases) >= {"charged twice", "crash"} and len(cases) == 3
    assert all(c["passed"] for c in cases.values())
    assert cases["crash"]["reason"] == "all 3 assertion(s) passed"  # defaultTest's assert too
    # an equals value is the test's expected output in the reports; other tests have none
    assert cases["charged twice"]["expected"] == "Billing" and cases["crash"]["expected"] is None


def test_a_failing_test_names_its_assertion(pytester: pytest.Pytester) -> None:
    router(pytester, prompt=CHATTY)
    result = run(pytester)
    result.assert_outcomes(failed=1)
    out = result.stdout.str()
    assert "below threshold: pass rate" in out
    assert "equals: expected 'Billing'" in out and "charged twice" in out


def test_prompts_times_providers_is_a_matrix_of_stable_suites(pytester: pytest.Pytester) -> None:
    config = CONFIG.replace(
        """      - id: file://prompts/route.txt
        label: route
""",
        """      - id: file://prompts/route.txt
        label: route
      - "Route this support ticket.\\n\\nTicket: {{ticket}}"
""",
    ).replace(
        """        config: {temperature: 0, max_tokens: 50}
""",
        """        config: {temperature: 0, max_tokens: 50}
      - litellm:gpo-sim/task
""",
    )
    router(pytester, config=config)
    result = run(pytester, "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        [
            "*::evals/router[[]route|sim[]]",
            "*::evals/router[[]route|litellm:gpo-sim/task[]]",
            "*::evals/router[[]prompt2|sim[]]",
            "*::evals/router[[]prompt2|litellm:gpo-sim/task[]]",
        ]
    )
    run(pytester).assert_outcomes(passed=2, failed=2)  # prompt2 is the chatty one


def test_tests_from_csv_json_yaml_files_with_default_vars_and_var_lists(
    pytester: pytest.Pytester,
) -> None:
    write(
        pytester,
        {
            "promptfooconfig.yaml": """\
                prompts: ["{{instruction}}\\n\\nTicket: {{ticket}}"]
                providers: [litellm:gpo-sim/task]
                defaultTest:
                  vars: {instruction: file://instruction.txt}
                tests:
                  - file://cases.csv
                  - file://cases.json
                  - file://cases.yaml
                  - vars:
                      ticket: ["The app crashes on login", "Error 500 when I save"]
                    assert: [{type: equals, value: Technical}]
                """,
            "instruction.txt": ROUTE.split("\n\n")[0],
            "cases.csv": "ticket,__expected,__description\n"
            "I was charged twice,Billing,csv billing\n"
            "My package never arrived,icontains:ship,csv shipping\n",
            "cases.json": json.dumps(
                [{"vars": {"ticket": "Please refund my invoice"}, "assert": [{"type": "is-json"}]}]
            ),
            "cases.yaml": "- description: yaml account\n"
            "  vars: {ticket: I cannot log in to my account}\n"
            "  assert: [{type: starts-with, value: Acc}]\n",
        },
    )
    result = run(pytester, "--gpo-report", ".gpo/report.md")
    (suite,) = report(pytester)["suites"]
    ids = {c["id"]: c["passed"] for c in suite["cases"]}
    assert len(ids) == 6, ids
    assert ids["csv billing"] and ids["csv shipping"] and ids["yaml account"]
    failing = [cid for cid, ok in ids.items() if not ok]
    assert len(failing) == 1  # the is-json test: the router answers a word, not JSON
    result.assert_outcomes(failed=1)
    assert "is-json" in result.stdout.str()


def test_every_other_assertion_type_weights_and_thresholds_end_to_end(
    pytester: pytest.Pytester,
) -> None:
    """The mapped features the tests above leave out, on the simulated model, which answers
    'Billing' to this ticket (similar runs the bundled local embedding model)."""
    write(
        pytester,
        {
            "promptfooconfig.yaml": """\
                prompts: [file://route.txt]
                providers: [litellm:gpo-sim/task]
                defaultTest:
                  vars: {ticket: "I was charged twice, please refund me"}
                tests:
                  - description: kitchen sink
                    assert:
                      - {type: contains-all, value: [Bill, ing]}
                      - {type: icontains-all, value: [bill, ING]}
                      - {type: icontains-any, value: [BILLING, refund]}
                      - {type: not-equals, value: Technical}
                      - {type: not-starts-with, value: Tech}
                      - {type: not-regex, value: '\\d'}
                      - {type: not-contains-any, value: [Technical, Account]}
                      - {type: not-levenshtein, value: Shipping, threshold: 2}
                      - {type: similar, value: Billing, threshold: 0.9}
                      - {type: not-similar, value: The weather in Paris is sunny, threshold: 0.6}
                      - {type: contains, value: zzz, weight: 0}
                  - description: weighted
                    threshold: 0.5
                    assert:
                      - {type: contains, value: Billing, weight: 2}
                      - {type: contains, value: nope}
                  - description: strict
                    threshold: 0.9
                    assert:
                      - {type: contains, value: Billing, weight: 2}
                      - {type: contains, value: nope}
                """,
            "route.txt": ROUTE,
        },
    )
    result = run(pytester, "--gpo-report", ".gpo/report.md")
    result.assert_outcomes(failed=1)
    cases = {c["id"]: c for c in report(pytester)["suites"][0]["cases"]}
    assert cases["kitchen sink"]["samples"][0]["output"] == "Billing"
    assert cases["kitchen sink"]["passed"], cases["kitchen sink"]["reason"]
    assert cases["kitchen sink"]["reason"].startswith("all 10 assertion(s) passed; not counted")
    assert cases["weighted"]["passed"] and cases["weighted"]["score"] == pytest.approx(2 / 3)
    assert not cases["strict"]["passed"]
    assert cases["strict"]["reason"].startswith("score 0.67 < 0.9 (contains: expected")


def test_gate_baseline_then_replay_passes_and_a_changed_prompt_regresses(
    pytester: pytest.Pytester,
) -> None:
    router(pytester)
    run(pytester, "--gpo-update-baseline").assert_outcomes(passed=1)
    baseline = json.loads((pytester.path / ".gpo" / "baseline.json").read_text())
    assert "evals/router[route|sim]" in json.dumps(baseline)
    replay = run(pytester, "--gpo-cache", "replay")
    replay.assert_outcomes(passed=1)
    replay.stdout.fnmatch_lines(["model calls: 0*"])
    (pytester.path / "evals/router/prompts/route.txt").write_text(CHATTY)
    changed = run(pytester)
    changed.assert_outcomes(failed=1)
    changed.stdout.fnmatch_lines(["*regress*"])


def test_optimize_writes_back_to_the_file_prompt_not_the_config(
    pytester: pytest.Pytester,
) -> None:
    lines = (SUPPORT_DESK / "suites" / "tickets.jsonl").read_text().splitlines()
    tests = []
    for line in lines:
        case = json.loads(line)
        pattern = "(?i)^\\W*" + case["expected"] + "\\W*$"
        tests.append(
            {
                "description": case["id"],
                "vars": case["vars"],
                "assert": [{"type": "regex", "value": pattern}],
            }
        )
    inline = (SUPPORT_DESK / "prompts" / "router.txt").read_text()
    config = {
        "prompts": [
            {"id": "file://router.txt", "label": "file"},
            {"raw": inline, "label": "inline"},
        ],
        "providers": [{"id": "litellm:gpo-sim/task", "label": "sim", "config": {"temperature": 0}}],
        "tests": "file://tests.jsonl",
    }
    write(
        pytester,
        {
            "promptfooconfig.yaml": json.dumps(config, indent=1),
            "tests.jsonl": "\n".join(json.dumps(t) for t in tests) + "\n",
        },
    )
    shutil.copy(SUPPORT_DESK / "prompts" / "router.txt", pytester.path / "router.txt")
    config_before = (pytester.path / "promptfooconfig.yaml").read_bytes()
    before = (pytester.path / "router.txt").read_text()
    result = run(pytester, "--gpo-optimize", "--gpo-steps", "6", "--gpo-candidates", "8")
    out = result.stdout.str()
    assert result.ret == 1, out
    after = (pytester.path / "router.txt").read_text()
    assert after != before and "{{ ticket }}" in after
    assert (pytester.path / "promptfooconfig.yaml").read_bytes() == config_before
    result.stdout.fnmatch_lines(
        [
            "*[[]file|sim[]]*router.txt rewritten*",
            "*[[]inline|sim[]]*promptfooconfig.yaml not written: it is not a prompt file*",
        ]
    )
    md = (pytester.path / ".gpo" / "report.md").read_text()
    head = next(line for line in md.splitlines() if "GPO:" in line)
    assert "2 prompt(s) improved and 1 rewritten" in head, head
    assert "promptfooconfig.yaml not written: it is not a prompt file" in head
    assert "+++ promptfooconfig[inline|sim] (after)" in md  # the improved prompt, to copy


def test_errors_name_the_config_key_and_fix_and_other_suites_still_run(
    pytester: pytest.Pytester,
) -> None:
    router(pytester)
    bad = {
        "bad_type/promptfooconfig.yaml": """\
            prompts: ["Hi {{x}}"]
            providers: [litellm:gpo-sim/task]
            tests: [{vars: {x: a}, assert: [{type: javascript, value: "output.length > 2"}]}]
            """,
        "bad_provider/promptfooconfig.yaml": """\
            prompts: ["Hi {{x}}"]
            providers: [acme:super-model]
            tests: [{vars: {x: a}}]
            """,
        "bad_var/promptfooconfig.yaml": """\
            prompts: ["Hi {{x}}"]
            providers: [litellm:gpo-sim/task]
            tests: [{vars: {x: file://missing.txt}}]
            """,
        "code_var/promptfooconfig.yaml": """\
            prompts: ["Hi {{x}}"]
            providers: [litellm:gpo-sim/task]
            tests: [{vars: {x: file://make.py}}]
            """,
        "outside/promptfooconfig.yaml": """\
            prompts: ["Hi {{x}}"]
            providers: [litellm:gpo-sim/task]
            tests: file://../../secret.csv
            """,
        "bad_key/promptfooconfig.yaml": """\
            prompts: ["Hi {{x}}"]
            providers: [litellm:gpo-sim/task]
            scenarios: []
            tests: [{vars: {x: a}}]
            """,
        "missing_var/promptfooconfig.yaml": """\
            prompts: ["Hi {{x}} {{y}}"]
            providers: [litellm:gpo-sim/task]
            tests: [{description: lonely, vars: {x: a}}]
            """,
    }
    write(pytester, bad)
    (pytester.path / "code_var" / "make.py").write_text("print(1)\n")
    (pytester.path.parent / "secret.csv").write_text("x\n1\n")
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=7)
    out = result.stdout.str()
    assert "unsupported assertion type 'javascript'" in out and "tests[0].assert[0].type" in out
    assert "unknown provider 'acme:super-model'" in out and "litellm:<any litellm model" in out
    assert "file not found: bad_var/missing.txt" in out
    assert "make.py is a code file: not supported" in out
    assert "outside the project" in out
    assert "unsupported config key 'scenarios'" in out
    assert "missing var(s) y" in out and "lonely" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out


def test_provider_config_goes_through_suite_params_validation(pytester: pytest.Pytester) -> None:
    write(
        pytester,
        {
            "promptfooconfig.yaml": """\
                prompts: ["Route: {{t}}"]
                providers:
                  - id: openai:chat:gpt-4o-mini
                    config: {temperature: 0, maxTokens: 5, frobnicate: 1}
                tests: [{vars: {t: a}}]
                """,
        },
    )
    result = run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*unsupported provider config key 'frobnicate'*"])


def test_llm_rubric_is_graded_by_the_default_test_provider(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    def responder(body: dict[str, Any]) -> str:
        if body["model"] == "grader":
            graded = body["messages"][-1]["content"].split("RESPONSE TO GRADE:")[-1]
            score = 9 if "kindly" in graded else 1
            return json.dumps({"score": score, "reason": "tone checked"})
        return "We kindly ask you to wait." if "kind" in str(body["messages"]) else "No."

    write(
        pytester,
        {
            "promptfooconfig.yaml": """\
                prompts: ["Reply to the customer, {{tone}}: {{msg}}"]
                providers: [openai:chat:task]
                defaultTest:
                  options: {provider: openai:chat:grader}
                  assert: [{type: llm-rubric, value: Replies politely}]
                tests:
                  - {description: kind, vars: {tone: kind, msg: Where is my parcel?}}
                  - {description: curt, vars: {tone: curt, msg: Where is my parcel?}}
                """,
        },
    )
    with OpenAIServer(responder=responder) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        result = run(pytester, "--gpo-report", ".gpo/report.md")
        graded = [b for b in server.bodies if b["model"] == "grader"]
    result.assert_outcomes(failed=1)
    assert len(graded) == 2 and "Replies politely" in graded[0]["messages"][-1]["content"]
    cases = {c["id"]: c for c in report(pytester)["suites"][0]["cases"]}
    assert cases["kind"]["passed"] and not cases["curt"]["passed"]
    assert "llm-rubric: judge 1/10" in cases["curt"]["reason"]


def test_collection_stays_free_of_litellm_and_torch(pytester: pytest.Pytester) -> None:
    router(pytester)
    pytester.makeconftest(
        textwrap.dedent("""
        import sys
        def pytest_sessionfinish(session):
            heavy = [m for m in ("litellm", "torch", "sentence_transformers") if m in sys.modules]
            print("HEAVY-MODULES:", heavy)
    """)
    )
    collect = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--collect-only", "-s")
    collect.stdout.fnmatch_lines(["*collected 1 item*", "*HEAVY-MODULES: []*"])


def test_a_prompt_file_shared_by_two_suites_is_written_once_and_the_other_says_why(
    tmp_path: Path,
) -> None:
    import hashlib

    from pytest_gpo.writeback import PlannedWrite, WriteStatus, apply

    prompt = tmp_path / "route.txt"
    prompt.write_text("old {{ticket}}\n")
    sha = hashlib.sha256(prompt.read_bytes()).hexdigest()
    plans = [
        PlannedWrite("cfg[route|mini]", prompt, sha, "new A {{ticket}}", root=tmp_path),
        PlannedWrite("cfg[route|haiku]", prompt, sha, "new B {{ticket}}", root=tmp_path),
    ]
    first, second = apply(plans, dry_run=False, ci=False, allow_in_ci=False)
    assert first.written and prompt.read_text() == "new A {{ticket}}\n"
    assert second.status == WriteStatus.STALE
    assert "already holds the prompt optimized for cfg[route|mini]" in second.message
