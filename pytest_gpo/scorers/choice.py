"""The ``choice`` scorer: the option letter or label a verbose answer settles on."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from pytest_gpo.scorers.base import ScoreContext, ScoreResult
from pytest_gpo.scorers.common import OptionScorer, as_text, quote, result
from pytest_gpo.suites.model import Case

# Words after which a model states its decision ("Final answer: B", "Category: Billing").
# Matched case-insensitively through a local (?i:) group, so option letters stay case-sensitive.
_STRONG_CUE = (
    r"(?<!\w)(?i:final\s+answer|correct\s+answer|answer|category|label|class(?:ification)?"
    r"|classified\s+as|categori[sz]ed\s+as|intent|sentiment|topic|department|queue"
    r"|routed?\s+to|belongs\s+to|prediction|verdict)"
)
_WEAK_CUE = r"(?<!\w)(?i:option|choice|choose|pick|select)"
# Between the cue and the decision: "is", ":", "=", "->" and opening quotes.
_EXPLICIT = r"\s*(?i:is|would\s+be|should\s+be|:|=|-+>|=>|→)\s*(?i:the\s+)?[\"'“‘(\[]?\s*"
_JOINER = rf"(?:{_EXPLICIT}|\s+)"
_STOP = re.compile(r"[.,;:!?()\[\]\n\"“”]|\s(?:because|since|as|as\s+it|-|–|—)\s", re.IGNORECASE)
_ARTICLE_NEXT = re.compile(
    r"\s+(?!(?:is|was|seems|looks|fits|matches|because|since|would|should|and|or)\b)[a-z]"
)
_MARKUP = re.compile(r"\*\*|__|`")
_EDGE_PUNCT = " \t\r\n.,;:!?\"'“”‘’()[]{}*_`"


def _statement(text: str, match: re.Match[str]) -> str:
    end = match.end()
    if end < len(text) and text[end] in ")]\"'”’":
        end += 1
    return f"the statement {quote(text[match.start() : end], 40)}"


def _clean(text: str) -> str:
    return _MARKUP.sub("", text)


def _norm(text: str) -> str:
    return " ".join(text.strip(_EDGE_PUNCT).split()).casefold()


@dataclass(frozen=True)
class _Found:
    value: str
    how: str


class ChoiceScorer(OptionScorer):
    """Passes when the option letter or label an answer settles on equals ``expected``.

    Modes, chosen from the options and ``expected``:

    * ``labels: [Billing, Technical, ...]``: the label the output states, found by (in order)
      the whole output being a label, the last "answer/category/label ...: X" statement, then
      the earliest label mentioned (the longest at a tie).
    * no ``labels`` and a single-letter ``expected`` (A-E, or the ``letters`` option): the
      letter from "answer is (B)", "Answer: B", "(B)", a leading "B." / "B)", then the first
      stand-alone capital letter among ``letters``.
    * otherwise: the phrase after "answer/category/label:", or a short first line or the
      text before its first colon, compared with ``expected`` as a whole.

    Comparison is case-insensitive and ignores surrounding punctuation. Score 1 or 0.
    """

    type_name: ClassVar[str] = "choice"
    option_keys: ClassVar[tuple[str, ...]] = ("labels", "letters")

    def __init__(self, options: Mapping[str, Any], *, where: str = "") -> None:
        super().__init__(options, where=where)
        labels = self.opt_str_list("labels")
        self.labels = [lab.strip() for lab in labels] if labels else None
        if self.labels is not None and any(not lab for lab in self.labels):
            raise self.bad_type("labels", "a list of non-empty strings", self.options["labels"])
        letters = self.opt_str("letters", "ABCDE")
        assert letters is not None
        if not letters.isalpha() or len(set(letters.upper())) != len(letters):
            raise self.bad_type(
                "letters", "distinct letters such as ABCDE", letters, fix="e.g. letters: ABCDEFGH"
            )
        self.letters = letters.upper()

    # -- extraction -------------------------------------------------------------------------

    def _label_patterns(self, labels: list[str]) -> list[tuple[str, str]]:
        out = []
        for label in labels:
            words = [re.escape(w) for w in label.split()]
            out.append((label, r"(?<!\w)" + r"\s+".join(words) + r"(?!\w)"))
        return out

    def extract_label(self, output: str, labels: list[str]) -> _Found | None:
        """The label ``output`` settles on, among ``labels``."""
        text = _clean(output)
        whole = _norm(text)
        for label in labels:
            if whole == _norm(label):
                return _Found(label, "the whole answer")
        patterns = self._label_patterns(labels)
        alternatives = "|".join(f"(?P<l{i}>{p})" for i, (_, p) in enumerate(patterns))
        stated = re.compile(_STRONG_CUE + _JOINER + f"(?i:{alternatives})")
        last = None
        for match in stated.finditer(text):
            last = match
        if last is not None:
            for i, (label, _) in enumerate(patterns):
                if last.group(f"l{i}") is not None:
                    return _Found(label, _statement(text, last))
        best: tuple[int, int, str] | None = None
        for label, pattern in patterns:
            hit = re.search(pattern, text, re.IGNORECASE)
            if hit is not None:
                key = (hit.start(), -len(label), label)
                if best is None or key < best:
                    best = key
        if best is not None:
            return _Found(best[2], "the first label mentioned")
        return None

    def extract_letter(self, output: str) -> _Found | None:
        """The option letter ``output`` settles on, among :attr:`letters`."""
        text = _clean(output)
        upper, lower = self.letters, self.letters.lower()
        whole = text.strip(_EDGE_PUNCT)
        if len(whole) == 1 and whole.upper() in upper:
            return _Found(whole.upper(), "the whole answer")
        token = (
            rf"(?:[(\[](?P<b>[{upper}{lower}])[)\]]"
            rf"|(?P<u>[{upper}])(?!\w)"
            rf"|(?P<l>[{lower}])(?=\s*(?:$|[.)\],;:!?])))"
        )

        def letter(m: re.Match[str]) -> str:
            return (m.group("b") or m.group("u") or m.group("l")).upper()

        last = None
        for m in re.finditer(_STRONG_CUE + _JOINER + token, text):
            last = m
        if last is not None:
            return _Found(letter(last), _statement(text, last))
        bracketed = re.search(rf"[(\[]([{upper}{lower}])[)\]]", text)
        if bracketed is not None:
            return _Found(bracketed.group(1).upper(), f"{bracketed.group(0)!r}")
        leading = re.search(rf"^\s*([{upper}])[.):]\s", text, re.MULTILINE)
        if leading is not None:
            return _Found(leading.group(1), f"the line starting {leading.group(0).strip()!r}")
        weak = re.search(_WEAK_CUE + _JOINER + token, text)
        if weak is not None:
            return _Found(letter(weak), _statement(text, weak))
        for m in re.finditer(rf"(?<!\w)([{upper}])(?!\w)", text):
            # "A" followed by a lowercase word is the article, not option A ("A is" is not).
            if m.group(1) == "A" and _ARTICLE_NEXT.match(text[m.end() :]):
                continue
            return _Found(m.group(1), "the first stand-alone letter")
        return None

    def extract_phrase(self, output: str) -> _Found | None:
        """Without labels: the phrase after a cue, or a short first line or its head."""
        text = _clean(output)
        last = None
        for m in re.finditer(_STRONG_CUE + _EXPLICIT, text):
            last = m
        if last is not None:
            rest = text[last.end() :]
            stop = _STOP.search(rest)
            phrase = rest[: stop.start()] if stop else rest
            if _norm(phrase):
                shown = quote(text[last.start() : last.end() + len(phrase)].strip(), 40)
                return _Found(phrase.strip(), f"the statement {shown}")
        first = next((line for line in text.splitlines() if line.strip()), "")
        head = re.split(r":|\s[-–—]\s", first, maxsplit=1)[0]
        if _norm(head) and len(head.split()) <= 5:
            return _Found(head.strip(_EDGE_PUNCT), "the start of the answer")
        return None

    # -- scoring ----------------------------------------------------------------------------

    def _expected_letter(self, expected: str) -> str | None:
        stripped = expected.strip(_EDGE_PUNCT)
        if self.labels is None and len(stripped) == 1 and stripped.upper() in self.letters:
            return stripped.upper()
        return None

    async def score(self, output: str, case: Case, ctx: ScoreContext) -> ScoreResult:
        """1 when the extracted choice equals ``expected`` (case-insensitive), else 0."""
        missing = self.missing_expected(case)
        if missing is not None:
            return missing
        expected = as_text(case.expected).strip()
        letter = self._expected_letter(expected)
        if self.labels is not None:
            if not any(_norm(lab) == _norm(expected) for lab in self.labels):
                return result(
                    0.0,
                    False,
                    f"expected {quote(expected)} is not one of the labels "
                    + ", ".join(quote(lab, 30) for lab in self.labels),
                )
            found = self.extract_label(output, self.labels)
            what = "label"
        elif letter is not None:
            expected = letter
            found = self.extract_letter(output)
            what = f"option letter ({self.letters})"
        else:
            found = self.extract_phrase(output)
            what = "answer (set labels: [...] to pick from known labels)"
        if found is None:
            return result(
                0.0, False, f"expected {quote(expected)}, found no {what} in {quote(output)}"
            )
        if _norm(found.value) == _norm(expected):
            return result(1.0, True, f"chose {quote(found.value)} (from {found.how})")
        hint = ""
        if self.labels is None and letter is None and len(expected) == 1 and expected.isalpha():
            hint = f"; {expected!r} is not among letters {self.letters!r}: set letters: to add it"
        return result(
            0.0,
            False,
            f"expected {quote(expected)}, got {quote(found.value)} (from {found.how}) "
            f"in {quote(output)}{hint}",
        )
