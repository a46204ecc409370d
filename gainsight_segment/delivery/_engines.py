"""What every engine offers, the pieces they share, and the two simple engines."""

from __future__ import annotations

import threading
import time
from typing import Protocol

from gainsight_segment._errors import DeliveryError, DeliveryErrorKind
from gainsight_segment._exchange import Transport, TransportFactory
from gainsight_segment._message import Message
from gainsight_segment._receipt import Outcome, Receipt

from ._attempts import Attempts, Result
from ._body import message_id
from ._callbacks import Callbacks, logger, summary
from ._ledger import Ledger, Settled, Stats
from ._policy import Verdict
from ._process import ProcessWatch


class Engine(Protocol):
    """What a :class:`~gainsight_segment.Client` needs from what delivers its messages."""

    ledger: Ledger

    def submit(self, message: Message) -> Receipt:
        """Deliver or queue one message."""

    def flush(self, timeout: float | None) -> bool:
        """Wait for what was submitted so far; ``True`` if all of it settled."""

    def shutdown(self, timeout: float | None) -> bool:
        """Flush, then stop; ``True`` if nothing was cut short."""

    def stats(self) -> Stats:
        """The counters."""


def deadline(timeout: float | None) -> float | None:
    """A :func:`time.monotonic` deadline ``timeout`` seconds from now.

    Any number is accepted: NaN and negatives mean now; a wait longer than the platform
    can time (``threading.TIMEOUT_MAX``, some 292 years) means none, rather than an
    ``OverflowError``. Ints are compared exactly, never converted to float.
    """
    if timeout is None or timeout > threading.TIMEOUT_MAX:
        return None
    return time.monotonic() + (timeout if timeout > 0 else 0.0)


def remaining(deadline: float | None) -> float | None:
    """Seconds left until ``deadline`` (0 when past); ``None`` for no deadline."""
    return None if deadline is None else max(0.0, deadline - time.monotonic())


class Transports:
    """The transport an engine sends through, rebuilt in a forked child when it can be.

    Args:
        make: Builds the transport (called again after a fork), or ``None``.
        given: A transport instance, kept as it is across forks; used when ``make`` is
            ``None``.
    """

    def __init__(self, make: TransportFactory | None, given: Transport | None = None) -> None:
        self._make = make
        self.current: Transport = make() if make is not None else given  # type: ignore[assignment]

    def after_fork(self) -> None:
        """In a forked child: a fresh transport, when there is a factory."""
        if self._make is not None:
            self.current = self._make()

    def close(self) -> None:
        """Close the transport; a failure is logged, never raised."""
        try:
            self.current.close()
        except Exception:
            logger.exception("closing the transport failed")


def report(
    ledger: Ledger,
    callbacks: Callbacks,
    body: bytes,
    ticket: int,
    result: Result,
    failure: Settled = "failed",
) -> None:
    """Tell the callbacks how a message ended, then settle its ticket.

    Callbacks run first, so that once ``flush()`` returns, every callback of what it
    waited for has run; the ticket settles whatever they do.
    """
    error = result.error
    try:
        if error is None:
            callbacks.delivered(body)
        else:
            callbacks.undelivered(body, error)
    finally:
        outcome: Settled = "delivered" if error is None else failure
        ledger.settle(outcome, ticket, retries=result.retries, kind=error.kind if error else "")


def log_summary(ledger: Ledger) -> None:
    """Log, once, how many messages were not delivered and why."""
    with ledger.lock:
        text = summary(ledger.undelivered)
    if text is not None:
        logger.warning("%s; see on_error and Client.stats()", text)


class PauseGate:
    """Pauses every caller of a synchronous client while the endpoint asked to wait."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._until = 0.0
        self._admitted = 0

    def wait_turn(self, interrupt: threading.Event) -> bool:
        """Wait out a ``Retry-After`` pause; ``False`` if interrupted meanwhile."""
        while True:
            with self._lock:
                left = self._until - time.monotonic()
            if left <= 0:
                return True
            if interrupt.wait(left):
                return False

    def finished(self, verdict: Verdict, latency: float) -> None:
        """Start a pause when the endpoint sent ``Retry-After``."""
        if verdict.pause:
            with self._lock:
                self._until = max(self._until, time.monotonic() + verdict.pause)
        elif verdict.delivered:
            with self._lock:
                self._admitted += 1

    def admitted(self) -> int:
        """How many attempts the endpoint accepted so far, all callers together."""
        return self._admitted


class DryRunEngine:
    """Builds and validates but never sends (``send=False``)."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    def submit(self, message: Message) -> Receipt:
        """Return a dry-run receipt; nothing is sent or counted as queued."""
        with self.ledger.lock:
            self.ledger.check_open_locked()
        return Receipt(message.message_id, Outcome.DRY_RUN)

    def flush(self, timeout: float | None) -> bool:
        """Nothing is ever pending: returns ``True``."""
        return True

    def shutdown(self, timeout: float | None) -> bool:
        """Refuse further calls; returns ``True``."""
        with self.ledger.lock:
            self.ledger.closed = True
        return True

    def stats(self) -> Stats:
        """The counters."""
        return self.ledger.snapshot()


class SyncEngine:
    """Sends each message in the caller's thread (``sync_mode=True``).

    Args:
        transports: The transport to send through.
        attempts: Sends one message with retries.
        ledger: The counters.
        callbacks: The user's callbacks.
    """

    def __init__(
        self, transports: Transports, attempts: Attempts, ledger: Ledger, callbacks: Callbacks
    ) -> None:
        self.ledger = ledger
        self._transports = transports
        self._attempts = attempts
        self._callbacks = callbacks
        # Shutdown cuts retry waits short: a caller blocked in one gets its answer.
        self._interrupt = threading.Event()
        self._gate = PauseGate()
        self._watch = ProcessWatch(self, at_exit=False)

    def submit(self, message: Message) -> Receipt:
        """Send the message now; a failure is reported and in the receipt, not raised."""
        self._watch.check(self)
        ticket = self.ledger.take()
        # What is reported if the send never returns (Ctrl-C in the caller's thread).
        body = message.body
        result = Result(0, refused_error("interrupted while sending", body, kind="unexpected"))
        try:
            result = self._attempts.deliver(
                self._transports.current, body, self._interrupt, self._gate
            )
        finally:
            report(self.ledger, self._callbacks, body, ticket, result)
        if result.error is None:
            return Receipt(message.message_id, Outcome.SENT)
        return Receipt(message.message_id, Outcome.FAILED, result.error)

    def flush(self, timeout: float | None) -> bool:
        """Nothing is ever queued: returns ``True``."""
        return True

    def shutdown(self, timeout: float | None) -> bool:
        """Refuse further calls, cut retry waits short and close the transport."""
        self._watch.check(self)
        with self.ledger.lock:
            first = not self.ledger.closed
            self.ledger.closed = True
        if first:
            self._interrupt.set()
            self._transports.close()
            log_summary(self.ledger)
        return True

    def stats(self) -> Stats:
        """The counters."""
        return self.ledger.snapshot()

    def after_fork(self) -> None:
        """In a forked child: counters from zero and a fresh transport.

        The parent's pooled connections must not carry the child's requests: answers
        would reach the wrong process.
        """
        self._watch.forked(self)
        self.ledger.reset()
        self._interrupt = threading.Event()
        self._gate = PauseGate()
        self._transports.after_fork()

    def exit_flush(self) -> None:
        """Nothing to flush: every message was sent in its caller's thread."""


def refused_error(reason: str, body: bytes, *, kind: DeliveryErrorKind) -> DeliveryError:
    """The error of a message that was not sent (refused, given up, interrupted)."""
    return DeliveryError(reason, kind=kind, message_id=message_id(body))
