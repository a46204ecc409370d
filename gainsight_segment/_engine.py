"""Engines deliver built messages; the simple ones live here: synchronous and dry run."""

from __future__ import annotations

from typing import Protocol

from ._message import Message
from ._receipt import Outcome, Receipt
from ._report import Reporter, Stats
from ._transport import Transport


class Engine(Protocol):
    """What a :class:`Client` needs from the thing that delivers its messages."""

    def submit(self, message: Message) -> Receipt:
        """Deliver or queue one message."""

    def flush(self, timeout: float | None) -> bool:
        """Wait for what was submitted so far; ``True`` if all of it was settled."""

    def shutdown(self, timeout: float | None) -> bool:
        """Flush, then stop; ``True`` if nothing was left undelivered."""

    def stats(self) -> Stats:
        """The counters."""


class SyncEngine:
    """Sends each message in the caller's thread (``sync_mode=True``).

    Args:
        transport: The HTTP transport.
        reporter: Where outcomes are counted and reported.
    """

    def __init__(self, transport: Transport, reporter: Reporter) -> None:
        self._transport = transport
        self._reporter = reporter

    def submit(self, message: Message) -> Receipt:
        """Send the message now; delivery failures are reported, not raised."""
        reporter = self._reporter
        with reporter.lock:
            reporter.queued += 1
        attempt = self._transport.send(message)
        if attempt.error is None:
            reporter.delivered_one(message, attempt.retries)
            return Receipt(message.message_id, Outcome.SENT)
        reporter.failed_one(message, attempt.error, attempt.retries)
        return Receipt(message.message_id, Outcome.FAILED, attempt.error)

    def flush(self, timeout: float | None) -> bool:
        """Nothing is ever pending: returns ``True``."""
        return True

    def shutdown(self, timeout: float | None) -> bool:
        """Close the connection pool."""
        self._transport.close()
        return True

    def stats(self) -> Stats:
        """The counters."""
        return self._reporter.snapshot(pending=0, in_flight=0)


class DryRunEngine:
    """Builds and validates but never sends (``send=False``).

    Args:
        reporter: Where the counters live (only ``filtered`` moves in a dry run).
    """

    def __init__(self, reporter: Reporter) -> None:
        self._reporter = reporter

    def submit(self, message: Message) -> Receipt:
        """Return a dry-run receipt; nothing is sent or counted as queued."""
        return Receipt(message.message_id, Outcome.DRY_RUN)

    def flush(self, timeout: float | None) -> bool:
        """Nothing is ever pending: returns ``True``."""
        return True

    def shutdown(self, timeout: float | None) -> bool:
        """Nothing to stop: returns ``True``."""
        return True

    def stats(self) -> Stats:
        """The counters."""
        return self._reporter.snapshot(pending=0, in_flight=0)
