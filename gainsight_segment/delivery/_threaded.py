"""Background delivery from a bounded in-memory queue (the default engine).

The queue holds message bodies only, first in first out; senders (``_senders``) take
them. One lock, the ledger's, guards the queue, the counters and the senders'
bookkeeping, so that queueing, taking and settling a message are each one locked step.
"""

from __future__ import annotations

import threading
from collections import deque

from gainsight_segment._errors import DeliveryErrorKind
from gainsight_segment._message import Message
from gainsight_segment._receipt import Outcome, Receipt
from gainsight_segment._settings import Settings

from ._attempts import Attempts, Result
from ._callbacks import Callbacks, logger
from ._engines import Transports, deadline, log_summary, refused_error, remaining, report
from ._ledger import Ledger, Stats
from ._process import ProcessWatch
from ._senders import Senders, Token


class ThreadedEngine:
    """Queues messages and delivers them from sender threads.

    Args:
        settings: The client's settings.
        transports: The transport to send through (rebuilt after a fork).
        attempts: Sends one message with retries.
        ledger: The counters.
        callbacks: The user's callbacks.
    """

    polls: float | None = None  # every message is announced to the senders

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
        self._senders = Senders(settings, transports, attempts, ledger, self)
        self._fresh_state()
        self._watch = ProcessWatch(self, at_exit=settings.exit_timeout > 0)

    def _fresh_state(self) -> None:
        self._space = threading.Condition(self.ledger.lock)  # blocked callers wait here
        self._queue: deque[bytes] = deque()
        self._blocked = 0  # callers waiting on _space
        self._stopping = False  # a shutdown() took charge of stopping
        self._stopped = threading.Event()
        self._stop_answer = True

    # --- callers ------------------------------------------------------------------------

    def submit(self, message: Message) -> Receipt:
        """Queue a message; when the queue is full, apply ``on_queue_full``.

        Raises:
            ClientClosedError: When the client was shut down.
        """
        self._watch.check(self)
        with self.ledger.lock:
            self.ledger.check_open_locked()
            start = self._admit_locked(message.body) if self._has_room() else None
        if start is None:
            return self._full(message)
        if start:
            self._start(start)
        return Receipt(message.message_id, Outcome.QUEUED)

    def _has_room(self) -> bool:
        return self.ledger.pending < self._settings.max_queue_size

    def _admit_locked(self, body: bytes) -> int:
        """Queue a body; return how many senders to start."""
        self._queue.append(body)
        self.ledger.queued_locked()
        return self._senders.wake_locked()

    def _start(self, count: int) -> None:
        if not self._senders.start(count):
            # Nothing would ever send what is queued: say so now.
            self._drop_queued("no sender thread could be started", "unexpected")

    def _full(self, message: Message) -> Receipt:
        closed = False
        if self._settings.on_queue_full == "block":
            start, closed = self._wait_for_room(message.body)
            if start is not None:
                if start:
                    self._start(start)
                return Receipt(message.message_id, Outcome.QUEUED)
        if closed:
            reason = "the client was shut down while the call waited for room in the queue"
            error = refused_error(reason, message.body, kind="shutdown")
        else:
            limit = self._settings.max_queue_size
            reason = f"queue full ({limit} messages): message dropped"
            error = refused_error(reason, message.body, kind="queue_full")
        try:
            self._callbacks.undelivered(message.body, error)
        finally:
            self.ledger.refused(error.kind)
        return Receipt(message.message_id, Outcome.DROPPED, error)

    def _wait_for_room(self, body: bytes) -> tuple[int | None, bool]:
        """Wait for room; return the senders to start (``None``: not queued), and whether
        the client was shut down meanwhile."""
        until = deadline(self._settings.block_timeout)
        with self._space:
            self._blocked += 1
            try:
                while True:
                    if self.ledger.closed:
                        return None, True
                    if self._has_room():
                        return self._admit_locked(body), False
                    left = remaining(until)
                    if left is not None and left <= 0:
                        return None, False
                    self._space.wait(left)
            finally:
                self._blocked -= 1

    # --- the feed of the senders (see _senders.Feed) ------------------------------------

    def ready_locked(self) -> bool:
        """Whether a message is queued."""
        return bool(self._queue)

    def take_locked(self) -> tuple[bytes, Token]:
        """The oldest queued message; a blocked caller is told there is room."""
        body = self._queue.popleft()
        if self._blocked:
            self._space.notify()
        return body, None

    def refill(self) -> bool:
        """Nothing to look for: every message is announced."""
        return False

    def drained_locked(self) -> bool:
        """Whether the client is closed and the queue empty."""
        return self.ledger.closed and not self._queue

    def finished(self, ticket: int, body: bytes, token: Token, result: Result) -> None:
        """Report a message's outcome and settle it."""
        report(self.ledger, self._callbacks, body, ticket, result)

    # --- flush and shutdown -------------------------------------------------------------

    def _reentrant(self) -> bool:
        # From a callback, or a transport, on a thread whose message cannot settle until
        # the call returns: waiting would wait for itself.
        return self._callbacks.running_here() or self._senders.is_sender()

    def flush(self, timeout: float | None) -> bool:
        """Wait until every message queued so far is delivered or given up.

        Returns:
            ``True`` if everything settled in time; ``False`` at the deadline (the rest
            stays queued) or at once when called from a callback.
        """
        self._watch.check(self)
        if self._reentrant():
            logger.warning("flush() called from a callback or sender: not waiting")
            return False
        return self.ledger.wait(deadline(timeout))

    def shutdown(self, timeout: float | None) -> bool:
        """Refuse new calls, flush within the deadline, then stop the senders.

        Returns:
            ``True`` if everything was delivered or given up before the deadline. A
            concurrent or later call waits for the first and returns its answer; a call
            from a callback returns ``False`` at once and leaves the stopping to a later
            call or the exit flush, while the senders go on delivering what is queued.
        """
        self._watch.check(self)
        until = deadline(timeout)
        with self.ledger.lock:
            self.ledger.closed = True
            self._space.notify_all()  # blocked callers give up
            self._senders.notify_all_locked()  # idle senders end once the queue is empty
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
            log_summary(self.ledger)
        return self._stop_answer

    def _stop(self, until: float | None) -> bool:
        self._watch.cancel_exit()
        settled = self.ledger.wait(until)
        stuck = self._senders.stop(until)
        self._drop_queued("shutdown deadline passed while it was queued", "shutdown")
        for ticket, body, _ in stuck:
            error = refused_error(
                "shutdown deadline passed while its request was in flight", body, kind="shutdown"
            )
            report(self.ledger, self._callbacks, body, ticket, Result(0, error))
        self._transports.close()
        return settled

    def _drop_queued(self, reason: str, kind: DeliveryErrorKind) -> None:
        while True:
            with self.ledger.lock:
                if not self._queue:
                    return
                body = self._queue.popleft()
                ticket = self.ledger.taken_locked()
            error = refused_error(reason, body, kind=kind)
            report(self.ledger, self._callbacks, body, ticket, Result(0, error), "dropped")

    def stats(self) -> Stats:
        """The counters, read in one step."""
        self._watch.check(self)
        return self.ledger.snapshot()

    # --- the process --------------------------------------------------------------------

    def after_fork(self) -> None:
        """In a forked child: an empty queue, no senders, counters from zero.

        What the parent queued stays the parent's to deliver.
        """
        self._watch.forked(self)
        self.ledger.reset()
        self._fresh_state()
        self._senders.fresh_state()
        self._transports.after_fork()

    def exit_flush(self) -> None:
        """Deliver what is queued, within ``exit_timeout``, before the interpreter exits."""
        self.shutdown(self._settings.exit_timeout)
