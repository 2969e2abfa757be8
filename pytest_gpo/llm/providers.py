"""Custom litellm providers registered with pytest-gpo's model client.

A provider (the offline simulated models of :mod:`pytest_gpo.sim` are one) serves the models
named ``<name>/...``. It registers itself with :func:`register_provider`, which imports
nothing: the client installs it into litellm (:func:`prepare`) before each request for one of
its models, and adds the provider's own keyword arguments to every call it makes for one
(:func:`request_kwargs`), for what litellm's parameters cannot carry (such as a request's
sample index).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pytest_gpo.llm.types import Request


@dataclass(frozen=True)
class Provider:
    """A custom litellm provider: how to install it and what it adds to each call."""

    #: The provider prefix of its model names (``gpo-sim`` serves ``gpo-sim/...``).
    name: str
    #: Installs the provider into the litellm module it is given; must be idempotent.
    install: Callable[[Any], None]
    #: Extra keyword arguments for ``litellm.acompletion`` of one request (None: nothing).
    request_kwargs: Callable[[Request], Mapping[str, Any]] | None = None


_PROVIDERS: dict[str, Provider] = {}


def register_provider(
    name: str,
    install: Callable[[Any], None],
    *,
    request_kwargs: Callable[[Request], Mapping[str, Any]] | None = None,
) -> None:
    """Serve the models ``<name>/...`` through a custom provider (idempotent; no import).

    ``install(litellm)`` runs before each request for one of its models, with the configured
    litellm module; ``request_kwargs(request)`` is merged into every call made for one. A
    second registration under the same name replaces the first.
    """
    _PROVIDERS[name] = Provider(name, install, request_kwargs)


def provider_of(model: str) -> Provider | None:
    """The registered provider serving ``model``, if any."""
    name, slash, _ = model.partition("/")
    return _PROVIDERS.get(name) if slash else None


def prepare(litellm: Any, model: str) -> str | None:
    """Install the provider of ``model`` into litellm; a message when that fails."""
    provider = provider_of(model)
    if provider is None:
        return None
    try:
        provider.install(litellm)
    except Exception as exc:
        return (
            f"setting up the provider '{provider.name}' of model '{model}' failed: "
            f"{type(exc).__name__}: {exc}"
        )
    return None


def request_kwargs(request: Request) -> Mapping[str, Any]:
    """The extra call keyword arguments the provider of ``request.model`` asks for."""
    provider = provider_of(request.model)
    if provider is None or provider.request_kwargs is None:
        return {}
    return provider.request_kwargs(request)
