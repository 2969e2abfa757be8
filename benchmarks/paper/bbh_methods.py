"""The methods of the paper's tables as runs of pytest-gpo: evaluations and optimize settings.

``Empty`` and ``CoT`` evaluate a fixed instruction; every other method is ``pytest
--gpo-optimize`` with a preset and, for the ablations of Tables 2-3, a few ``optimize:`` keys
on top of the GPO preset. A method the installed pytest-gpo does not offer (``sgdm`` before
that preset exists) is reported as not available, never imitated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

COT = "Let's think step by step."


@dataclass(frozen=True)
class Method:
    """One row of the table: an evaluation of ``instruction``, or an optimize run."""

    name: str
    group: str  # "baseline", "gpo", "retrieval ablation", "budget ablation", "update ablation"
    instruction: str = COT
    optimize: Mapping[str, Any] | None = None
    needs_preset: str | None = None
    note: str = ""
    settings: Mapping[str, Any] = field(default_factory=dict)

    @property
    def evaluates_only(self) -> bool:
        """True for Empty and CoT: no optimization, the instruction is scored as it is."""
        return self.optimize is None


def _gpo(**keys: Any) -> dict[str, Any]:
    return {"preset": "gpo", **keys}


#: Warm-up steps of the warm-up ablations (GPO.md: "for warmup 5").
WARMUP = 5

METHODS: Mapping[str, Method] = {
    m.name: m
    for m in (
        Method("empty", "baseline", instruction="", note="no instruction"),
        Method("cot", "baseline", note="Let's think step by step."),
        Method("ape", "baseline", optimize={"preset": "ape"}),
        Method("apo", "baseline", optimize={"preset": "apo"}),
        Method("opro", "baseline", optimize={"preset": "opro"}),
        Method("pe2", "baseline", optimize={"preset": "pe2"}),
        Method("sgdm", "baseline", optimize={"preset": "sgdm"}, needs_preset="sgdm"),
        Method("gpo", "gpo", optimize=_gpo()),
        Method("retrieval-none", "retrieval ablation", optimize=_gpo(retrieval="none")),
        Method("retrieval-recency", "retrieval ablation", optimize=_gpo(retrieval="recency")),
        Method("retrieval-importance", "retrieval ablation", optimize=_gpo(retrieval="importance")),
        Method("budget-none", "budget ablation", optimize=_gpo(schedule="none")),
        Method("budget-fixed", "budget ablation", optimize=_gpo(schedule="fixed")),
        Method("budget-linear", "budget ablation", optimize=_gpo(schedule="linear")),
        Method(
            "budget-fixed-warmup", "budget ablation", optimize=_gpo(schedule="fixed", warmup=WARMUP)
        ),
        Method(
            "budget-linear-warmup",
            "budget ablation",
            optimize=_gpo(schedule="linear", warmup=WARMUP),
        ),
        Method(
            "budget-cosine-warmup",
            "budget ablation",
            optimize=_gpo(schedule="cosine", warmup=WARMUP),
        ),
        Method("update-edit", "update ablation", optimize=_gpo(update="edit")),
    )
}

#: Named groups accepted by ``--methods``.
GROUPS: Mapping[str, tuple[str, ...]] = {
    "table5": ("empty", "cot", "ape", "apo", "opro", "pe2", "sgdm", "gpo"),
    "table2": ("gpo", "retrieval-none", "retrieval-recency", "retrieval-importance"),
    "table3": (
        "gpo",
        "budget-none",
        "budget-fixed",
        "budget-linear",
        "budget-fixed-warmup",
        "budget-linear-warmup",
        "budget-cosine-warmup",
    ),
    "all": tuple(METHODS),
}

#: The methods "relative gain over the best baseline" compares with.
BASELINES = ("empty", "cot", "ape", "apo", "opro", "pe2", "sgdm")


def expand(spec: str) -> list[str]:
    """Method names from a comma list of names and group names, in order, each once."""
    names: list[str] = []
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        if part in GROUPS:
            items: tuple[str, ...] = GROUPS[part]
        elif part in METHODS:
            items = (part,)
        else:
            raise ValueError(
                f"unknown method {part!r}; methods: {', '.join(METHODS)}; "
                f"groups: {', '.join(GROUPS)}"
            )
        names.extend(n for n in items if n not in names)
    return names


def unavailable(method: Method) -> str | None:
    """Why the installed pytest-gpo cannot run ``method`` (``None``: it can)."""
    if method.needs_preset is None:
        return None
    from pytest_gpo.optimize.presets import PRESETS

    if method.needs_preset in PRESETS:
        return None
    return f"{method.name}: not available in this version (no preset {method.needs_preset!r})"
