"""Every option of pytest-gpo, declared once (:data:`OPTIONS`): its flag, environment
variable, ini key, parser, default and help. The plugin registers the command-line flags and
ini keys from it; :func:`pytest_gpo.settings.resolve` reads them back."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pytest_gpo.llm.limits import DEFAULT_MAX_TOKENS
from pytest_gpo.llm.pricing import parse_prices
from pytest_gpo.llm.trust import parse_trusted_params
from pytest_gpo.llm.types import CACHE_MODES
from pytest_gpo.optimize.params import parse_param_mapping
from pytest_gpo.optimize.presets import PRESETS

#: ``--gpo-optimize`` (auto: write unless on CI) and ``--gpo-optimize=write`` (write on CI too)
OPTIMIZE_MODES = ("auto", "write")


@dataclass(frozen=True)
class Option:
    """One setting: its flag, env var, ini key, parser and default."""

    name: str
    flag: str | None
    env: str | None
    ini: str | None
    parse: Callable[[str], Any]
    default: Any
    help: str
    metavar: str | None = None


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError("must be a whole number >= 1")
    return value


def _finite_float(text: str, wanted: str) -> float:
    # float() reads "inf", "nan" and "1e999" too: none is a usable timeout or budget
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"must be a finite {wanted}, not {text.strip()!r}")
    return value


def _non_negative_float(text: str) -> float:
    value = _finite_float(text, "number >= 0")
    if value < 0:
        raise ValueError("must be a number >= 0")
    return value


def _positive_float(text: str) -> float:
    value = _finite_float(text, "number > 0")
    if value <= 0:
        raise ValueError("must be a number > 0")
    return value


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in choices:
            raise ValueError("must be one of " + ", ".join(choices))
        return text

    return parse


def _optimize_mode(text: str) -> str:
    """``--gpo-optimize``'s value; a path there (``--gpo-optimize suites/x.gpo.yaml``: argparse
    takes the path as the optional value) gets a hint how to write it."""
    if text in OPTIMIZE_MODES:
        return text
    message = "must be one of " + ", ".join(OPTIMIZE_MODES)
    looks_like_path = (
        any(c in text for c in "/\\")
        or "::" in text
        or text.startswith((".", "~"))
        or text.lower().endswith((".yaml", ".yml", ".json", ".py"))
    )
    try:
        exists = Path(text).exists()
    except (OSError, ValueError):
        exists = False
    if looks_like_path or exists:
        message += " (put paths before --gpo-optimize, or write --gpo-optimize=auto PATH)"
    raise ValueError(message)


def _limit(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError("must be a whole number >= 0 (0: send no default)")
    return value


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError("must be true or false (1/0, yes/no, on/off)")


def _text(text: str) -> str:
    text = text.strip()
    if not text:
        raise ValueError("must not be empty")
    return text


def _optimizer_params(text: str) -> dict[str, Any]:
    """``--gpo-optimizer-params``: checked here, so a bad value is a usage error naming the
    flag, variable or ini key it came from (never blamed on a suite file)."""
    params = parse_param_mapping(text)
    managed = sorted({"n", "stream", "messages", "model"} & set(params))
    if managed:
        raise ValueError(f"'{managed[0]}' is managed by pytest-gpo")
    for name in ("max_tokens", "max_completion_tokens"):
        value = params.get(name)
        if value is not None and (
            isinstance(value, bool) or not isinstance(value, int) or value < 1
        ):
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    temperature = params.get("temperature")
    if temperature is not None and (
        isinstance(temperature, bool)
        or not isinstance(temperature, int | float)
        or not 0 <= temperature <= 2
    ):
        raise ValueError(f"temperature must be a number from 0 to 2, got {temperature!r}")
    return params


OPTIONS: tuple[Option, ...] = (
    Option(
        "model",
        "--gpo-model",
        "GPO_MODEL",
        "gpo_model",
        _text,
        None,
        "model for suites that set none (a litellm name, e.g. openai/gpt-4o-mini)",
        "NAME",
    ),
    Option(
        "optimizer_model",
        "--gpo-optimizer-model",
        "GPO_OPTIMIZER_MODEL",
        "gpo_optimizer_model",
        _text,
        None,
        "model that proposes prompt rewrites in --gpo-optimize",
        "NAME",
    ),
    Option(
        "judge_model",
        "--gpo-judge-model",
        "GPO_JUDGE_MODEL",
        "gpo_judge_model",
        _text,
        None,
        "model of 'judge' scorers that set none",
        "NAME",
    ),
    Option(
        "cache",
        "--gpo-cache",
        "GPO_CACHE",
        "gpo_cache",
        _choice(*CACHE_MODES),
        "rw",
        "response cache: rw (read and write), replay (cache only, a miss is an error), off",
        "{rw,replay,off}",
    ),
    Option(
        "cache_dir",
        None,
        "GPO_CACHE_DIR",
        "gpo_cache_dir",
        _text,
        ".gpo/cache",
        "response cache directory (relative to the rootdir)",
    ),
    Option(
        "allowed_paths",
        None,
        "GPO_ALLOWED_PATHS",
        "gpo_allowed_paths",
        _text,
        None,
        "folders outside the rootdir that suite files may read prompts and cases from "
        "(separated by the OS path separator, ':' on POSIX; relative to the rootdir)",
    ),
    Option(
        "cache_url",
        None,
        "GPO_CACHE_URL",
        "gpo_cache_url",
        _text,
        None,
        "shared cache URL (redis://host:port/db); the file cache is used when unset",
    ),
    Option(
        "router",
        None,
        "GPO_ROUTER",
        "gpo_router",
        _text,
        None,
        "litellm Router settings file (YAML/JSON: model_list, routing_strategy, ...) to "
        "spread calls over several deployments or keys (relative to the rootdir)",
    ),
    Option(
        "baseline",
        None,
        "GPO_BASELINE",
        "gpo_baseline",
        _text,
        ".gpo/baseline.json",
        "baseline file (relative to the rootdir), meant to be committed",
    ),
    Option(
        "concurrency",
        "--gpo-concurrency",
        "GPO_CONCURRENCY",
        "gpo_concurrency",
        _positive_int,
        8,
        "model calls in flight at once",
        "N",
    ),
    Option(
        "timeout",
        "--gpo-timeout",
        "GPO_TIMEOUT",
        "gpo_timeout",
        _positive_float,
        60.0,
        "seconds per model call attempt",
        "SECONDS",
    ),
    Option(
        "default_max_tokens",
        "--gpo-default-max-tokens",
        "GPO_DEFAULT_MAX_TOKENS",
        "gpo_default_max_tokens",
        _limit,
        DEFAULT_MAX_TOKENS,
        "max_tokens sent with every model request that sets no output limit (suite params "
        "max_tokens wins; 0: none), so a local server cannot generate without end",
        "N",
    ),
    Option(
        "retry_local_timeouts",
        "--gpo-retry-local-timeouts",
        "GPO_RETRY_LOCAL_TIMEOUTS",
        "gpo_retry_local_timeouts",
        _flag,
        False,
        "retry a timed-out call to a server on this machine (localhost, 127.0.0.1) like any "
        "other (default: not retried: the server is still generating the abandoned answer)",
    ),
    Option(
        "max_attempts",
        "--gpo-max-attempts",
        "GPO_MAX_ATTEMPTS",
        "gpo_max_attempts",
        _positive_int,
        6,
        "attempts per model call (retries on 429, 5xx, timeouts)",
        "N",
    ),
    Option(
        "repeat",
        "--gpo-repeat",
        "GPO_REPEAT",
        "gpo_repeat",
        _positive_int,
        None,
        "run every case N times (overrides the suites' repeat)",
        "N",
    ),
    Option(
        "report",
        "--gpo-report",
        "GPO_REPORT",
        "gpo_report",
        _text,
        None,
        "write a markdown report to PATH and a .json beside it",
        "PATH",
    ),
    Option(
        "html",
        "--gpo-html",
        "GPO_HTML",
        "gpo_html",
        _text,
        None,
        "write a self-contained HTML report to PATH: every case and sample, filters, search, "
        "an optimization's diff and chart (opens offline)",
        "PATH",
    ),
    Option(
        "show_all",
        "--gpo-show-all",
        "GPO_SHOW_ALL",
        "gpo_show_all",
        _flag,
        False,
        "print every case of every suite in the terminal (all samples, full output, score, "
        "reason), not only the failing ones",
    ),
    Option(
        "update_baseline",
        "--gpo-update-baseline",
        None,
        None,
        _text,
        False,
        "write the scores of this run into the baseline file",
    ),
    Option(
        "optimize",
        "--gpo-optimize",
        None,
        None,
        _optimize_mode,
        None,
        "optimize the collected suites' prompts with GPO and write them back "
        "(=write: also when CI is set)",
        "{auto,write}",
    ),
    Option(
        "dry_run",
        "--gpo-dry-run",
        None,
        None,
        _text,
        False,
        "with --gpo-optimize: write only the report, never the prompt files",
    ),
    Option(
        "preset",
        "--gpo-preset",
        "GPO_PRESET",
        "gpo_preset",
        _choice(*PRESETS),
        None,
        "optimizer preset: gpo (default), ape, apo, opro, pe2, sgdm",
        "NAME",
    ),
    Option(
        "steps",
        "--gpo-steps",
        "GPO_STEPS",
        "gpo_steps",
        _positive_int,
        None,
        "optimization steps (default: from the train split, as in the paper)",
        "N",
    ),
    Option(
        "candidates",
        "--gpo-candidates",
        "GPO_CANDIDATES",
        "gpo_candidates",
        _positive_int,
        None,
        "candidate prompts per optimization step (default 8)",
        "N",
    ),
    Option(
        "max_calls",
        "--gpo-max-calls",
        "GPO_MAX_CALLS",
        "gpo_max_calls",
        _positive_int,
        None,
        "hard cap on model calls in this run (never exceeded)",
        "N",
    ),
    Option(
        "max_cost",
        "--gpo-max-cost",
        "GPO_MAX_COST",
        "gpo_max_cost",
        _non_negative_float,
        None,
        "hard cap on model cost in USD in this run",
        "USD",
    ),
    Option(
        "prices",
        "--gpo-price",
        "GPO_PRICES",
        "gpo_prices",
        parse_prices,
        None,
        "declare model prices in USD per million input and output tokens, for models litellm "
        "cannot price (local, private, routed): 'MODEL=IN,OUT', several separated by ';' "
        "(ini: one 'MODEL = IN OUT' per line); wins over litellm's price",
        "MODEL=IN,OUT",
    ),
    Option(
        "promptfoo",
        None,
        None,
        "gpo_promptfoo",
        _flag,
        False,
        "collect promptfooconfig.yaml files and run them as suites (see docs/promptfoo.md)",
    ),
    Option(
        "trusted_params",
        "--gpo-trusted-params",
        "GPO_TRUSTED_PARAMS",
        "gpo_trusted_params",
        parse_trusted_params,
        None,
        "request parameters suite files may set besides the sampling ones (api_base, "
        "api_key, extra_headers, ...), separated by spaces or commas; only for suite files "
        "you trust like code (see docs/reliability.md#trust-model)",
        "NAMES",
    ),
    Option(
        "seed",
        "--gpo-seed",
        "GPO_SEED",
        "gpo_seed",
        lambda t: int(t),
        0,
        "seed of splits and optimizer sampling",
        "N",
    ),
)


# optimizer requests (E): --gpo-optimizer-params and --gpo-embedding-model
OPTIONS += (
    Option(
        "optimizer_params",
        "--gpo-optimizer-params",
        "GPO_OPTIMIZER_PARAMS",
        "gpo_optimizer_params",
        _optimizer_params,
        None,
        "litellm parameters of optimizer requests, merged over the suites' "
        "optimize.optimizer_params: 'max_tokens=512,temperature=1.0' or a JSON object "
        "(default max_tokens 512, temperature 1.0)",
        "PARAMS",
    ),
    Option(
        "embedding_model",
        "--gpo-embedding-model",
        "GPO_EMBEDDING_MODEL",
        "gpo_embedding_model",
        _text,
        None,
        "sentence-transformers model (name or folder) for GPO's relevance retrieval "
        "(default: the bundled all-MiniLM-L6-v2)",
        "MODEL",
    ),
)
