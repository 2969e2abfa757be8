"""Offline simulated models, registered with litellm as the custom provider ``gpo-sim``.

They let the example project, the README's commands and the tests run with no network and no
API key, while behaving enough like real models that prompt wording measurably matters and the
optimizer has something to find. Everything is deterministic given the request: the messages,
the temperature, the sample index (:func:`extra_kwargs`) and the choice index (``n``).

Call :func:`register` once (it is idempotent), then use ``litellm.completion`` /
``litellm.acompletion`` with ``model="gpo-sim/task"`` or ``model="gpo-sim/optimizer"``.
Responses are ordinary ``ModelResponse`` objects with ``n`` choices and ``usage`` (tokens are
``ceil(characters / 4)``); both models are registered at price 0, so cost is 0.0.

``gpo-sim/task``: a toy instruction follower
============================================

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

The output format is the first that applies of: JSON, explanation, list, sentence, bare
answer, and the default **chatty** sentence (``I think this ticket is about Billing.``).
For extraction the default is ``Name: ...`` / ``Email: ...`` / ``Order ID: ...`` lines.

**Routing solver.** A keyword lexicon maps words to teams (``invoice`` -> billing, ``crash``
-> technical, ``password`` -> account, ``package`` -> shipping, ...; see ``_ROUTER_LEXICON``).
Without the *main intent* directive the model answers the team of the *first* keyword it meets,
so a ticket that sets the scene with one topic and asks about another is misrouted. With it, each
team scores the keywords it matched, doubled in sentences that make a request (``please``,
``can you``, ``I want``, ...), and the highest score wins (``account`` alone weighs half).
Refund words (``refund``, ``money back``, ``reimburse``) go to shipping (the returns desk)
unless the *refunds are billing* directive is present, which then routes any ticket that asks
for a refund to billing. A ticket with no keyword gets ``other`` only under the *fallback
category* directive; otherwise the model guesses ``technical``.

**Extraction solver.** Email: the first address (``lowercase`` directive lowercases it). Order
id: ``ORD-12345`` as written; with the *order-id format* directive also ``ord-12345``,
``#12345``, ``order number 12345`` and ``Order No. 12345``, normalized to ``ORD-12345``. Name:
after ``my name is``, ``this is``, ``I am/I'm``; after a sign-off (``Thanks,``,
``Best regards,``, ``Cheers``, ``Sincerely``, ``Cordialement``, ...); after a dash that starts a
line; or right before the email address. Only the first name unless the *full name* directive
is present. Missing fields are ``null``
with the *null* directive, else ``"unknown"``. Keys are always ``name``, ``email``, ``order_id``.

**Arithmetic solver.** The longest arithmetic expression in the input (``+ - * / x ×``,
parentheses, ``$`` and thousands separators ignored), evaluated exactly; integers print as
integers, other values with two decimals.

**Temperature.** At temperature 0 (also when it is not given) the output depends only on the
messages. At temperature ``T > 0`` each answer is perturbed with probability ``min(0.5, 0.1 T)``
(routing: a different team; extraction: one field lost; arithmetic: off by one), seeded by the
messages, the temperature, the sample index and the choice index, so repeats differ and replay
identically. At temperature 0 all ``n`` choices are the same answer.

``gpo-sim/optimizer``: a toy optimizer LLM
==========================================

It reads the meta-prompt of :mod:`pytest_gpo.optimize.metaprompt`: the current prompt between
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

import ast
import hashlib
import json
import math
import operator
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pytest_gpo.optimize.markers import (
    BUDGET_SENTENCE,
    CURRENT_CLOSE,
    CURRENT_OPEN,
    END,
    REFLECTION_TAG,
    START,
)

if TYPE_CHECKING:
    from pytest_gpo.calls import Request

#: The litellm provider name of the simulated models.
PROVIDER = "gpo-sim"
#: The toy instruction follower.
TASK_MODEL = f"{PROVIDER}/task"
#: The toy optimizer LLM.
OPTIMIZER_MODEL = f"{PROVIDER}/optimizer"
#: Every model the provider serves.
MODELS: tuple[str, ...] = (TASK_MODEL, OPTIMIZER_MODEL)
#: The key of the sample index in the request's ``metadata`` (see :func:`extra_kwargs`).
SAMPLE_KEY = "gpo_sample"

ROUTER_LABELS: tuple[str, ...] = ("billing", "technical", "account", "shipping", "other")

Messages = Sequence[Mapping[str, Any]]


def is_sim_model(model: str) -> bool:
    """True for model names served by this provider (``gpo-sim/...``)."""
    return model.startswith(PROVIDER + "/")


def extra_kwargs(request: Request) -> dict[str, Any]:
    """Extra keyword arguments for ``litellm.acompletion`` so the simulated model sees the
    request's sample index.

    litellm hands ``metadata`` to a custom provider's handler unchanged (as
    ``litellm_params["metadata"]``), so the index travels there; metadata the request already
    carries is kept. Empty for models of other providers.
    """
    if not is_sim_model(request.model):
        return {}
    metadata = request.params.get("metadata")
    merged = dict(metadata) if isinstance(metadata, Mapping) else {}
    merged[SAMPLE_KEY] = request.sample
    return {"metadata": merged}


# --------------------------------------------------------------------------- utilities


def _tokens(text: str) -> int:
    return math.ceil(len(text) / 4)


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text", "") for p in content if isinstance(p, Mapping)]
        return "\n".join(str(p) for p in parts if p)
    return "" if content is None else str(content)


def _seed(*parts: object) -> int:
    digest = hashlib.sha256(json.dumps(parts, default=str, sort_keys=True).encode("utf-8"))
    return int.from_bytes(digest.digest()[:8], "big")


def _any(patterns: Sequence[str], text: str) -> bool:
    return any(re.search(p, text, re.IGNORECASE) for p in patterns)


# --------------------------------------------------------------------------- the task model

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
        _content_text(m.get("content")) for m in messages if m.get("role") == "system"
    )
    users = [m for m in messages if m.get("role") != "system"]
    user = _content_text(users[-1].get("content")) if users else ""
    earlier = "\n".join(_content_text(m.get("content")) for m in users[:-1])
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


def detect_task(instructions: str, text: str = "") -> str:
    """``extraction``, ``routing``, ``arithmetic`` or ``other``, from the instructions."""
    if _any(_EXTRACT, instructions):
        return "extraction"
    if _any(_ROUTE, instructions):
        return "routing"
    if _any(_ARITH, instructions) or (text and _ARITH_ONLY.fullmatch(text.strip())):
        return "arithmetic"
    return "other"


def read_directives(parsed: Parsed) -> Directives:
    """The task and the directives found in the instructions."""
    text = parsed.instructions
    if _any(_F_JSON, text):
        fmt = "json"
    elif _any(_F_EXPLAIN, text):
        fmt = "explain"
    elif _any(_F_LIST, text):
        fmt = "list"
    elif _any(_F_SENTENCE, text):
        fmt = "sentence"
    elif _any(_F_BARE, text):
        fmt = "bare"
    else:
        fmt = "chatty"
    return Directives(
        task=detect_task(text, parsed.input),
        fmt=fmt,
        lower=_any(_D_LOWER, text),
        upper=_any(_D_UPPER, text),
        intent=_any(_D_INTENT, text),
        refund_billing=_any(_D_REFUND, text),
        other_fallback=_any(_D_OTHER, text),
        full_name=_any(_D_FULL_NAME, text),
        null_missing=_any(_D_NULL, text),
        order_format=bool(re.search(_D_ORDER_FORMAT[0], text)),
    )


# Routing --------------------------------------------------------------------------------

_ROUTER_LEXICON: tuple[tuple[str, str, float], ...] = (
    # billing
    (r"invoic\w*", "billing", 1.0),
    (r"charg(e|es|ed|ing)", "billing", 1.0),
    (r"overcharg\w*", "billing", 1.0),
    (r"bill(s|ed|ing)?", "billing", 1.0),
    (r"payments?|paid|pay(ing)?", "billing", 1.0),
    (r"subscriptions?", "billing", 1.0),
    (r"receipts?", "billing", 1.0),
    (r"(credit|debit) card|card", "billing", 1.0),
    (r"pric(e|es|ing)", "billing", 1.0),
    (r"discounts?|coupons?|promo code|voucher", "billing", 1.0),
    (r"vat|tax(es)?", "billing", 1.0),
    (r"renew(al|ed|s)?", "billing", 1.0),
    (r"upgrad\w*|downgrad\w*|plan", "billing", 1.0),
    # technical
    (r"errors?", "technical", 1.0),
    (r"crash(es|ed|ing)?", "technical", 1.0),
    (r"bugs?|glitch(es)?", "technical", 1.0),
    (r"app", "technical", 1.0),
    (r"website|web site|site", "technical", 1.0),
    (r"pages?", "technical", 1.0),
    (r"api|webhooks?|integrations?", "technical", 1.0),
    (r"sync(ing|s|ed)?", "technical", 1.0),
    (r"upload(s|ed|ing)?", "technical", 1.0),
    (r"time ?out|timed out", "technical", 1.0),
    (r"(won't|doesn't|does not|will not|not) load(ing)?", "technical", 1.0),
    (r"freez(e|es|ing)|frozen|blank screen", "technical", 1.0),
    (r"install(ed|ing|s)?|reinstall\w*", "technical", 1.0),
    (r"export(s|ed|ing)?|import(s|ed|ing)?", "technical", 1.0),
    (r"notifications?", "technical", 1.0),
    (r"slow", "technical", 1.0),
    # account
    (r"passwords?", "account", 1.0),
    (r"log ?in|login|log ?out|logged (in|into)|sign ?in|signing in|logging in", "account", 1.0),
    (r"usernames?", "account", 1.0),
    (r"two-factor|2fa|verification code|authenticator", "account", 1.0),
    (r"locked( out)?", "account", 1.0),
    (r"accounts?", "account", 0.5),
    (r"profile", "account", 1.0),
    (r"email address", "account", 1.0),
    (r"deactivat\w*|delete my|close my", "account", 1.0),
    (r"hacked|unauthori[sz]ed access", "account", 1.0),
    # shipping
    (r"packages?|parcels?", "shipping", 1.0),
    (r"deliver(y|ies|ed)?", "shipping", 1.0),
    (r"ship(ping|ped|ment|s)?", "shipping", 1.0),
    (r"track(ing)?", "shipping", 1.0),
    (r"couriers?|dhl|ups|fedex|usps", "shipping", 1.0),
    (r"arriv(e|ed|es|al)", "shipping", 1.0),
    (r"(shipping|delivery|postal|mailing) address", "shipping", 1.0),
    (r"damaged|dented", "shipping", 1.0),
    (r"return(s|ed|ing)?( label)?", "shipping", 1.0),
    (r"customs", "shipping", 1.0),
)
_ROUTER_PATTERNS = tuple(
    (re.compile(rf"\b(?:{p})\b", re.IGNORECASE), label, w) for p, label, w in _ROUTER_LEXICON
)
_REFUND_WORDS = re.compile(r"\b(refund\w*|money back|reimburs\w*)", re.IGNORECASE)
_REQUEST_CUES = re.compile(
    r"\b(please|can you|could you|can i|could i|i want|i'd like|i would like|i need|"
    r"how do i|how can i|help me|why|when will|where is|fix)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


@dataclass(frozen=True)
class _Hit:
    label: str
    start: int
    weight: float
    matched: str


def _router_hits(text: str, refund_billing: bool) -> list[_Hit]:
    hits: list[_Hit] = []
    for sentence in _SENTENCE.finditer(text):
        boost = 2.0 if _REQUEST_CUES.search(sentence.group()) else 1.0
        for pattern, label, weight in _ROUTER_PATTERNS:
            for m in pattern.finditer(sentence.group()):
                hits.append(_Hit(label, sentence.start() + m.start(), weight * boost, m.group()))
        for m in _REFUND_WORDS.finditer(sentence.group()):
            label = "billing" if refund_billing else "shipping"
            hits.append(_Hit(label, sentence.start() + m.start(), boost, m.group()))
    hits.sort(key=lambda h: h.start)
    return hits


def route(text: str, d: Directives) -> tuple[str, list[str]]:
    """The routing solver: a team label and the keywords that decided it."""
    hits = _router_hits(text, d.refund_billing)
    if d.refund_billing and _REFUND_WORDS.search(text):
        return "billing", [m.group() for m in _REFUND_WORDS.finditer(text)][:1]
    if not hits:
        return ("other" if d.other_fallback else "technical"), []
    if not d.intent:
        return hits[0].label, [hits[0].matched]
    scores: dict[str, float] = {}
    first: dict[str, int] = {}
    for hit in hits:
        scores[hit.label] = scores.get(hit.label, 0.0) + hit.weight
        first.setdefault(hit.label, hit.start)
    best = max(scores, key=lambda label: (scores[label], -first[label]))
    return best, [h.matched for h in hits if h.label == best][:2]


def _format_label(label: str, d: Directives) -> str:
    if d.lower:
        return label.lower()
    if d.upper:
        return label.upper()
    return label.capitalize()


def _route_reply(text: str, d: Directives, rng: random.Random | None) -> str:
    label, reasons = route(text, d)
    if rng is not None:
        label = rng.choice([x for x in ROUTER_LABELS if x != label])
    shown = _format_label(label, d)
    if d.fmt == "json":
        return json.dumps({"category": shown})
    if d.fmt == "explain":
        why = f"the ticket mentions '{reasons[0]}'" if reasons else "no team keyword appears"
        return f"Category: {shown}. Reason: {why}."
    if d.fmt == "list":
        topics = dict.fromkeys(h.label for h in _router_hits(text, d.refund_billing))
        if label not in topics:
            topics = {label: None, **topics}
        return ", ".join(_format_label(t, d) for t in topics)
    if d.fmt == "bare":
        return shown
    return f"I think this ticket is about {shown}."


# Extraction -------------------------------------------------------------------------------

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_ORDER_STRICT = re.compile(r"\bORD-\d{4,8}\b")
_ORDER_LOOSE = re.compile(
    r"(?:\bord-(\d{4,8})|\border\s+(?:number|no\.?|id)?[:.]?\s*#?\s*(\d{4,8})|#(\d{4,8}))\b",
    re.IGNORECASE,
)
_NAME_WORD = r"[A-Z][a-zA-Z'\-]+"
_PARTICLE = r"(?:de|da|del|der|di|du|la|le|van|von|bin|al)"
_NAME = rf"{_NAME_WORD}(?:[ \t]+(?:{_PARTICLE}[ \t]+)?{_NAME_WORD})*"
_NAME_INTRO = re.compile(rf"\b(?:[Mm]y name is|[Tt]his is|I am|I'm)[ \t]+({_NAME})")
_SIGN_OFF = re.compile(
    r"^[ \t]*(?i:thanks|thank you|many thanks|best|best regards|kind regards|regards|cheers|"
    r"sincerely|warm regards|all the best|cordialement|saludos|viele grüße)\b"
    r"[ \t]*[,!.]?[ \t]*(?:\n[ \t]*)?"
    rf"({_NAME})[ \t]*$",
    re.MULTILINE,
)
_DASH_NAME = re.compile(rf"^[ \t]*(?:-|--|—)[ \t]*({_NAME})\b", re.MULTILINE)
_NAME_BEFORE_EMAIL = re.compile(rf"({_NAME})[ \t]*[,(]?[ \t]*(?:\n[ \t]*)?{_EMAIL.pattern}")
_NOT_NAMES = {"Support", "Team", "Hello", "Hi", "Thanks", "Order", "The", "Your", "Customer"}


def _find_name(text: str) -> str | None:
    for pattern in (_NAME_INTRO, _SIGN_OFF, _DASH_NAME, _NAME_BEFORE_EMAIL):
        for m in pattern.finditer(text):
            words = m.group(1).split()
            if words and words[0] not in _NOT_NAMES:
                return " ".join(words)
    return None


def extract(text: str, d: Directives) -> dict[str, str | None]:
    """The extraction solver: ``name``, ``email`` and ``order_id`` (``None`` when missing)."""
    email_match = _EMAIL.search(text)
    email = email_match.group() if email_match else None
    if email is not None and d.lower:
        email = email.lower()
    order: str | None = None
    if d.order_format:
        loose = _ORDER_LOOSE.search(text)
        if loose is not None:
            order = "ORD-" + next(g for g in loose.groups() if g)
    else:
        strict = re.search(r"\bORD-\d{4,8}\b", text, re.IGNORECASE)
        order = strict.group() if strict else None
    name = _find_name(text)
    if name is not None and not d.full_name:
        name = name.split()[0]
    return {"name": name, "email": email, "order_id": order}


def _extract_reply(text: str, d: Directives, rng: random.Random | None) -> str:
    fields = extract(text, d)
    if rng is not None:
        fields[rng.choice(sorted(fields))] = None
    missing: str | None = None if d.null_missing else "unknown"
    values = {k: (v if v is not None else missing) for k, v in fields.items()}
    if d.fmt == "json":
        return json.dumps(values, ensure_ascii=False)
    shown = {k: ("null" if v is None else v) for k, v in values.items()}
    if d.fmt == "explain":
        return (
            "Here is what I found in the message. "
            f"The name is {shown['name']}, the email is {shown['email']} "
            f"and the order ID is {shown['order_id']}."
        )
    if d.fmt == "sentence":
        return (
            f"The customer is {shown['name']} ({shown['email']}) and the order is "
            f"{shown['order_id']}."
        )
    return f"Name: {shown['name']}\nEmail: {shown['email']}\nOrder ID: {shown['order_id']}"


# Arithmetic -------------------------------------------------------------------------------

_ARITH_CHARS = re.compile(r"[\d$.,+\-*/×x÷()\s]+")
_ARITH_CLASS = r"[\d$.,+\-*/×x÷()\s]*"
_ARITH_ONLY = re.compile(rf"{_ARITH_CLASS}\d{_ARITH_CLASS}[+\-*/×x÷]{_ARITH_CLASS}")
_BINOPS: dict[type, Callable[[float, float], float]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub | ast.UAdd):
        value = _eval(node.operand)
        return -value if isinstance(node.op, ast.USub) else value
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval(node.left), _eval(node.right))
    raise ValueError("not arithmetic")


def calculate(text: str) -> float | None:
    """The value of the longest arithmetic expression in ``text`` (``None`` when none)."""
    best: float | None = None
    best_len = 0
    for m in _ARITH_CHARS.finditer(text):
        chunk = m.group().strip()
        if len(chunk) <= best_len or not re.search(r"\d\s*[+\-*/×x÷]\s*[\d($]", chunk):
            continue
        expr = chunk.replace("$", "").replace("×", "*").replace("÷", "/")
        expr = re.sub(r"(?<=\d),(?=\d{3}\b)", "", expr)
        expr = re.sub(r"(?<=[\d)\s])x(?=[\s\d(])", "*", expr).rstrip(".,")
        try:
            value = _eval(ast.parse(expr, mode="eval"))
        except (SyntaxError, ValueError, ZeroDivisionError):
            continue
        best, best_len = value, len(chunk)
    return best


def _number(value: float) -> str:
    if abs(value - round(value)) < 1e-9:
        return str(round(value))
    return f"{value:.2f}"


def _arith_reply(text: str, d: Directives, rng: random.Random | None) -> str:
    value = calculate(text)
    if value is None:
        return "I could not find a calculation in the question."
    if rng is not None:
        value += 1
    shown = _number(value)
    if d.fmt == "json":
        return json.dumps({"answer": value})
    if d.fmt == "explain":
        return f"Let me work it out step by step. Evaluating the expression gives {shown}."
    if d.fmt == "bare":
        return shown
    return f"The answer is {shown}."


def task_reply(
    messages: Messages, *, temperature: float = 0.0, sample: int = 0, choice: int = 0
) -> str:
    """One answer of ``gpo-sim/task`` (see the module docstring)."""
    parsed = split_request(messages)
    d = read_directives(parsed)
    rng: random.Random | None = None
    if temperature > 0:
        draw = random.Random(_seed("task", _flatten(messages), temperature, sample, choice))
        if draw.random() < min(0.5, 0.1 * temperature):
            rng = draw
    if d.task == "routing":
        return _route_reply(parsed.input, d, rng)
    if d.task == "extraction":
        return _extract_reply(parsed.input, d, rng)
    if d.task == "arithmetic":
        return _arith_reply(parsed.input, d, rng)
    head = " ".join(parsed.input.split()[:12])
    return (
        "I am a simulated model: I can route support tickets, extract a name, email and order "
        f"id, or do arithmetic, but I do not know what to do with: {head}"
    )


def _flatten(messages: Messages) -> list[tuple[str, str]]:
    return [(str(m.get("role", "")), _content_text(m.get("content"))) for m in messages]


# --------------------------------------------------------------------------- the optimizer

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
_BUDGET_RE = re.compile(
    re.escape(BUDGET_SENTENCE).replace(re.escape("{n}"), r"(\d+)"), re.IGNORECASE
)
_SUGGESTION = re.compile(r'Suggestion:\s*"([^"\n]+)"')
_FEEDBACK = re.compile(r"<feedback>(.*?)</feedback>", re.DOTALL)
_VARIABLE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.DOTALL)


def word_distance(a: str, b: str) -> int:
    """Word-level Levenshtein distance (``str.split`` words), as the plugin measures it."""
    from rapidfuzz.distance import Levenshtein

    return int(Levenshtein.distance(a.split(), b.split()))


def read_current_prompt(text: str) -> str | None:
    """The prompt of the last ``<current_prompt>`` block of a meta-prompt, verbatim."""
    close = text.rfind("\n" + CURRENT_CLOSE)
    if close < 0:
        return None
    open_ = text.rfind(CURRENT_OPEN + "\n", 0, close + 1)
    if open_ < 0:
        return None
    return text[open_ + len(CURRENT_OPEN) + 1 : close]


def read_budget(text: str) -> int | None:
    """N of the budget sentence, or ``None`` when the meta-prompt sets no budget."""
    m = _BUDGET_RE.search(text)
    return int(m.group(1)) if m else None


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


def _pool_for(task: str) -> list[tuple[str, str]]:
    return [*POOL.get(task, ()), *POOL["any"]]


def _normal_edit(
    current: str,
    rng: random.Random,
    task: str,
    suggestions: Sequence[str],
    hints: Sequence[str] = (),
) -> _Edit:
    head, sep, tail = _split_prompt(current)
    fresh = [s for s, _ in _pool_for(task) if s.lower() not in current.lower()]
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
        fresh = [s for s, _ in _pool_for(task)]
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
    pool = [s for s, _ in _pool_for(task)]
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
    text = "\n".join(_content_text(m.get("content")) for m in messages)
    if REFLECTION_TAG in text:
        return [reflect(text, seed=_seed("reflect", text, sample, i)) for i in range(n)]
    current = read_current_prompt(text)
    if current is None:
        return ["I could not find the current prompt (no <current_prompt> block)."] * n
    budget = read_budget(text)
    feedback = _FEEDBACK.search(text)
    suggestions = _SUGGESTION.findall(feedback.group(1)) if feedback else []
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
            seed=_seed("optimize", base, sample, choice),
            budget=budget,
            suggestions=suggestions,
            hints=hints,
            avoid=seen,
        )
        seen.append(prompt)
        replies.append(f"{note} ({kind}).\n\n{START}\n{prompt}\n{END}")
    return replies


# Task examples and reflection ---------------------------------------------------------------

_EXAMPLE_START = re.compile(r"^Input: <Prompt>[ \t]*$", re.MULTILINE)
_OUTPUT_LINE = re.compile(r"^(Model output|Expected output|Output):[ \t]*(.*)$", re.MULTILINE)


@dataclass(frozen=True)
class Example:
    """A task example of a meta-prompt or reflection request."""

    text: str
    output: str | None
    expected: str | None


def read_examples(text: str) -> list[Example]:
    """The task examples (``Input: <Prompt>`` blocks) with their output lines."""
    starts = [m.end() for m in _EXAMPLE_START.finditer(text)]
    examples: list[Example] = []
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        chunk = text[start:end]
        found = {m.group(1): (m.group(2).strip(), m.start()) for m in _OUTPUT_LINE.finditer(chunk)}
        if not found:
            continue
        first = min(position for _, position in found.values())
        output = found.get("Model output", (None, 0))[0]
        expected = (found.get("Expected output") or found.get("Output") or (None, 0))[0]
        examples.append(Example(chunk[:first], output, expected))
    return examples


def example_hints(task: str, example: Example) -> list[str]:
    """Helpful pool sentences that a task example calls for (what its expected output shows)."""
    expected = (example.expected or "").strip().strip('"')
    out: list[str] = []
    if task == "routing":
        label = expected.lower()
        if label == "billing" and _REFUND_WORDS.search(example.text):
            out.append("Refunds and charges always go to billing.")
        elif label == "other":
            out.append("If no category fits, answer other.")
        elif len({h.label for h in _router_hits(example.text, True)}) > 1:
            out += [
                "Focus on the customer's main request.",
                "Think about what the customer needs help with.",
            ]
    elif task == "extraction":
        try:
            want = json.loads(expected)
        except ValueError:
            return out
        if not isinstance(want, Mapping):
            return out
        email = want.get("email")
        shown = _EMAIL.search(example.text)
        if isinstance(email, str) and shown and shown.group() != email:
            out.append("Lowercase the email address.")
        order = want.get("order_id")
        if isinstance(order, str) and order not in example.text:
            out.append("Order IDs look like ORD-12345.")
        if None in want.values():
            out.append("Use null for missing fields.")
        name = want.get("name")
        if isinstance(name, str) and " " in name:
            out.append("Give the customer's full name.")
    return out


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
    pool = {s for s, effect in _pool_for(task) if effect == "helpful"}
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


# --------------------------------------------------------------------------- litellm wiring


def simulate(
    model: str,
    messages: Messages,
    *,
    temperature: float | None = None,
    sample: int = 0,
    n: int = 1,
) -> list[str]:
    """The ``n`` reply texts of a simulated model (``gpo-sim/task`` or ``gpo-sim/optimizer``;
    the provider prefix is optional). Raises ``ValueError`` for an unknown model."""
    name = model.removeprefix(PROVIDER + "/")
    n = max(1, n)
    if name == "task":
        temp = float(temperature or 0.0)
        return [task_reply(messages, temperature=temp, sample=sample, choice=i) for i in range(n)]
    if name == "optimizer":
        return optimizer_replies(messages, sample=sample, n=n)
    known = ", ".join(MODELS)
    raise ValueError(f"unknown simulated model '{model}'; known: {known}")


def _sample_of(kwargs: Mapping[str, Any]) -> int:
    for source in (kwargs.get("litellm_params"), kwargs.get("optional_params")):
        if not isinstance(source, Mapping):
            continue
        metadata = source.get("metadata")
        if isinstance(metadata, Mapping) and SAMPLE_KEY in metadata:
            return int(metadata[SAMPLE_KEY])
        if SAMPLE_KEY in source:
            return int(source[SAMPLE_KEY])
    return 0


def _respond(litellm: Any, kwargs: Mapping[str, Any]) -> Any:
    model = str(kwargs.get("model", ""))
    messages: Messages = kwargs.get("messages") or []
    params: Mapping[str, Any] = kwargs.get("optional_params") or {}
    temperature = params.get("temperature")
    n = int(params.get("n") or 1)
    max_tokens = params.get("max_tokens") or params.get("max_completion_tokens")
    try:
        texts = simulate(model, messages, temperature=temperature, sample=_sample_of(kwargs), n=n)
    except ValueError as exc:
        from litellm.llms.custom_llm import CustomLLMError

        error: Any = CustomLLMError
        raise error(status_code=404, message=str(exc)) from None
    choices: list[dict[str, Any]] = []
    for i, text in enumerate(texts):
        finish = "stop"
        if max_tokens and _tokens(text) > int(max_tokens):
            text, finish = text[: int(max_tokens) * 4], "length"
        choices.append(
            {"index": i, "finish_reason": finish, "message": {"role": "assistant", "content": text}}
        )
    prompt_tokens = sum(_tokens(_content_text(m.get("content"))) for m in messages)
    completion_tokens = sum(_tokens(c["message"]["content"]) for c in choices)
    return litellm.ModelResponse(
        model=f"{PROVIDER}/{model.removeprefix(PROVIDER + '/')}",
        choices=choices,
        usage={
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    )


_HANDLER: Any = None


def _handler() -> Any:
    global _HANDLER
    if _HANDLER is None:
        import litellm
        from litellm.llms.custom_llm import CustomLLM

        class SimLLM(CustomLLM):
            """litellm handler of the ``gpo-sim`` provider."""

            def completion(self, *args: Any, **kwargs: Any) -> Any:
                return _respond(litellm, kwargs)

            async def acompletion(self, *args: Any, **kwargs: Any) -> Any:
                return _respond(litellm, kwargs)

        _HANDLER = SimLLM()
    return _HANDLER


def register() -> None:
    """Register the ``gpo-sim`` provider with litellm (idempotent; imports litellm).

    Adds the handler to ``litellm.custom_provider_map`` unless a ``gpo-sim`` entry is already
    there, makes litellm aware of the provider, and registers both models at price 0 so
    ``litellm.completion_cost`` returns 0.0 instead of raising.
    """
    import litellm

    if not any(item.get("provider") == PROVIDER for item in litellm.custom_provider_map):
        litellm.custom_provider_map.append({"provider": PROVIDER, "custom_handler": _handler()})
    setup = getattr(litellm.utils, "custom_llm_setup", None)
    if setup is not None:
        setup()
    if not all(m in litellm.model_cost for m in MODELS):
        price = {
            "input_cost_per_token": 0.0,
            "output_cost_per_token": 0.0,
            "cache_creation_input_token_cost": 0.0,
            "cache_read_input_token_cost": 0.0,
            "litellm_provider": PROVIDER,
            "mode": "chat",
        }
        litellm.register_model({m: dict(price) for m in MODELS})
