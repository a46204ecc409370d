"""The process around an engine: forks, the interpreter's exit, and SIGTERM.

A forked child (gunicorn ``--preload``, uWSGI, multiprocessing) shares nothing usable
with its parent's client: locks may be held by threads that do not exist in the child,
pooled connections would mix up responses, and the parent's queue is the parent's. The
engine is told to start afresh, by Python's fork hook, or by a process-id check on every
entry point for forks that skip Python's hooks (uWSGI without ``py-call-osafterfork``,
``fork()`` from C).
"""

from __future__ import annotations

import atexit
import functools
import os
import signal
import sys
import threading
import weakref
from types import FrameType
from typing import Callable, Protocol

from gainsight_segment._errors import ConfigurationError

from ._callbacks import logger


class Restartable(Protocol):
    """What :class:`ProcessWatch` calls back."""

    def after_fork(self) -> None:
        """Start afresh in a forked child."""

    def exit_flush(self) -> None:
        """Deliver what is queued before the interpreter exits."""


class ProcessWatch:
    """Calls an engine back after a fork, in the child, and at the interpreter's exit.

    The engine is held weakly: a client that was dropped is not kept alive by its hooks.

    Args:
        engine: The engine.
        at_exit: Whether to flush at exit (``exit_timeout > 0``).
    """

    def __init__(self, engine: Restartable, *, at_exit: bool) -> None:
        self._pid = os.getpid()
        self._at_exit = at_exit
        ref = weakref.ref(engine)
        os.register_at_fork(after_in_child=functools.partial(_after_fork_in_child, ref))
        self._exit_hook = functools.partial(_exit_flush, ref)
        if at_exit:
            atexit.register(self._exit_hook)

    def check(self, engine: Restartable) -> None:
        """Catch up with a fork that skipped Python's hooks (cheap when there was none)."""
        if self._pid != os.getpid():
            engine.after_fork()

    def forked(self, engine: Restartable) -> None:
        """Record the fork; arrange the child's exit flush."""
        self._pid = os.getpid()
        # A multiprocessing child ends with os._exit(), which skips atexit: flush from
        # multiprocessing's own exit hook instead. Its registry of exit hooks is cleared
        # after the fork, so the hook is registered from its after-fork callbacks.
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None and self._at_exit:
            mp_util.register_after_fork(engine, _register_multiprocessing_exit)

    def cancel_exit(self) -> None:
        """Forget the exit flush (the engine was shut down)."""
        atexit.unregister(self._exit_hook)


def _after_fork_in_child(ref: weakref.ReferenceType[Restartable]) -> None:
    engine = ref()
    if engine is not None:
        engine.after_fork()


def _register_multiprocessing_exit(engine: Restartable) -> None:
    import multiprocessing.util

    multiprocessing.util.Finalize(engine, _exit_flush, args=(weakref.ref(engine),), exitpriority=10)


def _exit_flush(ref: weakref.ReferenceType[Restartable]) -> None:
    engine = ref()
    if engine is not None:
        engine.exit_flush()


def warn_if_uwsgi_without_threads() -> None:
    """Warn when running in uWSGI without threads, where no sender thread would run."""
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


class SigtermFlush:
    """Flushes a client when the process gets SIGTERM, then lets the signal go on.

    Containers stop processes with SIGTERM, which by default ends the process at once,
    skipping the exit flush. The handler flushes on a thread of its own (the main thread
    may hold a lock the flush needs), within ``timeout``; then it signals the process
    again and, in the main thread, passes the signal to whatever handled it before: the
    default (the process ends), the app's own handler, or nothing if it was ignored.

    Args:
        flush: Flushes the client within the given seconds.
        timeout: Seconds the flush may take.
    """

    def __init__(self, flush: Callable[[float], bool], timeout: float) -> None:
        self._flush = flush
        self._timeout = timeout
        self._flushing: threading.Thread | None = None
        self._done = False
        if threading.current_thread() is not threading.main_thread():
            raise ConfigurationError(
                "flush_on_sigterm(): signal handlers can only be installed from the main thread"
            )
        self._previous = signal.signal(signal.SIGTERM, self._handle)
        if timeout <= 0:
            logger.warning(
                "flush_on_sigterm(): exit_timeout is 0, so SIGTERM will not wait for delivery"
            )

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self._done:
            self._done = False
            self._pass_on(signum, frame)
            return
        if self._flushing is not None and self._flushing.is_alive():
            return  # already flushing: one flush per signal
        logger.info("SIGTERM: delivering what is queued, within %g s", self._timeout)
        self._flushing = threading.Thread(
            target=self._flush_then_resignal, name="gainsight-segment-sigterm", daemon=True
        )
        self._flushing.start()

    def _flush_then_resignal(self) -> None:
        try:
            self._flush(self._timeout)
        except Exception:  # pragma: no cover - flush() never raises; a last guard
            logger.exception("flushing at SIGTERM failed")
        finally:
            self._done = True
            os.kill(os.getpid(), signal.SIGTERM)

    def _pass_on(self, signum: int, frame: FrameType | None) -> None:
        previous = self._previous
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            # The default action, or a handler installed from C: end the process as the
            # signal would have. As process 1 (a container's init) the kernel would ignore
            # it; leave with the status a shell gives a process ended by SIGTERM instead.
            if os.getpid() == 1:
                sys.exit(128 + signal.SIGTERM)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
