"""The ``judge`` scorer: an LLM grades the output against a rubric.

The judge call goes through ``ctx.client`` (same cache, retries, budget and accounting as task
calls) with temperature 0 and ``purpose="judge"``. The judge answers in a fixed JSON format,
``{"score": <0..scale>, "reason": "..."}``, that :func:`parse_verdict` reads back.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from pytest_gpo.llm.types import Request
from pytest_gpo.scorers.base import ScoreContext, ScorerCallFailed, ScoreResult
from pytest_gpo.scorers.common import (
    OptionScorer,
    as_text,
    quote,
    result,
    strict_json,
    versus,
)
from pytest_gpo.suites.model import Case

JUDGE_SYSTEM = (
    "You are a strict, impartial evaluator. You grade a RESPONSE against a RUBRIC, using the "
    "TASK and the REFERENCE ANSWER when they are given. Judge only what the rubric asks.\n"
    "Reply with exactly one JSON object and nothing else:\n"
    '{{"score": <integer from 0 to {scale}>, "reason": "<one short sentence>"}}\n'
    "{scale} means the response fully meets the rubric; 0 means it does not meet it at all."
)

_OBJECT = re.compile(r"\{[^{}]*\}", re.DOTALL)
_SCORE_LINE = re.compile(
    r"\bscore\W{0,3}\s*[:=]\s*(?P<n>-?\d+(?:\.\d+)?)(?:\s*/\s*(?P<d>\d+(?:\.\d+)?))?",
    re.IGNORECASE,
)
_REASON_LINE = re.compile(r"\breason\W{0,3}\s*[:=]\s*(?P<r>.+)", re.IGNORECASE)


_NON_FINITE_SCORE = re.compile(
    r"score[\"']?\s*[:=]\s*[\"']?\s*(-?(nan|inf(inity)?)\b|[-+]?\d[\d.]*e\+?\d{3,})",
    re.IGNORECASE,
)


def _ratio(numerator: str, denominator: str | None, scale: int) -> float:
    value = float(numerator)
    if denominator and float(denominator) > 0:
        value = value / float(denominator) * scale
    return value


def _number(value: Any, scale: int) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        m = re.fullmatch(r"\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*(\d+(?:\.\d+)?))?\s*", value)
        if m:
            return _ratio(m.group(1), m.group(2), scale)
    return None


def parse_verdict(reply: str, scale: int = 10) -> tuple[float, str] | None:
    """``(score on 0..scale, reason)`` from a judge reply, or ``None`` when it cannot be read.

    Reads a JSON object with a ``score`` key (bare, fenced or inside prose), else
    ``score: N`` (or ``N/M``, rescaled) and ``reason: ...`` lines.
    """
    candidates = [reply.strip(), *(m.group(0) for m in _OBJECT.finditer(reply))]
    for candidate in candidates:
        try:
            data = strict_json(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and "score" in data:
            score = _number(data["score"], scale)
            if score is not None and math.isfinite(score):
                return score, str(data.get("reason", "")).strip()
    if _NON_FINITE_SCORE.search(reply):
        return None  # "score": NaN / Infinity / 1e999 is no grade, whatever else the reply says
    line = _SCORE_LINE.search(reply)
    if line is not None:
        reason = _REASON_LINE.search(reply)
        text = reason.group("r").strip().strip("\"'") if reason else ""
        score = _ratio(line.group("n"), line.group("d"), scale)
        # "score: 1e999" is no grade (a NaN or infinity would read as 0 or full marks)
        return (score, text) if math.isfinite(score) else None
    return None


class JudgeScorer(OptionScorer):
    """Asks a judge model to grade the output against ``rubric``.

    Options: ``rubric`` (required), ``model`` (the judge; default the suite's
    ``judge_model``), ``scale`` (the judge scores 0..scale, default 10), ``min`` (pass mark
    on the normalized score, default 0.5), ``show_prompt`` / ``show_expected`` (give the judge
    the rendered prompt and the case's ``expected`` as a reference; default true). The score
    is the judge's score divided by ``scale``.
    """

    type_name: ClassVar[str] = "judge"
    needs_expected: ClassVar[bool] = False
    option_keys: ClassVar[tuple[str, ...]] = (
        "rubric",
        "model",
        "scale",
        "min",
        "show_prompt",
        "show_expected",
    )

    def __init__(self, options: Mapping[str, Any], *, where: str = "") -> None:
        super().__init__(options, where=where)
        if "rubric" not in self.options:
            raise self.fail(
                "the judge scorer needs a 'rubric'",
                key="rubric",
                fix='add rubric: "<what a good answer does>" to this scorer',
            )
        rubric = self.opt_str("rubric", None)
        assert rubric is not None
        self.rubric = rubric.strip()
        self.model = self.opt_str("model", None)
        self.scale = self.opt_int("scale", 10, lo=1, hi=10_000)
        self.min = self.opt_float("min", 0.5, lo=0.0, hi=1.0)
        self.show_prompt = self.opt_bool("show_prompt", True)
        self.show_expected = self.opt_bool("show_expected", True)

    def messages(self, output: str, case: Case, ctx: ScoreContext) -> tuple[dict[str, str], ...]:
        """The judge conversation for one output."""
        parts = [f"RUBRIC:\n{self.rubric}"]
        if self.show_prompt and ctx.prompt:
            parts.append(f"TASK GIVEN TO THE MODEL:\n{ctx.prompt}")
        if self.show_expected and case.has_expected:
            parts.append(f"REFERENCE ANSWER:\n{as_text(case.expected)}")
        parts.append(f"RESPONSE TO GRADE:\n{output}")
        parts.append(f'Reply with {{"score": 0-{self.scale}, "reason": "..."}} only.')
        return (
            {"role": "system", "content": JUDGE_SYSTEM.format(scale=self.scale)},
            {"role": "user", "content": "\n\n".join(parts)},
        )

    def judge_model(self, ctx: ScoreContext) -> str:
        """The judge model: this scorer's ``model``, else the suite's; an error if neither."""
        model = self.model or ctx.judge_model
        if not model:
            raise self.fail(
                "no judge model configured for the judge scorer",
                key="model",
                fix="add model: <litellm model name> to this judge scorer, or judge_model: "
                "to the suite",
            )
        return model

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        """The judge's score / ``scale``; passed when it reaches ``min``."""
        model = self.judge_model(ctx)
        if ctx.client is None:
            raise self.fail(
                "the judge scorer was given no model client",
                key="model",
                fix="score judge scorers through the plugin's runner, or pass "
                "ScoreContext(client=...)",
            )
        request = Request(
            model=model,
            messages=self.messages(output, case, ctx),
            params={"temperature": 0},
            purpose="judge",
            sample=ctx.sample,
        )
        completion = await ctx.client.complete(request)
        if completion.error is not None:
            raise ScorerCallFailed(f"judge call failed: {completion.error}", completion.error_kind)
        reply = completion.text
        verdict = parse_verdict(reply, self.scale)
        if verdict is None:
            return result(
                0.0, False, f"judge reply is not in the expected format: {quote(reply, 200)}"
            )
        raw, why = verdict
        raw = min(float(self.scale), max(0.0, raw))
        normalized = raw / self.scale
        passed = normalized >= self.min
        why = why or "(no reason given)"
        verdict_text = f"judge {raw:g}/{self.scale} ({versus(normalized, self.min)})"
        return result(normalized, passed, f"{verdict_text}: {why}")
