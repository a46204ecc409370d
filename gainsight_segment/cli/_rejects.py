"""The rejects file of a replay: every line that was not sent, with its number and the reason."""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterator
from typing import IO, Any, Literal

Kind = Literal["invalid", "undelivered", "not attempted"]
"""Why a line is in the rejects file: it is not a valid message, its delivery failed, or
Ctrl-C stopped the replay before it was sent."""


class RejectWriter:
    """Appends rejected lines to a JSON Lines file; safe to call from any thread.

    Each record is ``{"line": N or null, "reason": "...", "message": original}`` and is
    flushed at once, so a crash loses nothing already rejected.

    Args:
        stream: The open text file to write to.

    Attributes:
        counts: Records written so far, by kind.
        write_error: The first error writing the file, if any.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.counts: dict[Kind, int] = {"invalid": 0, "undelivered": 0, "not attempted": 0}
        self.write_error: OSError | None = None

    def write(self, line: int | None, reason: str, message: Any, *, kind: Kind) -> None:
        """Write one record.

        A write error is kept in :attr:`write_error` rather than raised, since this also
        runs in the client's sender threads.

        Args:
            line: The line number in the input, or ``None`` when unknown.
            reason: Why the line was not sent.
            message: The original message (the raw text for a line that is not JSON).
            kind: Why the line is rejected.
        """
        # ASCII escapes keep lone surrogates and odd bytes writable.
        record = json.dumps({"line": line, "reason": reason, "message": message})
        with self._lock:
            self.counts[kind] += 1
            try:
                self._stream.write(record + "\n")
                self._stream.flush()
            except OSError as exc:
                if self.write_error is None:
                    self.write_error = exc


@contextlib.contextmanager
def open_rejects(path: str) -> Iterator[RejectWriter]:
    """Create (or empty) the rejects file and write to it.

    A new file is readable and writable by its owner only: it holds users' messages. An
    existing file keeps its mode (it may be a device, such as /dev/null).

    Raises:
        OSError: When the file cannot be created.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    stream = open(fd, "w", encoding="utf-8")  # noqa: SIM115 - closed below, with care
    writer = RejectWriter(stream)
    try:
        yield writer
    finally:
        try:
            stream.close()
        except OSError:
            # Closing flushes again and fails again; the first failure, which names the
            # file, is the one to tell.
            if writer.write_error is None:
                raise
