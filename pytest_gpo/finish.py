"""End of a session: baseline update, prompt write-back, reports, the terminal summary."""

from __future__ import annotations

from pytest_gpo.session import GpoSession


def finish_session(gs: GpoSession, exitstatus: int) -> int | None:
    """Finish the run; returns a new exit status, or None to keep pytest's."""
    if not gs.records:
        return None
    return None


def summary_lines(gs: GpoSession) -> list[str]:
    """Lines of the terminal summary."""
    return list(gs.warnings)
