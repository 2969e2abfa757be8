"""The paper's methods as presets of one framework (GPO.md, "The baselines as presets").

A preset only changes defaults: keys written explicitly in a suite's ``optimize:`` mapping
override them, so ``{preset: pe2, max_words: 20}`` is PE2 with a 20-word budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

#: The defaults each preset sets, on top of :class:`~pytest_gpo.optimize.config.OptimizeConfig`.
PRESETS: Mapping[str, Mapping[str, Any]] = MappingProxyType(
    {
        "gpo": MappingProxyType(
            {
                "retrieval": "relevance",
                "schedule": "cosine",
                "max_words": 50,
                "min_words": 10,
                "update": "generation",
                "reflection": False,
            }
        ),
        "ape": MappingProxyType(
            {
                "retrieval": "none",
                "schedule": "none",
                "update": "generation",
                "reflection": False,
            }
        ),
        "apo": MappingProxyType(
            {
                "retrieval": "none",
                "schedule": "none",
                "update": "edit",
                "reflection": True,
            }
        ),
        "opro": MappingProxyType(
            {
                "retrieval": "importance",
                "schedule": "none",
                "update": "generation",
                "reflection": False,
            }
        ),
        "pe2": MappingProxyType(
            {
                "retrieval": "recency",
                "schedule": "fixed",
                "max_words": 30,
                "update": "generation",
                "reflection": True,
            }
        ),
        # SGDM (GPO.md): reflection, the feedback of earlier steps as momentum, editing
        "sgdm": MappingProxyType(
            {
                "retrieval": "none",
                "schedule": "none",
                "update": "edit",
                "reflection": True,
                "momentum": 2,
            }
        ),
    }
)
