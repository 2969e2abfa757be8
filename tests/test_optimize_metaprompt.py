"""The meta-prompt's parts, their order and the markers the simulated optimizer parses; reply
parsing; the request each step sends."""

from __future__ import annotations

from pytest_gpo.optimize.config import OptimizeConfig
from pytest_gpo.optimize.markers import (
    BUDGET_SENTENCE,
    CURRENT_CLOSE,
    CURRENT_OPEN,
    PROMPT_MARKER,
    REFLECTION_TAG,
    WRAP_SENTENCE,
)
from pytest_gpo.optimize.metaprompt import (
    TaskExample,
    build_meta_prompt,
    build_reflection_prompt,
    pick_examples,
)
from pytest_gpo.optimize.proposer import candidate_request, parse_reply, reflection_request
from pytest_gpo.optimize.retrieval import TrajectoryEntry

CURRENT = "Route the ticket.\nAnswer with one word.\n\nTicket: {{ ticket }}"
EXAMPLES = [
    TaskExample("c1", {"ticket": "I was charged twice"}, "billing"),
    TaskExample("c2", {"ticket": "App crashes on login"}, "bug"),
    TaskExample("c3", {"ticket": "Do you ship to Peru?"}, "other"),
]


def _meta(**kw: object) -> str:
    args: dict[str, object] = {
        "current": TrajectoryEntry(CURRENT, 0.7349),
        "previous": [
            TrajectoryEntry("Sort the ticket. {{ ticket }}", 0.4151),
            TrajectoryEntry("Route this ticket to a team. {{ ticket }}", 0.655),
        ],
        "examples": EXAMPLES,
        "budget": 37,
        "variables": {"ticket"},
    }
    args.update(kw)
    return build_meta_prompt(**args)  # type: ignore[arg-type]


def test_generation_meta_prompt_has_the_parts_in_the_papers_order() -> None:
    text = _meta()
    order = [
        "write a new prompt to replace <Prompt>",
        '<prompt score="42">\nSort the ticket. {{ ticket }}\n</prompt>',
        '<prompt score="66">\nRoute this ticket to a team. {{ ticket }}\n</prompt>',
        "with a score of 73",
        f"\n{CURRENT_OPEN}\n{CURRENT}\n{CURRENT_CLOSE}\n",
        f"Input: {PROMPT_MARKER}\nticket: I was charged twice\nOutput: billing",
        f"Input: {PROMPT_MARKER}\nticket: Do you ship to Peru?\nOutput: other",
        "Carefully analyze the previous prompts and their scores",
        "{{ ticket }}) exactly as written",
        BUDGET_SENTENCE.format(n=37),
        WRAP_SENTENCE,
    ]
    positions = [text.find(part) for part in order]
    assert all(p >= 0 for p in positions), [
        o for o, p in zip(order, positions, strict=True) if p < 0
    ]
    assert positions == sorted(positions)
    assert "You are allowed to change up to 37 words in the current prompt." in text
    assert "from the least to the most similar" in text
    assert text.count(CURRENT_OPEN) == 1 and text.count(CURRENT_CLOSE) == 1


def test_no_budget_no_history_edit_variant_and_feedback() -> None:
    text = _meta(budget=None, previous=[], update="edit", feedback="Ask for one word.")
    assert "allowed to change" not in text
    assert "previous prompts with their scores" not in text
    assert "Your task is to modify the current prompt" in text
    assert "edit it in place" in text
    assert text.index(f"Input: {PROMPT_MARKER}") < text.index("<feedback>\nAsk for one word.")
    assert text.index("</feedback>") < text.index(WRAP_SENTENCE)
    assert text.rstrip().endswith(WRAP_SENTENCE)


def test_reflection_prompt_shows_current_prompt_and_wrong_examples() -> None:
    wrong = [TaskExample("c2", {"ticket": "App crashes"}, "bug", output="billing")]
    text = build_reflection_prompt(current=CURRENT, wrong=wrong)
    assert text.startswith(REFLECTION_TAG + "\n")
    assert f"\n{CURRENT_OPEN}\n{CURRENT}\n{CURRENT_CLOSE}\n" in text
    assert "ticket: App crashes\nModel output: billing\nExpected output: bug" in text
    assert "<START>" not in text


def test_examples_come_from_the_batch_first_with_expected_outputs_first() -> None:
    vars_by_id = {c: {"q": c} for c in ("a", "b", "c", "d")}
    expected = {"a": None, "b": "B", "c": "C", "d": "D"}
    got = pick_examples(["a", "b"], vars_by_id, expected, 3, fallback=["c", "d"])
    assert [e.case_id for e in got] == ["b", "a", "c"]  # the batch first
    assert "Output:" not in _meta(examples=[TaskExample("x", {"q": 1}, None)]).split("Input")[1]


def test_parse_reply() -> None:
    assert parse_reply("blah <START>  New prompt {{ x }}\n<END> trailing") == "New prompt {{ x }}"
    assert parse_reply("  just the prompt  \n") is None  # no markers: no candidate
    assert parse_reply("I will wrap it with <START> and <END>.\n<START>Real one<END>") == "Real one"
    assert parse_reply("<START>\nmissing end") is None  # cut off before <END>
    assert parse_reply("<START><END>\n<START>second<END>") == "second"
    assert parse_reply("<START><END>") == ""


def test_one_request_per_step_asks_for_exactly_the_candidates() -> None:
    cfg = OptimizeConfig(candidates=5, temperature=0.7, seed=2)
    req = candidate_request("META", model="opt/model", config=cfg, t=3)
    assert (req.model, req.n, req.purpose, dict(req.params)) == (
        "opt/model",
        5,
        "optimizer",
        {"temperature": 0.7, "max_tokens": 512},
    )
    assert req.messages == ({"role": "user", "content": "META"},)
    other = candidate_request("META", model="opt/model", config=cfg, t=4)
    assert other.sample != req.sample and other.cache_key() != req.cache_key()
    seeded = candidate_request("META", model="opt/model", config=cfg.replace(seed=3), t=3)
    assert seeded.sample != req.sample
    refl = reflection_request("R", model="opt/model", config=cfg, t=3)
    assert (refl.n, refl.purpose) == (1, "reflection")
    # the reference reflects at temperature 0, with the optimizer's max_tokens
    assert dict(refl.params) == {"temperature": 0.0, "max_tokens": 512}


def test_candidates_keep_the_prompt_files_trailing_newline() -> None:
    from pytest_gpo.optimize.proposer import with_trailing_whitespace

    assert with_trailing_whitespace("New {{ q }}", "Old {{ q }}\n") == "New {{ q }}\n"
    assert with_trailing_whitespace("New\n\n", "Old") == "New"
    assert with_trailing_whitespace("", "Old\n") == ""
