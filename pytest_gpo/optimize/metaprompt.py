"""The optimizer's meta-prompts: generation and editing refinement, and reflection requests.

The parts and their order are the paper's (GPO.md, step 4 "Meta-prompt"): the task; the
retrieved prompts with their scores (0-100, rounded); the current prompt; task examples showing
where the prompt sits; the instruction to analyze and improve; the budget sentence; the wrap
sentence. The fixed strings other modules parse live in :mod:`pytest_gpo.optimize.markers`.

The optimizer sees what the task model sees: the suite's system message is shown, marked as
fixed (only the prompt is rewritten). Case values longer than a token budget are shortened
(head and tail kept, the cut said in the text), so three 4,000-word documents cannot blow up
a request; token counts here are estimates (4 characters a token), no tokenizer is loaded.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pytest_gpo.optimize.markers import (
    BUDGET_SENTENCE,
    CURRENT_CLOSE,
    CURRENT_OPEN,
    PROMPT_MARKER,
    REFLECTION_TAG,
    WRAP_SENTENCE,
)
from pytest_gpo.optimize.retrieval import TrajectoryEntry

_ORDER_NOTE = {
    "relevance": "from the least to the most similar to the current prompt",
    "recency": "from the oldest to the most recent",
    "importance": "from the lowest to the highest score",
}


@dataclass(frozen=True)
class TaskExample:
    """A case shown to the optimizer: its variables, the expected output, and optionally the
    task model's output (reflection requests show what went wrong)."""

    case_id: str
    variables: Mapping[str, Any]
    expected: Any = None
    output: str | None = None


#: Characters a token, for the size estimates of meta-prompts (no tokenizer is loaded).
CHARS_PER_TOKEN = 4

_CONTEXT_ERROR = re.compile(
    r"context.?window|context.?length|maximum context|too many tokens|prompt is too long"
    r"|input is too long|reduce the length",
    re.IGNORECASE,
)


def is_context_error(message: str) -> bool:
    """Whether a failed call's message says the request did not fit the model's context."""
    return bool(_CONTEXT_ERROR.search(message))


def approx_tokens(text: str) -> int:
    """Estimated tokens of ``text`` (:data:`CHARS_PER_TOKEN` characters each)."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def shorten(text: str, tokens: int | None) -> str:
    """``text`` cut to about ``tokens`` tokens: its head and tail, the cut said in the middle."""
    if tokens is None:
        return text
    limit = max(8, tokens) * CHARS_PER_TOKEN
    if len(text) <= limit:
        return text
    head, tail = text[: limit * 2 // 3], text[-(limit // 3) :]
    cut = len(text) - len(head) - len(tail)
    return f"{head} [... {cut} characters cut ...] {tail}"


def score_100(score: float) -> int:
    """A 0..1 score on the 0-100 scale the meta-prompt announces, rounded."""
    return round(score * 100)


def _value(value: Any, tokens: int | None = None) -> str:
    text = (
        value
        if isinstance(value, str)
        else json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    )
    return shorten(text, tokens)


def format_example(example: TaskExample, tokens: int | None = None) -> str:
    """``Input: <Prompt>`` then the case's variables as ``key: value`` lines, then the output.

    ``tokens`` caps each value (:func:`shorten`).
    """
    lines = [f"Input: {PROMPT_MARKER}"]
    lines += [f"{key}: {_value(value, tokens)}" for key, value in example.variables.items()]
    if example.output is not None:
        lines.append(f"Model output: {shorten(example.output, tokens)}")
        if example.expected is not None:
            lines.append(f"Expected output: {_value(example.expected, tokens)}")
    elif example.expected is not None:
        lines.append(f"Output: {_value(example.expected, tokens)}")
    return "\n".join(lines)


def pick_examples(
    batch: Sequence[str],
    vars_by_id: Mapping[str, Mapping[str, Any]],
    expected_by_id: Mapping[str, Any],
    n: int = 3,
    fallback: Iterable[str] = (),
) -> list[TaskExample]:
    """The first ``n`` cases of the batch (those with an expected output first), topped up
    from ``fallback`` when the batch is smaller than ``n``."""
    in_batch = list(dict.fromkeys(batch))
    extra = [i for i in dict.fromkeys(fallback) if i not in set(in_batch)]
    chosen: list[str] = []
    for group in (in_batch, extra):
        chosen += [i for i in group if expected_by_id.get(i) is not None]
        chosen += [i for i in group if expected_by_id.get(i) is None]
    chosen = chosen[:n]
    return [
        TaskExample(case_id=i, variables=vars_by_id.get(i, {}), expected=expected_by_id.get(i))
        for i in chosen
    ]


def _current_block(prompt: str) -> str:
    return f"{CURRENT_OPEN}\n{prompt}\n{CURRENT_CLOSE}"


def _variables_sentence(variables: Iterable[str]) -> str:
    names = sorted(variables)
    if not names:
        return ""
    listed = ", ".join("{{ " + name + " }}" for name in names)
    return (
        f" The prompt is a template: keep its variables ({listed}) exactly as written, and do"
        " not add new ones."
    )


def _system_block(system: str | None, tokens: int | None) -> str | None:
    if not system or not system.strip():
        return None
    return (
        "The language model also receives this system message. It is fixed: do not copy it"
        " into the prompt and do not contradict it; only the prompt is yours to change.\n"
        f"<system_message>\n{shorten(system.strip(), tokens)}\n</system_message>"
    )


def build_meta_prompt(
    *,
    current: TrajectoryEntry,
    previous: Sequence[TrajectoryEntry],
    examples: Sequence[TaskExample],
    budget: int | None,
    update: str = "generation",
    retrieval: str = "relevance",
    variables: Iterable[str] = (),
    feedback: str | None = None,
    system: str | None = None,
    example_tokens: int | None = None,
    momentum: Sequence[str] = (),
) -> str:
    """The optimizer request of one step.

    ``previous`` are the retrieved earlier prompts in display order (the retrieval list without
    its last entry, the current prompt). ``update`` is ``generation`` (write a new prompt) or
    ``edit`` (modify the current one). ``feedback`` is a reflection reply (APO, PE2, SGDM);
    ``momentum`` the feedback of earlier steps, oldest first (SGDM). ``system`` is the task
    model's system message (shown read-only); ``example_tokens`` caps each example value.
    """
    editing = update == "edit"
    parts: list[str] = []
    if editing:
        parts.append(
            f"Your task is to modify the current prompt, which replaces {PROMPT_MARKER} in the"
            " task examples below, so that a language model gives the expected outputs."
        )
    else:
        parts.append(
            f"Your task is to write a new prompt to replace {PROMPT_MARKER} in the task"
            " examples below, so that a language model gives the expected outputs."
        )
    if previous:
        order = _ORDER_NOTE.get(retrieval, "in order")
        shown = "\n\n".join(
            f'<prompt score="{score_100(e.score)}">\n{e.prompt}\n</prompt>' for e in previous
        )
        parts.append(
            "Below are previous prompts with their scores, listed "
            f"{order}. The score ranges from 0 to 100; higher is better.\n\n{shown}"
        )
    parts.append(
        f"The current prompt, with a score of {score_100(current.score)}:\n"
        + _current_block(current.prompt)
    )
    system_block = _system_block(system, example_tokens)
    if system_block:
        parts.append(system_block)
    if examples:
        shown = "\n\n".join(format_example(e, example_tokens) for e in examples)
        parts.append(
            f"Below are examples of the task. {PROMPT_MARKER} marks where the prompt is placed;"
            " the lines after it are the values the prompt's variables are filled in with.\n\n"
            + shown
        )
    if momentum:
        earlier = "\n\n".join(
            f'<feedback step="{i}">\n{shorten(m.strip(), example_tokens)}\n</feedback>'
            for i, m in enumerate(momentum, 1)
        )
        parts.append(
            "Feedback on earlier prompts of this optimization, oldest first (the momentum of"
            f" the updates):\n{earlier}"
        )
    if feedback:
        parts.append(
            "Feedback on the current prompt, from the examples it got wrong:\n"
            f"<feedback>\n{feedback.strip()}\n</feedback>"
        )
    analyze = (
        "Carefully analyze the previous prompts and their scores, the current prompt"
        + (", the feedback" if feedback else "")
        + " and the task examples."
    )
    if editing:
        analyze += (
            " Then modify the current prompt to improve it: edit it in place rather than"
            " writing a new one."
        )
    else:
        analyze += " Then write a new prompt that improves on the current prompt."
    analyze += _variables_sentence(variables)
    closing = [analyze]
    if budget is not None:
        closing.append(BUDGET_SENTENCE.format(n=budget))
    closing.append(WRAP_SENTENCE)
    parts.append("\n".join(closing))
    return "\n\n".join(parts) + "\n"


def build_reflection_prompt(
    *,
    current: str,
    wrong: Sequence[TaskExample],
    system: str | None = None,
    example_tokens: int | None = None,
    max_tokens: int | None = None,
) -> str:
    """The reflection request (APO, PE2, SGDM): why did the current prompt get these wrong.

    ``wrong`` are the failing cases; as many as fit ``max_tokens`` (estimated) are shown, each
    value cut to ``example_tokens``, and the request says how many more there were.
    """
    head = (
        f"{REFLECTION_TAG}\n"
        f"I am improving a prompt for a task. The prompt replaces {PROMPT_MARKER} in the"
        " inputs below.\n\n"
        f"The current prompt:\n{_current_block(current)}\n\n"
    )
    system_block = _system_block(system, example_tokens)
    if system_block:
        head += system_block + "\n\n"
    tail = (
        "Explain briefly why the prompt led to these wrong outputs and what should change in"
        " it. Give feedback only; do not write a new prompt.\n"
    )
    used = approx_tokens(head + tail) + 20
    shown: list[str] = []
    for example in wrong:
        text = format_example(example, example_tokens)
        cost = approx_tokens(text) + 1
        if shown and max_tokens is not None and used + cost > max_tokens:
            break
        shown.append(text)
        used += cost
    left = len(wrong) - len(shown)
    more = f" ({left} more not shown, for length)" if left else ""
    return (
        head
        + f"The current prompt got these {len(wrong)} examples wrong{more}:\n\n"
        + "\n\n".join(shown)
        + "\n\n"
        + tail
    )
