"""Refused credentials: which key to check, and the refusal remembered for the rest of the run.

A missing, wrong or unauthorized key fails every attempt the same way, so it is never retried;
once refused, the same model with the same key and endpoint is not called again in this run.
The message names what to fix: the environment variable litellm reads for the model's provider
(``OPENAI_API_KEY`` for ``openai/...``), the ``api_key`` in the suite's params, or the Router
settings. litellm is handed in; nothing here imports it.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from pytest_gpo.llm.redact import redact
from pytest_gpo.llm.types import Request

#: Key variables of providers whose name is not ``<PROVIDER>_API_KEY``.
_KEY_VARIABLES: dict[str, tuple[str, ...]] = {
    "text-completion-openai": ("OPENAI_API_KEY",),
    "together_ai": ("TOGETHERAI_API_KEY",),
    "gemini": ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
    "vertex_ai": ("GOOGLE_APPLICATION_CREDENTIALS",),
    "bedrock": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    "sagemaker": ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    "huggingface": ("HUGGINGFACE_API_KEY", "HF_TOKEN"),
}

_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "CREDENTIALS")


def provider_name(litellm: Any, model: str) -> str:
    """The litellm provider of ``model`` (``openai`` for a bare OpenAI model name)."""
    try:
        provider = litellm.get_llm_provider(model=model)[1]
    except Exception:
        provider = None
    if isinstance(provider, str) and provider:
        return provider
    prefix, slash, _ = model.partition("/")
    return prefix if slash else "openai"


def key_variables(litellm: Any, model: str) -> list[str]:
    """The environment variables that hold the key of ``model``'s provider."""
    try:
        missing = litellm.validate_environment(model=model).get("missing_keys") or []
    except Exception:
        missing = []
    names = [str(k) for k in missing if any(word in str(k) for word in _SECRET_WORDS)]
    if names:
        return names
    provider = provider_name(litellm, model)
    known = _KEY_VARIABLES.get(provider)
    if known:
        return list(known)
    return [provider.upper().replace("-", "_").replace(".", "_") + "_API_KEY"]


def what_to_check(litellm: Any, request: Request, router_source: str | None) -> str:
    """The key to check for ``request``: a Router setting, a suite param or an env variable."""
    if router_source is not None:
        return f"the api_key of model '{request.model}' in the Router settings ({router_source})"
    if request.params.get("api_key"):
        return "the api_key in the suite's params"
    parts = []
    for name in key_variables(litellm, request.model):
        state = "set" if os.environ.get(name, "").strip() else "not set"
        parts.append(f"{name} ({state})")
    return "the environment variable " + " / ".join(parts)


def refusal_message(
    litellm: Any, request: Request, provider_message: str, *, missing: bool, router: str | None
) -> str:
    """The one message of a refused key: what the provider said, and what to check."""
    check = what_to_check(litellm, request, router)
    if missing:
        head = f"no API key was found for model '{request.model}'"
    else:
        head = f"the provider refused the credentials for model '{request.model}'"
    said = provider_message.rstrip(" .;")
    # what to check first: reports cut long errors short
    return (
        f"{head}: check {check}; not retried, every attempt with this key fails the same way "
        f"(the provider said: {said})"
    )


class RefusedKeys:
    """The keys refused in this run, by :func:`identity`, with the message each one got."""

    def __init__(self) -> None:
        self._messages: dict[str, str] = {}

    def get(self, who: str) -> str | None:
        """The message of an earlier refusal of this identity (None: not refused)."""
        return self._messages.get(who)

    def refuse(
        self,
        litellm: Any,
        request: Request,
        who: str,
        provider_message: str,
        *,
        missing: bool,
        router: str | None,
    ) -> str:
        """Remember a refusal; its message (the first one's, so a suite shows one message)."""
        message = self._messages.get(who)
        if message is None:
            message = redact(
                refusal_message(litellm, request, provider_message, missing=missing, router=router),
                request,
            )
            self._messages[who] = message
        return message


def identity(request: Request, routed: bool) -> str:
    """What decides whether a key works: the model, its endpoint and key (hashed), the Router."""
    params = request.params
    key = params.get("api_key")
    key_hash = hashlib.sha256(str(key).encode("utf-8")).hexdigest()[:16] if key else ""
    base = str(params.get("api_base") or params.get("base_url") or "")
    return "\x1f".join((request.model, base, key_hash, "router" if routed else ""))
