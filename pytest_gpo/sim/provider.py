"""The litellm custom provider ``gpo-sim``: its handler, installing it, the sample index.

:func:`install` adds the handler to ``litellm.custom_provider_map`` and prices both models at 0.
pytest-gpo's client calls it (see :func:`pytest_gpo.sim.register`); code that calls litellm
directly can call it too. The handler reads the request's sample index from litellm's
``metadata``, where :func:`extra_kwargs` puts it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pytest_gpo.llm.types import Request
from pytest_gpo.sim import MODELS, PROVIDER, SIM_PREFIX, simulate
from pytest_gpo.sim.text import Messages, content_text, count_tokens

#: The key of the sample index in the request's ``metadata`` (see :func:`extra_kwargs`).
SAMPLE_KEY = "gpo_sample"


def is_sim_model(model: str) -> bool:
    """True for model names served by this provider (``gpo-sim/...``)."""
    return model.startswith(SIM_PREFIX)


def extra_kwargs(request: Request) -> dict[str, Any]:
    """Extra keyword arguments for ``litellm.acompletion`` so the simulated model sees the
    request's sample index.

    litellm hands ``metadata`` to a custom provider's handler unchanged (as
    ``litellm_params["metadata"]``), so the index travels there; metadata the request already
    carries is kept. Empty for models of other providers.
    """
    if not is_sim_model(request.model):
        return {}
    metadata = request.params.get("metadata")
    merged = dict(metadata) if isinstance(metadata, Mapping) else {}
    merged[SAMPLE_KEY] = request.sample
    return {"metadata": merged}


def _sample_of(kwargs: Mapping[str, Any]) -> int:
    for source in (kwargs.get("litellm_params"), kwargs.get("optional_params")):
        if not isinstance(source, Mapping):
            continue
        metadata = source.get("metadata")
        if isinstance(metadata, Mapping) and SAMPLE_KEY in metadata:
            return int(metadata[SAMPLE_KEY])
        if SAMPLE_KEY in source:
            return int(source[SAMPLE_KEY])
    return 0


def _respond(litellm: Any, kwargs: Mapping[str, Any]) -> Any:
    model = str(kwargs.get("model", ""))
    messages: Messages = kwargs.get("messages") or []
    params: Mapping[str, Any] = kwargs.get("optional_params") or {}
    temperature = params.get("temperature")
    n = int(params.get("n") or 1)
    max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
    try:
        texts = simulate(model, messages, temperature=temperature, sample=_sample_of(kwargs), n=n)
    except ValueError as exc:
        from litellm.llms.custom_llm import CustomLLMError

        error: Any = CustomLLMError
        raise error(status_code=404, message=str(exc)) from None
    choices: list[dict[str, Any]] = []
    for i, text in enumerate(texts):
        finish = "stop"
        if max_tokens and count_tokens(text) > int(max_tokens):
            text, finish = text[: int(max_tokens) * 4], "length"
        choices.append(
            {"index": i, "finish_reason": finish, "message": {"role": "assistant", "content": text}}
        )
    prompt_tokens = sum(count_tokens(content_text(m.get("content"))) for m in messages)
    completion_tokens = sum(count_tokens(c["message"]["content"]) for c in choices)
    return litellm.ModelResponse(
        model=f"{SIM_PREFIX}{model.removeprefix(SIM_PREFIX)}",
        choices=choices,
        usage={
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    )


_HANDLER: Any = None


def _handler(litellm: Any) -> Any:
    global _HANDLER
    if _HANDLER is None:
        from litellm.llms.custom_llm import CustomLLM

        class SimLLM(CustomLLM):
            """litellm handler of the ``gpo-sim`` provider."""

            def completion(self, *args: Any, **kwargs: Any) -> Any:
                return _respond(litellm, kwargs)

            async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
                return _respond(litellm, kwargs)

        _HANDLER = SimLLM()
    return _HANDLER


def install(litellm: Any) -> None:
    """Install the ``gpo-sim`` provider into the litellm module given (idempotent).

    Adds the handler to ``litellm.custom_provider_map`` unless a ``gpo-sim`` entry is already
    there, makes litellm aware of the provider, and registers both models at price 0 so
    ``litellm.completion_cost`` returns 0.0 instead of raising.
    """
    if not any(item.get("provider") == PROVIDER for item in litellm.custom_provider_map):
        litellm.custom_provider_map.append(
            {"provider": PROVIDER, "custom_handler": _handler(litellm)}
        )
    setup = getattr(litellm.utils, "custom_llm_setup", None)
    if setup is not None:
        setup()
    if not all(m in litellm.model_cost for m in MODELS):
        price = {
            "input_cost_per_token": 0.0,
            "output_cost_per_token": 0.0,
            "cache_creation_input_token_cost": 0.0,
            "cache_read_input_token_cost": 0.0,
            "litellm_provider": PROVIDER,
            "mode": "chat",
        }
        litellm.register_model({m: dict(price) for m in MODELS})
