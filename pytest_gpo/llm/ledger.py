"""Where a run's budget is counted: in this process, or in a file every xdist worker shares.

A cap is the run's, not each worker's: under pytest-xdist the controller creates one ledger
file (:func:`new_shared_ledger`) and hands its path to the workers, and every reservation and
charge of every worker is a read-modify-write of that file under an exclusive ``fcntl`` lock.
The state is tiny JSON: calls reserved, dollars spent, and the reservations in flight per
owner (process id and budget), so a worker that dies holding reservations does not keep the
others waiting: owners whose process is gone are dropped on the next update.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

#: The environment variable (and xdist ``workerinput`` key) naming a shared ledger file.
LEDGER_ENV = "PYTEST_GPO_BUDGET_FILE"


def fresh_state() -> dict[str, Any]:
    """The state of a budget nothing has used: no calls, no spend, nothing in flight."""
    return {"calls": 0, "spent": 0.0, "inflight": {}}


class Ledger(Protocol):
    """Applies a change to the budget state atomically (across threads, or processes)."""

    #: True when other processes share the state (their settlements are not signalled here).
    shared: bool

    def update(self, change: Callable[[dict[str, Any]], T]) -> T:
        """Run ``change`` on the state under the lock; what it returns is returned."""
        ...


class MemoryLedger:
    """The state of one process (the model client's event loop and embedding threads)."""

    shared = False

    def __init__(self) -> None:
        self._state = fresh_state()
        self._lock = threading.Lock()

    def update(self, change: Callable[[dict[str, Any]], T]) -> T:
        """Run ``change`` on the state under a thread lock."""
        with self._lock:
            return change(self._state)


class FileLedger:
    """The state in a JSON file shared by processes, changed under an exclusive ``flock``."""

    shared = True

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def update(self, change: Callable[[dict[str, Any]], T]) -> T:
        """Lock the file, read the state, run ``change``, write the state back, unlock."""
        import fcntl

        with self._lock:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                state = _read(fd)
                _drop_dead_owners(state)
                result = change(state)
                data = json.dumps(state, allow_nan=False).encode("utf-8")
                os.lseek(fd, 0, os.SEEK_SET)
                os.ftruncate(fd, 0)
                os.write(fd, data)
                return result
            finally:
                os.close(fd)  # closing releases the lock


def _read(fd: int) -> dict[str, Any]:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    try:
        state = json.loads(b"".join(chunks) or b"{}")
    except ValueError:
        state = {}
    if not isinstance(state, dict) or not {"calls", "spent", "inflight"} <= set(state):
        return fresh_state()
    return dict(state)


def _drop_dead_owners(state: dict[str, Any]) -> None:
    for owner in list(state["inflight"]):
        pid = int(str(owner).split(":", 1)[0] or 0)
        if pid != os.getpid() and not _alive(pid):
            del state["inflight"][owner]


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists, owned by another user
        return True
    return True


def new_shared_ledger() -> Path:
    """A fresh ledger file in a new temporary folder (the xdist controller makes one)."""
    folder = Path(tempfile.mkdtemp(prefix="pytest-gpo-budget-"))
    path = folder / "budget.json"
    path.write_text(json.dumps(fresh_state()), encoding="utf-8")
    return path


def remove_shared_ledger(path: str | os.PathLike[str]) -> None:
    """Delete a ledger file made by :func:`new_shared_ledger` and its folder."""
    target = Path(path)
    with contextlib.suppress(OSError):
        target.unlink()
    with contextlib.suppress(OSError):
        target.parent.rmdir()
