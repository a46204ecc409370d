"""Headless Chromium, driven over the DevTools protocol on a pipe.

Nothing from PyPI: the browser is started with ``--remote-debugging-pipe`` and spoken to in
JSON on file descriptors 3 and 4. ``scripts/check_docs_layout.py`` uses it to load the
documentation site's pages and measure them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import select
import shutil
import subprocess
import tempfile
import time
from typing import Any

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--hide-scrollbars",
    "--mute-audio",
)
PAGE_TIMEOUT = 30.0


class CheckError(Exception):
    """The check could not run (as opposed to: it ran and found problems)."""


class Browser:
    """Headless Chromium driven over the DevTools protocol on a pipe (fds 3 and 4)."""

    def __init__(self, executable: str, intercept: Any) -> None:
        self._intercept = intercept
        self._profile = tempfile.mkdtemp(prefix="docs-layout-chromium-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        # Copies above the fds the child will use, so that placing them at 3 and 4 cannot
        # overwrite one with the other.
        high_r = fcntl.fcntl(to_browser_r, fcntl.F_DUPFD, 10)
        high_w = fcntl.fcntl(from_browser_w, fcntl.F_DUPFD, 10)

        def place_pipes() -> None:
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        command = [
            executable,
            *CHROMIUM_FLAGS,
            "--remote-debugging-pipe",
            f"--user-data-dir={self._profile}",
            "about:blank",
        ]
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        try:
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=self._log,
                # Safe here: no thread of ours has started yet (the server starts later).
                preexec_fn=place_pipes,
                pass_fds=(3, 4),
            )
        except OSError as error:
            raise CheckError(f"cannot start {executable}: {error}") from error
        finally:
            for fd in (to_browser_r, from_browser_w, high_r, high_w):
                os.close(fd)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict[str, Any]] = []
        try:
            self.call("Browser.getVersion", timeout=30)
        except CheckError as error:
            said = self.output()
            self.close()
            raise CheckError(f"Chromium did not start: {error}\n{said}") from None

    def output(self) -> str:
        self._log.seek(0)
        text = self._log.read().decode(errors="replace").strip()
        return f"Chromium said:\n{text}" if text else "Chromium said nothing."

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self._to_browser)
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        with contextlib.suppress(OSError):
            os.close(self._from_browser)
        self._log.close()
        shutil.rmtree(self._profile, ignore_errors=True)

    def _send(self, method: str, params: dict[str, Any], session: str | None) -> int:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._to_browser, data) :]
        except OSError as error:
            raise CheckError(f"Chromium stopped listening: {error}") from error
        return self._next_id

    def _receive(self, deadline: float) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CheckError("Chromium did not answer in time")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                code = self._process.poll()
                raise CheckError(f"Chromium exited (status {code})")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        message: dict[str, Any] = json.loads(raw)
        if message.get("method") == "Fetch.requestPaused":
            self._intercept(self, message)
            return self._receive(deadline)
        return message

    def call(
        self,
        method: str,
        params: dict[str, Any] | None = None,
        session: str | None = None,
        timeout: float = PAGE_TIMEOUT,
    ) -> dict[str, Any]:
        """Send a command and return its result; events that arrive meanwhile are kept."""
        wanted = self._send(method, params or {}, session)
        deadline = time.monotonic() + timeout
        while True:
            message = self._receive(deadline)
            if message.get("id") == wanted:
                if "error" in message:
                    raise CheckError(f"{method}: {message['error'].get('message')}")
                result: dict[str, Any] = message.get("result", {})
                return result
            if "method" in message:
                self._events.append(message)

    def notify(self, method: str, params: dict[str, Any], session: str | None) -> None:
        """Send a command whose answer nobody waits for (it is dropped when it arrives)."""
        self._send(method, params, session)

    def wait_for(self, method: str, session: str, timeout: float = PAGE_TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while True:
            for index, event in enumerate(self._events):
                if event.get("method") == method and event.get("sessionId") == session:
                    del self._events[index]
                    return
            message = self._receive(deadline)
            if "method" in message:
                self._events.append(message)

    def evaluate(self, expression: str, session: str) -> Any:
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
            session,
        )
        if "exceptionDetails" in result:
            raise CheckError(f"script error: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")


def find_chromium(given: str | None) -> str:
    if given:
        return given
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return found
    raise CheckError(
        "Chromium is not installed (looked for: "
        + ", ".join(CHROMIUM_NAMES)
        + "); on Debian: apt-get install chromium, or pass --chromium PATH"
    )
