"""The litellm Router: its settings, which models it serves, and what its deployments cost.

With router settings (several deployments or API keys behind one model name), requests for a
model the Router names go through ``litellm.Router.acompletion``, with the Router's own
retries and cache turned off (:data:`ROUTER_FORCED`); other models are called directly.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import os
import re
from collections.abc import Mapping
from typing import Any

from pytest_gpo.errors import ConfigError
from pytest_gpo.llm import pricing
from pytest_gpo.llm.redact import remember_params
from pytest_gpo.llm.types import Request

#: Router settings pytest-gpo owns: its retry policy and response cache replace the Router's.
ROUTER_FORCED: Mapping[str, Any] = {"num_retries": 0, "cache_responses": False}

#: Sections of a litellm proxy config that are not Router settings.
_PROXY_ONLY_KEYS = ("litellm_settings", "general_settings", "environment_variables")


class Routing:
    """A client's litellm Router, built on first use from checked settings.

    ``config`` is a YAML/JSON file of Router settings or the settings as a mapping (see
    :func:`load_router_config`, which runs here: a problem is a ConfigError at once).
    """

    def __init__(self, config: str | os.PathLike[str] | Mapping[str, Any]) -> None:
        #: Where the settings came from, for error messages.
        self.source = "router settings" if isinstance(config, Mapping) else os.fspath(config)
        #: The keyword arguments for ``litellm.Router``.
        self.kwargs = load_router_config(config)
        self._router: Any = None
        self._priced: dict[str, bool] = {}

    def router_for(self, litellm: Any, model: str) -> Any:
        """The Router when it serves ``model`` (by name or wildcard pattern), else None."""
        names = {str(d["model_name"]) for d in self.kwargs["model_list"]}
        if model not in names and not any("*" in name for name in names):
            return None
        if model in names or any(_wildcard_match(name, model) for name in names if "*" in name):
            return self._get_router(litellm)
        return None

    def _get_router(self, litellm: Any) -> Any:
        if self._router is None:
            settings = {**self.kwargs, **ROUTER_FORCED}
            accepted = inspect.signature(litellm.Router).parameters
            unknown = sorted(set(settings) - set(accepted))
            if unknown:
                raise ConfigError(
                    f"not litellm Router settings: {', '.join(unknown)}",
                    path=self.source,
                    fix="keep model_list and Router arguments (routing_strategy, "
                    "cooldown_time, ...); see https://docs.litellm.ai/docs/routing",
                )
            for deployment in settings["model_list"]:
                # Must run first: building a Router registers its models at $0 in litellm's map.
                pricing.price_known(litellm, str(deployment["litellm_params"]["model"]))
            try:
                self._router = litellm.Router(**settings)
            except Exception as exc:
                raise ConfigError(
                    f"litellm could not build a Router: {type(exc).__name__}: {exc}",
                    path=self.source,
                    fix="check model_list and the Router settings",
                ) from None
        return self._router

    def cost(self, litellm: Any, response: Any) -> float | None:
        """The cost of a routed response; None when its deployment's model has no price.

        A Router prices a deployment of an unknown model at $0.00 (it registers the
        deployment with empty prices), which must read as unknown, not as free.
        """
        cost = pricing.response_cost(litellm, response)
        hidden = getattr(response, "_hidden_params", None)
        if cost is None or not isinstance(hidden, dict):
            return cost
        model_id = str(hidden.get("model_id") or "")
        priced = self._priced.get(model_id)
        if priced is None:
            priced = _deployment_priced(litellm, self.kwargs, hidden)
            self._priced[model_id] = priced
        return cost if priced else None

    def estimate_cost(
        self, litellm: Any, request: Request, kwargs: Mapping[str, Any]
    ) -> float | None:
        """The estimate of the dearest deployment the Router may pick for the request's model;
        None when any of them is unpriced."""
        models = [
            str(d["litellm_params"]["model"])
            for d in self.kwargs["model_list"]
            if d["model_name"] == request.model
        ]
        estimates = [
            pricing.estimate_cost(litellm, request, kwargs, model=m)
            if pricing.price_known(litellm, m)
            else None
            for m in models
        ]
        if not estimates or any(e is None for e in estimates):
            return None
        return max(e for e in estimates if e is not None)

    def priced(self, litellm: Any, model: str) -> bool:
        """True when every deployment behind ``model`` has a known price."""
        deployments = [d for d in self.kwargs["model_list"] if d["model_name"] == model]
        return bool(deployments) and all(
            _has_custom_price(d["litellm_params"])
            or pricing.price_known(litellm, str(d["litellm_params"]["model"]))
            for d in deployments
        )

    def close(self) -> None:
        """Unhook the callbacks the Router registered in litellm's global lists."""
        if self._router is not None:
            # retire() since litellm 1.110; discard() before (deprecated since)
            retire = getattr(self._router, "retire", None) or self._router.discard
            with contextlib.suppress(Exception):
                retire()
            self._router = None


def load_router_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> dict[str, Any]:
    """litellm Router settings from a YAML or JSON file (or a mapping), checked.

    The file holds ``model_list`` (deployments: ``model_name`` and ``litellm_params`` with at
    least ``model``) and Router arguments (``routing_strategy``, ``cooldown_time``, ...), either
    at the top level or under ``router_settings`` as in a litellm proxy config. Values such as
    ``api_key: os.environ/OPENAI_API_KEY`` are resolved by litellm. Returns the keyword
    arguments for ``litellm.Router``; a problem is a :class:`~pytest_gpo.errors.ConfigError`
    naming the file and key. litellm is not imported here.
    """
    where = "router settings" if isinstance(source, Mapping) else os.fspath(source)
    fix = "see docs/models.md, 'Several deployments or keys: the litellm Router'"
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        try:
            with open(source, encoding="utf-8") as handle:
                text = handle.read()
        except OSError as exc:
            raise ConfigError(
                f"cannot read the router settings file: {exc.strerror or exc}",
                path=where,
                fix="set gpo_router / GPO_ROUTER to an existing YAML or JSON file",
            ) from None
        import yaml

        try:
            data = json.loads(text) if where.endswith(".json") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ConfigError(
                f"cannot parse the router settings: {exc}", path=where, fix=fix
            ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            "router settings must be a mapping with a model_list", path=where, fix=fix
        )
    for key in _PROXY_ONLY_KEYS:
        if key in data:
            raise ConfigError(
                f"'{key}' is a litellm proxy setting, not a Router setting",
                path=where,
                key=key,
                fix="keep only model_list and router_settings (or Router arguments)",
            )
    settings = data.pop("router_settings", None) or {}
    if not isinstance(settings, dict):
        raise ConfigError(
            "router_settings must be a mapping", path=where, key="router_settings", fix=fix
        )
    kwargs: dict[str, Any] = {**settings, **data}
    deployments = kwargs.get("model_list")
    if not isinstance(deployments, list) or not deployments:
        raise ConfigError(
            "model_list must be a non-empty list of deployments",
            path=where,
            key="model_list",
            fix=fix,
        )
    for i, deployment in enumerate(deployments):
        params = deployment.get("litellm_params") if isinstance(deployment, dict) else None
        if (
            not isinstance(deployment, dict)
            or not isinstance(deployment.get("model_name"), str)
            or not isinstance(params, dict)
            or not isinstance(params.get("model"), str)
        ):
            raise ConfigError(
                "a deployment needs model_name (the name suites use) and "
                "litellm_params.model (the provider's model)",
                path=where,
                key=f"model_list[{i}]",
                fix="e.g. {model_name: gpt-4o-mini, litellm_params: {model: openai/gpt-4o-mini,"
                " api_key: os.environ/OPENAI_API_KEY_2}}",
            )
        remember_params(params)  # a literal key in the file never reaches a log or report
    return kwargs


def _wildcard_match(pattern: str, model: str) -> bool:
    """Whether a Router ``model_name`` with ``*`` wildcards serves ``model`` (litellm's rule)."""
    regex = ".*".join(re.escape(part) for part in pattern.split("*"))
    return re.fullmatch(regex, model) is not None


def _deployment_priced(
    litellm: Any, router_kwargs: Mapping[str, Any], hidden: Mapping[str, Any]
) -> bool:
    """True when litellm knows a price for the deployment behind a routed response.

    Read from the Router settings this client was given, not from the Router's internals
    (whose accessors litellm renames between releases).
    """
    model = str(hidden.get("litellm_model_name") or "")
    for deployment in router_kwargs.get("model_list", []):
        params = deployment.get("litellm_params") or {}
        if str(params.get("model")) == model and _has_custom_price(params):
            return True
    return bool(model) and pricing.price_known(litellm, model)


def _has_custom_price(params: Mapping[str, Any]) -> bool:
    """Whether a deployment's settings give it a price of its own (litellm's custom pricing)."""
    custom = ("input_cost_per_token", "output_cost_per_token", "input_cost_per_second")
    return any(params.get(name) for name in custom)
