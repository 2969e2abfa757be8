"""The session object: everything one pytest run of pytest-gpo holds.

The pytest hooks in :mod:`pytest_gpo.plugin.hooks` and the items in
:mod:`pytest_gpo.plugin.items` stay a few lines each and delegate here. The model client
(and with it litellm) is created on the first model call, never at start-up or collection.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

from pytest_gpo.errors import ConfigError, GpoError, SuiteError
from pytest_gpo.llm.types import Embedder, ModelClient, Usage
from pytest_gpo.results import SuiteRun
from pytest_gpo.scorers.base import ScorerRegistry
from pytest_gpo.settings import Settings
from pytest_gpo.sim import SIM_PREFIX
from pytest_gpo.suites.load import load_suite
from pytest_gpo.suites.model import Suite, ThresholdMetric
from pytest_gpo.suites.paths import Confinement, display

if TYPE_CHECKING:
    from pytest_gpo.evaluate import EvalOptions
    from pytest_gpo.gate.baseline import BaselineEntry, BaselineStore
    from pytest_gpo.gate.verdict import GateVerdict
    from pytest_gpo.llm.loop import EventLoopRunner
    from pytest_gpo.optimize.result import OptimizationResult
    from pytest_gpo.plugin.finish import Outcome
    from pytest_gpo.scorers.score_cache import ScoreCache


@dataclass
class SuiteRecord:
    """What one suite produced in this session (typed; sent home by xdist workers as JSON).

    Every collected suite file has one, made at collection: ``invalid`` holds the load error
    of a file that is not a valid suite, ``error`` why a suite could not be scored, ``usage``
    the model requests this suite really sent in this session (cache hits and work restored
    from an optimization checkpoint cost none). A record with none of run, verdict,
    optimization, error or invalid set is a suite that was never run.
    """

    nodeid: str
    name: str
    path: str
    model: str = ""
    invalid: str | None = None
    threshold: float | None = None
    metric: ThresholdMetric = "mean"
    usage: Usage | None = None
    run: SuiteRun | None = None
    verdict: GateVerdict | None = None
    optimization: OptimizationResult | None = None
    gate_entry: BaselineEntry | None = None
    error: str | None = None
    prompt_path: str = ""
    prompt_sha256: str = ""
    #: the suite's number of cases (shown for a suite that errored or never ran)
    case_count: int = 0
    warnings: list[str] = field(default_factory=list)
    #: the run directory of this suite's optimization (its checkpoint), once it started
    run_dir: str = ""

    @property
    def ran(self) -> bool:
        """True when the suite produced anything (a run, a verdict, an error, a load error)."""
        return any(
            x is not None for x in (self.run, self.verdict, self.optimization, self.error)
        ) or bool(self.invalid)


def merge_record(records: dict[str, SuiteRecord], record: SuiteRecord) -> None:
    """Add a worker's record; every xdist worker collects every suite, one of them runs it."""
    known = records.get(record.nodeid)
    if known is None or (record.ran and not known.ran):
        records[record.nodeid] = record


def records_to_json(records: Iterable[SuiteRecord]) -> str:
    """The records of an xdist worker, as the JSON it sends to the controller."""
    from pytest_gpo.serial import to_data

    return json.dumps([to_data(r) for r in records], allow_nan=False)


def records_from_json(payload: str) -> list[SuiteRecord]:
    """Inverse of :func:`records_to_json` (on the controller)."""
    from pytest_gpo.gate.baseline import BaselineEntry
    from pytest_gpo.gate.verdict import GateVerdict
    from pytest_gpo.optimize.result import OptimizationResult
    from pytest_gpo.serial import from_data

    names = {
        "Usage": Usage,
        "SuiteRun": SuiteRun,
        "GateVerdict": GateVerdict,
        "OptimizationResult": OptimizationResult,
        "BaselineEntry": BaselineEntry,
    }
    return [from_data(SuiteRecord, item, names=names) for item in json.loads(payload)]


@dataclass
class GpoSession:
    """State of one pytest session (one per process; xdist workers send records home)."""

    settings: Settings
    #: the pytest hook relay (pytest-gpo's own hooks included); None outside pytest
    hook: pluggy.HookRelay | None = None
    records: dict[str, SuiteRecord] = field(default_factory=dict)
    #: under xdist, the budget file every worker shares (the caps are the run's)
    budget_file: str | None = None
    warnings: list[str] = field(default_factory=list)
    _registry: ScorerRegistry | None = None
    _runner: EventLoopRunner | None = None
    _client: ModelClient | None = None
    #: the suite whose model calls run now, and the client's counters when it started
    running: tuple[SuiteRecord, Usage | None] | None = None
    _baseline: BaselineStore | None = None
    _scores: ScoreCache | None = None
    #: what finishing the session did (written by :func:`.finish.finish_session`)
    outcome: Outcome | None = None
    #: the suite files collected under each suite name (a name must be unique: it keys the
    #: baseline)
    suite_paths: dict[str, list[Path]] = field(default_factory=dict)

    # -- loading ------------------------------------------------------------------------------

    @property
    def registry(self) -> ScorerRegistry:
        """Built-in scorers plus those registered through ``pytest_gpo_register_scorers``."""
        if self._registry is None:
            from pytest_gpo.scorers.registry import builtin_registry

            registry = builtin_registry()
            if self.hook is not None:
                self.hook.pytest_gpo_register_scorers(registry=registry)
            self._registry = registry
        return self._registry

    def load(self, path: Path) -> Suite:
        """Load and validate a suite file."""
        confinement = Confinement(self.settings.rootdir, self.settings.allowed_folders)
        return load_suite(path, self.registry, confinement, self.settings.trusted_params or ())

    def duplicate_name_error(self, suite: Suite) -> SuiteError | None:
        """The error of a suite whose ``name`` another collected suite file also has."""
        paths = sorted(set(self.suite_paths.get(suite.name, ())))
        if len(paths) < 2:
            return None
        files = ", ".join(display(p) for p in paths)
        return SuiteError(
            f"suite name '{suite.name}' is used by {len(paths)} suite files ({files}); they "
            "would share one baseline entry, so none of them is run",
            path=suite.path,
            key="name",
            fix="give each suite file its own 'name:' (a name defaults to the file's stem)",
        )

    # -- models -------------------------------------------------------------------------------

    def model_for(self, suite: Suite) -> str:
        """Suite ``model``, then ``--gpo-model``, ``GPO_MODEL``, ini ``gpo_model``."""
        model = suite.model or self.settings.model
        if not model:
            raise ConfigError(
                "no model is configured for this suite",
                path=suite.path,
                key="model",
                fix="set 'model:' in the suite, pass --gpo-model NAME, set GPO_MODEL, or set "
                "'gpo_model' in the ini file (offline: gpo_model = gpo-sim/task)",
            )
        return model

    def optimizer_model_for(self, suite: Suite) -> str:
        """``--gpo-optimizer-model``, ``GPO_OPTIMIZER_MODEL``, ini, then the suite's optimize."""
        model = self.settings.optimizer_model or suite.optimize.optimizer_model
        if not model:
            raise ConfigError(
                "no optimizer model is configured",
                path=suite.path,
                key="optimize.optimizer_model",
                fix="pass --gpo-optimizer-model NAME, set GPO_OPTIMIZER_MODEL, or set "
                "'gpo_optimizer_model' in the ini file (offline: gpo-sim/optimizer)",
            )
        return str(model)

    @property
    def runner(self) -> EventLoopRunner:
        """The session's single event loop (created on first use)."""
        if self._runner is None:
            from pytest_gpo.llm.loop import EventLoopRunner

            self._runner = EventLoopRunner()
        return self._runner

    @property
    def client(self) -> ModelClient:
        """The model client (litellm, or one a plugin provides), created on first use."""
        if self._client is None:
            from pytest_gpo import sim

            # the offline models are served like any custom provider (litellm not imported)
            sim.register()
            made = None
            if self.hook is not None:
                made = self.hook.pytest_gpo_make_client(settings=self.settings)
            self._client = made if made is not None else self._make_client()
        return self._client

    def _make_client(self) -> ModelClient:
        from pytest_gpo.llm.cache import open_cache
        from pytest_gpo.llm.client import LiteLLMClient

        s = self.settings
        cache = None
        if s.cache != "off":
            cache = open_cache(s.cache_url or str(s.cache_path))
        return LiteLLMClient(
            cache=cache,
            cache_mode=s.cache,
            concurrency=s.concurrency,
            timeout=s.timeout,
            max_attempts=s.max_attempts,
            max_calls=s.max_calls,
            max_cost=s.max_cost,
            router_config=s.router_path,
            prices=s.prices,
            budget_file=self.budget_file,
            default_max_tokens=s.default_max_tokens or None,
            retry_local_timeouts=s.retry_local_timeouts,
        )

    def embedder(self, spec: str | None) -> Embedder:
        """A shared embedder for a model spec (``None``: the local all-MiniLM-L6-v2)."""
        from pytest_gpo.llm.embeddings import LiteLLMEmbedder, get_embedder

        embedder = get_embedder(spec)
        s = self.settings
        if isinstance(embedder, LiteLLMEmbedder) and (s.max_calls or s.max_cost is not None):
            # embedding calls count against the run's caps like chat calls
            embedder.budget = getattr(self.client, "budget", None)
            embedder.prices = s.prices
        return embedder

    @property
    def scores(self) -> ScoreCache:
        """Semantic scores in the response cache, in the run's cache mode (built on first use)."""
        if self._scores is None:
            from pytest_gpo.llm.cache import open_cache
            from pytest_gpo.scorers.score_cache import ScoreCache

            s = self.settings
            store = None if s.cache == "off" else open_cache(s.cache_url or str(s.cache_path))
            self._scores = ScoreCache(store, s.cache)
        return self._scores

    def eval_options(self, suite: Suite) -> EvalOptions:
        """Model, repeats and scorer helpers for a suite."""
        # evaluate (and asyncio with it) loads when a suite runs, not when suites are collected
        from pytest_gpo.evaluate import EvalOptions

        repeat = self.settings.repeat or suite.repeat or 1
        min_pass = suite.min_pass if suite.min_pass is not None else repeat // 2 + 1
        if min_pass > repeat:
            raise ConfigError(
                f"min_pass ({min_pass}) is larger than the number of repeats ({repeat})",
                path=suite.path,
                key="min_pass",
                fix="lower min_pass or raise --gpo-repeat",
            )
        return EvalOptions(
            model=self.model_for(suite),
            repeat=repeat,
            min_pass=min_pass,
            judge_model=self.settings.judge_model,
            embedder=self.embedder,
            scores=self.scores,
        )

    # -- running ------------------------------------------------------------------------------

    def run_suite(self, suite: Suite) -> SuiteRun:
        """Evaluate a suite's prompt over all its cases (blocking, on the session loop)."""
        from pytest_gpo.evaluate import evaluate

        options = self.eval_options(suite)
        return self.runner.run(evaluate(suite, self.client, options))

    def record(self, nodeid: str, suite: Suite) -> SuiteRecord:
        """The record of a suite item (created on first use)."""
        if nodeid not in self.records:
            self.records[nodeid] = SuiteRecord(
                nodeid=nodeid,
                name=suite.name,
                path=str(suite.path),
                threshold=suite.threshold,
                metric=suite.threshold_metric,
                prompt_path=str(suite.prompt_path),
                prompt_sha256=suite.prompt_sha256,
                case_count=len(suite.cases),
            )
        return self.records[nodeid]

    def record_invalid(self, nodeid: str, name: str, path: Path, error: str) -> SuiteRecord:
        """The record of a suite file that could not be loaded (it fails the session)."""
        record = SuiteRecord(nodeid=nodeid, name=name, path=str(path), invalid=error)
        self.records[nodeid] = record
        return record

    def usage_now(self) -> Usage | None:
        """A copy of the model client's counters so far (zeros before its first use; ``None``
        for a client from ``pytest_gpo_make_client`` that keeps no :class:`Usage`)."""
        client = self._client
        if client is None:
            return Usage()
        usage = getattr(client, "usage", None)
        return replace(usage) if isinstance(usage, Usage) else None

    def usage_since(self, before: Usage | None) -> Usage | None:
        """What the model client counted since ``before`` (a :meth:`usage_now` snapshot)."""
        now = self.usage_now()
        if before is None or now is None:
            return None
        return Usage(
            **{f.name: getattr(now, f.name) - getattr(before, f.name) for f in fields(now)}
        )

    def more_cases_hint(self) -> str:
        """Where a user can read the cases a failure message leaves out (only what exists)."""
        if self.settings.show_all:
            return "every case is listed in the pytest-gpo summary below"
        path = self.settings.report_path
        if path is not None:
            from pytest_gpo.report.files import report_paths

            return f"every case is in {display(report_paths(path)[1])}"
        return "--gpo-show-all lists every case, --gpo-report PATH writes them to a file"

    def gate(self, suite: Suite, run: SuiteRun) -> GateVerdict:
        """Threshold and regression verdict of a run against the committed baseline.

        With ``--gpo-update-baseline`` the run is compared with the threshold only: the user
        is accepting its scores as the new baseline.
        """
        from pytest_gpo.gate.verdict import evaluate

        entry = None if self.settings.update_baseline else self.baseline_store().entry(suite.name)
        return evaluate(suite, run, entry)

    def baseline_store(self) -> BaselineStore:
        """The baseline store (the file is read once per session, on first use)."""
        if self._baseline is None:
            from pytest_gpo.gate.baseline import BaselineStore

            self._baseline = BaselineStore(self.settings.baseline_path)
        return self._baseline

    def note_unpriced(self, record: SuiteRecord) -> None:
        """Warn when --gpo-max-cost could not be checked (a model has no known price) or the
        response cache failed (answers were then not cached, and calls were paid again)."""
        warnings = []
        unpriced = getattr(self._client, "unpriced_models", None)
        if self.settings.max_cost is not None and unpriced:
            warnings.append(
                "--gpo-max-cost could not be checked for model(s) without a known price: "
                + ", ".join(sorted(unpriced))
            )
        cache_errors = [
            *getattr(self._client, "cache_errors", ()),
            *(self._scores.errors if self._scores else ()),
        ]
        stores = (getattr(self._client, "cache", None), getattr(self._scores, "store", None))
        tripped = [w for s in stores if isinstance(w := getattr(s, "warning", None), str)]
        if tripped:  # the Redis circuit breaker: one warning instead of the failure count
            warnings.extend(tripped)
        elif cache_errors:
            warnings.append(
                f"the response cache failed {len(cache_errors)} time(s); answers were not "
                f"cached (first: {cache_errors[0]}); fix: make the cache location writable "
                "(gpo_cache_dir, or gpo_cache_url's server) or run with --gpo-cache off"
            )
        record.warnings = warnings

    # -- totals -------------------------------------------------------------------------------

    def total_usage(self) -> Usage:
        """Model requests every suite (and optimization) really sent in this session."""
        total = Usage()
        for rec in self.records.values():
            if rec.usage is not None:
                total.merge(rec.usage)
            elif rec.run is not None:
                total.merge(rec.run.usage)
            elif rec.optimization is not None:  # a client that keeps no counters of its own
                total.merge(rec.optimization.usage)
        return total

    def uses_simulated_models(self) -> bool:
        """True when any suite ran on the built-in simulated models."""
        return any(rec.model.startswith(SIM_PREFIX) for rec in self.records.values())

    def settle_interrupted(self) -> None:
        """After Ctrl-C: cancel the calls still in flight (the client counts them as sent)
        and give them to the suite that made them, so the reports count every request."""
        if self._runner is None or self._client is None or self.running is None:
            return
        record, before = self.running
        with contextlib.suppress(GpoError):
            self._runner.run(self._client.aclose())
        usage = self.usage_since(before)
        if usage is not None:
            record.usage = usage

    def close(self) -> None:
        """Close the client and the event loop."""
        if self._runner is not None:
            client = self._client
            if client is not None:
                with contextlib.suppress(GpoError):
                    self._runner.run(client.aclose())
            self._runner.close()
            self._runner = None
            self._client = None


def in_ci() -> bool:
    """True when the ``CI`` environment variable is set to something other than false/0."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
