"""Delivery through the outbox file: a call returns once its message is on disk.

Senders claim the oldest messages from the file, send them, and delete each one only
after a 2xx. A permanent refusal moves it to the dead letters (and ``on_error`` is told);
a failure that more time may cure (network, timeout, 5xx, 429) gives the message back to
the file and pauses the client's senders, so that an outage costs retries, not messages.

When the file cannot be used (unwritable directory, full disk), the client keeps working
from memory, as the threaded engine does, and says so in the log and in ``stats()``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

import attrs

from gainsight_segment._errors import ClientClosedError, DeliveryError
from gainsight_segment._message import Message
from gainsight_segment._receipt import Outcome, Receipt
from gainsight_segment._settings import Settings
from gainsight_segment.delivery._attempts import Attempts, Result
from gainsight_segment.delivery._callbacks import Callbacks, logger
from gainsight_segment.delivery._engines import (
    Transports,
    deadline,
    log_summary,
    refused_error,
    remaining,
    report,
)
from gainsight_segment.delivery._ledger import Ledger, Settled, Stats
from gainsight_segment.delivery._policy import RETRYABLE_STATUSES
from gainsight_segment.delivery._process import ProcessWatch
from gainsight_segment.delivery._senders import Senders, Token

from ._database import OutboxError
from ._file import OutboxFile, open_store
from ._store import Store

# Senders look in the file this often for messages other processes wrote.
POLL_SECONDS = 0.5
# The departed are looked for this often.
SWEEP_SECONDS = 5.0
# Warnings about the file are logged at most this often.
WARN_SECONDS = 10.0


class OutboxEngine:
    """Writes each message to the outbox file and delivers from it.

    Args:
        settings: The client's settings (``outbox`` set).
        transports: The transport to send through.
        attempts: Sends one message with retries.
        ledger: The counters.
        callbacks: The user's callbacks.
    """

    polls: float | None = POLL_SECONDS

    def __init__(
        self,
        settings: Settings,
        transports: Transports,
        attempts: Attempts,
        ledger: Ledger,
        callbacks: Callbacks,
    ) -> None:
        self.ledger = ledger
        self._settings = settings
        self._transports = transports
        self._callbacks = callbacks
        self._abandoned: list[Store] = []  # a forked parent's, never touched again
        self._senders = (
            Senders(settings, transports, attempts, ledger, self, keep_one=True)
            if settings.workers != 0
            else None
        )
        self._fresh_state()
        at_exit = self._senders is not None and settings.exit_timeout > 0
        self._watch = ProcessWatch(self, at_exit=at_exit)
        self._look_for_leftovers()

    def _fresh_state(self) -> None:
        self._file = OutboxFile(open_store(self._settings), self._warn)
        self._queue: deque[tuple[bytes, int | None]] = deque()  # claimed rows, and memory
        self._settled = threading.Condition(self.ledger.lock)
        self._wrote = False  # whether this client wrote to the file
        self._in_memory = 0  # messages kept in memory, not yet settled
        self._not_persisted = 0
        self._seen_version = -1
        self._next_sweep = 0.0
        self._quiet_until = 0.0
        self._stopping = False
        self._stopped = threading.Event()
        self._stop_answer = True

    def _look_for_leftovers(self) -> None:
        # What an earlier run (or a process that died) left is delivered now; counted as
        # queued by this client, which takes it on. A sender starts even when nothing is
        # left: it looks in the file for what other processes write (a relay's job).
        store = self._file.store
        if store is None or self._senders is None:
            return
        waiting = 0
        try:
            store.take_back_from_the_departed()
            waiting = store.depth()[0]
        except OutboxError as error:
            self._warn(error)
        with self.ledger.lock:
            self.ledger.queued += waiting
            start = self._senders.wake_locked()
        self._senders.start(start)

    # --- callers ------------------------------------------------------------------------

    def submit(self, message: Message) -> Receipt:
        """Write the message to the outbox (or keep it in memory when that fails)."""
        self._watch.check(self)
        if self.ledger.closed:
            # Read without the lock: a message written as the client closes is delivered
            # by the next run, never lost.
            raise ClientClosedError("the client was shut down; create a new Client")
        body = message.body
        store = self._file.store
        written = False
        if store is not None:
            try:
                written = self._add(store, body)
            except OutboxError as error:
                self._warn(error)
            else:
                if not written:
                    limit = self._settings.outbox_max_messages
                    reason = f"outbox full ({limit} messages): message dropped"
                    return self._refuse(message, refused_error(reason, body, kind="queue_full"))
        with self.ledger.lock:
            kept = written or self._keep_in_memory_locked(body)
            if written:
                self.ledger.queued += 1
                self._wrote = True
            start = self._senders.wake_locked() if kept and self._senders is not None else 0
        if not kept:
            reason = "the outbox cannot be written and no room is left in memory"
            return self._refuse(message, refused_error(reason, body, kind="outbox"))
        if start and self._senders is not None:
            self._senders.start(start)
        return Receipt(message.message_id, Outcome.QUEUED)

    def _add(self, store: Store, body: bytes) -> bool:
        """Write a body, waiting for room as ``on_queue_full`` says; ``False`` when full."""
        settings = self._settings
        written = store.add(body, settings.outbox_max_messages)
        if written or settings.on_queue_full != "block":
            return written
        until = deadline(settings.block_timeout)
        while not written and not self.ledger.closed:
            left = remaining(until)
            if left is not None and left <= 0:
                return False
            # Room is made by senders, here or in another process: look again soon.
            with self._settled:
                self._settled.wait(0.05 if left is None else min(0.05, left))
            written = store.add(body, settings.outbox_max_messages)
        return written

    def _keep_in_memory_locked(self, body: bytes) -> bool:
        if self._senders is None or self.ledger.pending >= self._settings.max_queue_size:
            return False
        self._queue.append((body, None))
        self.ledger.queued_locked()
        self._in_memory += 1
        self._not_persisted += 1
        return True

    def _refuse(self, message: Message, error: DeliveryError) -> Receipt:
        try:
            self._callbacks.undelivered(message.body, error)
        finally:
            self.ledger.refused(error.kind)
        return Receipt(message.message_id, Outcome.DROPPED, error)

    def _warn(self, problem: object) -> None:
        # One line per interval: a full disk fails every call alike.
        now = time.monotonic()
        if now >= self._quiet_until:
            self._quiet_until = now + WARN_SECONDS
            logger.warning("%s", problem)

    # --- the feed of the senders (see _senders.Feed) ------------------------------------

    def ready_locked(self) -> bool:
        """Whether a claimed (or in-memory) message waits."""
        return bool(self._queue)

    def take_locked(self) -> tuple[bytes, Token]:
        """The next waiting message, with its row (``None`` for one kept in memory)."""
        body, row = self._queue.popleft()
        return body, row

    def refill(self) -> bool:
        """Claim messages from the file, when it changed or the departed may have left some."""
        store, senders = self._file.store, self._senders
        if store is None or senders is None:
            return False
        now = time.monotonic()
        if senders.concurrency.paused_for(now):
            return False  # claims made now would only wait, out of others' reach
        try:
            self._file.save_settled(store)
            version = store.changed()
            if now >= self._next_sweep:
                self._next_sweep = now + SWEEP_SECONDS
                store.take_back_from_the_departed()
            elif version == self._seen_version and not store.spooled():
                return False
            claimed = store.claim(max(2, 2 * senders.concurrency.allowed()))
            self._seen_version = store.changed() if not claimed else -1
        except OutboxError as error:
            self._warn(error)
            return False
        if not claimed:
            return False
        with self.ledger.lock:
            self._queue.extend((body, row) for row, body in claimed)
            self.ledger.pending += len(claimed)
        return True

    def drained_locked(self) -> bool:
        """Never: while the client shuts down, its senders go on taking from the file.

        ``shutdown()`` waits for what the client wrote, which may not be claimed yet;
        the senders end when it tells them to (``Senders.stop``), at its deadline or once
        that is delivered.
        """
        return False

    def finished(self, ticket: int, body: bytes, token: Token, result: Result) -> None:
        """Settle a message: deleted, dead-lettered, or given back to the file."""
        row = token if isinstance(token, int) else None
        error = result.error
        if row is not None and error is not None and _curable(error.kind, error.status):
            self._give_back(ticket, body, row, result)
            return
        try:
            # The callback first: flush() waits for the row to leave the file, and so for
            # the callback too, as it does without an outbox.
            report(self.ledger, self._callbacks, body, ticket, result)
        finally:
            try:
                if row is not None:
                    self._settle(row, error)
            finally:
                with self._settled:
                    if row is None:
                        self._in_memory -= 1
                    self._settled.notify_all()

    def _settle(self, row: int, error: DeliveryError | None) -> None:
        """Delete a delivered row, or make a refused one a dead letter."""
        if error is None:
            self._file.settle(row, lambda store: store.delivered(row))
        else:
            self._file.settle(
                row,
                lambda store: store.dead(
                    row, kind=error.kind, status=error.status, reason=error.reason
                ),
            )

    def _give_back(self, ticket: int, body: bytes, row: int, result: Result) -> None:
        # Not given up: the message goes back to the file, and the client waits before
        # trying any message again (an outage would fail them all alike).
        # If the file refuses, the message is still claimed by this client, for no one
        # else to send: it sends it again itself.
        kept = not self._file.call(lambda store: store.release([row]))
        assert self._senders is not None
        with self.ledger.lock:
            self._senders.concurrency.pause(self._settings.backoff_max, time.monotonic())
            self.ledger.released_locked(retries=result.retries)
            if kept:
                self._queue.append((body, row))
                self.ledger.pending += 1
            self._settled.notify_all()
        if result.error is not None:
            self._warn(f"message {result.error.message_id} not delivered yet ({result.error})")

    # --- flush and shutdown -------------------------------------------------------------

    def _reentrant(self) -> bool:
        senders = self._senders
        return self._callbacks.running_here() or (senders is not None and senders.is_sender())

    def flush(self, timeout: float | None) -> bool:
        """Wait until every message this client wrote so far has left the outbox.

        Delivered or dead-lettered, by this process or another one (a relay, for a client
        with ``workers=0``). Messages given back after a failure count as not yet gone.
        """
        self._watch.check(self)
        if self._reentrant():
            logger.warning("flush() called from a callback or sender: not waiting")
            return False
        return self._wait_gone(deadline(timeout))

    def _wait_gone(self, until: float | None) -> bool:
        with self.ledger.lock:
            wrote = self._wrote
        store = self._file.store
        marks = store.marks() if store is not None else {}
        written = time.time()
        while True:
            with self._settled:
                in_memory = self._in_memory
            stored = False
            if store is not None and wrote and self._file.usable:
                try:
                    stored = store.left_from(marks, written, self._file.settled_rows())
                except OutboxError as error:
                    self._warn(error)
            if not stored and not in_memory:
                return True
            left = remaining(until)
            if left is not None and left <= 0:
                return False
            # Woken by this process's senders; messages delivered by others are seen by
            # looking again.
            with self._settled:
                self._settled.wait(0.05 if left is None else min(0.05, left))

    def shutdown(self, timeout: float | None) -> bool:
        """Refuse new calls, deliver what is due within the deadline, then stop.

        What is not delivered by the deadline stays in the outbox for the next run (or
        another process): it is neither dropped nor reported. A client with
        ``workers=0`` does not wait: its messages are safe in the file.
        """
        self._watch.check(self)
        until = deadline(timeout)
        with self.ledger.lock:
            self.ledger.closed = True
            if self._senders is not None:
                self._senders.notify_all_locked()
            reentrant = self._reentrant()
            first = not reentrant and not self._stopping
            self._stopping = self._stopping or first
        if reentrant:
            logger.warning("shutdown() called from a callback or sender: not waiting")
            return False
        if not first:
            return self._stopped.wait(remaining(until)) and self._stop_answer
        try:
            self._stop_answer = self._stop(until)
        finally:
            self._stopped.set()
        return self._stop_answer

    def _stop(self, until: float | None) -> bool:
        self._watch.cancel_exit()
        settled = True if self._senders is None else self._wait_gone(until)
        stuck = [] if self._senders is None else self._senders.stop(until)
        with self.ledger.lock:
            waiting = list(self._queue)
            self._queue.clear()
            self.ledger.pending -= len(waiting)
        rows = [row for _, row in waiting if row is not None]
        rows += [token for _, _, token in stuck if isinstance(token, int)]
        self._file.call(lambda store: store.release(rows))
        self._file.call(self._file.save_settled)
        self._give_up_in_memory(waiting, stuck)
        left = self._file.close()
        self._transports.close()
        log_summary(self.ledger)
        if left:
            # A write-only client leaves its messages to a relay: that is no news.
            logger.log(
                logging.WARNING if self._senders is not None else logging.DEBUG,
                "%d message%s left in the outbox %s for the next run",
                left,
                "s" * (left != 1),
                self._settings.outbox,
            )
        return settled

    def _give_up_in_memory(
        self, waiting: list[tuple[bytes, int | None]], stuck: list[tuple[int, bytes, Token]]
    ) -> None:
        # Claimed rows go back to the file for the next run; messages that never made it
        # to the file cannot wait for one, and are given up as the threaded engine does.
        for body, row in waiting:
            if row is None:
                reason = "shutdown deadline passed while it was queued"
                self._settle_in_memory(body, reason, "dropped")
        for ticket, body, token in stuck:
            if isinstance(token, int):
                with self.ledger.lock:
                    self.ledger.released_locked(retries=0)
            else:
                reason = "shutdown deadline passed while its request was in flight"
                self._settle_in_memory(body, reason, "failed", ticket)

    def _settle_in_memory(
        self, body: bytes, reason: str, outcome: Settled, ticket: int | None = None
    ) -> None:
        if ticket is None:
            with self.ledger.lock:
                self.ledger.pending += 1  # counted back, to be taken and settled
                ticket = self.ledger.taken_locked()
        error = refused_error(reason, body, kind="shutdown")
        try:
            report(self.ledger, self._callbacks, body, ticket, Result(0, error), outcome)
        finally:
            with self._settled:
                self._in_memory -= 1
                self._settled.notify_all()

    def stats(self) -> Stats:
        """The counters, with what waits in the outbox file."""
        self._watch.check(self)
        snapshot = self.ledger.snapshot()
        with self._settled:
            not_persisted = self._not_persisted
        depth, oldest, dead, waiting = self._file.figures()
        return attrs.evolve(
            snapshot,
            pending=snapshot.pending + waiting,
            outbox_depth=depth,
            outbox_oldest_age=oldest,
            dead_letters=dead,
            not_persisted=not_persisted,
        )

    # --- the process --------------------------------------------------------------------

    def after_fork(self) -> None:
        """In a forked child: new connections to the file, under a new owner.

        The parent's connections are left alone (SQLite must not use them across a fork),
        as are its claims; what the child writes goes to the same file.
        """
        self._watch.forked(self)
        if self._file.store is not None:
            self._abandoned.append(self._file.store)
        self.ledger.reset()
        self._fresh_state()
        if self._senders is not None:
            self._senders.fresh_state()
        self._transports.after_fork()

    def exit_flush(self) -> None:
        """Deliver what is due within ``exit_timeout``; the rest waits in the file."""
        self.shutdown(self._settings.exit_timeout)


def _curable(kind: str, status: int | None) -> bool:
    """Whether more time may cure a failure: the message waits in the outbox for it."""
    if kind == "http_status":
        return status in RETRYABLE_STATUSES
    return kind in ("network", "timeout", "tls", "invalid_response", "shutdown")
