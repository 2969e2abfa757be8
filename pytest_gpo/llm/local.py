"""Whether a call goes to a server on this machine (llama.cpp, Ollama, vLLM on loopback).

A local server keeps generating after the client gives up (llama.cpp's server does), so a
timed-out attempt is still running there; a retry would queue behind it and time out as
well, piling work on a busy server. :mod:`~pytest_gpo.llm.faults` therefore does not retry a
timeout against a loopback base URL.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from pytest_gpo.llm.faults import Fault

#: Where litellm sends a provider's calls when the request names no base URL: the
#: environment variables it reads, then its built-in default (None: a hosted service).
_BASE_FROM_ENV: dict[str, tuple[tuple[str, ...], str | None]] = {
    "openai": (("OPENAI_BASE_URL", "OPENAI_API_BASE"), None),
    "text-completion-openai": (("OPENAI_BASE_URL", "OPENAI_API_BASE"), None),
    "ollama": (("OLLAMA_API_BASE",), "http://localhost:11434"),
    "ollama_chat": (("OLLAMA_API_BASE",), "http://localhost:11434"),
    "hosted_vllm": (("HOSTED_VLLM_API_BASE",), None),
    "lm_studio": (("LM_STUDIO_API_BASE",), None),
}


def base_url(kwargs: Mapping[str, Any], env: Mapping[str, str] | None = None) -> str | None:
    """The base URL a litellm call with ``kwargs`` goes to, when it can be told."""
    for name in ("api_base", "base_url"):
        value = kwargs.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    model = kwargs.get("model")
    if not isinstance(model, str) or "/" not in model:
        return None
    names, default = _BASE_FROM_ENV.get(model.split("/", 1)[0], ((), None))
    env = os.environ if env is None else env
    for name in names:
        if env.get(name, "").strip():
            return env[name].strip()
    return default


def loopback_host(kwargs: Mapping[str, Any], env: Mapping[str, str] | None = None) -> str | None:
    """``host:port`` of the call's server when it is on this machine (loopback), else None."""
    base = base_url(kwargs, env)
    if base is None:
        return None
    try:
        parts = urlsplit(base if "://" in base else f"http://{base}")
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return None
    if host == "localhost" or host.endswith(".localhost"):
        local = True
    else:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return None
        local = address.is_loopback or address.is_unspecified
    if not local:
        return None
    shown = f"[{host}]" if ":" in host else host
    return f"{shown}:{port}" if port else shown


def hold_timeout(fault: Fault, kwargs: Mapping[str, Any]) -> None:
    """Make a timeout against a server on this machine final, saying why (in place)."""
    if not (fault.may_be_billed and fault.retryable):
        return
    host = loopback_host(kwargs)
    if host is not None:
        fault.retryable = False
        fault.message += (
            f"; not retried: the local server at {host} may still be generating the "
            "abandoned answer and a retry would queue behind it (raise --gpo-timeout, "
            "set max_tokens, or lower --gpo-concurrency to the server's parallel slots)"
        )
