"""The session glue end to end without litellm: the example project's ticket router, the
real ``evaluate`` and scorers, and the simulated models called directly (``sim.simulate``)
behind a small in-process client. Checks that the simulated optimizer understands the
meta-prompt, that checkpoints land under ``.gpo/runs`` and that a rerun resumes."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
from test_optimize_fakes import BagOfWordsEmbedder

from pytest_gpo import sim
from pytest_gpo.evaluate import EvalOptions
from pytest_gpo.llm.types import Completion, Embedder, Request, Usage
from pytest_gpo.plugin.optimize_driver import optimize_suite, run_dir, suite_config
from pytest_gpo.report.optimization import optimize_markdown
from pytest_gpo.scorers.registry import builtin_registry
from pytest_gpo.settings import Settings
from pytest_gpo.suites.load import load_suite
from pytest_gpo.suites.model import Suite

T = TypeVar("T")
FIXTURE = Path(__file__).parent / "fixtures" / "support_desk"
ROUTER = FIXTURE / "suites" / "ticket_router.gpo.yaml"


class SimClient:
    """The simulated models in-process: no litellm, no cache."""

    def __init__(self) -> None:
        self.usage = Usage()
        self.requests: list[Request] = []

    async def complete(self, request: Request) -> Completion:
        self.requests.append(request)
        texts = sim.simulate(
            request.model,
            [dict(m) for m in request.messages],
            temperature=request.params.get("temperature"),
            sample=request.sample,
            n=request.n,
        )
        completion = Completion(
            texts=tuple(texts), prompt_tokens=50, completion_tokens=5, attempts=1
        )
        self.usage.add(completion)
        return completion

    async def aclose(self) -> None:
        return None


class Runner:
    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(coro)


@dataclass
class FakeSession:
    settings: Settings
    client: SimClient = field(default_factory=SimClient)
    runner: Runner = field(default_factory=Runner)
    hook: Any = None
    embedded: BagOfWordsEmbedder = field(default_factory=BagOfWordsEmbedder)

    def optimizer_model_for(self, suite: Suite) -> str:
        return "gpo-sim/optimizer"

    def eval_options(self, suite: Suite) -> EvalOptions:
        return EvalOptions(model="gpo-sim/task")

    def embedder(self, spec: str | None) -> Embedder:
        return self.embedded


@pytest.fixture
def router() -> Suite:
    if not ROUTER.exists():
        pytest.skip("example project not present")
    return load_suite(ROUTER, builtin_registry())


def test_session_settings_override_the_suite(router: Suite, tmp_path: Path) -> None:
    cfg = suite_config(router, Settings(rootdir=tmp_path, steps=2, candidates=3))
    assert (cfg.steps, cfg.candidates, cfg.seed) == (2, 3, 0)
    cfg = suite_config(
        router, Settings(rootdir=tmp_path, seed=5, sources={"seed": "--gpo-seed"}, preset="pe2")
    )
    assert (cfg.steps, cfg.candidates, cfg.seed, cfg.retrieval) == (6, 8, 5, "recency")


def test_optimize_the_example_router_with_the_simulated_models(
    router: Suite, tmp_path: Path
) -> None:
    session = FakeSession(Settings(rootdir=tmp_path, steps=3, candidates=4))
    lines: list[str] = []
    result = optimize_suite(session, router, lines.append)  # type: ignore[arg-type]

    assert lines[0].startswith("ticket_router: preset gpo, at most 3 steps")
    assert any(line.startswith("gpo ticket_router step 3/3") for line in lines)
    assert result.steps_completed == 3 and result.stopped_reason is None
    optimizer = [r for r in session.client.requests if r.purpose == "optimizer"]
    assert len(optimizer) == 3 and all(r.n == 4 for r in optimizer)
    # the simulated optimizer found the current prompt and the budget in the meta-prompt
    statuses = [c.status for s in result.steps for c in s.candidates]
    assert len(statuses) == 12 and "accepted" in statuses
    assert set(statuses) <= {"accepted", "duplicate", "over_budget", "dropped_variable"}
    assert all(
        not c.text.startswith("I could not find") for s in result.steps for c in s.candidates
    )
    assert result.task_model == "gpo-sim/task" and result.dataset_hash == router.dataset_hash()
    assert result.scores["test"].before is not None
    assert "```mermaid" in optimize_markdown(result)

    runs = list((tmp_path / ".gpo" / "runs").glob("ticket_router-*/checkpoint.json"))
    assert len(runs) == 1

    again = FakeSession(Settings(rootdir=tmp_path, steps=3, candidates=4))
    resumed = optimize_suite(again, router, lines.append)  # type: ignore[arg-type]
    assert resumed.resumed_from == 3
    assert [r for r in again.client.requests if r.purpose == "optimizer"] == []
    assert resumed.best_prompt == result.best_prompt
    assert resumed.trajectory == result.trajectory


def test_run_dir_is_path_safe(router: Suite, tmp_path: Path) -> None:
    path = run_dir(tmp_path, router, "abc123")
    assert path == tmp_path / ".gpo" / "runs" / "ticket_router-abc123"


def test_too_few_cases_names_the_suite_file(router: Suite, tmp_path: Path) -> None:
    import dataclasses

    from pytest_gpo.errors import SuiteError

    tiny = dataclasses.replace(router, cases=router.cases[:2])
    session = FakeSession(Settings(rootdir=tmp_path))
    with pytest.raises(SuiteError) as info:
        optimize_suite(session, tiny, print)  # type: ignore[arg-type]
    assert info.value.path == str(ROUTER) and "at least 3 cases" in info.value.message
    assert session.client.requests == []
