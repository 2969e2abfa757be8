"""Headless Chromium driven over the Chrome DevTools Protocol, for tests and benchmarks.

A small synchronous client on ``websocket-client``: it starts Debian's ``chromium`` with a fresh
profile and a DevTools port on 127.0.0.1 (the port Chromium picked is read from
``DevToolsActivePort``), attaches to the page, and records what a user would notice: console
errors, uncaught exceptions, log entries (a Content-Security-Policy violation, a failed load)
and JavaScript dialogs (an ``alert`` is accepted at once and recorded). Every wait is bounded.

    with Chromium(tmp_path / "profile") as browser:
        browser.open(path.as_uri(), ready="document.documentElement.dataset.ready === '1'")
        assert browser.errors() == []
        browser.evaluate("document.title")
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import subprocess
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

import websocket

#: The flags this machine needs (root, closed network) plus a fixed window size.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--disable-default-apps",
    "--hide-scrollbars",
    "--window-size=1280,900",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
)


def chromium_binary() -> str | None:
    """The Chromium executable (``$GPO_CHROMIUM``, ``chromium`` on PATH), or ``None``."""
    for candidate in (
        os.environ.get("GPO_CHROMIUM"),
        shutil.which("chromium"),
        "/usr/bin/chromium",
    ):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


class ChromiumError(RuntimeError):
    """Chromium did not start, answer or finish in time."""


class Chromium:
    """One headless Chromium with one page, driven over CDP (see the module docstring)."""

    def __init__(self, profile: Path, *, binary: str | None = None, timeout: float = 30.0) -> None:
        found = binary or chromium_binary()
        if found is None:
            raise ChromiumError("chromium is not installed (apt-get install chromium)")
        self.binary = found
        self.profile = profile
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self._next_id = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._ws: websocket.WebSocket | None = None

    # -- lifecycle -------------------------------------------------------------------------------

    def start(self) -> Chromium:
        """Start Chromium and attach to its page."""
        self.profile.mkdir(parents=True, exist_ok=True)
        port_file = self.profile / "DevToolsActivePort"
        port_file.unlink(missing_ok=True)
        self._proc = subprocess.Popen(
            [self.binary, *FLAGS, f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + self.timeout
        port = ""
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ChromiumError(f"chromium exited at start with status {self._proc.returncode}")
            if port_file.exists():
                port = port_file.read_text(encoding="utf-8").split("\n", 1)[0].strip()
                if port:
                    break
            time.sleep(0.05)
        if not port:
            self.close()
            raise ChromiumError(f"chromium wrote no DevTools port within {self.timeout} s")
        targets = self._targets(int(port), deadline)
        page = next(t for t in targets if t.get("type") == "page")
        self._ws = websocket.create_connection(
            page["webSocketDebuggerUrl"], timeout=self.timeout, suppress_origin=True
        )
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")
        return self

    def _targets(self, port: int, deadline: float) -> list[dict[str, Any]]:
        url = f"http://127.0.0.1:{port}/json/list"
        while True:
            try:
                with urllib.request.urlopen(url, timeout=5) as reply:
                    targets: list[dict[str, Any]] = json.loads(reply.read())
                if any(t.get("type") == "page" for t in targets):
                    return targets
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.close()
                raise ChromiumError("chromium's DevTools endpoint listed no page in time")
            time.sleep(0.1)

    def close(self) -> None:
        """Close the connection and stop Chromium (terminate, then kill)."""
        if self._ws is not None:
            with contextlib.suppress(OSError, websocket.WebSocketException):
                self._ws.close()
            self._ws = None
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=10)
        self._proc = None

    def __enter__(self) -> Chromium:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- protocol --------------------------------------------------------------------------------

    def _receive(self, deadline: float) -> dict[str, Any]:
        assert self._ws is not None, "start() first"
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise ChromiumError("chromium did not answer in time")
        self._ws.settimeout(remaining)
        try:
            message: dict[str, Any] = json.loads(self._ws.recv())
        except websocket.WebSocketTimeoutException as exc:
            raise ChromiumError("chromium did not answer in time") from exc
        if "method" in message:
            self.events.append(message)
            if message["method"] == "Page.javascriptDialogOpening":
                # a dialog blocks the page: accept it at once (it stays recorded in events)
                self._post("Page.handleJavaScriptDialog", {"accept": True})
        return message

    def _post(self, method: str, params: dict[str, Any] | None = None) -> int:
        assert self._ws is not None, "start() first"
        self._next_id += 1
        self._ws.send(json.dumps({"id": self._next_id, "method": method, "params": params or {}}))
        return self._next_id

    def send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call a CDP method and return its result (events meanwhile are recorded)."""
        wanted = self._post(method, params)
        deadline = time.monotonic() + self.timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise ChromiumError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        result = self.send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            raise ChromiumError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, *, timeout: float | None = None) -> None:
        """Poll until ``expression`` is truthy in the page."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self.evaluate(f"!!({expression})"):
            if time.monotonic() > deadline:
                raise ChromiumError(f"{expression!r} did not become true in time")
            time.sleep(0.02)

    def open(self, url: str, *, ready: str | None = None) -> None:
        """Navigate to ``url``, wait for its load event, then for ``ready`` (an expression)."""
        self.events.clear()
        self.send("Page.navigate", {"url": url})
        deadline = time.monotonic() + self.timeout
        while not any(e["method"] == "Page.loadEventFired" for e in self.events):
            self._receive(deadline)
        if ready:
            self.wait_for(ready)

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        """Save a PNG of the viewport (or the whole page)."""
        params: dict[str, Any] = {"format": "png", "captureBeyondViewport": full_page}
        data = self.send("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    # -- what the page did -----------------------------------------------------------------------

    def errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries since the last open()."""
        found = []
        for e in self.events:
            p = e.get("params", {})
            if e["method"] == "Runtime.exceptionThrown":
                found.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
            elif e["method"] == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                found.append("console: " + json.dumps(p.get("args", []))[:500])
            elif e["method"] == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                found.append("log: " + str(p["entry"].get("text", ""))[:500])
        return found

    def dialogs(self) -> list[str]:
        """The messages of JavaScript dialogs (alert, confirm, prompt) since the last open()."""
        return [
            str(e["params"].get("message", ""))
            for e in self.events
            if e["method"] == "Page.javascriptDialogOpening"
        ]
