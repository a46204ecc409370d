"""Sender threads that follow the backlog, shared by the in-memory queue and the outbox.

By default no sender runs while the client is idle. The first message starts one; a
sender that takes a message while more are waiting starts another, as long as the
adaptive limit (see ``_concurrency``) allows more requests in flight, up to
``max_workers``; a sender with nothing to do for a few seconds ends. With a fixed
``workers=N``, N senders start with the first message and stay.

Where messages come from and what happens to them after is the :class:`Feed`'s business.
The ledger's lock guards the feed's queue, the counters and the senders' bookkeeping.
"""

from __future__ import annotations

import contextlib
import threading
import time
from typing import Protocol

from gainsight_segment._settings import Settings

from ._attempts import Attempts, Result
from ._callbacks import logger
from ._concurrency import Concurrency
from ._engines import Transports, remaining
from ._ledger import Ledger
from ._policy import Verdict
from ._process import warn_if_uwsgi_without_threads

# An adaptive sender with nothing to do for this long ends; a fixed one wakes this often
# (every wait has a deadline).
IDLE_SECONDS = 5.0
THREAD_NAME = "gainsight-segment-sender"

Token = object


class Feed(Protocol):
    """Where senders take messages from, and what becomes of them after."""

    polls: float | None
    """Seconds between looks for work that nobody announces (another process's, on
    disk), or ``None`` when every message is announced (:meth:`Senders.wake_locked`)."""

    def ready_locked(self) -> bool:
        """Whether a message can be taken now (the lock is held)."""

    def take_locked(self) -> tuple[bytes, Token]:
        """The next message's body, and what the feed wants back with it (lock held)."""

    def refill(self) -> bool:
        """Look for more messages, without the lock; whether any became ready."""

    def drained_locked(self) -> bool:
        """Whether nothing more will come: the client is closed and nothing is ready."""

    def finished(self, ticket: int, body: bytes, token: Token, result: Result) -> None:
        """Settle a message whose delivery ended (without the lock)."""


class Senders:
    """The sender threads of one engine.

    Args:
        settings: The client's settings (``workers``, ``max_workers``).
        transports: The transport to send through.
        attempts: Sends one message with retries.
        ledger: Its lock is the senders' too; tickets come from it.
        feed: Where messages come from.
        keep_one: Keep one sender even when idle (it looks for unannounced work).
    """

    def __init__(
        self,
        settings: Settings,
        transports: Transports,
        attempts: Attempts,
        ledger: Ledger,
        feed: Feed,
        *,
        keep_one: bool = False,
    ) -> None:
        self._settings = settings
        self._transports = transports
        self._attempts = attempts
        self._ledger = ledger
        self._feed = feed
        self._keep_one = keep_one
        self._adaptive = settings.workers is None
        self.fresh_state()

    def fresh_state(self) -> None:
        """Forget every thread and count (a new client, or a forked child)."""
        self._work = threading.Condition(self._ledger.lock)
        self._threads: set[threading.Thread] = set()
        self._in_flight: dict[int, tuple[bytes, Token]] = {}
        self._count = 0  # started or starting
        self._idle = 0  # waiting on _work
        self._started = 0  # for thread names
        self._refilling = False
        self.concurrency = Concurrency(self._settings.senders, adaptive=self._adaptive)
        self.interrupt = threading.Event()
        self._admitted = 0

    # --- starting ------------------------------------------------------------------------

    def wake_locked(self) -> int:
        """Announce a message (lock held); return how many senders to :meth:`start`."""
        if self._idle:
            self._work.notify()
            return 0
        if self._count:
            return 0
        wanted = self._settings.senders if not self._adaptive else 1
        self._count += wanted
        return wanted

    def start(self, count: int) -> bool:
        """Start ``count`` senders, reserved by :meth:`wake_locked`; ``False`` if none runs."""
        if not self._started:
            warn_if_uwsgi_without_threads()
        for _ in range(count):
            self._started += 1
            thread = threading.Thread(
                target=self._run, name=f"{THREAD_NAME}-{self._started}", daemon=True
            )
            with self._ledger.lock:
                self._threads.add(thread)
            try:
                thread.start()
            except RuntimeError:  # out of threads, or the interpreter is exiting
                logger.exception("could not start a sender thread")
                with self._ledger.lock:
                    self._threads.discard(thread)
                    self._count -= 1
                    return bool(self._count)
        return True

    def is_sender(self) -> bool:
        """Whether the current thread is one of these senders."""
        return threading.current_thread() in self._threads

    # --- running -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while True:
                taken = self._next()
                if taken is None:
                    return
                ticket, body, token, grow = taken
                if grow:
                    self.start(grow)
                result = self._attempts.deliver(
                    self._transports.current, body, self.interrupt, self
                )
                with self._ledger.lock:
                    ours = self._in_flight.pop(ticket, None) is not None
                if ours:
                    self._feed.finished(ticket, body, token, result)
                else:
                    # The shutdown deadline passed while it was in flight; it was
                    # settled then: settle nothing twice.
                    logger.info("a message settled after shutdown had given it up")
        except BaseException:  # pragma: no cover - a last guard: nothing escapes a sender
            logger.exception("unexpected error in a sender thread")
            with self._ledger.lock:
                self._count -= 1
        finally:
            with self._ledger.lock:
                self._threads.discard(threading.current_thread())

    def _next(self) -> tuple[int, bytes, Token, int] | None:
        """Wait for a message this sender may send; ``None`` when it should end."""
        ledger, feed, concurrency = self._ledger, self._feed, self.concurrency
        with ledger.lock:
            while True:
                if self.interrupt.is_set() or feed.drained_locked():
                    self._count -= 1
                    return None
                ready = feed.ready_locked()
                pause = concurrency.paused_for(time.monotonic()) if ready else 0.0
                if ready and not pause and ledger.in_flight < concurrency.allowed():
                    body, token = feed.take_locked()
                    ticket = ledger.taken_locked()
                    self._in_flight[ticket] = (body, token)
                    return ticket, body, token, self._grow_locked()
                if (
                    not ready
                    and feed.polls is not None
                    and not self._refilling
                    and self._refill_unlocked()
                ):
                    continue
                wait = pause or (feed.polls if feed.polls and not ready else IDLE_SECONDS)
                self._idle += 1
                woken = self._work.wait(wait)
                self._idle -= 1
                if not woken and not pause and self._retires() and not feed.ready_locked():
                    self._count -= 1
                    return None

    def _refill_unlocked(self) -> bool:
        # Called with the lock held; releases it while the feed reads from disk.
        self._refilling = True
        self._ledger.lock.release()
        try:
            found = self._feed.refill()
        finally:
            self._ledger.lock.acquire()
            self._refilling = False
        if found and self._idle:
            self._work.notify_all()
        return found

    def _retires(self) -> bool:
        if not self._adaptive:
            return False
        return not self._keep_one or self._count > 1

    def _grow_locked(self) -> int:
        """Reserve one more sender when the backlog needs it and the limit allows it."""
        allowed = min(self.concurrency.allowed(), self._settings.senders)
        if not self._adaptive or self._idle or self._count >= allowed:
            return 0
        if self._ledger.closed or not self._feed.ready_locked():
            return 0
        self._count += 1
        return 1

    # The gate shared by the senders' attempts (see _attempts.Gate).

    def wait_turn(self, interrupt: threading.Event) -> bool:
        """Wait out a ``Retry-After`` pause; ``False`` if interrupted meanwhile."""
        while True:
            with self._ledger.lock:
                pause = self.concurrency.paused_for(time.monotonic())
            if not pause:
                return True
            if interrupt.wait(pause):
                return False

    def finished(self, verdict: Verdict, latency: float) -> None:
        """Adapt the concurrency to an attempt's verdict and latency."""
        grow = 0
        with self._ledger.lock:
            concurrency = self.concurrency
            now = time.monotonic()
            if verdict.pause:
                concurrency.pause(verdict.pause, now)
            if verdict.pushback:
                concurrency.pushed_back(self._ledger.in_flight, now)
            elif verdict.delivered:
                self._admitted += 1
                before = concurrency.allowed()
                concurrency.delivered(latency, self._ledger.in_flight, now)
                if concurrency.allowed() > before and self._feed.ready_locked():
                    if self._idle:
                        self._work.notify()
                    else:
                        grow = self._grow_locked()
        if grow:
            self.start(grow)

    def admitted(self) -> int:
        """How many attempts the endpoint accepted so far."""
        return self._admitted

    # --- stopping ------------------------------------------------------------------------

    def notify_all_locked(self) -> None:
        """Wake every idle sender, to see that the client closed (lock held)."""
        self._work.notify_all()

    def stop(self, until: float | None) -> list[tuple[int, bytes, Token]]:
        """Interrupt the senders, wait for them until ``until``, and return what is left in
        flight (no longer theirs to settle)."""
        with self._ledger.lock:
            # From here on, retry waits end at once and nothing new is sent.
            self.interrupt.set()
            self._work.notify_all()
            threads = [t for t in self._threads if t is not threading.current_thread()]
        for thread in threads:
            # One still starting (counted before its start) sees the interrupt at once.
            with contextlib.suppress(RuntimeError):
                thread.join(remaining(until))
        with self._ledger.lock:
            stuck = [(ticket, body, token) for ticket, (body, token) in self._in_flight.items()]
            self._in_flight.clear()
        return stuck
