"""Fixed strings of the optimizer meta-prompt that other parts rely on.

The optimizer writes them; the reply parser and the simulated optimizer model
(:mod:`pytest_gpo.sim`) read them. Change them here only.
"""

from __future__ import annotations

#: The current prompt appears verbatim between these two lines of the meta-prompt.
CURRENT_OPEN = "<current_prompt>"
CURRENT_CLOSE = "</current_prompt>"

#: The edit budget sentence (GPO's learning rate), formatted with ``n`` words.
BUDGET_SENTENCE = "You are allowed to change up to {n} words in the current prompt."

#: New prompts are returned between these markers.
START = "<START>"
END = "<END>"
WRAP_SENTENCE = "Wrap the new prompt with <START> and <END>."

#: Reflection requests (APO, PE2) contain this line and ask for feedback, not a prompt.
REFLECTION_TAG = "<reflection_request>"

#: Where the prompt sits in a task example of the meta-prompt.
PROMPT_MARKER = "<Prompt>"
