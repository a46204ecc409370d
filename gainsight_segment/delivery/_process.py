"""The process around an engine: forks and the interpreter's exit.

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
import sys
import weakref
from typing import Protocol

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
