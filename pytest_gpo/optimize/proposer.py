"""Asking the optimizer model for candidates (one request with ``n`` completions a step) and
for reflections, and parsing its replies.

The reference code sends 8 requests of n=8 and keeps one completion of each (64 completions
for 8 candidates); here a step is one request for exactly ``candidates`` completions.
"""

from __future__ import annotations

from pytest_gpo.llm.types import Request
from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.markers import END, START

#: Sample indices of different steps and seeds never collide (cache keys include the index).
_SEED_STRIDE = 1_000_003


def parse_reply(text: str) -> str:
    """The new prompt in an optimizer reply: the text between ``<START>`` and ``<END>``.

    When the reply holds several marked blocks the last non-empty one wins (replies often
    quote the markers while reasoning before the answer). ``<START>`` without ``<END>`` gives
    everything after the last ``<START>``; no markers at all gives the whole reply. Stripped.
    """
    blocks: list[str] = []
    position = 0
    while True:
        start = text.find(START, position)
        if start < 0:
            break
        begin = start + len(START)
        end = text.find(END, begin)
        if end < 0:
            tail = text[text.rfind(START) + len(START) :].strip()
            if tail:
                blocks.append(tail)
            break
        block = text[begin:end]
        if START in block:
            position = begin
            continue
        if block.strip():
            blocks.append(block.strip())
        position = end + len(END)
    if blocks:
        return blocks[-1]
    if START in text or END in text:
        return text.replace(START, "").replace(END, "").strip()
    return text.strip()


def with_trailing_whitespace(candidate: str, like: str) -> str:
    """``candidate`` ending in the same trailing whitespace as ``like`` (the initial prompt).

    Parsing strips replies; without this every rewrite of a prompt file would also drop the
    file's final newline, a change nobody asked for that shows up in every diff.
    """
    if not candidate.strip():
        return candidate
    return candidate.rstrip() + like[len(like.rstrip()) :]


def step_sample(config: OptimizeConfig, t: int) -> int:
    """The sample index of step ``t``'s optimizer requests (distinct per seed and step)."""
    return config.sampling_seed * _SEED_STRIDE + t


def candidate_request(meta_prompt: str, *, model: str, config: OptimizeConfig, t: int) -> Request:
    """The single optimizer request of step ``t``: ``n = candidates`` completions."""
    return Request(
        model=model,
        messages=({"role": "user", "content": meta_prompt},),
        params={"temperature": config.temperature},
        sample=step_sample(config, t),
        n=config.candidates,
        purpose="optimizer",
    )


def reflection_request(
    reflection_prompt: str, *, model: str, config: OptimizeConfig, t: int
) -> Request:
    """The reflection request of step ``t`` (APO, PE2): one completion."""
    return Request(
        model=model,
        messages=({"role": "user", "content": reflection_prompt},),
        params={"temperature": config.temperature},
        sample=step_sample(config, t),
        n=1,
        purpose="reflection",
    )
