"""Shared fixtures: the local OpenAI-compatible server and environment isolation."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

# Process-wide, never undone by a test's monkeypatch: litellm re-reads this in a background
# refresh long after import, and without it tries to fetch a price list from the internet.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

# litellm imports the importlib_metadata backport, which deletes the stdlib's
# PathFinder.find_distributions and puts its own finder on sys.meta_path. In-process pytester
# runs restore sys.meta_path afterwards, dropping that finder and leaving no way to find any
# distribution. Importing the backport here, before any snapshot, keeps its finder in place.
with contextlib.suppress(ImportError):
    import importlib_metadata  # noqa: F401


from openai_server import OpenAIServer, openai_server  # noqa: F401  (fixture re-export)

# Frozen copies of example projects: data read by tests, never suites of this test run.
collect_ignore = ["fixtures"]

#: Tests measured at 5 s or more (seconds, `pytest tests --durations=40` on the 2-core CI
#: machine, full run of 679 tests in 374 s). They get ``@pytest.mark.slow(seconds=...)``, so
#: a quick loop is ``pytest tests -m "not slow"``. Re-measure when one of them changes.
SLOW: dict[str, float] = {
    "test_reliability_writes.py::test_sigkill_real_optimize_and_baseline_runs": 51.4,
    "test_reliability_faults.py::test_thousand_cases_under_faults_match_the_fault_free_run": 32.8,
    "test_optimize_plugin.py::test_optimize_under_xdist_writes_on_the_controller": 29.3,
    "test_reliability_concurrency.py::"
    "test_xdist_four_workers_and_parallel_sessions_share_cache_and_baseline": 26.9,
    "test_reliability_secrets.py::test_keys_never_reach_files_reports_logs_or_output": 18.1,
    "test_plugin.py::test_xdist_merges_results_on_the_controller": 16.7,
    "test_reliability_writes.py::test_sigkill_during_writes_leaves_old_or_new_never_partial": 15.6,
    "test_router.py::test_pytest_run_with_gpo_router": 14.6,
    "test_plugin.py::test_without_the_semantic_extra_one_clear_error_names_it": 12.5,
    "test_reliability_input.py::test_generated_suite_files_load_or_fail_with_a_named_error": 12.4,
    "test_redis_cache.py::test_pytest_runs_share_the_redis_cache": 10.3,
    "test_plugin.py::test_gate_run_without_semantic_scorer_never_imports_torch": 9.5,
    "test_reliability_faults.py::test_two_hundred_cases_under_faults_through_pytest": 9.4,
    "test_template.py::test_plain_only_when_jinja_reads_only_substitutions": 9.4,
    "test_reliability_input.py::test_thirty_generated_suites_end_to_end_no_internal_error": 8.4,
    "test_reliability_budget.py::test_randomized_call_caps_are_never_exceeded": 6.2,
    # measured alone under a load average of 6 (four pytest subprocesses / two)
    "test_score_cache.py::test_fully_cached_semantic_run_loads_no_embedding_model": 21.1,
    "test_score_cache.py::test_replay_with_a_missing_score_is_an_error_naming_the_case": 8.6,
    # promptfoo suites, measured in one file run while the 2 cores were shared by ~9 agents
    "test_promptfoo.py::test_gate_baseline_then_replay_passes_and_a_changed_prompt_regresses": 18.7,
    "test_promptfoo.py::test_optimize_writes_back_to_the_file_prompt_not_the_config": 16.1,
    "test_promptfoo.py::test_prompts_times_providers_is_a_matrix_of_stable_suites": 11.6,
    "test_promptfoo.py::test_every_other_assertion_type_weights_and_thresholds_end_to_end": 8.1,
    # bounds and errors (issue 12), measured together under a load average of about 8
    "test_reliability_redis.py::"
    "test_pytest_with_a_stalled_redis_finishes_in_bounded_time_with_one_warning": 30.7,
    "test_reliability_errors.py::"
    "test_control_characters_in_answers_are_escaped_in_terminal_markdown_and_junit": 16.1,
    "test_reliability_adversarial.py::test_hostile_suite_files_end_to_end_no_internal_error": 15.4,
    "test_reliability_errors.py::"
    "test_duplicate_suite_names_are_an_error_on_both_files_naming_both": 14.0,
    "test_reliability_errors.py::"
    "test_unwritable_report_is_one_error_and_the_baseline_is_still_written": 13.9,
    "test_reliability_errors.py::test_unwritable_cache_folder_warns_and_the_run_passes": 12.3,
    "test_reliability_adversarial.py::"
    "test_a_damaged_checkpoint_is_ignored_with_one_note_and_the_run_starts_afresh": 11.7,
    "test_reliability_adversarial.py::"
    "test_hostile_templates_are_rendered_bounded_or_suite_errors": 10.3,
    "test_reliability_errors.py::"
    "test_unwritable_baseline_is_one_error_and_the_reports_are_still_written": 9.0,
    # measured alone under a load average of 9 (eight pytest subprocesses)
    "test_paper_harness.py::test_quick_run_writes_the_table_and_a_second_run_resumes": 86.8,
    "test_session_verdict.py::test_ctrl_c_while_a_request_is_out_still_counts_it": 12.0,
    # measured with -n 2 on a loaded machine (`--durations`, three files of the trust model)
    "test_trust_secrets.py::test_sentinel_secrets_in_every_place_reach_no_file_and_no_output": 81.0,
    "test_budget_shared.py::test_xdist_workers_share_one_call_cap": 43.6,
    "test_budget_shared.py::test_xdist_workers_share_one_cost_cap": 30.8,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the measured slow tests (see SLOW); leave out the opt-in ``llama`` tests."""
    # tests/test_llama_server.py needs a real llama.cpp server: it runs only when asked for
    # by name (`-m llama`), never in the default run or under another -m expression
    if "llama" not in (config.getoption("markexpr", "") or ""):
        opt_in = [item for item in items if item.get_closest_marker("llama") is not None]
        if opt_in:
            config.hook.pytest_deselected(items=opt_in)
            items[:] = [item for item in items if item.get_closest_marker("llama") is None]
    for item in items:
        seconds = SLOW.get(item.nodeid.split("/")[-1].split("[")[0])
        if seconds is not None:
            item.add_marker(pytest.mark.slow(seconds=seconds))


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Tests never see the developer's model settings or CI flags."""
    for name in [*(n for n in os.environ if n.startswith("GPO_")), "CI", "GITHUB_STEP_SUMMARY"]:
        monkeypatch.delenv(name, raising=False)
    yield


@pytest.fixture(scope="session")
def _heavy_stack() -> None:
    """litellm and the embedding stack (numpy, torch, sentence-transformers), imported once.

    In-process pytester runs drop from ``sys.modules`` whatever was first imported inside them,
    and a C extension cannot be loaded twice in one process ("cannot load module more than
    once", "bad call flags" on the next import). Imported here, outside any run, they stay.
    """
    import numpy  # noqa: F401
    import sentence_transformers  # noqa: F401
    import torch  # noqa: F401

    from pytest_gpo.llm.setup import import_litellm

    import_litellm()


@pytest.fixture(autouse=True)
def _heavy_stack_before_pytester(request: pytest.FixtureRequest) -> None:
    """Every test that may run pytest in-process gets the heavy modules loaded first."""
    if "pytester" in request.fixturenames:
        request.getfixturevalue("_heavy_stack")
