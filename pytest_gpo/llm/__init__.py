"""Model calls: the client on litellm, its response cache, embedders, and their parts.

:mod:`.types` is the boundary every other layer sees (requests, completions, usage) and imports
nothing heavy. :class:`~.client.LiteLLMClient` runs the pipeline (cache, coalescing, retries,
concurrency cap) with its parts: :mod:`.faults` (what a failure means), :mod:`.budget` and
:mod:`.pricing` (the call and cost caps), :mod:`.router` (the litellm Router), :mod:`.redact`
(secrets out of errors) and :mod:`.providers` (custom providers such as the simulated models).
:mod:`.setup` imports litellm once, on first use; :mod:`.loop` is the session's event loop.
"""
