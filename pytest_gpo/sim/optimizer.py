"""``gpo-sim/optimizer``, a toy optimizer LLM: candidate edits of a prompt, and reflections.

It reads the meta-prompt of :mod:`pytest_gpo.optimize.metaprompt` (see
:mod:`pytest_gpo.sim.metaprompt`): the current prompt between
the lines ``<current_prompt>`` and ``</current_prompt>`` (the last such block), the budget from
"You are allowed to change up to N words in the current prompt." (none: unlimited), the task
examples (``Input: <Prompt>`` blocks with ``Output:`` lines) and an optional ``<feedback>``
block. Each of the ``n`` choices is seeded by the meta-prompt's hash,
the sample index and the choice index, and is a short rationale followed by the new prompt
between ``<START>`` and ``<END>``. The choices of one reply are distinct.

The prompt is split into a *head* (the paragraphs before the first one with a ``{{ ... }}`` or
``{% ... %}``) and a *tail* that is kept verbatim, so normal candidates keep every variable.
Edits act on the head's sentences:

==============  ===========  ================================================================
kind            chance       what it does
==============  ===========  ================================================================
rewrite         1 in 8       a task statement plus several pool sentences as the new head,
                             longer than the budget allows (the plugin must reject it; with
                             no budget it is an ordinary candidate)
drop variable   1 in 16      replaces the first ``{{ var }}`` of the tail with ``the message``
                             (the plugin must reject it)
suggestion      1 in 2 of    when the meta-prompt has a ``<feedback>`` block with
                the rest     ``Suggestion: "..."`` lines: adds a suggested sentence
append          50%          appends a pool sentence to the head
insert          20%          inserts a pool sentence before a random sentence of the head
delete          15%          deletes a random sentence of the head (if it has two or more)
swap            15%          swaps a phrase for a synonym (``Reply with`` -> ``Answer with``...)
==============  ===========  ================================================================

Normal edits are checked with the word-level Levenshtein distance (``str.split`` words) and
redrawn when over budget; the ``n`` choices of one reply are redrawn until distinct. The pool is
chosen by the task the current prompt is for (same detection as the task model); sentences
already in the prompt are not added again. Task-specific sentences are twice as likely as
generic ones, and a sentence that one of the meta-prompt's task examples calls for (see
``example_hints``: a refund ticket expected as billing, a ticket expected as other, a ticket
with keywords of two teams; an expected email in lowercase, an order id written differently,
a null field, a full name) three times as likely again, as long as the current prompt lacks
its effect:

======================================================  ==========================================
pool sentence                                           effect on ``gpo-sim/task``
======================================================  ==========================================
Refunds and charges always go to billing.                helpful (routing: refunds are billing)
Focus on the customer's main request.                    helpful (routing: main intent)
Think about what the customer needs help with.           helpful (routing: main intent)
If no category fits, answer other.                       helpful (routing: fallback category)
Answer with only the category name.                      helpful (routing: bare answer)
Lowercase the email address.                             helpful (extraction: lowercase)
Order IDs look like ORD-12345.                           helpful (extraction: order-id format)
Use null for missing fields.                             helpful (extraction: null)
Give the customer's full name.                           helpful (extraction: full name)
Return a JSON object.                                    helpful (extraction: JSON)
Be accurate. / Read the message carefully. / You are     neutral
a helpful support assistant. / Be concise. /
Double-check your answer. / Take your time.
Explain your reasoning.                                  harmful (verbose output)
Answer in a friendly, complete sentence.                 harmful (sentence output)
Mention every topic in the message.                      harmful (routing: lists topics)
Answer in JSON.                                          harmful for routing (JSON output)
======================================================  ==========================================

**Reflection** (APO, PE2): a message containing ``<reflection_request>`` gets a short feedback
text instead of a prompt. It reads the wrong examples (``Model output:`` / ``Expected output:``
lines) and names what the prompt lacks, each as a ``Suggestion: "<pool sentence>"`` line that
the next optimizer request picks up from its ``<feedback>`` block.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from pytest_gpo.optimize.markers import END, REFLECTION_TAG, START
from pytest_gpo.sim.metaprompt import (
    example_hints,
    read_budget,
    read_current_prompt,
    read_examples,
    read_suggestions,
)
from pytest_gpo.sim.reading import Parsed, detect_task, read_directives
from pytest_gpo.sim.text import Messages, content_text, seed_of

#: Pool sentences by task: (sentence, effect) with effect helpful / neutral / harmful.
POOL: dict[str, tuple[tuple[str, str], ...]] = {
    "routing": (
        ("Refunds and charges always go to billing.", "helpful"),
        ("Focus on the customer's main request.", "helpful"),
        ("Think about what the customer needs help with.", "helpful"),
        ("If no category fits, answer other.", "helpful"),
        ("Answer with only the category name.", "helpful"),
        ("Mention every topic in the message.", "harmful"),
        ("Answer in JSON.", "harmful"),
    ),
    "extraction": (
        ("Lowercase the email address.", "helpful"),
        ("Order IDs look like ORD-12345.", "helpful"),
        ("Use null for missing fields.", "helpful"),
        ("Give the customer's full name.", "helpful"),
        ("Return a JSON object.", "helpful"),
    ),
    "any": (
        ("Be accurate.", "neutral"),
        ("Read the message carefully.", "neutral"),
        ("You are a helpful support assistant.", "neutral"),
        ("Be concise.", "neutral"),
        ("Double-check your answer.", "neutral"),
        ("Take your time.", "neutral"),
        ("Explain your reasoning.", "harmful"),
        ("Answer in a friendly, complete sentence.", "harmful"),
    ),
}


def pool_for(task: str) -> list[tuple[str, str]]:
    """The pool sentences for prompts of ``task``: its own, then the generic ones."""
    return [*POOL.get(task, ()), *POOL["any"]]


#: Phrase swaps (both directions), applied to the head of the prompt.
SWAPS: tuple[tuple[str, str], ...] = (
    ("Reply with", "Answer with"),
    ("Respond with", "Reply with"),
    ("support ticket", "customer message"),
    ("the category", "the label"),
    ("Route", "Classify"),
    ("route", "classify"),
    ("below", "that follows"),
    ("customer's", "sender's"),
    ("right", "correct"),
)


#: The task statement a full rewrite starts with, by task.
_TASK_STATEMENTS: dict[str, str] = {
    "routing": "Classify the message into billing, technical, account, shipping or other.",
    "extraction": "Extract the name, email and order ID from the message as JSON.",
    "arithmetic": "Calculate the result of the problem.",
    "other": "Answer the message.",
}
_REWRITE_OPENERS = (
    "You are an expert customer support agent.",
    "You are a meticulous assistant working for an online shop.",
    "You are a careful analyst of customer messages.",
)


_VARIABLE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


def word_distance(a: str, b: str) -> int:
    """Word-level Levenshtein distance (``str.split`` words), as the plugin measures it."""
    from rapidfuzz.distance import Levenshtein

    return int(Levenshtein.distance(a.split(), b.split()))


def _split_prompt(prompt: str) -> tuple[str, str, str]:
    """(head, separator, tail): the tail starts at the first paragraph with a variable."""
    pieces = re.split(r"(\n[ \t]*\n)", prompt)
    for i in range(0, len(pieces), 2):
        if _VARIABLE.search(pieces[i]):
            head = "".join(pieces[: max(i - 1, 0)])
            sep = pieces[i - 1] if i > 0 else ""
            return head, sep, "".join(pieces[i:])
    return prompt, "", ""


def _join(head: str, sep: str, tail: str) -> str:
    head = re.sub(r"[ \t]+\n", "\n", head).strip()
    if not tail:
        return head
    if not head:
        return tail
    return head + (sep or "\n\n") + tail


# A sentence may wrap onto the next line, but never crosses a blank line.
_SENTENCE_SPAN = re.compile(
    r"[^\s](?:[^.!?\n]|[.!?](?!\s|$)|\n(?![ \t]*\n))*?(?:[.!?]+(?=\s|$)|(?=\n[ \t]*\n)|$)"
)


def _sentences(head: str) -> list[tuple[int, int]]:
    return [(m.start(), m.end()) for m in _SENTENCE_SPAN.finditer(head)]


def _lacks(current: str, sentence: str) -> bool:
    """True when adding ``sentence`` changes what ``gpo-sim/task`` reads in ``current``."""
    before = read_directives(Parsed(current, ""))
    return read_directives(Parsed(current + "\n" + sentence, "")) != before


@dataclass(frozen=True)
class _Edit:
    kind: str
    prompt: str
    note: str


def _normal_edit(
    current: str,
    rng: random.Random,
    task: str,
    suggestions: Sequence[str],
    hints: Sequence[str] = (),
) -> _Edit:
    head, sep, tail = _split_prompt(current)
    fresh = [s for s, _ in pool_for(task) if s.lower() not in current.lower()]
    new_suggestions = [s for s in suggestions if s.lower() not in current.lower()]
    spans = _sentences(head)
    if new_suggestions and rng.random() < 0.5:
        sentence = rng.choice(new_suggestions)
        starts = [start for start, _ in spans]
        at = rng.choice([*starts, len(head)])
        new_head = (
            _append(head, sentence) if at == len(head) else (head[:at] + sentence + " " + head[at:])
        )
        return _Edit(
            "suggestion",
            _join(new_head, sep, tail),
            f'I followed the feedback and added "{sentence}"',
        )
    r = rng.random()
    if r < 0.15 and len(spans) >= 2:
        start, end = rng.choice(spans)
        removed = head[start:end]
        new_head = head[:start] + head[end:].lstrip(" \t")
        return _Edit("delete", _join(new_head, sep, tail), f'I removed "{removed.strip()}"')
    if r < 0.30:
        options = [(a, b) for a, b in SWAPS if a in head] + [(b, a) for a, b in SWAPS if b in head]
        if options:
            old, new = rng.choice(options)
            return _Edit(
                "swap",
                _join(head.replace(old, new, 1), sep, tail),
                f'I replaced "{old}" with "{new}"',
            )
    if not fresh:
        fresh = [s for s, _ in pool_for(task)]
    specific = {s for s, _ in POOL.get(task, ())}
    weights = [(3 if s in hints else 1) * (2 if s in specific else 1) for s in fresh]
    sentence = rng.choices(fresh, weights=weights)[0]
    if r < 0.50 and spans:
        start, _ = rng.choice(spans)
        new_head = head[:start] + sentence + " " + head[start:]
        return _Edit("insert", _join(new_head, sep, tail), f'I inserted "{sentence}"')
    return _Edit("append", _join(_append(head, sentence), sep, tail), f'I added "{sentence}"')


def _append(head: str, sentence: str) -> str:
    stripped = head.rstrip()
    if not stripped:
        return sentence
    return stripped + " " + sentence


def _rewrite(current: str, rng: random.Random, task: str, budget: int | None) -> _Edit:
    _, sep, tail = _split_prompt(current)
    pool = [s for s, _ in pool_for(task)]
    rng.shuffle(pool)
    chosen = [rng.choice(_REWRITE_OPENERS), _TASK_STATEMENTS[task]]
    candidate = _join(" ".join(chosen), sep, tail)
    for sentence in pool:
        if budget is not None and word_distance(current, candidate) > budget and len(chosen) > 3:
            break
        if budget is None and len(chosen) > 3:
            break
        chosen.append(sentence)
        candidate = _join(" ".join(chosen), sep, tail)
    return _Edit("rewrite", candidate, "I rewrote the prompt from scratch")


def _drop_variable(current: str) -> _Edit | None:
    head, sep, tail = _split_prompt(current)
    m = re.search(r"\{\{.*?\}\}", tail, re.DOTALL)
    if m is None:
        return None
    new_tail = tail[: m.start()] + "the message" + tail[m.end() :]
    return _Edit("drop_variable", _join(head, sep, new_tail), "I simplified the input line")


def propose_edit(
    current: str,
    *,
    seed: int,
    budget: int | None,
    suggestions: Sequence[str] = (),
    hints: Sequence[str] = (),
    avoid: Sequence[str] = (),
) -> tuple[str, str, str]:
    """One candidate edit of ``current``: (kind, new prompt, rationale).

    ``kind`` is ``rewrite``, ``drop_variable``, ``suggestion``, ``append``, ``insert``,
    ``delete`` or ``swap``. ``suggestions`` come from a feedback block, ``hints`` are pool
    sentences the task examples call for (three times as likely), ``avoid`` are prompts the
    candidate must differ from.
    """
    parsed_task = detect_task(current)
    rng = random.Random(seed)
    r = rng.random()
    edit: _Edit | None = None
    if r < 1 / 8:
        edit = _rewrite(current, rng, parsed_task, budget)
    elif r < 1 / 8 + 1 / 16:
        edit = _drop_variable(current)
    if edit is not None and edit.prompt not in avoid and edit.prompt != current:
        return edit.kind, edit.prompt, edit.note
    for _ in range(24):
        edit = _normal_edit(current, rng, parsed_task, suggestions, hints)
        ok_budget = budget is None or word_distance(current, edit.prompt) <= budget
        if ok_budget and edit.prompt not in avoid and edit.prompt != current:
            return edit.kind, edit.prompt, edit.note
    # A tiny budget can rule out every pool sentence: a two-word sentence may still fit.
    head, sep, tail = _split_prompt(current)
    return "append", _join(_append(head, "Be accurate."), sep, tail), 'I added "Be accurate."'


def optimizer_replies(messages: Messages, *, sample: int = 0, n: int = 1) -> list[str]:
    """The ``n`` replies of ``gpo-sim/optimizer`` to a meta-prompt or a reflection request."""
    text = "\n".join(content_text(m.get("content")) for m in messages)
    if REFLECTION_TAG in text:
        return [reflect(text, seed=seed_of("reflect", text, sample, i)) for i in range(n)]
    current = read_current_prompt(text)
    if current is None:
        return ["I could not find the current prompt (no <current_prompt> block)."] * n
    budget = read_budget(text)
    suggestions = read_suggestions(text)
    task = detect_task(current)
    hints = [
        h
        for example in read_examples(text)
        for h in example_hints(task, example)
        if _lacks(current, h)
    ]
    base = hashlib.sha256(text.encode("utf-8")).hexdigest()
    replies: list[str] = []
    seen: list[str] = []
    for choice in range(n):
        kind, prompt, note = propose_edit(
            current,
            seed=seed_of("optimize", base, sample, choice),
            budget=budget,
            suggestions=suggestions,
            hints=hints,
            avoid=seen,
        )
        seen.append(prompt)
        replies.append(f"{note} ({kind}).\n\n{START}\n{prompt}\n{END}")
    return replies


def reflect(text: str, *, seed: int = 0) -> str:
    """Feedback on the wrong examples of a reflection request, with ``Suggestion:`` lines."""
    current = read_current_prompt(text) or ""
    task = detect_task(current or text)
    found: list[str] = []
    for example in read_examples(text):
        output, expected = example.output or "", (example.expected or "").strip('"')
        if task == "routing" and len(output.split()) > 2 and len(expected.split()) == 1:
            found.append("Answer with only the category name.")
        if task == "extraction" and not output.lstrip().startswith("{"):
            found.append("Return a JSON object.")
        found += example_hints(task, example)
    pool = {s for s, effect in pool_for(task) if effect == "helpful"}
    missing = [s for s in dict.fromkeys(found) if s in pool and s.lower() not in current.lower()]
    if not missing:
        candidates = sorted(s for s in pool if s.lower() not in current.lower())
        if candidates:
            missing = [random.Random(seed).choice(candidates)]
    if not missing:
        return "The wrong examples look like noise: the prompt already covers them."
    lines_out = [
        "The prompt leaves the model to guess in the cases it got wrong.",
        *[f'Suggestion: "{s}"' for s in missing[:2]],
    ]
    return "\n".join(lines_out)
