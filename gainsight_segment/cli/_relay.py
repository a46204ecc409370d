"""``gainsight-segment relay PATH``: deliver an outbox file's messages from a process of its own.

Apps write with ``Client(outbox=PATH, workers=0)`` and return at once; the relay is a
client on the same file whose senders do the delivering. It runs until SIGTERM or SIGINT,
which stop it gracefully: requests in flight get ``--grace`` seconds to finish, and what
is not delivered stays in the file for the next relay. With ``--once`` it delivers what
the file held when it started, then exits.

:func:`relay` is the engine, a plain function of :class:`RelayOptions`; :func:`run` is the
command, which turns parsed arguments into those options.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import select
import signal
import socket
import sys
import threading
import time
from types import FrameType
from typing import IO, Any

import attrs

import gainsight_segment as gs
from gainsight_segment.outbox import Outbox, OutboxError, OutboxSummary

from ._logs import warnings_to
from ._parser import (
    DEFAULT_ENDPOINT,
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    CommandParser,
    add_client_options,
    add_command,
    client_access_key,
    plural,
    positive_int,
    positive_seconds,
)

# The client's own default, read from its settings rather than copied.
DEFAULT_MAX_WORKERS = int(str(attrs.fields(gs.Settings).max_workers.default))
# How often --once looks whether what the file held at the start has gone.
ONCE_CHECK_SECONDS = 0.2


@attrs.frozen(kw_only=True)
class RelayOptions:
    """What to relay, and how.

    Attributes:
        path: The outbox file; created when missing, so the relay may start first.
        access_key: The access key; ``None`` reads ``GAINSIGHT_ACCESS_KEY``.
        endpoint: Base URL of the event endpoint.
        max_workers: The most requests in flight at once.
        once: Deliver what the file holds now, then exit.
        timeout: With ``once``, the longest run, in seconds.
        grace: Seconds requests in flight get to finish once the relay is told to stop.
        interval: Seconds between progress lines.
        quiet: Print only the summary at the end.
    """

    path: str
    access_key: str | None = None
    endpoint: str = DEFAULT_ENDPOINT
    max_workers: int = DEFAULT_MAX_WORKERS
    once: bool = False
    timeout: float = 300.0
    grace: float = 10.0
    interval: float = 60.0
    quiet: bool = False


def relay(options: RelayOptions, stdout: IO[str], stderr: IO[str]) -> int:
    """Deliver from an outbox file until told to stop (or, with ``once``, until done).

    Args:
        options: What to relay, and how.
        stdout: Where progress lines go.
        stderr: Where the library's warnings go (an outage, a file that cannot be used).

    Returns:
        The exit status: with ``once``, 0 when every message the file held at the start
        was delivered and none was refused, else 1; without, 0 once stopped by a signal.

    Raises:
        OutboxError: When the file cannot be opened.
        ConfigurationError: When a client setting is invalid.
    """
    gs.Settings(**_client_settings(options))  # bad settings are told before anything starts
    with Outbox(options.path) as outbox, _Wakeup() as wakeup, warnings_to(stderr):
        return _Relay(options, outbox, stdout).run(wakeup)


def _client_settings(options: RelayOptions) -> dict[str, Any]:
    return {
        "access_key": options.access_key,
        "endpoint": options.endpoint,
        "max_workers": options.max_workers,
        "outbox": options.path,
        # The relay stops itself, with its own grace period.
        "exit_timeout": 0,
    }


class _Relay:
    """One run of the relay: its client, its clock and its lines."""

    def __init__(self, options: RelayOptions, outbox: Outbox, stdout: IO[str]) -> None:
        self.options = options
        self.outbox = outbox
        self.stdout = stdout
        self.first = outbox.summary()
        # Messages written before this moment are the ones --once delivers.
        self.started_at = time.time()
        self.started = time.monotonic()
        self.client = gs.Client(**_client_settings(options))

    def run(self, wakeup: _Wakeup) -> int:
        options = self.options
        mode = " (once)" if options.once else ""
        self._line(
            f"relay{mode}: delivering from {options.path} to {self.client.settings.endpoint}"
        )
        self._line(f"relay: {_state(self.first)}")
        done = False
        try:
            done = self._wait(wakeup)
            if wakeup.signal is not None:
                self._line(
                    f"relay: {wakeup.signal_name} received, stopping "
                    f"({options.grace:g} s grace; a second signal stops at once)",
                    always=True,
                )
        finally:
            # In-flight requests get the grace period; the rest stays in the file.
            self.client.shutdown(timeout=options.grace)
        stats = self.client.stats()
        took = time.monotonic() - self.started
        if done:
            why = f"done in {took:.1f} s"
        elif wakeup.signal is not None:
            why = f"stopped by {wakeup.signal_name} after {took:.1f} s"
        else:
            why = f"stopped at --timeout {options.timeout:g} s"
        self._line(
            f"relay {why}: {stats.delivered:,} delivered, {stats.failed:,} refused", always=True
        )
        self._line(f"relay: {_state(self.outbox.summary())}", always=True)
        if not options.once:
            return EXIT_OK
        return EXIT_OK if done and not stats.failed else EXIT_FAILED

    def _wait(self, wakeup: _Wakeup) -> bool:
        """Wait for a signal, the end of the run, or the next line; whether --once is done."""
        options = self.options
        until = self.started + options.timeout if options.once else None
        next_line = self.started + options.interval
        while True:
            now = time.monotonic()
            if options.once:
                if self._once_done():
                    return True
                if until is not None and now >= until:
                    return False
            if now >= next_line:
                self._progress()
                next_line = now + options.interval
            wait = next_line - now
            if options.once and until is not None:
                wait = min(wait, ONCE_CHECK_SECONDS, max(0.0, until - now))
            if wakeup.wait(wait):
                return options.once and self._once_done()

    def _once_done(self) -> bool:
        summary = self.outbox.summary()
        if not summary.waiting:
            return True
        # What is left was written after the relay started: it is not this run's.
        return summary.oldest_age is not None and summary.oldest_age < time.time() - self.started_at

    def _progress(self) -> None:
        stats = self.client.stats()
        self._line(
            f"relay: {stats.delivered:,} delivered, {stats.failed:,} refused; "
            f"{_state(self.outbox.summary())}"
        )

    def _line(self, text: str, *, always: bool = False) -> None:
        if always or not self.options.quiet:
            self.stdout.write(text + "\n")
            self.stdout.flush()


def _state(summary: OutboxSummary) -> str:
    """What the file holds, e.g. ``12 waiting (oldest 3.2 s), 0 dead letters``."""
    waiting = f"{summary.waiting:,} waiting"
    if summary.oldest_age is not None:
        waiting += f" (oldest {summary.oldest_age:.1f} s)"
    return f"{waiting}, {plural(summary.dead_letters, 'dead letter')}"


class _Wakeup:
    """Waits of the main thread that SIGTERM and SIGINT end at once.

    The handlers only record the signal: a wake-up byte on a socket (Python's
    ``signal.set_wakeup_fd``) ends the wait, so no lock is taken in a handler. The first
    signal restores the previous handlers: a second one acts as it would have (Ctrl-C
    twice interrupts the grace period; the claims of a relay that is gone are taken back
    by the next process that opens the file).
    """

    SIGNALS = ("SIGTERM", "SIGINT")

    def __init__(self) -> None:
        self.signal: int | None = None
        self._receive, self._send = socket.socketpair()
        self._previous: dict[int, Any] = {}
        self._previous_fd: int | None = None

    @property
    def signal_name(self) -> str:
        """The name of the signal received, e.g. ``SIGTERM``."""
        return signal.Signals(self.signal).name if self.signal is not None else ""

    def __enter__(self) -> _Wakeup:
        for sock in (self._receive, self._send):
            sock.setblocking(False)
        if threading.current_thread() is threading.main_thread():
            self._previous_fd = signal.set_wakeup_fd(self._send.fileno(), warn_on_full_buffer=False)
            for name in self.SIGNALS:
                number = getattr(signal, name, None)
                if number is not None:
                    self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signal = signum
        self._restore_handlers()

    def _restore_handlers(self) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)
        self._previous.clear()

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds; whether a signal came."""
        if self.signal is None:
            with contextlib.suppress(InterruptedError):
                select.select([self._receive], [], [], max(0.0, timeout))
            with contextlib.suppress(OSError):
                while self._receive.recv(512):
                    pass
        return self.signal is not None

    def __exit__(self, *exc_info: object) -> None:
        self._restore_handlers()
        if self._previous_fd is not None:
            signal.set_wakeup_fd(self._previous_fd)
        self._receive.close()
        self._send.close()


# The command ------------------------------------------------------------------------------


def add_parser(commands: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``relay`` command."""
    parser = add_command(
        commands,
        "relay",
        run,
        summary="deliver the messages of an outbox file, from a process of its own",
        description="Deliver the messages apps write to the outbox file PATH (with "
        "Client(outbox=PATH, workers=0), say) until SIGTERM or SIGINT, which stop it "
        "gracefully: requests in flight get --grace seconds to finish and the rest stays in "
        "the file. With --once, deliver what the file holds and exit: 0 when all of it was "
        "delivered, 1 when some is left or was refused.",
    )
    parser.add_argument("path", metavar="PATH", help="the outbox file (created when missing)")
    parser.add_argument(
        "--once",
        action="store_true",
        help="deliver what the file holds now, then exit",
    )
    add_client_options(parser, dry_run=None)
    parser.add_argument(
        "--max-workers",
        metavar="N",
        type=positive_int,
        default=DEFAULT_MAX_WORKERS,
        help=f"the most requests in flight at once (default: {DEFAULT_MAX_WORKERS})",
    )
    parser.add_argument(
        "--grace",
        metavar="SECONDS",
        type=positive_seconds,
        default=10.0,
        help="seconds requests in flight get to finish when stopping (default: 10)",
    )
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=positive_seconds,
        default=300.0,
        help="with --once: give up after SECONDS, leaving the rest in the file (default: 300)",
    )
    parser.add_argument(
        "--interval",
        metavar="SECONDS",
        type=positive_seconds,
        default=60.0,
        help="seconds between progress lines (default: 60)",
    )
    parser.add_argument("--quiet", action="store_true", help="print only the summary at the end")


def run(args: argparse.Namespace) -> int:
    """Run ``gainsight-segment relay`` with parsed arguments."""
    options = RelayOptions(
        path=args.path,
        access_key=client_access_key(args),
        endpoint=args.endpoint,
        max_workers=args.max_workers,
        once=args.once,
        timeout=args.timeout,
        grace=args.grace,
        interval=args.interval,
        quiet=args.quiet,
    )
    if os.path.isdir(options.path):
        raise CliError(f"{options.path}: is a directory; give the outbox file's path")
    try:
        return relay(options, sys.stdout, sys.stderr)
    except OutboxError as exc:
        raise CliError(str(exc)) from None
