"""Words suite errors use: a value's kind (``a mapping``, ``text``) and the closest known key."""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """``did you mean 'x'? known keys: ...`` (the first part only when a key is close)."""
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    known = "known keys: " + ", ".join(choices)
    return f"did you mean '{close[0]}'? {known}" if close else known


def kind_of(value: Any) -> str:
    """What a parsed YAML/JSON value is, in words: ``nothing``, ``a list``, ``a number``..."""
    if value is None:
        return "nothing"
    words = {
        dict: "a mapping",
        list: "a list",
        str: "text",
        bool: "true/false",
        int: "a whole number",
        float: "a number",
    }
    name = type(value).__name__
    return words.get(type(value), f"an {name}" if name[:1] in "aeiou" else f"a {name}")
