"""``gpo-sim/task``, a toy instruction follower: its solvers and the answer they give.

The request is read by :mod:`pytest_gpo.sim.reading` (instructions, input, task, directives).

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
"""

from __future__ import annotations

import ast
import json
import operator
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

from pytest_gpo.sim.reading import Directives, read_directives, split_request
from pytest_gpo.sim.text import Messages, content_text, seed_of

#: The teams of the routing task.
ROUTER_LABELS: tuple[str, ...] = ("billing", "technical", "account", "shipping", "other")


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
#: Words that ask for a refund.
REFUND_WORDS = re.compile(r"\b(refund\w*|money back|reimburs\w*)", re.IGNORECASE)
_REQUEST_CUES = re.compile(
    r"\b(please|can you|could you|can i|could i|i want|i'd like|i would like|i need|"
    r"how do i|how can i|help me|why|when will|where is|fix)\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"[^.!?\n]+[.!?]*")


@dataclass(frozen=True)
class Hit:
    """A routing keyword found in a ticket: its team, position, weight and text."""

    label: str
    start: int
    weight: float
    matched: str


def router_hits(text: str, refund_billing: bool) -> list[Hit]:
    """The routing keywords of ``text`` in order, doubled in sentences that make a request."""
    hits: list[Hit] = []
    for sentence in _SENTENCE.finditer(text):
        boost = 2.0 if _REQUEST_CUES.search(sentence.group()) else 1.0
        for pattern, label, weight in _ROUTER_PATTERNS:
            for m in pattern.finditer(sentence.group()):
                hits.append(Hit(label, sentence.start() + m.start(), weight * boost, m.group()))
        for m in REFUND_WORDS.finditer(sentence.group()):
            label = "billing" if refund_billing else "shipping"
            hits.append(Hit(label, sentence.start() + m.start(), boost, m.group()))
    hits.sort(key=lambda h: h.start)
    return hits


def route(text: str, d: Directives) -> tuple[str, list[str]]:
    """The routing solver: a team label and the keywords that decided it."""
    hits = router_hits(text, d.refund_billing)
    if d.refund_billing and REFUND_WORDS.search(text):
        return "billing", [m.group() for m in REFUND_WORDS.finditer(text)][:1]
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
        topics = dict.fromkeys(h.label for h in router_hits(text, d.refund_billing))
        if label not in topics:
            topics = {label: None, **topics}
        return ", ".join(_format_label(t, d) for t in topics)
    if d.fmt == "bare":
        return shown
    return f"I think this ticket is about {shown}."


# Extraction -------------------------------------------------------------------------------

#: An email address.
EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
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
_NAME_BEFORE_EMAIL = re.compile(rf"({_NAME})[ \t]*[,(]?[ \t]*(?:\n[ \t]*)?{EMAIL.pattern}")
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
    email_match = EMAIL.search(text)
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
        draw = random.Random(seed_of("task", _flatten(messages), temperature, sample, choice))
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
    return [(str(m.get("role", "")), content_text(m.get("content"))) for m in messages]
