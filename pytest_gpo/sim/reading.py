"""How ``gpo-sim/task`` reads a request: its instructions, its input, its task, its directives.

**Reading the request.** The system message and the user message are concatenated. The *input*
is the text after the last line that starts with an input label (``Ticket:``, ``Message:``,
``Customer message:``, ``Email:``, ``Text:``, ``Input:``, ``Question:``, ``Problem:``,
``Request:``, ``Query:``, ``Document:``; any case). When the label is followed by a delimiter
(three double quotes, three backticks, ``<<<`` or an XML-like ``<tag>``) the input runs to the
closing delimiter, otherwise to the next blank line. Without any label the input is the last
paragraph of the user message. Everything else is the *instructions*; directives are looked for
only there, so the content of a ticket never acts as an instruction.

**Choosing the task** (first match, in the instructions, case-insensitive):

==========  ===================================================  ============================
task        trigger                                              solver
==========  ===================================================  ============================
extraction  ``extract``                                          regexes: name, email, order
routing     ``route``, ``classify``, ``categor...``,             keyword lexicon: billing,
            ``which team``, ``department``, ``triage``           technical, account,
                                                                 shipping, other
arithmetic  ``calculate``, ``compute``, ``solve``, ``math``,     evaluates the expression
            ``evaluate``; or an input that is only arithmetic    in the input
other       anything else                                        says what it can do
==========  ===================================================  ============================

**Directives** (phrases matched case-insensitively in the instructions):

=================  ======================================================  ===================
effect             trigger phrases                                         tasks
=================  ======================================================  ===================
JSON output        ``json``                                                all
explanation        ``explain``, ``reasoning``, ``step by step``,           all
                   ``show your work``
list every topic   ``every topic``, ``all topics``, ``each topic``,        routing
                   ``all categories``
one sentence       ``complete sentence``, ``full sentence``, ``friendly``  all
bare answer        ``only the category|label|answer|number|team``,         routing, arithmetic
                   ``category|label|number|team (name) only``,
                   ``one word``, ``single word``,
                   ``just the category|label|number|team``,
                   ``nothing else``
lowercase          ``lowercase``, ``lower case``, ``lower-case``           routing label,
                                                                           extracted email
uppercase          ``uppercase``, ``upper case``, ``all caps``,            routing label
                   ``capital letters``
main intent        ``main request``, ``main intent``, ``primary intent``,  routing
                   ``actually wants``, ``underlying``, ``think about``,
                   ``what the customer needs|wants``
refunds billing    ``refund`` and ``billing`` in one sentence              routing
fallback other     ``if no category|team|label fits``, ``if none``,        routing
                   ``answer other``, ``use other``, ``say other``,
                   ``otherwise ... other``
full name          ``full name``                                           extraction
null for missing   ``null``                                                extraction
order-id format    an example id ``ORD-<digits>`` (case-sensitive)         extraction
=================  ======================================================  ===================
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pytest_gpo.sim.text import Messages, any_match, content_text

_LABEL_WORDS = (
    "customer message",
    "ticket",
    "message",
    "email",
    "text",
    "input",
    "question",
    "problem",
    "request",
    "query",
    "document",
)
_LABEL_LINE = re.compile(
    r"^[ \t]*(?:" + "|".join(_LABEL_WORDS) + r")[ \t]*:[ \t]*", re.IGNORECASE | re.MULTILINE
)
_FENCES: tuple[tuple[str, str], ...] = (('"""', '"""'), ("```", "```"), ("<<<", ">>>"))
_TAG_OPEN = re.compile(r"<([A-Za-z_][\w-]*)>")
_BLANK_LINE = re.compile(r"\n[ \t]*\n")


@dataclass(frozen=True)
class Parsed:
    """A task request split into the instructions (where directives count) and the input."""

    instructions: str
    input: str


def _input_span(user: str, label: re.Match[str]) -> tuple[int, int]:
    rest_start = label.end()
    rest = user[rest_start:]
    lead = len(rest) - len(rest.lstrip())
    body = rest[lead:]
    for open_, close in _FENCES:
        if body.startswith(open_):
            begin = rest_start + lead + len(open_)
            stop = user.find(close, begin)
            return begin, stop if stop >= 0 else len(user)
    tag = _TAG_OPEN.match(body)
    if tag is not None:
        begin = rest_start + lead + tag.end()
        stop = user.find(f"</{tag.group(1)}>", begin)
        return begin, stop if stop >= 0 else len(user)
    blank = _BLANK_LINE.search(user, rest_start + lead)
    return rest_start, blank.start() if blank else len(user)


def split_request(messages: Messages) -> Parsed:
    """Split chat messages into instructions and input (see the module docstring)."""
    system = "\n".join(
        content_text(m.get("content")) for m in messages if m.get("role") == "system"
    )
    users = [m for m in messages if m.get("role") != "system"]
    user = content_text(users[-1].get("content")) if users else ""
    earlier = "\n".join(content_text(m.get("content")) for m in users[:-1])
    span: tuple[int, int] | None = None
    for label in _LABEL_LINE.finditer(user):
        # A label-like line inside an earlier delimited input is content, not a label.
        if span is not None and label.start() < span[1]:
            continue
        span = _input_span(user, label)
    if span is not None:
        text = user[span[0] : span[1]].strip()
        instructions = user[: span[0]] + "\n" + user[span[1] :]
    else:
        paragraphs = [p for p in _BLANK_LINE.split(user) if p.strip()]
        text = paragraphs[-1].strip() if paragraphs else ""
        instructions = "\n\n".join(paragraphs[:-1])
    return Parsed(
        instructions="\n".join(p for p in (system, earlier, instructions) if p.strip()),
        input=text,
    )


_EXTRACT = (r"\bextract",)
_ROUTE = (
    r"\brout(e|es|ing)\b",
    r"\bclassif",
    r"\bcategor",
    r"which team",
    r"department",
    r"\btriage",
)
_ARITH = (r"\bcalculate", r"\bcompute", r"\bsolve", r"\bmath", r"\bevaluate", r"\barithmetic")

_F_JSON = (r"\bjson\b",)
_F_EXPLAIN = (r"\bexplain", r"\breasoning\b", r"step[ -]by[ -]step", r"show your work")
_F_LIST = (r"every topic", r"all topics", r"each topic", r"all categories")
_F_SENTENCE = (r"complete sentence", r"full sentence", r"\bfriendly\b")
_F_BARE = (
    r"only the (category|label|answer|number|team)",
    r"(category|label|number|team)( name)? only",
    r"\bone word\b",
    r"\bsingle word\b",
    r"just the (category|label|number|team)",
    r"nothing else",
)
_D_LOWER = (r"\blower[ -]?case\b",)
_D_UPPER = (r"\bupper[ -]?case\b", r"\ball caps\b", r"capital letters")
_D_INTENT = (
    r"main request",
    r"main intent",
    r"primary intent",
    r"actually wants",
    r"\bunderlying\b",
    r"think about",
    r"what the customer (needs|wants)",
)
_D_REFUND = (r"refund[^.\n]*billing", r"billing[^.\n]*refund")
_D_OTHER = (
    r"if no (category|team|label)s? (fits|fit|applies|apply|matches|match)",
    r"\bif none\b",
    r"\banswer other\b",
    r"\buse other\b",
    r"\bsay other\b",
    r"otherwise[^.\n]*\bother\b",
)
_D_FULL_NAME = (r"full name",)
_D_NULL = (r"\bnull\b",)
_D_ORDER_FORMAT = (r"\bORD-\d+",)


@dataclass(frozen=True)
class Directives:
    """What the instructions ask for (see the directive table in the module docstring)."""

    task: str
    fmt: str
    lower: bool = False
    upper: bool = False
    intent: bool = False
    refund_billing: bool = False
    other_fallback: bool = False
    full_name: bool = False
    null_missing: bool = False
    order_format: bool = False


_ARITH_CLASS = r"[\d$.,+\-*/×x÷()\s]*"
_ARITH_ONLY = re.compile(rf"{_ARITH_CLASS}\d{_ARITH_CLASS}[+\-*/×x÷]{_ARITH_CLASS}")


def detect_task(instructions: str, text: str = "") -> str:
    """``extraction``, ``routing``, ``arithmetic`` or ``other``, from the instructions."""
    if any_match(_EXTRACT, instructions):
        return "extraction"
    if any_match(_ROUTE, instructions):
        return "routing"
    if any_match(_ARITH, instructions) or (text and _ARITH_ONLY.fullmatch(text.strip())):
        return "arithmetic"
    return "other"


def read_directives(parsed: Parsed) -> Directives:
    """The task and the directives found in the instructions."""
    text = parsed.instructions
    if any_match(_F_JSON, text):
        fmt = "json"
    elif any_match(_F_EXPLAIN, text):
        fmt = "explain"
    elif any_match(_F_LIST, text):
        fmt = "list"
    elif any_match(_F_SENTENCE, text):
        fmt = "sentence"
    elif any_match(_F_BARE, text):
        fmt = "bare"
    else:
        fmt = "chatty"
    return Directives(
        task=detect_task(text, parsed.input),
        fmt=fmt,
        lower=any_match(_D_LOWER, text),
        upper=any_match(_D_UPPER, text),
        intent=any_match(_D_INTENT, text),
        refund_billing=any_match(_D_REFUND, text),
        other_fallback=any_match(_D_OTHER, text),
        full_name=any_match(_D_FULL_NAME, text),
        null_missing=any_match(_D_NULL, text),
        order_format=bool(re.search(_D_ORDER_FORMAT[0], text)),
    )
