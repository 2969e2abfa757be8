"""pytest-gpo: test, gate and optimize LLM prompts as ordinary pytest suites."""

from __future__ import annotations

__version__ = "0.1.0"
