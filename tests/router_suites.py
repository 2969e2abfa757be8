"""Projects of copies of the example's ticket router suite, for `--gpo-optimize` runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parent / "fixtures" / "support_desk"


def router_project(
    pytester: pytest.Pytester, prompts: dict[str, str], *, cache: str | None = None
) -> pytest.Pytester:
    """One ticket router suite per ``name: prompt path`` (relative to the rootdir), two steps
    of four candidates each on the simulated models; every prompt file starts as router.txt.
    ``cache`` sets ``gpo_cache`` (``off``: every call reaches the simulated provider)."""
    (pytester.path / "suites").mkdir()
    router = (EXAMPLE / "suites" / "ticket_router.gpo.yaml").read_text(encoding="utf-8")
    router = router.replace("{steps: 6, candidates: 8}", "{steps: 2, candidates: 4}")
    shutil.copy(EXAMPLE / "suites" / "tickets.jsonl", pytester.path / "suites" / "tickets.jsonl")
    for name, prompt in prompts.items():
        target = pytester.path / prompt
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(EXAMPLE / "prompts" / "router.txt", target)
        text = router.replace("name: ticket_router", f"name: {name}")
        text = text.replace("../prompts/router.txt", f"../{prompt}")
        (pytester.path / "suites" / f"{name}.gpo.yaml").write_text(text, encoding="utf-8")
    ini = "[pytest]\ngpo_model = gpo-sim/task\ngpo_optimizer_model = gpo-sim/optimizer\n"
    pytester.makeini(ini + (f"gpo_cache = {cache}\n" if cache else ""))
    return pytester
