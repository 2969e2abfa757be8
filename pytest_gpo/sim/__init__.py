"""Offline simulated models, served to pytest-gpo's model client as the provider ``gpo-sim``.

They let the example project, the README's commands and the tests run with no network and no
API key, while behaving enough like real models that prompt wording measurably matters and the
optimizer has something to find. Everything is deterministic given the request: the messages,
the temperature, the sample index and the choice index (``n``).

:func:`register` makes pytest-gpo's client serve ``gpo-sim/task``, ``gpo-sim/optimizer`` and
``gpo-sim/hostile`` (the plugin calls it); :func:`simulate` gives their answers without
litellm. Through litellm they answer ordinary ``ModelResponse`` objects with ``n`` choices
and ``usage`` (tokens are ``ceil(characters / 4)``); both models are priced at 0, so cost is 0.0
(:mod:`pytest_gpo.sim.provider`). How they answer: :mod:`pytest_gpo.sim.task` (with
:mod:`pytest_gpo.sim.reading`) and :mod:`pytest_gpo.sim.optimizer` (with
:mod:`pytest_gpo.sim.metaprompt`).

Nothing heavy is imported here: reading :data:`SIM_PREFIX` at plugin start-up stays cheap, and
the models load on their first answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pytest_gpo.sim.text import Messages

#: The prefix of every simulated model's name.
SIM_PREFIX = "gpo-sim/"
#: The litellm provider name of the simulated models.
PROVIDER = SIM_PREFIX.removesuffix("/")
#: The toy instruction follower.
TASK_MODEL = f"{SIM_PREFIX}task"
#: The toy optimizer LLM.
OPTIMIZER_MODEL = f"{SIM_PREFIX}optimizer"
#: An optimizer that misbehaves like real ones (:mod:`pytest_gpo.sim.hostile`).
HOSTILE_MODEL = f"{SIM_PREFIX}hostile"
#: Every model the provider serves.
MODELS: tuple[str, ...] = (TASK_MODEL, OPTIMIZER_MODEL, HOSTILE_MODEL)


def simulate(
    model: str,
    messages: Messages,
    *,
    temperature: float | None = None,
    sample: int = 0,
    n: int = 1,
) -> list[str]:
    """The ``n`` reply texts of a simulated model (``gpo-sim/task`` or ``gpo-sim/optimizer``;
    the provider prefix is optional). Raises ``ValueError`` for an unknown model."""
    from pytest_gpo.sim.optimizer import optimizer_replies
    from pytest_gpo.sim.task import task_reply

    name = model.removeprefix(SIM_PREFIX)
    n = max(1, n)
    if name == "task":
        temp = float(temperature or 0.0)
        return [task_reply(messages, temperature=temp, sample=sample, choice=i) for i in range(n)]
    if name == "optimizer":
        return optimizer_replies(messages, sample=sample, n=n)
    if name == "hostile":
        from pytest_gpo.sim.hostile import hostile_replies

        return hostile_replies(messages, sample=sample, n=n)
    known = ", ".join(MODELS)
    raise ValueError(f"unknown simulated model '{model}'; known: {known}")


def register() -> None:
    """Serve the simulated models through pytest-gpo's model client (idempotent).

    Registers ``gpo-sim`` like any custom provider (:func:`pytest_gpo.llm.providers.
    register_provider`): the client installs it into litellm before the first call to one of
    its models and passes each request's sample index along. litellm is not imported here.
    """
    from pytest_gpo.llm.providers import register_provider
    from pytest_gpo.sim.provider import extra_kwargs, install

    register_provider(PROVIDER, install, request_kwargs=extra_kwargs)
