"""The one import of litellm, configured for pytest-gpo.

litellm is imported on first use (:func:`import_litellm`), never when a pytest-gpo module is
imported: plugin start-up and collection stay free of its ~1 s import.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import warnings
from typing import Any

#: A warning litellm releases (1.72 to at least 1.100) raise with a recent pydantic each time
#: they serialize a response: harmless, but under ``-W error`` it breaks litellm's logging.
#: No ':' in it, so it is also a valid pytest ``filterwarnings`` entry (the plugin adds one).
LITELLM_PYDANTIC_WARNING = (
    r"Pydantic serializer warnings.\s+PydanticSerializationUnexpectedValue\(Expected \d+ "
    r"fields but got \d+. Expected `Message`"
)

#: pydantic warns once per process, when a litellm release (1.110) first builds the schema of
#: one of its TypedDicts (Copilot, reasoning, Router cooldown types): litellm's own code,
#: nothing a suite can act on.
LITELLM_READONLY_WARNING = (
    r"Items? .* on TypedDict class '\w+' (is|are) using the `ReadOnly` qualifier"
)

#: The litellm warnings pytest-gpo silences (each also a valid ``filterwarnings`` message).
LITELLM_WARNINGS = (LITELLM_PYDANTIC_WARNING, LITELLM_READONLY_WARNING)


def ignore_litellm_warnings() -> None:
    """Ignore :data:`LITELLM_WARNINGS` in the current warning filters."""
    for message in LITELLM_WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=UserWarning)


@functools.cache
def import_litellm() -> Any:
    """Import litellm once, configured for pytest-gpo.

    The local price map is used (the import would otherwise fetch one from the internet) and
    debug banners are off. Callbacks a user configured are left alone; litellm has none of its
    own by default, and its response cache is bypassed per call (``caching=False``).

    No other litellm setting is changed, on purpose: none of its public settings or call
    kwargs lowers its CPU per call (~2.5-3 ms), and several would hide our calls from a user's
    own callbacks or zero the cost estimate (measured in docs/performance.md, section 1).
    """
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    # Releases up to 1.80.10 warn while importing (importlib.resources.open_text): under
    # ``-W error`` the import would fail. A lasting filter: a catch_warnings() block would also
    # undo the filters litellm installs on import.
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"litellm\.")
    import litellm

    from pytest_gpo.llm.redact import LITELLM_LOGGERS, SECRET_FILTER, install_log_redaction

    install_log_redaction()
    ignore_litellm_warnings()
    for name in LITELLM_LOGGERS:
        logging.getLogger(name).addFilter(SECRET_FILTER)

    # litellm 1.80.x loads its default tokenizer (tiktoken cl100k_base) on the first completion
    # without pointing tiktoken at the copy it ships, so that call downloads it and fails on a
    # machine without network. Counting tokens once loads the shipped copy and sets the cache
    # directory for the process (later releases load the shipped copy themselves).
    with contextlib.suppress(Exception):
        litellm.token_counter(model="gpt-3.5-turbo", text="")

    # litellm's import leaves ~300,000 long-lived objects that every full garbage collection
    # walks again: ~0.3 ms per model call at 300 calls/s. Freezing them (after a cheap young
    # collection) keeps them out of the collector's work; they live until exit anyway.
    gc.collect(1)
    gc.freeze()
    litellm.suppress_debug_info = True
    # OpenAI-compatible calls use connections this project owns and closes (connections.py).
    from pytest_gpo.llm import connections

    connections.install(litellm)
    # Older releases phone home unless told not to; current ones have no such attribute.
    litellm.telemetry = False
    return litellm
