"""What a data file may put in a model request: the trust model of request parameters.

A suite file (and any other data file that carries litellm parameters, such as an imported
promptfoo provider ``config``) is data: it may shape the answer (``temperature``,
``max_tokens``, ``tools``, ...) but never choose where a request goes, whose key it carries,
what it costs or how long it may take. That is an **allowlist** decision: litellm accepts
hundreds of keyword arguments besides the OpenAI ones, and many of them route (``api_base``,
``aws_bedrock_runtime_endpoint``, ``vertex_project``), authenticate (``api_key``,
``azure_ad_token``, ``aws_secret_access_key``), set a price (``input_cost_per_token``,
``base_model``), fake the answer (``mock_response``) or send data to a third party
(``langfuse_host``, ``s3_endpoint_url``, callbacks). A denylist would miss the next one a
litellm release adds; an allowlist fails closed.

A key outside :data:`SAFE_PARAMS` is refused unless the user lists it in a trusted place: the
ini key ``gpo_trusted_params``, ``GPO_TRUSTED_PARAMS`` or ``--gpo-trusted-params``. Prices are
never taken from a request, trusted or not (declare them with ``gpo_prices``). Timeouts are
allowed in a suite because the client clamps them to ``--gpo-timeout``: a suite can shorten a
call, never lengthen it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from pytest_gpo.errors import ConfigError, SuiteError
from pytest_gpo.llm.pricing import price_params

#: Parameters a suite file may set without being trusted: they shape the answer only.
SAFE_PARAMS: frozenset[str] = frozenset(
    {
        # OpenAI chat parameters that change what comes back, not where it goes or its price
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "seed",
        "stop",
        "presence_penalty",
        "frequency_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "response_format",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "reasoning_effort",
        "thinking",
        "verbosity",
        "modalities",
        "prediction",
        "user",
        "safety_identifier",
        "prompt_cache_key",
        "drop_params",
        # sampling knobs of open-model servers (vLLM, llama.cpp, Ollama through litellm)
        "top_k",
        "min_p",
        "repetition_penalty",
        # clamped to --gpo-timeout by the client: a suite can only shorten a call
        "timeout",
        "request_timeout",
        "stream_timeout",
    }
)

#: Parameters the client sets itself; never taken from a data file, trusted or not.
MANAGED_PARAMS: frozenset[str] = frozenset({"n", "stream"})

_SPLIT = re.compile(r"[\s,]+")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")


def parse_trusted_params(text: str) -> frozenset[str]:
    """Parameter names from ``gpo_trusted_params`` (separated by spaces, commas or lines).

    A price parameter is refused here too: prices come from ``gpo_prices`` only.
    """
    names = [n for n in _SPLIT.split(text) if n]
    for name in names:
        if not _NAME.match(name):
            raise ValueError(f"{name!r} is not a parameter name")
    priced = price_params(dict.fromkeys(names))
    if priced:
        raise ValueError(
            f"'{priced[0]}' sets a price, which no request may do; declare prices with "
            "gpo_prices or --gpo-price"
        )
    if not names:
        raise ValueError("no parameter named")
    return frozenset(names)


def untrusted_params(params: Mapping[str, Any], trusted: Iterable[str] = ()) -> list[str]:
    """The keys of ``params`` a data file may not set (sorted): neither safe nor trusted.

    Price keys are always in the answer, whatever ``trusted`` says.
    """
    allowed = SAFE_PARAMS | frozenset(trusted)
    bad = {str(k) for k in params if str(k) not in allowed or str(k) in MANAGED_PARAMS}
    bad.update(price_params(params))
    return sorted(bad)


def check_untrusted_params(
    params: Mapping[str, Any],
    *,
    trusted: Iterable[str] = (),
    where: str,
    key: str = "params",
) -> None:
    """Refuse the parameters of a data file (a suite's ``params``) that are not safe or trusted.

    The one check for every place a data file hands parameters to a model call: a suite's
    ``params``, an imported provider ``config``. Raises :class:`~pytest_gpo.errors.SuiteError`
    naming the file (``where``), the key (``key.name``) and the fix.
    """
    bad = untrusted_params(params, trusted)
    if not bad:
        return
    name = bad[0]
    shown = ", ".join(f"'{b}'" for b in bad)
    if name in MANAGED_PARAMS:
        raise SuiteError(
            f"'{key}.{name}' is managed by pytest-gpo",
            path=where,
            key=f"{key}.{name}",
            fix="remove it; use 'repeat: N' to run each case N times",
        )
    if price_params({name: None}):
        raise SuiteError(
            f"a suite file cannot set the model's price ({shown})",
            path=where,
            key=f"{key}.{name}",
            fix="declare prices in the ini key gpo_prices or with --gpo-price",
        )
    raise SuiteError(
        f"{key} {shown} may choose where requests go, which key they carry, what they cost "
        "or how they are answered, and a suite file is data, not configuration",
        path=where,
        key=f"{key}.{name}",
        fix="put endpoints and keys in the environment (OPENAI_BASE_URL, OPENAI_API_KEY) or "
        f"a gpo_router file; or, if this repository's suite files are trusted, allow the key "
        f"with 'gpo_trusted_params = {' '.join(bad)}' in the ini file (or "
        "--gpo-trusted-params); see docs/reliability.md#trust-model",
    )


#: Model names litellm reads an endpoint from (``oobabooga/http://host/...``,
#: ``huggingface/https://endpoint``): a suite file would choose where requests go.
_URL_IN_NAME = re.compile(r"://|[\s\\]")


def check_model_name(model: str) -> None:
    """Refuse a model name that carries an endpoint (a URL) or whitespace.

    litellm takes the server of some providers from the model name itself, so a suite, judge,
    optimizer or promptfoo model named ``oobabooga/http://host/v1`` would send requests (and
    answers to grade) to a host no ini or router file named. Endpoints belong in a Router file
    or the ini (``gpo_trusted_params = api_base``), never in a model name.
    """
    if _URL_IN_NAME.search(model):
        raise ConfigError(
            f"model name '{model}' names an endpoint (a URL) or holds whitespace",
            key="model",
            fix="name the model only (e.g. openai/gpt-4o-mini) and give its server in a Router "
            "file (gpo_router) or with OPENAI_BASE_URL; see docs/reliability.md#trust-model",
        )
