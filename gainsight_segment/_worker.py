"""Background delivery: a bounded queue, sender threads, deadlines and fork handling."""

from __future__ import annotations

import atexit
import functools
import os
import queue
import sys
import threading
import time
import weakref
from typing import Callable, Union

from ._config import Settings
from ._engine import report, send
from ._errors import ClientClosedError, DeliveryError
from ._message import Message
from ._receipt import Outcome, Receipt
from ._report import Reporter, Stats, logger
from ._transport import Transport

_STOP = object()
# Idle senders wake this often to notice a stop they were not told about (every wait
# has a deadline).
_IDLE_WAKE = 5.0

# A queued message travels with the ticket its reporter gave it (see Reporter.queued_one).
_Item = Union[tuple[int, Message], object]


def _deadline(timeout: float | None) -> float | None:
    # Any number is a valid deadline: NaN and negatives mean now, and waits longer than
    # the platform can time (threading.TIMEOUT_MAX, some 292 years) mean no deadline
    # rather than an OverflowError. Ints are compared exactly, never converted to float.
    if timeout is None or timeout > threading.TIMEOUT_MAX:
        return None
    return time.monotonic() + (timeout if timeout > 0 else 0.0)


def _remaining(deadline: float | None) -> float | None:
    return None if deadline is None else max(0.0, deadline - time.monotonic())


def _warn_if_uwsgi_without_threads() -> None:
    try:
        import uwsgi
    except ImportError:
        return
    opt = getattr(uwsgi, "opt", {})
    if not opt.get("enable-threads") and not opt.get("threads"):
        logger.warning(
            "uWSGI is running without threads: background delivery cannot work. "
            "Start uWSGI with --enable-threads, or create the client with sync_mode=True."
        )


class ThreadedEngine:
    """Queues messages and delivers them from a pool of sender threads.

    Sender threads start on the first message, are daemons, and are re-created in a
    forked child, where the queue starts empty: what the parent queued stays the parent's.

    Args:
        settings: The client's settings.
        reporter: Where outcomes are counted and reported.
        make_transport: Builds the HTTP transport (again after a fork).
    """

    def __init__(
        self,
        settings: Settings,
        reporter: Reporter,
        make_transport: Callable[[Settings, threading.Event], Transport],
    ) -> None:
        self._settings = settings
        self._reporter = reporter
        self._make_transport = make_transport
        self._closed = False
        self._shut_down = threading.Event()
        self._settled_at_shutdown = True
        self._fresh_state()
        ref = weakref.ref(self)
        os.register_at_fork(after_in_child=functools.partial(_after_fork_in_child, ref))
        self._exit_hook = functools.partial(_flush_at_exit, ref)
        if settings.exit_timeout > 0:
            atexit.register(self._exit_hook)

    def _fresh_state(self) -> None:
        self._pid = os.getpid()
        self._queue: queue.SimpleQueue[_Item] = queue.SimpleQueue()
        self._interrupt = threading.Event()
        self._transport = self._make_transport(self._settings, self._interrupt)
        self._lock = threading.Lock()
        self._space = threading.Condition(self._lock)
        self._blocked = 0
        self._threads: list[threading.Thread] = []
        self._in_flight: dict[int, Message] = {}  # by ticket

    def _after_fork(self) -> None:
        # Everything shared with the parent (queue, locks, pooled sockets, threads) is
        # replaced; the counters start again at zero for the child's own messages.
        self._reporter.reset()
        self._fresh_state()
        # A multiprocessing child ends with os._exit(), which skips atexit: flush from
        # multiprocessing's own exit hook instead. Its registry of exit hooks is cleared
        # after the fork, so the hook is registered from its after-fork callbacks.
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None and self._settings.exit_timeout > 0:
            mp_util.register_after_fork(self, _register_multiprocessing_exit)

    def _start(self) -> None:
        with self._lock:
            if self._threads or self._closed:
                return
            _warn_if_uwsgi_without_threads()
            for index in range(self._settings.workers):
                thread = threading.Thread(
                    target=self._run,
                    args=(self._queue,),
                    name=f"gainsight-segment-sender-{index}",
                    daemon=True,
                )
                try:
                    thread.start()
                except RuntimeError:  # out of threads, or the interpreter is exiting
                    logger.exception("could not start sender thread %d", index)
                    return
                self._threads.append(thread)

    def submit(self, message: Message) -> Receipt:
        """Queue a message; when the queue is full, apply ``on_queue_full``.

        Raises:
            ClientClosedError: When the client was shut down.
        """
        if self._closed:
            raise ClientClosedError("the client was shut down; create a new Client")
        self._check_pid()
        if not self._threads:
            self._start()
            if not self._threads:
                return self._drop(message, "no sender thread could be started")
        limit = self._settings.max_queue_size
        # The bound is checked and the message queued under the lock shutdown() closes
        # with: exact under concurrent callers, and nothing is queued after the last drain.
        if self._reporter.enqueue(self._queue.put, message, limit) or self._wait_for_space(message):
            return Receipt(message.message_id, Outcome.QUEUED)
        return self._drop(message, f"queue full ({limit} messages): message dropped")

    def _drop(self, message: Message, reason: str) -> Receipt:
        error = DeliveryError(reason, message_id=message.message_id)
        self._reporter.dropped_one(message, error, self._reporter.queued_one())
        return Receipt(message.message_id, Outcome.DROPPED, error)

    def _check_pid(self) -> None:
        if self._pid != os.getpid():
            # Forked without Python's fork hooks (uWSGI without py-call-osafterfork, a fork
            # from C code): catch up before touching anything shared with the parent.
            self._after_fork()

    def _wait_for_space(self, message: Message) -> bool:
        settings = self._settings
        if settings.on_queue_full != "block":
            return False
        deadline = _deadline(settings.block_timeout)
        with self._space:
            self._blocked += 1
            try:
                while not self._reporter.enqueue(self._queue.put, message, settings.max_queue_size):
                    remaining = _remaining(deadline)
                    if remaining is not None and remaining <= 0:
                        return False
                    self._space.wait(remaining)
                return True
            finally:
                self._blocked -= 1

    def _run(self, work: queue.SimpleQueue[_Item]) -> None:
        while True:
            try:
                item = work.get(timeout=_IDLE_WAKE)
            except queue.Empty:
                # After a shutdown (or in a forked child, for the parent's queue) there is
                # nothing more to wait for.
                if self._interrupt.is_set() or work is not self._queue:
                    return
                continue
            if item is _STOP:
                return
            assert isinstance(item, tuple)
            ticket, message = item
            # Counted as taken before a blocked caller is woken, so that it finds the room.
            self._reporter.sending_one(ticket)
            if self._blocked:
                with self._space:
                    self._space.notify()
            try:
                self._deliver(ticket, message)
            except Exception:  # pragma: no cover - a last guard: senders never die
                logger.exception("unexpected error while delivering a message")

    def _deliver(self, ticket: int, message: Message) -> None:
        reporter = self._reporter
        # Checked and registered in one step with shutdown's give-up of what is in flight,
        # so that no message slips between the two.
        with self._lock:
            stopping = self._interrupt.is_set()
            if not stopping:
                self._in_flight[ticket] = message
        if stopping:
            reporter.dropped_one(
                message,
                DeliveryError(
                    "given up at shutdown before it was sent", message_id=message.message_id
                ),
                ticket,
            )
            return
        attempt = send(self._transport, message)
        with self._lock:
            ours = self._in_flight.pop(ticket, None) is not None
        if ours:
            report(reporter, message, attempt, ticket)
        else:
            # The shutdown deadline passed while this request was in flight and it was
            # reported then; report nothing twice.
            logger.info(
                "message %s settled (%s) after shutdown had given it up",
                message.message_id,
                "delivered" if attempt.error is None else "not delivered",
            )

    def flush(self, timeout: float | None) -> bool:
        """Wait until every message queued so far is delivered or given up.

        Args:
            timeout: Seconds to wait at most; ``None`` waits as long as delivery takes.

        Returns:
            ``True`` if everything settled in time. Whatever is left stays queued.
        """
        self._check_pid()
        if threading.current_thread() in self._threads:
            # Called from a callback on a sender thread: waiting would wait for itself.
            logger.warning("flush() called from a sender thread: not waiting")
            return False
        # Waits for the messages queued before this call, by ticket: counting settled
        # messages instead would let other threads' later messages stand in for them.
        return self._reporter.wait_queued(_deadline(timeout))

    def shutdown(self, timeout: float | None) -> bool:
        """Flush within the deadline, then stop; report whatever is left as not delivered.

        Args:
            timeout: Seconds for the whole shutdown; ``None`` waits for delivery to end.

        Returns:
            ``True`` if every message was delivered or given up before the deadline.
        """
        self._check_pid()
        with self._lock:
            first = not self._closed
            self._closed = True
        if not first:
            # Another call is shutting down (or has): its answer is this one's too.
            done = self._shut_down.wait(_remaining(_deadline(timeout)))
            return done and self._settled_at_shutdown
        try:
            self._settled_at_shutdown = self._stop(timeout)
        finally:
            self._shut_down.set()
        return self._settled_at_shutdown

    def _stop(self, timeout: float | None) -> bool:
        atexit.unregister(self._exit_hook)
        deadline = _deadline(timeout)
        settled = self.flush(timeout)
        with self._reporter.lock:
            # Calls racing this one are refused from now on, so the drain below is final.
            self._reporter.closed = True
        # From here on, retry waits end at once and nothing new is sent.
        self._interrupt.set()
        self._drop_queued()
        for _ in self._threads:
            self._queue.put(_STOP)
        for thread in self._threads:
            if thread is not threading.current_thread():
                thread.join(_remaining(deadline))
        self._give_up_in_flight()
        # Senders stuck in a request did not take their stop marker; clear them away.
        self._drop_queued()
        self._transport.close()
        return settled

    def _drop_queued(self) -> None:
        while True:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                assert isinstance(item, tuple)
                ticket, message = item
                self._reporter.dropped_one(
                    message,
                    DeliveryError(
                        "shutdown deadline passed while it was queued",
                        message_id=message.message_id,
                    ),
                    ticket,
                )

    def _give_up_in_flight(self) -> None:
        with self._lock:
            stuck = list(self._in_flight.items())
            self._in_flight.clear()
        for ticket, message in stuck:
            self._reporter.failed_one(
                message,
                DeliveryError(
                    "shutdown deadline passed while its request was in flight",
                    message_id=message.message_id,
                ),
                0,
                ticket,
            )

    def stats(self) -> Stats:
        """The counters, with the messages queued and in flight, read in one step."""
        self._check_pid()
        return self._reporter.snapshot()


def _after_fork_in_child(ref: weakref.ReferenceType[ThreadedEngine]) -> None:
    engine = ref()
    if engine is not None:
        engine._after_fork()


def _register_multiprocessing_exit(engine: ThreadedEngine) -> None:
    import multiprocessing.util

    multiprocessing.util.Finalize(
        engine, _flush_at_exit, args=(weakref.ref(engine),), exitpriority=10
    )


def _flush_at_exit(ref: weakref.ReferenceType[ThreadedEngine]) -> None:
    engine = ref()
    if engine is not None:
        engine.shutdown(engine._settings.exit_timeout)
