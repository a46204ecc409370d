"""Outcome reporting: counters, the user's callbacks and the log, shared by every engine."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import attrs

from ._errors import DeliveryError
from ._message import Message

logger = logging.getLogger("gainsight_segment")

ErrorCallback = Callable[[DeliveryError, "dict[str, Any]"], object]
SuccessCallback = Callable[["dict[str, Any]"], object]

# Undelivered messages are logged at most once per interval, with how many were not.
_LOG_INTERVAL = 10.0


@attrs.frozen
class Stats:
    """A snapshot of a client's counters.

    They reconcile: ``queued == delivered + failed + dropped + pending + in_flight``.

    Attributes:
        queued: Messages accepted for delivery.
        delivered: Messages the endpoint acknowledged with a 2xx.
        filtered: Track calls skipped by the whitelist (never queued).
        failed: Messages given up after a permanent error or exhausted retries.
        dropped: Messages never sent: queue full, or still queued when a shutdown
            deadline passed.
        retried: Retry attempts made (one message may be retried several times).
        pending: Messages waiting in the queue.
        in_flight: Messages being sent right now.
    """

    queued: int = 0
    delivered: int = 0
    filtered: int = 0
    failed: int = 0
    dropped: int = 0
    retried: int = 0
    pending: int = 0
    in_flight: int = 0


class Reporter:
    """Counts outcomes and tells the user's callbacks and the log about them.

    Callbacks that raise are logged and otherwise ignored: they never reach the sender
    threads or the caller.

    Args:
        on_error: Called with ``(DeliveryError, message dict)`` for each message not
            delivered.
        on_success: Called with the message dict for each message delivered.
    """

    def __init__(
        self,
        on_error: ErrorCallback | None = None,
        on_success: SuccessCallback | None = None,
    ) -> None:
        self.on_error = on_error
        self.on_success = on_success
        self.reset()

    def reset(self) -> None:
        """Zero the counters (and re-create the lock, e.g. in a forked child)."""
        self.lock = threading.Lock()
        self.queued = self.delivered = self.filtered = self.failed = 0
        self.dropped = self.retried = 0
        self.settled = threading.Condition(self.lock)
        self._quiet_until = 0.0
        self._unlogged = 0

    def snapshot(self, pending: int, in_flight: int) -> Stats:
        """Return the counters, with ``pending`` queued and ``in_flight`` being sent."""
        with self.lock:
            return Stats(
                queued=self.queued,
                delivered=self.delivered,
                filtered=self.filtered,
                failed=self.failed,
                dropped=self.dropped,
                retried=self.retried,
                pending=pending,
                in_flight=in_flight,
            )

    def wait_settled(self, target: int, deadline: float | None) -> bool:
        """Wait until ``target`` messages have been delivered, failed or dropped.

        Args:
            target: How many settled messages to wait for.
            deadline: A :func:`time.monotonic` time to give up at; ``None`` waits as long
                as it takes (every message settles within its retries and timeouts).

        Returns:
            Whether ``target`` was reached.
        """
        with self.settled:
            while self.delivered + self.failed + self.dropped < target:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                # Woken by every settled message; the cap only guards against surprises.
                self.settled.wait(1.0 if remaining is None else min(remaining, 1.0))
            return True

    def count_filtered(self) -> None:
        """Count a track call skipped by the whitelist."""
        with self.lock:
            self.filtered += 1

    def delivered_one(self, message: Message, retries: int) -> None:
        """Report a delivered message."""
        # Callbacks run before the message counts as settled, so that once flush()
        # returns, every callback for what it waited on has run.
        if self.on_success is not None:
            self._call(self.on_success, message.payload())
        with self.lock:
            self.delivered += 1
            self.retried += retries
            self.settled.notify_all()

    def failed_one(self, message: Message, error: DeliveryError, retries: int) -> None:
        """Report a message given up after it was sent."""
        self._warn("not delivered", message, error)
        self._error(message, error)
        with self.lock:
            self.failed += 1
            self.retried += retries
            self.settled.notify_all()

    def dropped_one(self, message: Message, error: DeliveryError) -> None:
        """Report a message never sent (queue full, shutdown deadline)."""
        self._warn("dropped", message, error)
        self._error(message, error)
        with self.lock:
            self.dropped += 1
            self.settled.notify_all()

    def _warn(self, what: str, message: Message, error: DeliveryError) -> None:
        # An outage or a full queue fails every message alike: one warning per interval
        # says so without flooding the log.
        with self.lock:
            now = time.monotonic()
            if now < self._quiet_until:
                self._unlogged += 1
                return
            self._quiet_until = now + _LOG_INTERVAL
            unlogged, self._unlogged = self._unlogged, 0
        logger.warning(
            "message %s %s: %s (%d more not delivered since the last such warning)",
            message.message_id,
            what,
            error,
            unlogged,
        )

    def _error(self, message: Message, error: DeliveryError) -> None:
        if self.on_error is not None:
            self._call(self.on_error, error, message.payload())

    @staticmethod
    def _call(callback: Callable[..., object], *args: Any) -> None:
        try:
            callback(*args)
        except Exception:
            logger.exception("the %r callback raised", getattr(callback, "__name__", callback))
