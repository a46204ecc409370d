"""Background delivery: a bounded queue and sender threads that follow the backlog.

By default no sender thread runs while the client is idle. The first message starts one;
a sender that takes a message while more are waiting starts another, as long as the
adaptive limit (see ``_concurrency``) allows more requests in flight, up to
``max_workers``; a sender that finds nothing to do for a few seconds ends. With a fixed
``workers=N``, N senders start with the first message and stay.

One lock, the ledger's, guards the queue, the counters and the senders' bookkeeping, so
that queueing, taking and settling a message are each one locked step.
"""

from __future__ import annotations

import threading
import time
from collections import deque

from gainsight_segment._errors import DeliveryErrorKind
from gainsight_segment._message import Message
from gainsight_segment._receipt import Outcome, Receipt
from gainsight_segment._settings import Settings

from ._attempts import Attempts, Result
from ._callbacks import Callbacks, logger
from ._concurrency import Concurrency
from ._engines import Transports, deadline, log_summary, refused_error, remaining, report
from ._ledger import Ledger, Stats
from ._policy import Verdict
from ._process import ProcessWatch, warn_if_uwsgi_without_threads

# An adaptive sender with nothing to do for this long ends; a fixed one wakes this often
# (every wait has a deadline).
IDLE_SECONDS = 5.0
THREAD_NAME = "gainsight-segment-sender"


class ThreadedEngine:
    """Queues messages and delivers them from sender threads.

    Args:
        settings: The client's settings.
        transports: The transport to send through (rebuilt after a fork).
        attempts: Sends one message with retries.
        ledger: The counters.
        callbacks: The user's callbacks.
    """

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
        self._attempts = attempts
        self._callbacks = callbacks
        self._adaptive = settings.workers is None
        self._fresh_state()
        self._watch = ProcessWatch(self, at_exit=settings.exit_timeout > 0)

    def _fresh_state(self) -> None:
        lock = self.ledger.lock
        self._work = threading.Condition(lock)  # senders wait here for messages
        self._space = threading.Condition(lock)  # blocked callers wait here for room
        self._queue: deque[Message] = deque()
        self._in_flight: dict[int, Message] = {}  # by ticket
        self._threads: set[threading.Thread] = set()
        self._senders = 0  # started or starting
        self._idle = 0  # waiting on _work
        self._blocked = 0  # callers waiting on _space
        self._started = 0  # for thread names
        self._concurrency = Concurrency(self._settings.senders, adaptive=self._adaptive)
        self._interrupt = threading.Event()
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
            start = self._admit_locked(message) if self._has_room() else None
        if start is None:
            return self._full(message)
        if start:
            self._start_senders(start)
        return Receipt(message.message_id, Outcome.QUEUED)

    def _has_room(self) -> bool:
        return self.ledger.pending < self._settings.max_queue_size

    def _admit_locked(self, message: Message) -> int:
        """Queue a message; return how many senders to start (reserved already)."""
        self._queue.append(message)
        self.ledger.queued_locked()
        if self._idle:
            self._work.notify()
            return 0
        if self._senders:
            return 0
        wanted = self._settings.senders if not self._adaptive else 1
        self._senders += wanted
        return wanted

    def _full(self, message: Message) -> Receipt:
        closed = False
        if self._settings.on_queue_full == "block":
            start, closed = self._wait_for_room(message)
            if start is not None:
                if start:
                    self._start_senders(start)
                return Receipt(message.message_id, Outcome.QUEUED)
        if closed:
            reason = "the client was shut down while the call waited for room in the queue"
            error = refused_error(reason, message, kind="shutdown")
        else:
            limit = self._settings.max_queue_size
            reason = f"queue full ({limit} messages): message dropped"
            error = refused_error(reason, message, kind="queue_full")
        try:
            self._callbacks.undelivered(message, error)
        finally:
            self.ledger.refused(error.kind)
        return Receipt(message.message_id, Outcome.DROPPED, error)

    def _wait_for_room(self, message: Message) -> tuple[int | None, bool]:
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
                        return self._admit_locked(message), False
                    left = remaining(until)
                    if left is not None and left <= 0:
                        return None, False
                    self._space.wait(left)
            finally:
                self._blocked -= 1

    # --- senders ------------------------------------------------------------------------

    def _start_senders(self, count: int) -> None:
        """Start ``count`` senders, already counted in ``_senders``."""
        if not self._started:
            warn_if_uwsgi_without_threads()
        for _ in range(count):
            self._started += 1
            thread = threading.Thread(
                target=self._run, name=f"{THREAD_NAME}-{self._started}", daemon=True
            )
            with self.ledger.lock:
                self._threads.add(thread)
            try:
                thread.start()
            except RuntimeError:  # out of threads, or the interpreter is exiting
                logger.exception("could not start a sender thread")
                with self.ledger.lock:
                    self._threads.discard(thread)
                    self._senders -= 1
                    orphaned = not self._senders
                if orphaned:
                    # Nothing would ever send what is queued: say so now.
                    self._drop_queued("no sender thread could be started", "unexpected")
                return

    def _run(self) -> None:
        try:
            while True:
                taken = self._next()
                if taken is None:
                    return
                ticket, message, grow = taken
                if grow:
                    self._start_senders(grow)
                self._deliver(ticket, message)
        except BaseException:  # pragma: no cover - a last guard: nothing escapes a sender
            logger.exception("unexpected error in a sender thread")
            with self.ledger.lock:
                self._senders -= 1
        finally:
            with self.ledger.lock:
                self._threads.discard(threading.current_thread())

    def _next(self) -> tuple[int, Message, int] | None:
        """Wait for a message this sender may send; ``None`` when it should end."""
        ledger = self.ledger
        concurrency = self._concurrency
        with ledger.lock:
            while True:
                if self._interrupt.is_set() or (ledger.closed and not self._queue):
                    self._senders -= 1
                    return None
                pause = concurrency.paused_for(time.monotonic()) if self._queue else 0.0
                if self._queue and not pause and ledger.in_flight < concurrency.allowed():
                    message = self._queue.popleft()
                    ticket = ledger.taken_locked()
                    self._in_flight[ticket] = message
                    if self._blocked:
                        self._space.notify()
                    return ticket, message, self._grow_locked()
                self._idle += 1
                woken = self._work.wait(pause or IDLE_SECONDS)
                self._idle -= 1
                if not woken and not pause and self._adaptive and not self._queue:
                    self._senders -= 1
                    return None

    def _grow_locked(self) -> int:
        """Reserve one more sender when the backlog needs it and the limit allows it."""
        allowed = min(self._concurrency.allowed(), self._settings.senders)
        if not self._adaptive or not self._queue or self._idle or self._senders >= allowed:
            return 0
        if self.ledger.closed:
            return 0
        self._senders += 1
        return 1

    def _deliver(self, ticket: int, message: Message) -> None:
        result = self._attempts.deliver(self._transports.current, message, self._interrupt, self)
        with self.ledger.lock:
            ours = self._in_flight.pop(ticket, None) is not None
        if ours:
            report(self.ledger, self._callbacks, message, ticket, result)
        else:
            # The shutdown deadline passed while it was in flight; it was reported then.
            logger.info(
                "message %s settled (%s) after shutdown had given it up",
                message.message_id,
                "delivered" if result.error is None else "not delivered",
            )

    # The gate shared by the senders' attempts (see _attempts.Gate).

    def wait_turn(self, interrupt: threading.Event) -> bool:
        """Wait out a ``Retry-After`` pause; ``False`` if interrupted meanwhile."""
        while True:
            with self.ledger.lock:
                pause = self._concurrency.paused_for(time.monotonic())
            if not pause:
                return True
            if interrupt.wait(pause):
                return False

    def finished(self, verdict: Verdict, latency: float) -> None:
        """Adapt the concurrency to an attempt's verdict and latency."""
        grow = 0
        with self.ledger.lock:
            concurrency = self._concurrency
            now = time.monotonic()
            if verdict.pause:
                concurrency.pause(verdict.pause, now)
            if verdict.pushback:
                concurrency.pushed_back(self.ledger.in_flight, now)
            elif verdict.delivered:
                before = concurrency.allowed()
                concurrency.delivered(latency, self.ledger.in_flight, now)
                if concurrency.allowed() > before and self._queue:
                    if self._idle:
                        self._work.notify()
                    else:
                        grow = self._grow_locked()
        if grow:
            self._start_senders(grow)

    # --- flush and shutdown -------------------------------------------------------------

    def _reentrant(self) -> bool:
        # From a callback, or a transport, on a thread whose message cannot settle until
        # the call returns: waiting would wait for itself.
        return self._callbacks.running_here() or threading.current_thread() in self._threads

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
            self._work.notify_all()  # idle senders end once the queue is empty
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
        with self.ledger.lock:
            # From here on, retry waits end at once and nothing new is sent.
            self._interrupt.set()
            self._work.notify_all()
            threads = [t for t in self._threads if t is not threading.current_thread()]
        self._drop_queued("shutdown deadline passed while it was queued", "shutdown")
        for thread in threads:
            thread.join(remaining(until))
        self._give_up_in_flight()
        self._transports.close()
        return settled

    def _drop_queued(self, reason: str, kind: DeliveryErrorKind) -> None:
        while True:
            with self.ledger.lock:
                if not self._queue:
                    return
                message = self._queue.popleft()
                ticket = self.ledger.taken_locked()
            error = refused_error(reason, message, kind=kind)
            report(self.ledger, self._callbacks, message, ticket, Result(0, error), "dropped")

    def _give_up_in_flight(self) -> None:
        with self.ledger.lock:
            stuck = list(self._in_flight.items())
            self._in_flight.clear()
        for ticket, message in stuck:
            error = refused_error(
                "shutdown deadline passed while its request was in flight",
                message,
                kind="shutdown",
            )
            report(self.ledger, self._callbacks, message, ticket, Result(0, error))

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
        self._transports.after_fork()

    def exit_flush(self) -> None:
        """Deliver what is queued, within ``exit_timeout``, before the interpreter exits."""
        self.shutdown(self._settings.exit_timeout)
