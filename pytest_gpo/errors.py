"""The exception types users see.

Every error names where it comes from (file, key or case) and how to fix it, so a user never
has to read a traceback to know what to change. Layers pass data, not exceptions, wherever a
result can carry its own error (a :class:`~pytest_gpo.llm.types.Completion` does); these types are
for input that cannot be used at all.
"""

from __future__ import annotations

from pathlib import Path


class GpoError(Exception):
    """Base class of every error pytest-gpo reports to a user."""

    def __init__(
        self,
        message: str,
        *,
        path: str | Path | None = None,
        key: str | None = None,
        case: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.message = message
        self.path = str(path) if path is not None else None
        self.key = key
        self.case = case
        self.fix = fix
        super().__init__(self.render())

    def render(self) -> str:
        """One readable paragraph: ``where: what`` then ``fix: how``."""
        where = []
        if self.path:
            where.append(self.path)
        if self.key:
            where.append(f"key '{self.key}'")
        if self.case:
            where.append(f"case '{self.case}'")
        head = ": ".join([", ".join(where), self.message]) if where else self.message
        if self.fix:
            head += f"\n  fix: {self.fix}"
        return head


class SuiteError(GpoError):
    """A suite file, its prompt template or its cases cannot be used as written."""


class ConfigError(GpoError):
    """A command-line option, ini key or environment variable has a bad value."""


class ScorerError(GpoError):
    """A scorer is configured wrongly or cannot score a case."""
