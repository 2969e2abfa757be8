"""A second Ctrl-C while pytest and pytest-gpo finish an interrupted run is held.

The first Ctrl-C ends the run; pytest then formats the interrupt, and pytest-gpo cancels the
calls in flight and writes the reports. A second Ctrl-C in that window (a tester pressed it
0.3 s after the first) broke pytest's own traceback formatting and left a stale report saying
exit 0. From the first interrupt until the session is unconfigured, a second Ctrl-C is held
with a note; a third one interrupts as usual (a finish that hangs can still be abandoned).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

import pytest

_saved: Any = None
_pressed = 0
_say: Callable[[str], object] | None = None


def _held(signum: int, frame: FrameType | None) -> None:
    global _pressed
    _pressed += 1
    if _pressed >= 2:
        release()
        raise KeyboardInterrupt
    if _say is not None:  # the terminal reporter: fd capture would swallow sys.stderr
        _say("pytest-gpo: finishing the reports; press Ctrl-C again to abandon them")


def hold(say: Callable[[str], object] | None = None) -> None:
    """Hold further SIGINTs (main thread only; idempotent); ``say`` shows the note."""
    global _saved, _pressed, _say
    if _saved is not None or threading.current_thread() is not threading.main_thread():
        return
    _pressed, _say = 0, say
    _saved = signal.signal(signal.SIGINT, _held)


def release() -> None:
    """Restore the SIGINT handler :func:`hold` replaced."""
    global _saved
    if _saved is None:
        return
    signal.signal(signal.SIGINT, _saved)
    _saved = None


class InterruptHold:
    """The plugin object: holds a second Ctrl-C from the first until the session ends."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(tryfirst=True)
    def pytest_keyboard_interrupt(self, excinfo: Any) -> None:
        """The run was interrupted: hold the next Ctrl-C, saying so on the terminal."""
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        hold(None if reporter is None else reporter.write_line)

    def pytest_unconfigure(self, config: pytest.Config) -> None:
        """The session is over: Ctrl-C interrupts as usual again."""
        release()
