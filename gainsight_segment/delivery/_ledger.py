"""Counters, tickets and ``flush()``'s waits: what every engine records about its messages.

One lock guards it all, and the engines take the same lock for their own queue, so that
a message is queued, taken and settled each in one locked step and every
:class:`Stats` snapshot reconciles.

Tickets number the messages in the order senders take them from the queue (1, 2, 3, ...),
and the queue is first-in first-out, so ticket *n* is the *n*-th message queued. A
``flush()`` that starts when *N* messages have been queued waits for tickets 1 to *N*:
exactly the messages queued before it, whatever other threads queue meanwhile.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Literal

import attrs

from gainsight_segment._errors import ClientClosedError

Settled = Literal["delivered", "failed", "dropped"]
_RECHECK = 5.0


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
        dropped: Messages never sent: queue full, or still queued at a shutdown deadline.
        retried: Retries made (a message may be retried several times).
        pending: Messages waiting in the queue (with an outbox: in the outbox file too).
        in_flight: Messages being sent right now.
        outbox_depth: Messages in the outbox file (all processes'), when there is one.
        outbox_oldest_age: Seconds since the oldest of them was written; ``None`` when
            there is none.
        dead_letters: Messages the endpoint refused for good, kept in the outbox file.
        not_persisted: Messages kept in memory only, because the outbox file could not be
            written (a full disk, say).
    """

    queued: int = 0
    delivered: int = 0
    filtered: int = 0
    failed: int = 0
    dropped: int = 0
    retried: int = 0
    pending: int = 0
    in_flight: int = 0
    outbox_depth: int = 0
    outbox_oldest_age: float | None = None
    dead_letters: int = 0
    not_persisted: int = 0


class _Waiter:
    """One ``flush()`` waiting: its last ticket and how many of tickets 1..last settled.

    Compared by identity: two waiters with the same numbers are still two waiters.
    """

    __slots__ = ("last", "settled")

    def __init__(self, last: int, settled: int) -> None:
        self.last = last
        self.settled = settled


class Ledger:
    """Counts every message from the moment it is queued until it settles.

    Methods named ``*_locked`` expect the caller to hold :attr:`lock`; the others take it.
    """

    def __init__(self) -> None:
        self.closed = False
        self.reset()

    def reset(self) -> None:
        """Start counting from zero with a new lock (in a forked child); keep ``closed``."""
        self.lock = threading.Lock()
        self._changed = threading.Condition(self.lock)
        self.queued = self.delivered = self.filtered = self.failed = self.dropped = 0
        self.retried = self.pending = self.in_flight = 0
        self._taken = 0  # tickets handed out
        self._settled = 0  # ticketed messages settled
        self._waiters: set[_Waiter] = set()
        self.undelivered: Counter[str] = Counter()

    def check_open_locked(self) -> None:
        """Raise :class:`ClientClosedError` once the client was shut down."""
        if self.closed:
            raise ClientClosedError("the client was shut down; create a new Client")

    def queued_locked(self) -> None:
        """Count a message put on the queue."""
        self.queued += 1
        self.pending += 1

    def taken_locked(self) -> int:
        """Count the oldest queued message as taken (by a sender, or to drop); its ticket."""
        self.pending -= 1
        self.in_flight += 1
        self._taken += 1
        return self._taken

    def take(self) -> int:
        """Queue and take a message at once (synchronous sending); return its ticket."""
        with self.lock:
            self.check_open_locked()
            self.queued_locked()
            return self.taken_locked()

    def settle(self, outcome: Settled, ticket: int, *, retries: int = 0, kind: str = "") -> None:
        """Count a taken message as ``delivered``, ``failed`` or ``dropped``.

        Args:
            outcome: ``"delivered"``, ``"failed"`` or ``"dropped"``.
            ticket: Its ticket, from :meth:`taken_locked` or :meth:`take`.
            retries: Retries it took.
            kind: Why it was not delivered (a :class:`DeliveryError` kind).
        """
        with self.lock:
            self._count(outcome, retries, kind)
            self.in_flight -= 1
            self._settled += 1
            done = False
            for waiter in self._waiters:
                if ticket <= waiter.last:
                    waiter.settled += 1
                    done = done or waiter.settled >= waiter.last
            if done:
                self._changed.notify_all()

    def released_locked(self, *, retries: int) -> None:
        """Count a taken message as given back, not settled (to the outbox file)."""
        self.in_flight -= 1
        self.retried += retries

    def refused(self, kind: str) -> None:
        """Count a message dropped without being queued (queue full, closing)."""
        with self.lock:
            self.queued += 1
            self._count("dropped", 0, kind)

    def _count(self, outcome: Settled, retries: int, kind: str) -> None:
        if outcome == "delivered":
            self.delivered += 1
        elif outcome == "failed":
            self.failed += 1
            self.undelivered[kind] += 1
        else:
            self.dropped += 1
            self.undelivered[kind] += 1
        self.retried += retries

    def count_filtered(self) -> None:
        """Count a track call skipped by the whitelist."""
        with self.lock:
            self.filtered += 1

    def wait(self, deadline: float | None) -> bool:
        """Wait until every message queued so far has settled.

        Args:
            deadline: A :func:`time.monotonic` time to give up at; ``None``: no limit.

        Returns:
            Whether they all settled in time.
        """
        with self.lock:
            # Every ticket settled so far is among 1..(queued so far); from here on,
            # settle() counts the ones that are.
            waiter = _Waiter(self._taken + self.pending, self._settled)
            if waiter.settled >= waiter.last:
                return True
            self._waiters.add(waiter)
            try:
                while waiter.settled < waiter.last:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    # Woken when a waiter completes; waking now and then anyway costs
                    # nothing and keeps even an unbounded wait from trusting one notify.
                    self._changed.wait(_RECHECK if remaining is None else min(remaining, _RECHECK))
                return True
            finally:
                self._waiters.discard(waiter)

    def snapshot(self) -> Stats:
        """Return the counters, read in one step."""
        with self.lock:
            return Stats(
                queued=self.queued,
                delivered=self.delivered,
                filtered=self.filtered,
                failed=self.failed,
                dropped=self.dropped,
                retried=self.retried,
                pending=self.pending,
                in_flight=self.in_flight,
            )
