"""promptfoo provider ids and their ``config`` mapped to litellm model names and parameters."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pytest_gpo.errors import SuiteError
from pytest_gpo.suites.describe import did_you_mean, kind_of

#: promptfoo provider prefix -> litellm provider prefix. The first match wins, so longer
#: prefixes (``openai:chat:``) come before shorter ones (``openai:``).
PROVIDER_PREFIXES: tuple[tuple[str, str], ...] = (
    ("openai:chat:", "openai/"),
    ("openai:responses:", "openai/"),
    ("openai:completion:", "text-completion-openai/"),
    ("openai:embedding:", "openai/"),
    ("openai:", "openai/"),
    ("anthropic:messages:", "anthropic/"),
    ("anthropic:", "anthropic/"),
    ("azure:chat:", "azure/"),
    ("azureopenai:chat:", "azure/"),
    ("azure:", "azure/"),
    ("bedrock:converse:", "bedrock/converse/"),
    ("bedrock:", "bedrock/"),
    ("vertex:", "vertex_ai/"),
    ("google:", "gemini/"),
    ("ollama:chat:", "ollama_chat/"),
    ("ollama:completion:", "ollama/"),
    ("ollama:", "ollama/"),
    ("mistral:", "mistral/"),
    ("groq:", "groq/"),
    ("openrouter:", "openrouter/"),
    ("togetherai:", "together_ai/"),
    ("deepseek:", "deepseek/"),
    ("perplexity:", "perplexity/"),
    ("cohere:", "cohere/"),
    ("fireworks:", "fireworks_ai/"),
    ("xai:", "xai/"),
    ("huggingface:text-generation:", "huggingface/"),
    ("litellm:chat:", ""),
    ("litellm:embedding:", ""),
    ("litellm:", ""),
)

#: promptfoo ``config`` key -> litellm parameter. ``apiKey``/``apiBaseUrl`` go through the suite
#: ``params`` validation like a suite's own ``api_key``/``api_base``.
CONFIG_PARAMS: dict[str, str] = {
    "temperature": "temperature",
    "max_tokens": "max_tokens",
    "maxTokens": "max_tokens",
    "max_output_tokens": "max_tokens",
    "maxOutputTokens": "max_tokens",
    "max_completion_tokens": "max_completion_tokens",
    "top_p": "top_p",
    "topP": "top_p",
    "top_k": "top_k",
    "topK": "top_k",
    "frequency_penalty": "frequency_penalty",
    "presence_penalty": "presence_penalty",
    "seed": "seed",
    "stop": "stop",
    "response_format": "response_format",
    "reasoning_effort": "reasoning_effort",
    "apiKey": "api_key",
    "apiBaseUrl": "api_base",
    "apiHost": "api_base",
    "organization": "organization",
    "api_version": "api_version",
    "apiVersion": "api_version",
}

#: Provider ids that run code, call an arbitrary endpoint or echo: never run by pytest-gpo.
_UNSUPPORTED_PREFIXES = (
    "file://",
    "exec:",
    "python:",
    "javascript:",
    "golang:",
    "http:",
    "https:",
    "ws:",
    "wss:",
    "webhook:",
    "echo:",
)

#: The keys of a provider object.
PROVIDER_KEYS = ("id", "label", "config")


@dataclass(frozen=True)
class Provider:
    """One provider of a config: its label (suite names), litellm model and raw parameters."""

    label: str
    provider_id: str
    model: str
    params: Mapping[str, Any] = field(default_factory=dict)


def litellm_model(provider_id: str, *, where: str, key: str) -> str:
    """The litellm model name of a promptfoo provider id (``openai:gpt-4o-mini`` ->
    ``openai/gpt-4o-mini``); an id no prefix maps is an error naming the supported ones."""
    for prefix, target in PROVIDER_PREFIXES:
        if provider_id.startswith(prefix) and len(provider_id) > len(prefix):
            return target + provider_id[len(prefix) :]
    known = sorted({p.rstrip(":").split(":")[0] + ":" for p, _ in PROVIDER_PREFIXES})
    raise SuiteError(
        f"unknown provider '{provider_id}': pytest-gpo runs providers through litellm and "
        "cannot map this id",
        path=where,
        key=key,
        fix="use one of the prefixes " + ", ".join(known) + " (e.g. openai:gpt-4o-mini), or "
        "'litellm:<any litellm model name>'",
    )


def _config_params(config: Any, *, where: str, key: str) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise SuiteError(
            f"a provider's 'config' must be a mapping, not {kind_of(config)}",
            path=where,
            key=key,
            fix="write e.g. config: {temperature: 0, max_tokens: 200}",
        )
    params: dict[str, Any] = {}
    for name, value in config.items():
        target = CONFIG_PARAMS.get(str(name))
        if target is None:
            raise SuiteError(
                f"unsupported provider config key '{name}'",
                path=where,
                key=f"{key}.{name}",
                fix=did_you_mean(str(name), tuple(CONFIG_PARAMS))
                + " (see docs/promptfoo.md for the supported keys)",
            )
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            # promptfoo renders {{ env.X }} here; sending the template text as a key or URL
            # would be wrong, and reading the environment into a data file's values is not ours
            raise SuiteError(
                f"provider config key '{name}' holds a template ({value[:40]!r}): not rendered",
                path=where,
                key=f"{key}.{name}",
                fix="leave keys out of the config (litellm reads OPENAI_API_KEY and the like "
                "from the environment) and write other values literally",
            )
        if target in params:
            raise SuiteError(
                f"provider config key '{name}' sets '{target}' a second time",
                path=where,
                key=f"{key}.{name}",
                fix="give it once",
            )
        params[target] = value
    return params


def read_provider(item: Any, index: int, *, where: str) -> Provider:
    """One entry of ``providers:``: an id string, ``{id, label, config}``, or ``{id: {...}}``."""
    key = f"providers[{index}]"
    if isinstance(item, str):
        item = {"id": item}
    elif isinstance(item, dict) and len(item) == 1 and "id" not in item:
        ((pid, body),) = item.items()
        if not isinstance(body, dict | type(None)):
            raise SuiteError(
                f"provider '{pid}' must map to its options, not {kind_of(body)}",
                path=where,
                key=key,
                fix="write '- openai:gpt-4o-mini: {config: {temperature: 0}}'",
            )
        item = {"id": pid, **(body or {})}
    if not isinstance(item, dict):
        raise SuiteError(
            f"a provider must be an id or a mapping, not {kind_of(item)}",
            path=where,
            key=key,
            fix="write '- openai:gpt-4o-mini' or '- {id: openai:gpt-4o-mini, label: mini}'",
        )
    for name in item:
        if name not in PROVIDER_KEYS:
            raise SuiteError(
                f"unsupported provider key '{name}'",
                path=where,
                key=f"{key}.{name}",
                fix=did_you_mean(str(name), PROVIDER_KEYS)
                + " (see docs/promptfoo.md for what pytest-gpo reads)",
            )
    pid = item.get("id")
    if not isinstance(pid, str) or not pid.strip():
        raise SuiteError(
            "a provider needs an 'id' string",
            path=where,
            key=f"{key}.id",
            fix="write e.g. id: openai:gpt-4o-mini",
        )
    pid = pid.strip()
    if pid == "echo" or pid.startswith(_UNSUPPORTED_PREFIXES):
        raise SuiteError(
            f"unsupported provider '{pid}': custom, script, HTTP and echo providers are not "
            "run by pytest-gpo",
            path=where,
            key=f"{key}.id",
            fix="use a model provider id (openai:..., anthropic:..., litellm:...), or register "
            "a custom litellm provider and name it 'litellm:<provider>/<model>'",
        )
    label = item.get("label", pid)
    if not isinstance(label, str) or not label.strip() or not label.isprintable():
        raise SuiteError(
            f"a provider's 'label' must be one line of text, got {label!r}",
            path=where,
            key=f"{key}.label",
            fix="write e.g. label: mini",
        )
    model = litellm_model(pid, where=where, key=f"{key}.id")
    params = _config_params(item.get("config"), where=where, key=f"{key}.config")
    return Provider(label=label.strip(), provider_id=pid, model=model, params=params)


def read_providers(value: Any, *, where: str) -> list[Provider]:
    """``providers:`` (or the older ``targets:``) as a list of :class:`Provider` s."""
    if value is None:
        raise SuiteError(
            "missing required key 'providers'",
            path=where,
            key="providers",
            fix="add e.g. 'providers: [openai:gpt-4o-mini]'",
        )
    items = [value] if isinstance(value, str | dict) else value
    if isinstance(value, dict) and "id" not in value and len(value) > 1:
        items = [{k: v} for k, v in value.items()]
    if not isinstance(items, list) or not items:
        raise SuiteError(
            "'providers' must be a non-empty list",
            path=where,
            key="providers",
            fix="write 'providers: [openai:gpt-4o-mini]'",
        )
    providers = [read_provider(item, i, where=where) for i, item in enumerate(items)]
    seen: set[str] = set()
    for i, p in enumerate(providers):
        if p.label in seen:
            raise SuiteError(
                f"two providers share the label '{p.label}'",
                path=where,
                key=f"providers[{i}]",
                fix="give each a distinct 'label' (suite names and baseline keys use it)",
            )
        seen.add(p.label)
    return providers
