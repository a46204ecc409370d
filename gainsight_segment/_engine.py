"""Engines deliver built messages; the simple ones live here: synchronous and dry run."""

from __future__ import annotations

from typing import Protocol

from ._errors import DeliveryError
from ._message import Message
from ._receipt import Outcome, Receipt
from ._report import Reporter, Stats, logger
from ._transport import Attempt, Transport


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


def send(transport: Transport, message: Message) -> Attempt:
    """Send one message; an unexpected error becomes a failed attempt, never an exception.

    Transport.send reports every foreseen failure itself; anything else (a bug, a setting
    the platform cannot honour) must still settle the message, or flush() would wait for it
    until its deadline and the counters would never reconcile.
    """
    try:
        return transport.send(message)
    except Exception as exc:
        logger.exception("unexpected error while sending message %s", message.message_id)
        reason = f"unexpected error while sending: {type(exc).__name__}"
        return Attempt(0, DeliveryError(reason, message_id=message.message_id))


def report(reporter: Reporter, message: Message, attempt: Attempt, ticket: int) -> None:
    """Report a sent message's outcome and settle its ticket."""
    if attempt.error is None:
        reporter.delivered_one(message, attempt.retries, ticket)
    else:
        reporter.failed_one(message, attempt.error, attempt.retries, ticket)


def send_and_report(
    transport: Transport, reporter: Reporter, message: Message, ticket: int
) -> Attempt:
    """Send one message, report its outcome, and return it."""
    attempt = send(transport, message)
    report(reporter, message, attempt, ticket)
    return attempt


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
        ticket = reporter.queued_one()
        reporter.sending_one(ticket)
        attempt = send_and_report(self._transport, reporter, message, ticket)
        if attempt.error is None:
            return Receipt(message.message_id, Outcome.SENT)
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
        return self._reporter.snapshot()


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
        return self._reporter.snapshot()
