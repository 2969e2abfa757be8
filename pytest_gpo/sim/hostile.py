"""``gpo-sim/hostile``, an optimizer model that misbehaves the way real ones do.

Its choices cycle through replies a real (often small) optimizer model gives and the plugin
must not score: commentary without ``<START>``/``<END>``, a reply cut off before ``<END>``,
prompts that keep the variable's name but hide its value (``{{ ticket[:0] }}``, ``{% if false
%}``, ``|truncate(10)``), and whitespace-only rewrites (line breaks, no-break spaces). One
choice in eight is an ordinary marked edit (a sentence appended), so a run can still move.
Reflection requests get a short feedback text. Deterministic given the request.
"""

from __future__ import annotations

import re

from pytest_gpo.optimize.markers import END, REFLECTION_TAG, START
from pytest_gpo.sim.metaprompt import read_current_prompt
from pytest_gpo.sim.text import Messages, content_text

_VARIABLE = re.compile(r"\{\{\s*(\w+)\s*\}\}")

#: What each choice does, in order (choice ``i`` of sample ``s`` is kind ``(s + i) % 8``).
KINDS = (
    "commentary",
    "slice",
    "if_false",
    "truncate",
    "line_breaks",
    "no_break_spaces",
    "cut_off",
    "append",
)


def _hide(prompt: str, kind: str) -> str:
    found = _VARIABLE.search(prompt)
    if found is None:
        return prompt + " Be brief."
    name = found.group(1)
    hidden = {
        "slice": f"{{{{ {name}[:0] }}}}",
        "if_false": f"{{% if false %}}{{{{ {name} }}}}{{% endif %}}",
        "truncate": f"{{{{ {name}|truncate(10) }}}}",
    }[kind]
    return prompt[: found.start()] + hidden + prompt[found.end() :]


def hostile_reply(current: str, kind: str) -> str:
    """The reply of one ``kind`` (see :data:`KINDS`) to a meta-prompt on ``current``."""
    if kind == "commentary":
        return "I think the prompt is already quite good. It states the task clearly."
    if kind in ("slice", "if_false", "truncate"):
        return f"{START}\n{_hide(current, kind)}\n{END}"
    if kind == "line_breaks":
        return f"{START}\n{current.replace(' ', chr(10))}\n{END}"
    if kind == "no_break_spaces":
        return f"{START}\n{current.replace(' ', chr(0xA0))}\n{END}"
    if kind == "cut_off":
        return f"Here is the improved prompt:\n{START}\n{current[: len(current) // 2]}"
    return f"{START}\n{current.rstrip()} Answer with only the category name.\n{END}"


def hostile_replies(messages: Messages, *, sample: int = 0, n: int = 1) -> list[str]:
    """The ``n`` replies to one request (a feedback text for reflection requests)."""
    text = "\n".join(content_text(m.get("content")) for m in messages)
    if REFLECTION_TAG in text:
        return ["The prompt does not say to answer with the category only."] * n
    current = read_current_prompt(text) or ""
    return [hostile_reply(current, KINDS[(sample + i) % len(KINDS)]) for i in range(n)]
