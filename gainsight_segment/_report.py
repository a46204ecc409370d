"""Outcome reporting: counters, the user's callbacks and the log, shared by every engine."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

import attrs

from ._errors import ClientClosedError, DeliveryError
from ._message import Message

logger = logging.getLogger("gainsight_segment")

ErrorCallback = Callable[[DeliveryError, "dict[str, Any]"], object]
SuccessCallback = Callable[["dict[str, Any]"], object]

# Undelivered messages are logged at most once per interval, with how many were not.
_LOG_INTERVAL = 10.0


@attrs.frozen
class Stats:
    """A snapshot of a client's counters.

    They reconcile, in every snapshot, even one taken while messages are on their way:
    ``queued == delivered + failed + dropped + pending + in_flight``.

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
        # Moved in the same locked step as the counters above, so that every snapshot
        # reconciles; only messages queued with a ticket (see queued_one) are tracked.
        self.pending = self.in_flight = 0
        self.settled = threading.Condition(self.lock)
        self.closed = False
        self._sending: set[int] = set()  # tickets a sender has taken: at most `workers`
        self._settled_tickets = 0
        # One [last ticket, how many of tickets 1..last have settled] per flush() waiting.
        self._waiters: list[list[int]] = []
        self._quiet_until = 0.0
        self._unlogged = 0

    def snapshot(self, pending: int | None = None, in_flight: int | None = None) -> Stats:
        """Return the counters, read in one step.

        Args:
            pending: Messages waiting to be sent; by default the ticketed messages queued
                and not yet taken by a sender.
            in_flight: Messages being sent; by default the ticketed messages taken by a
                sender and not yet settled.
        """
        with self.lock:
            return Stats(
                queued=self.queued,
                delivered=self.delivered,
                filtered=self.filtered,
                failed=self.failed,
                dropped=self.dropped,
                retried=self.retried,
                pending=self.pending if pending is None else pending,
                in_flight=self.in_flight if in_flight is None else in_flight,
            )

    def queued_one(self) -> int:
        """Count a message queued for delivery, and return its ticket.

        The ticket follows the message: pass it to :meth:`sending_one` when a sender takes
        the message, and to the ``*_one`` method that settles it. Tickets are 1, 2, 3, ...
        in queueing order, which lets :meth:`wait_queued` wait for exactly the messages
        queued before a given moment.
        """
        with self.lock:
            self.queued += 1
            self.pending += 1
            return self.queued

    def enqueue(
        self, put: Callable[[tuple[int, Message]], object], message: Message, limit: int
    ) -> bool:
        """Count a message queued and hand it, with its ticket, to ``put``, in one step.

        Args:
            put: Puts ``(ticket, message)`` on the queue.
            message: The message.
            limit: How many messages may be pending at most.

        Returns:
            ``False``, queueing nothing, when ``limit`` messages are pending already.

        Raises:
            ClientClosedError: When :attr:`closed` was set: nothing is queued after the
                queue was drained for good.
        """
        with self.lock:
            if self.closed:
                raise ClientClosedError("the client was shut down; create a new Client")
            if self.pending >= limit:
                return False
            self.queued += 1
            self.pending += 1
            put((self.queued, message))
            return True

    def sending_one(self, ticket: int) -> None:
        """Count a queued message as taken by a sender."""
        with self.lock:
            self._sending.add(ticket)
            self.pending -= 1
            self.in_flight += 1

    def wait_queued(self, deadline: float | None) -> bool:
        """Wait until every message queued so far has been settled.

        Messages queued later, by other threads, neither hasten nor delay the wait.

        Args:
            deadline: A :func:`time.monotonic` time to give up at; ``None`` waits as long
                as it takes.

        Returns:
            Whether they all settled in time.
        """
        with self.settled:
            # Tickets 1..queued are all the tickets there are, so every one settled so far
            # is among them; from here on, _close counts the ones that settle.
            waiter = [self.queued, self._settled_tickets]
            self._waiters.append(waiter)
            try:
                while waiter[1] < waiter[0]:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self.settled.wait(1.0 if remaining is None else min(remaining, 1.0))
                return True
            finally:
                self._waiters.remove(waiter)

    def _close(self, ticket: int | None) -> None:
        # Called with the lock held, in the same step as the settled counter moves.
        if ticket is None:
            return
        if ticket in self._sending:
            self._sending.discard(ticket)
            self.in_flight -= 1
        else:
            self.pending -= 1
        self._settled_tickets += 1
        for waiter in self._waiters:
            if ticket <= waiter[0]:
                waiter[1] += 1

    def count_filtered(self) -> None:
        """Count a track call skipped by the whitelist."""
        with self.lock:
            self.filtered += 1

    def delivered_one(self, message: Message, retries: int, ticket: int | None = None) -> None:
        """Report a delivered message (and settle its ticket, if it has one)."""
        # Callbacks run before the message counts as settled, so that once flush()
        # returns, every callback for what it waited on has run; the counters move
        # whatever the callbacks or the log do.
        try:
            if self.on_success is not None:
                self._call(self.on_success, message)
        finally:
            self._settle("delivered", retries, ticket)

    def failed_one(
        self, message: Message, error: DeliveryError, retries: int, ticket: int | None = None
    ) -> None:
        """Report a message given up after it was sent (and settle its ticket)."""
        try:
            self._warn("not delivered", message, error)
            self._error(message, error)
        finally:
            self._settle("failed", retries, ticket)

    def dropped_one(
        self, message: Message, error: DeliveryError, ticket: int | None = None
    ) -> None:
        """Report a message never sent: queue full, shutdown deadline (and settle its ticket)."""
        try:
            self._warn("dropped", message, error)
            self._error(message, error)
        finally:
            self._settle("dropped", 0, ticket)

    def _settle(self, outcome: str, retries: int, ticket: int | None) -> None:
        with self.lock:
            setattr(self, outcome, getattr(self, outcome) + 1)
            self.retried += retries
            self._close(ticket)
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
            self._call(self.on_error, message, error)

    @staticmethod
    def _call(callback: Callable[..., object], message: Message, *args: Any) -> None:
        # The message is decoded inside the guard too (a deeply nested one can exhaust a
        # sender thread's stack): nothing in reporting may keep a message from settling.
        try:
            callback(*args, message.payload())
        except BaseException:  # even SystemExit: a callback must not stop a sender
            logger.exception("the %r callback raised", getattr(callback, "__name__", callback))
