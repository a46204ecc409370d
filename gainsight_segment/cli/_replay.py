"""``gainsight-segment replay``: send a JSON Lines file of Segment messages to Gainsight.

The file is streamed line by line, so memory stays constant whatever its size: the client's
queue is bounded and blocks the reader when it is full. Every line that is not sent ends up
somewhere: delivered, skipped by the track whitelist, or written to the rejects file with its
line number and the reason (bad JSON, an invalid or unsupported message, a delivery failure).

:func:`replay` is the engine, a plain function of :class:`ReplayOptions`; :func:`run` is the
command, which turns parsed arguments into those options.
"""

from __future__ import annotations

import argparse
import os
import stat
import sys
import threading
import time
import uuid
from typing import IO, Any

import attrs

import gainsight_segment as gs

from ._messages import LINE_EXCERPT, MAX_LINE_BYTES, RejectedLine, parse_line, read_lines, submit
from ._parser import (
    DEFAULT_ENDPOINT,
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    CommandParser,
    add_client_options,
    add_command,
    client_access_key,
    non_negative_int,
    plural,
    positive_int,
    positive_seconds,
)
from ._progress import Progress, input_size, lines_read
from ._rejects import RejectWriter, open_rejects

# Queue length of the replaying client: large enough to keep every sender busy, small enough
# that memory stays constant. The reader blocks while it is full.
_QUEUE_PER_WORKER = 64
_BLOCK_TIMEOUT = 3600.0


@attrs.frozen(kw_only=True)
class ReplayOptions:
    """What to replay, and how.

    Attributes:
        file: The JSON Lines file; ``"-"`` for standard input.
        rejects: The rejects file; by default ``FILE.rejects.jsonl``, or ``rejects.jsonl``
            for standard input.
        access_key: The access key; ``None`` reads ``GAINSIGHT_ACCESS_KEY``.
        endpoint: Base URL of the event endpoint.
        track_whitelist: Track events to send; empty sends every track.
        workers: Requests in flight at once.
        dry_run: Validate every line, send nothing.
        flush_timeout: Seconds to wait at the end for delivery.
        progress_interval: Seconds between progress lines when stderr is not a terminal.
        progress_every: Lines between progress lines when stderr is not a terminal; 0: none.
        quiet: Show no progress.
    """

    file: str
    rejects: str | None = None
    access_key: str | None = None
    endpoint: str = DEFAULT_ENDPOINT
    track_whitelist: tuple[str, ...] = ()
    workers: int = 8
    dry_run: bool = False
    flush_timeout: float = 300.0
    progress_interval: float = 10.0
    progress_every: int = 0
    quiet: bool = False

    @property
    def from_stdin(self) -> bool:
        """Whether the input is standard input."""
        return self.file == "-"

    @property
    def rejects_path(self) -> str:
        """Where rejected lines go."""
        if self.rejects is not None:
            return self.rejects
        return "rejects.jsonl" if self.from_stdin else self.file + ".rejects.jsonl"


class ReplayError(Exception):
    """The replay cannot go on (e.g. the rejects file cannot be written)."""


def replay(
    options: ReplayOptions, stdout: IO[str], stderr: IO[str], stdin: IO[bytes] | None = None
) -> int:
    """Replay a file: send each line, then print the summary.

    Args:
        options: What to replay, and how.
        stdout: Where the summary goes.
        stderr: Where progress and warnings go.
        stdin: The input when ``options.file`` is ``"-"``; ``sys.stdin.buffer`` by default.

    Returns:
        The exit status: 0 if every line was sent or skipped by the whitelist, 1 if any
        was rejected or failed, 130 when interrupted.

    Raises:
        OSError: When the input or the rejects file cannot be opened.
        ReplayError: When the rejects file cannot be written, or is the input.
        ConfigurationError: When a client setting is invalid.
    """
    if options.from_stdin:
        source = stdin if stdin is not None else sys.stdin.buffer
    else:
        source = open(options.file, "rb")  # noqa: SIM115 - closed below
    try:
        rejects_path = options.rejects_path
        # Checked before the rejects file is opened, since opening it empties it.
        if _is_same_file(rejects_path, source):
            raise ReplayError(f"--rejects {rejects_path}: is the input file; choose another path")
        # Bad settings too are refused before the rejects file is created (or emptied).
        gs.Settings(**_client_settings(options))
        with open_rejects(rejects_path) as rejects:
            return _Replay(options, rejects, stderr).run(source, stdout)
    finally:
        if not options.from_stdin:
            source.close()


def _client_settings(options: ReplayOptions) -> dict[str, Any]:
    """The settings of the replaying client."""
    return {
        "access_key": options.access_key,
        "track_whitelist": list(options.track_whitelist) or None,
        "endpoint": options.endpoint,
        "workers": options.workers,
        "max_queue_size": options.workers * _QUEUE_PER_WORKER,
        "on_queue_full": "block",
        "block_timeout": _BLOCK_TIMEOUT,
        "exit_timeout": 0,
        "send": not options.dry_run,
    }


def _is_same_file(path: str, source: IO[bytes]) -> bool:
    """Whether ``path`` names the file ``source`` reads, through any name or link.

    Devices are never the same file here: reading /dev/null while discarding the rejects into
    it destroys nothing.
    """
    try:
        target = os.stat(path)
        opened = os.fstat(source.fileno())
    except (OSError, ValueError, AttributeError):
        # No such file yet, or an input without a descriptor (a test's BytesIO).
        return False
    same = (target.st_dev, target.st_ino) == (opened.st_dev, opened.st_ino)
    return same and not stat.S_ISCHR(opened.st_mode)


class _InFlight:
    """Line numbers of the messages handed to the client and not settled yet.

    The rejects file gets the line number of a message that fails delivery; delivered
    messages are forgotten, so this holds at most the queue's worth.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lines: dict[str, list[int]] = {}

    def add(self, message_id: str, line: int) -> None:
        with self._lock:
            self._lines.setdefault(message_id, []).append(line)

    def pop(self, message_id: object) -> int | None:
        if not isinstance(message_id, str):
            return None
        with self._lock:
            lines = self._lines.get(message_id)
            if not lines:
                return None
            line = lines.pop(0)
            if not lines:
                del self._lines[message_id]
            return line


class _Replay:
    """One replay: its client, its accounting and its progress."""

    def __init__(self, options: ReplayOptions, rejects: RejectWriter, stderr: IO[str]) -> None:
        self.options = options
        self.rejects = rejects
        self.stderr = stderr
        self.in_flight = _InFlight()
        self.read = self.bytes_read = self.validated = 0
        # The line being handed to the client, for Ctrl-C to account for.
        self.current: tuple[int, bytes] | None = None
        self.client = gs.Client(
            **_client_settings(options), on_error=self._on_error, on_success=self._on_success
        )

    def _on_error(self, error: gs.DeliveryError, payload: dict[str, Any]) -> None:
        line = self.in_flight.pop(payload.get("messageId"))
        reason = f"not delivered: {error}"
        if error.body:
            reason += f" (response: {error.body})"
        self.rejects.write(line, reason, payload, kind="undelivered")

    def _on_success(self, payload: dict[str, Any]) -> None:
        self.in_flight.pop(payload.get("messageId"))

    def counts(self) -> tuple[int, int, int]:
        """``(done, rejected, failed)`` so far: done is sent, or validated in a dry run."""
        stats = self.client.stats()
        done = self.validated if self.options.dry_run else stats.delivered
        return done, self.rejects.counts["invalid"], stats.failed + stats.dropped

    def run(self, source: IO[bytes], stdout: IO[str]) -> int:
        """Send every line of ``source``, wait for delivery, print the summary."""
        options = self.options
        progress = Progress(
            self.stderr,
            input_size(source),
            interval=options.progress_interval,
            every=options.progress_every,
            enabled=not options.quiet,
            done="validated" if options.dry_run else "sent",
        )
        started = time.monotonic()
        interrupted = settled = False
        try:
            try:
                self._send_lines(source, progress)
                progress.finish(self.read, self.bytes_read)
                settled = self._settle()
            except KeyboardInterrupt:
                interrupted = True
        finally:
            # Whatever is left is given up here and reported to on_error, so to the rejects.
            self.client.shutdown(timeout=5.0 if settled else 1.0)
        if interrupted:
            self._reject_unsent_line()
        if self.rejects.write_error is not None:
            path = options.rejects_path
            raise ReplayError(f"cannot write {path}: {self.rejects.write_error}")
        stdout.write(self._summary(interrupted, time.monotonic() - started))
        stdout.flush()
        if interrupted:
            return EXIT_INTERRUPTED
        _, rejected, failed = self.counts()
        return EXIT_FAILED if rejected or failed else EXIT_OK

    def _send_lines(self, source: IO[bytes], progress: Progress) -> None:
        for number, raw, size, too_long in read_lines(source):
            self.bytes_read += size
            if not too_long and not raw.strip():
                continue
            self.read += 1
            self.current = (number, raw)
            self._send_line(number, raw, too_long, size)
            self.current = None
            if self.rejects.write_error is not None:
                return
            progress.update(self.read, self.bytes_read, self.counts)

    def _send_line(self, number: int, raw: bytes, too_long: bool, size: int) -> None:
        """Hand one line to the client, or write it to the rejects."""
        if too_long:
            self.rejects.write(
                number,
                f"line of {size:,} bytes is over the {MAX_LINE_BYTES:,}-byte limit "
                f"(message shows its first {LINE_EXCERPT} bytes)",
                raw.decode("utf-8", "replace"),
                kind="invalid",
            )
            return
        try:
            message = parse_line(raw)
        except RejectedLine as exc:
            self.rejects.write(number, str(exc), raw.decode("utf-8", "replace"), kind="invalid")
            return
        given = message.get("messageId")
        message_id = str(uuid.uuid4()) if given is None else str(given)
        # Registered before the call: a sender thread may report the message before it returns.
        self.in_flight.add(message_id, number)
        try:
            receipt = submit(self.client, message, message_id if given is None else None)
        except (RejectedLine, gs.InvalidMessageError) as exc:
            self.in_flight.pop(message_id)
            self.rejects.write(number, str(exc), message, kind="invalid")
            return
        if receipt.outcome in (gs.Outcome.FILTERED, gs.Outcome.DRY_RUN):
            self.in_flight.pop(message_id)
        if receipt.outcome is gs.Outcome.DRY_RUN:
            self.validated += 1

    def _reject_unsent_line(self) -> None:
        """Write the line Ctrl-C interrupted to the rejects, unless it reached the client.

        Ctrl-C may land anywhere while a line is handled: before the client has it (then it is
        written here), or after (then the client reports it, delivered or failed). The
        counters tell which: a line the client or the rejects account for is never written
        twice.
        """
        if self.current is None:
            return
        done, rejected, failed = self.counts()
        if done + self.client.stats().filtered + rejected + failed >= self.read:
            return
        number, raw = self.current
        try:
            message: Any = parse_line(raw)
        except RejectedLine:
            message = raw.decode("utf-8", "replace")
        reason = "not attempted: interrupted before it was sent"
        self.rejects.write(number, reason, message, kind="not attempted")

    def _settle(self) -> bool:
        timeout = self.options.flush_timeout
        if self.client.flush(timeout):
            return True
        stats = self.client.stats()
        left = plural(stats.pending + stats.in_flight, "message")
        self.stderr.write(
            f"gainsight-segment: warning: {left} still undelivered after the {timeout:g} s "
            f"flush deadline; giving up on them (see {self.options.rejects_path})\n"
        )
        return False

    def _summary(self, interrupted: bool, elapsed: float) -> str:
        options = self.options
        done, rejected, failed = self.counts()
        name = "<stdin>" if options.from_stdin else options.file
        lines = [
            f"{'interrupted' if interrupted else 'replayed'} {name}: "
            + lines_read(self.read, elapsed)
            + (" [dry run]" if options.dry_run else ""),
            f"  {'validated' if options.dry_run else 'sent'}: {done:,}",
            f"  skipped by whitelist: {self.client.stats().filtered:,}",
            f"  rejected: {rejected:,}",
            f"  failed: {failed:,}",
        ]
        not_attempted = self.rejects.counts["not attempted"]
        if interrupted:
            lines.append(f"  not attempted: {not_attempted:,}")
        if rejected or failed or not_attempted:
            lines.append(f"rejects written to {options.rejects_path}")
        return "\n".join(lines) + "\n"


# The command ------------------------------------------------------------------------------


def add_parser(commands: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``replay`` command."""
    parser = add_command(
        commands,
        "replay",
        run,
        summary="send a JSON Lines file of Segment messages (e.g. a Segment export)",
        description="Send each line of FILE, a Segment message, through the client, applying "
        "the track whitelist. Lines that cannot be sent go to the rejects file with their "
        "line number and the reason.",
    )
    parser.add_argument("file", metavar="FILE", help="the JSON Lines file; - for stdin")
    add_client_options(parser, whitelist=True, dry_run="validate every line, send nothing")
    parser.add_argument(
        "--workers",
        metavar="N",
        type=positive_int,
        default=8,
        help="requests in flight at once (default: 8)",
    )
    parser.add_argument(
        "--rejects",
        metavar="PATH",
        help="where lines that were not sent go (default: FILE.rejects.jsonl, "
        "or rejects.jsonl for stdin)",
    )
    parser.add_argument(
        "--progress-interval",
        metavar="SECONDS",
        type=positive_seconds,
        default=10.0,
        help="seconds between progress lines when stderr is not a terminal (default: 10)",
    )
    parser.add_argument(
        "--progress-every",
        metavar="LINES",
        type=non_negative_int,
        default=0,
        help="also print a progress line every LINES lines when stderr is not a terminal",
    )
    parser.add_argument("--quiet", action="store_true", help="show no progress")
    parser.add_argument(
        "--flush-timeout",
        metavar="SECONDS",
        type=positive_seconds,
        default=300.0,
        help="seconds to wait at the end for delivery (default: 300)",
    )


def run(args: argparse.Namespace) -> int:
    """Run ``gainsight-segment replay`` with parsed arguments."""
    options = ReplayOptions(
        file=args.file,
        rejects=args.rejects,
        access_key=client_access_key(args),
        endpoint=args.endpoint,
        track_whitelist=tuple(args.track_whitelist),
        workers=args.workers,
        dry_run=args.dry_run,
        flush_timeout=args.flush_timeout,
        progress_interval=args.progress_interval,
        progress_every=args.progress_every,
        quiet=args.quiet,
    )
    try:
        return replay(options, sys.stdout, sys.stderr)
    except ReplayError as exc:
        raise CliError(str(exc)) from None
