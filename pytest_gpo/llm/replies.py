"""What a provider's reply holds: answer texts, or why it holds none.

A reply made of nothing is never an answer: ``content: null`` or ``""``, a tool call without
text, a filtered choice or an empty ``choices`` list becomes a :class:`BadReply` carrying its
:class:`~pytest_gpo.llm.types.ErrorKind` and whether another attempt may help, so it is never
cached, scored or written to a baseline.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pytest_gpo.llm.types import ErrorKind, valid_text


@dataclass(frozen=True)
class BadReply:
    """Why a reply (or one of its choices) holds no answer."""

    kind: ErrorKind
    #: what happened, in the words the suite's error shows
    message: str
    #: another attempt may bring an answer (a glitch, not the model's deliberate reply)
    retryable: bool


@dataclass(frozen=True)
class Answer:
    """One choice's answer text, and whether the model stopped at its output limit."""

    text: str
    #: ``finish_reason: length``: the answer was cut at ``max_tokens``
    cut: bool = False


#: How a cut answer is described wherever its case's reason is shown.
CUT_NOTE = "answer cut at max_tokens (finish_reason: length)"


def answer_texts(response: Any, n: int, model: str) -> tuple[list[str], BadReply | None]:
    """The answer texts of the first ``n`` choices, and why any choice was left out."""
    found, bad = answers(response, n, model)
    return [a.text for a in found], bad


def answers(response: Any, n: int, model: str) -> tuple[list[Answer], BadReply | None]:
    """The answers of the first ``n`` choices, and why any choice was left out.

    Choices without an answer are dropped (the client asks again for the missing ones); the
    :class:`BadReply` describes the first of them, or an empty ``choices`` list. A server that
    ignores ``n`` (llama.cpp) returns fewer choices: the client asks again for the rest.
    """
    choices = list(getattr(response, "choices", None) or [])
    if not choices:
        return [], BadReply(
            ErrorKind.EMPTY, f"model '{model}' returned no choices (an empty 'choices' list)", True
        )
    found: list[Answer] = []
    bad: BadReply | None = None
    for choice in choices[:n]:
        content = getattr(getattr(choice, "message", None), "content", None)
        problem = _problem(choice, content, model)
        if problem is None:
            # half a surrogate pair (an emoji cut by max_tokens) would make it uncacheable
            text = valid_text(content) if isinstance(content, str) else ""
            found.append(Answer(text, getattr(choice, "finish_reason", None) == "length"))
        elif bad is None:
            bad = problem
    return found, bad


#: Characters that show nothing: an answer made only of these and whitespace is empty.
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"))


def _problem(choice: Any, content: Any, model: str) -> BadReply | None:
    finish = getattr(choice, "finish_reason", None)
    if finish == "content_filter":
        # a filter may also cut an answer short: what is left is not the model's answer
        return BadReply(
            ErrorKind.FILTERED,
            f"the provider's content filter withheld the answer of model '{model}' "
            "(finish_reason: content_filter)",
            False,
        )
    if isinstance(content, str) and content.translate(_INVISIBLE).strip():
        return None
    message = getattr(choice, "message", None)
    if getattr(message, "tool_calls", None) or getattr(message, "function_call", None):
        return BadReply(
            ErrorKind.EMPTY,
            f"model '{model}' answered with a tool call and no text "
            "(suites score text answers; drop 'tools' from the suite's params)",
            False,
        )
    shown = "null" if content is None else repr(content)
    if finish == "length":
        return BadReply(
            ErrorKind.EMPTY,
            f"model '{model}' returned no text before its output limit (content: {shown}, "
            "finish_reason: length); raise max_tokens in the suite's params",
            False,
        )
    return BadReply(
        ErrorKind.EMPTY, f"model '{model}' returned an empty answer (content: {shown})", True
    )
