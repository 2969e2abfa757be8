"""Optimizer requests against a local OpenAI-compatible server that logs them: bounded
(max_tokens), reflection only over failing cases at temperature 0 and skipped when nothing
fails, the system message shown, a tight cost estimate; and the meta-prompt's size limits."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from openai_server import OpenAIServer
from test_optimize_fakes import ScriptedClient, TableEvaluator

from pytest_gpo.llm.types import Completion, ErrorKind, Request
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.estimate import plan_run
from pytest_gpo.optimize.loop import optimize
from pytest_gpo.optimize.markers import REFLECTION_TAG
from pytest_gpo.optimize.metaprompt import TaskExample, build_meta_prompt
from pytest_gpo.optimize.retrieval import TrajectoryEntry

pytest_plugins = ["pytester"]

LABELS = {"refund": "billing", "crash": "technical", "password": "account", "package": "shipping"}
SYSTEM = "You are the routing desk of ACME. Never reveal internal notes."
FIX = "Password problems are account issues."


def _model(body: dict[str, Any]) -> str:
    """Task model: right except password tickets (billing) until the prompt says otherwise.
    Optimizer: adds that sentence; reflection: names it."""
    content = body["messages"][-1]["content"]
    if body["model"].endswith("optimizer") or body["model"] == "gpt-4o":
        if REFLECTION_TAG in content:
            return "The prompt never says where password problems go."
        current = content.split("<current_prompt>\n", 1)[1].split("\n</current_prompt>", 1)[0]
        return f"Here you go.\n<START>{current}\n{FIX}<END>"
    ticket = content.lower()
    label = next((v for k, v in LABELS.items() if f"my {k}" in ticket), "other")
    if label == "account" and "password problems" not in ticket:
        return "billing"
    return label


def _project(pytester: pytest.Pytester, optimize: str, ini: str = "") -> None:
    (pytester.path / "prompt.txt").write_text("Route this ticket.\n\nTicket: {{ ticket }}\n")
    words = ["refund", "crash", "password", "package"]
    cases = "\n".join(
        f"  - {{id: t{i:02d}, vars: {{ticket: 'my {w} issue {i}'}}, expected: {LABELS[w]}}}"
        for i, w in enumerate(words * 6)
    )
    (pytester.path / "r.gpo.yaml").write_text(
        f"name: r\nprompt: prompt.txt\nsystem: {SYSTEM}\nthreshold: 0\n"
        f"optimize: {optimize}\ncases:\n{cases}\n"
    )
    pytester.makeini(
        "[pytest]\ngpo_model = openai/task\ngpo_optimizer_model = openai/optimizer\n" + ini
    )


def test_reflection_lists_only_failing_cases_at_temperature_0_and_is_skipped_when_none_fail(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    with OpenAIServer(responder=_model) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        _project(pytester, "{preset: pe2, steps: 2, candidates: 2}")
        result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-optimize", "--gpo-dry-run")
        out = result.stdout.str()
        assert result.ret == 0, out
        bodies = [b for b in server.bodies if b.get("model") == "optimizer"]
    report = (pytester.path / ".gpo" / "report.md").read_text(encoding="utf-8")
    assert "- step 2: reflection skipped: the current prompt passes all" in report
    reflections = [b for b in bodies if REFLECTION_TAG in b["messages"][-1]["content"]]
    proposals = [b for b in bodies if b not in reflections]
    assert len(proposals) == 2
    # every optimizer request is bounded: the reference code's max_tokens and temperature
    assert all(b["max_tokens"] == 512 and b["temperature"] == 1.0 for b in proposals)
    # step 1 reflects on the password cases it fails, and on nothing else
    assert len(reflections) == 1
    request = reflections[0]
    assert request["temperature"] == 0 and request["max_tokens"] == 512
    asked = request["messages"][-1]["content"]
    wrong = asked.split("examples wrong", 1)[1]
    assert "my password issue" in wrong
    assert not any(f"my {w} issue" in wrong for w in ("refund", "crash", "package"))
    assert "Model output: billing" in wrong and "Expected output: account" in wrong
    # step 2: the new prompt passes every case, so nothing is sent and the log says so
    assert "reflection skipped" in out
    # the optimizer sees the system message the task model gets, marked as fixed
    assert all(SYSTEM in b["messages"][-1]["content"] for b in bodies)
    assert "<system_message>" in proposals[0]["messages"][-1]["content"]


def test_max_tokens_makes_a_one_dollar_cap_enough_for_gpt_4o(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Unbounded, 8 completions of gpt-4o reserve 16,384 x 8 output tokens (> $1) and the run
    stopped before step 1; with max_tokens the estimate is tight and the run goes on."""
    with OpenAIServer(responder=_model) as server:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        _project(
            pytester, "{steps: 1, retrieval: recency}", "gpo_optimizer_params = max_tokens=300\n"
        )
        result = pytester.runpytest(
            "-p",
            "no:cacheprovider",
            "--gpo-optimize",
            "--gpo-dry-run",
            "--gpo-model",
            "openai/gpt-4o-mini",
            "--gpo-optimizer-model",
            "openai/gpt-4o",
            "--gpo-max-cost",
            "1",
        )
        out = result.stdout.str()
        assert result.ret == 0, out
        proposals = [b for b in server.bodies if b.get("model") == "gpt-4o"]
    assert "stopped before step 1" not in out and "step 1/1" in out
    assert len(proposals) == 1
    assert proposals[0]["max_tokens"] == 300 and proposals[0]["n"] == 8


def test_optimizer_params_go_through_the_suite_params_rules(pytester: pytest.Pytester) -> None:
    _project(pytester, "{optimizer_params: {n: 4}}")
    result = pytester.runpytest("-p", "no:cacheprovider", "--gpo-optimize", "--gpo-dry-run")
    out = result.stdout.str()
    assert result.ret != 0
    assert "optimize.optimizer_params.n" in out and "Traceback" not in out
    _project(pytester, "{optimizer_params: {max_tokens: 0}}")
    out = pytester.runpytest("-p", "no:cacheprovider", "--gpo-optimize").stdout.str()
    assert "optimize.optimizer_params.max_tokens" in out and "bounded" in out


def test_config_keys_and_the_temperature_key_agree() -> None:
    cfg = OptimizeConfig.from_mapping({})
    assert dict(cfg.optimizer_params) == {"max_tokens": 512, "temperature": 1.0}
    cfg = OptimizeConfig.from_mapping({"temperature": 0.3})
    assert cfg.optimizer_params["temperature"] == 0.3
    cfg = OptimizeConfig.from_mapping({"optimizer_params": {"temperature": 0.5, "top_p": 0.9}})
    assert (cfg.temperature, cfg.optimizer_params["max_tokens"]) == (0.5, 512)
    cfg = cfg.with_overrides({"optimizer_params": {"max_tokens": 64}})
    assert dict(cfg.optimizer_params) == {"max_tokens": 64, "temperature": 0.5, "top_p": 0.9}
    assert OptimizeConfig.from_dict(cfg.to_dict()) == cfg


def test_long_values_are_shortened_and_the_system_message_shown() -> None:
    document = " ".join(f"word{i}" for i in range(4000))
    examples = [
        TaskExample(case_id=f"d{i}", variables={"doc": document}, expected="x") for i in range(3)
    ]
    meta = build_meta_prompt(
        current=TrajectoryEntry("Summarize: {{ doc }}", 0.5),
        previous=[],
        examples=examples,
        budget=10,
        system="Be terse.",
        example_tokens=200,
    )
    assert len(meta.split()) < 1200  # three 4,000-word documents made 12,184 words before
    assert "characters cut" in meta and "word3999" in meta and "Be terse." in meta


class _SmallContext(ScriptedClient):
    """Refuses requests longer than ``limit`` characters as a provider does."""

    def __init__(self, limit: int) -> None:
        super().__init__(lambda r, i: [f"<START>{P0} Be brief.<END>"])
        self.limit = limit

    async def complete(self, request: Request) -> Completion:
        if len(request.messages[0]["content"]) > self.limit:
            self.requests.append(request)
            c = Completion(
                error="ContextWindowExceededError: This model's maximum context length is 4096 "
                "tokens",
                error_kind=ErrorKind.PROVIDER,
                attempts=1,
            )
            self.usage.add(c)
            return c
        return await super().complete(request)


CASES = [f"c{i:02d}" for i in range(20)]
P0 = "Answer the question. Question: {{ q }}"


def test_a_context_window_error_shortens_and_retries() -> None:
    cfg = OptimizeConfig.from_mapping({"steps": 1, "candidates": 2, "retrieval": "recency"})
    client = _SmallContext(limit=3000)
    long_question = "why " * 2000
    events: list[str] = []
    result = asyncio.run(
        optimize(
            suite_name="qa",
            initial_prompt=P0,
            case_ids=CASES,
            expected_by_id=dict.fromkeys(CASES, "yes"),
            vars_by_id={c: {"q": long_question} for c in CASES},
            evaluate=TableEvaluator(
                eval_scores={P0: 0.4}, test_ids=frozenset(plan_run(CASES, cfg).splits.test)
            ),
            client=client,
            optimizer_model="opt/model",
            config=cfg,
            progress=lambda e: events.append(e.message),
        )
    )
    assert result.stopped_reason is None and result.steps_completed == 1
    sizes = [len(r.messages[0]["content"]) for r in client.requests]
    assert len(sizes) >= 2 and sizes[-1] <= 3000 < sizes[0]
    assert any("shortened after a context-window error" in m for m in events)
    assert result.steps[0].notes


def test_sgdm_preset_reflects_edits_and_carries_feedback_momentum() -> None:
    cfg = OptimizeConfig.from_mapping({"preset": "sgdm", "steps": 3, "candidates": 2})
    assert (cfg.reflection, cfg.update, cfg.momentum, cfg.retrieval) == (True, "edit", 2, "none")
    texts = [f"{P0} Step {i}." for i in range(1, 4)]
    client = ScriptedClient(lambda r, i: [f"<START>{texts[i]}<END>"])
    client.reflection_text = "Say what a right answer looks like."
    result = asyncio.run(
        optimize(
            suite_name="qa",
            initial_prompt=P0,
            case_ids=CASES,
            expected_by_id=dict.fromkeys(CASES, "yes"),
            vars_by_id={c: {"q": f"question {c}"} for c in CASES},
            # every prompt fails (score < 0.5), so every step reflects
            evaluate=TableEvaluator(
                eval_scores={P0: 0.1, **{t: 0.2 + i / 10 for i, t in enumerate(texts)}},
                test_ids=frozenset(plan_run(CASES, cfg).splits.test),
            ),
            client=client,
            optimizer_model="opt/model",
            config=cfg,
        )
    )
    assert result.steps_completed == 3
    assert [r.purpose for r in client.requests] == ["reflection", "optimizer"] * 3
    metas = [r.messages[0]["content"] for r in client.requests if r.purpose == "optimizer"]
    assert "modify the current prompt" in metas[0]
    assert "momentum" not in metas[0]
    assert metas[1].count('<feedback step="') == 1 and metas[2].count('<feedback step="') == 2
    assert all(r.params["temperature"] == 0 for r in client.requests if r.purpose == "reflection")


def test_the_command_line_and_ini_forms_of_optimizer_params() -> None:
    from pytest_gpo.optimize.params import parse_param_mapping

    assert parse_param_mapping("max_tokens=300, temperature=0.5") == {
        "max_tokens": 300,
        "temperature": 0.5,
    }
    assert parse_param_mapping("max_tokens = 64\nstop=END") == {"max_tokens": 64, "stop": "END"}
    assert parse_param_mapping('{"max_tokens": 1024, "top_p": 0.9}') == {
        "max_tokens": 1024,
        "top_p": 0.9,
    }
    for bad in ("max_tokens", "{not json", "[1, 2]"):
        with pytest.raises(ValueError):
            parse_param_mapping(bad)
    with pytest.raises(Exception, match="max_tokens"):
        OptimizeConfig.from_mapping({}).with_overrides({"optimizer_params": {"max_tokens": "x"}})


def test_a_reflection_request_shows_failing_cases_up_to_its_size_budget() -> None:
    from pytest_gpo.optimize.metaprompt import approx_tokens, build_reflection_prompt

    wrong = [
        TaskExample(
            case_id=f"w{i}", variables={"q": f"question {i} " * 30}, expected="yes", output="no"
        )
        for i in range(40)
    ]
    full = build_reflection_prompt(current=P0, wrong=wrong[:3])
    assert "these 3 examples wrong:" in full and full.count("Model output: no") == 3
    capped = build_reflection_prompt(current=P0, wrong=wrong, max_tokens=1500)
    shown = capped.count("Model output: no")
    assert 3 < shown < 40 and f"({40 - shown} more not shown, for length)" in capped
    assert approx_tokens(capped) <= 1500
