"""``gainsight-segment replay``: send a JSON Lines file of Segment messages to Gainsight.

The file is streamed line by line, so memory stays constant whatever its size: the client's
queue is bounded and blocks the reader when it is full. Every line that is not sent ends up
somewhere: delivered, skipped by the track whitelist, or written to the rejects file with its
line number and the reason (bad JSON, an invalid or unsupported message, a delivery failure).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import stat
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import IO, Any, Callable, NoReturn

from ._client import Client
from ._errors import DeliveryError, InvalidMessageError
from ._message import new_message_id
from ._receipt import Outcome, Receipt

SUPPORTED_TYPES = ("identify", "track", "group")
# Far above the 32 KB message limit: a longer line cannot be a valid message, and reading it
# whole could exhaust memory. Its start is kept in the rejects file.
MAX_LINE_BYTES = 1 << 20
_LINE_EXCERPT = 1000
# Queue length of the replaying client: large enough to keep every sender busy, small enough
# that memory stays constant. The reader blocks while it is full.
_QUEUE_PER_WORKER = 64
_BLOCK_TIMEOUT = 3600.0
_TTY_REDRAW = 0.1
_BAR_WIDTH = 24

_ISO_DATETIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?"
    r"\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)


class RejectedLine(Exception):
    """A line that cannot be replayed; the text is the reason written to the rejects file."""


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 date or date-time, as Segment writes them, on every Python version.

    Accepts a ``Z`` or numeric offset, any number of fraction digits (``.339``,
    ``.123456789``), and a date alone. A result without an offset is naive, which the
    message builder takes as UTC.

    Args:
        text: e.g. ``"2014-05-05T08:00:00.000Z"``.

    Returns:
        The date-time.

    Raises:
        ValueError: When ``text`` is not an ISO-8601 date or date-time.
    """
    match = _ISO_DATETIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an ISO-8601 date-time: {text[:40]!r}")
    day, clock, fraction, offset = match.groups()
    iso = day
    if clock:
        iso += "T" + (clock if len(clock) == 8 else clock + ":00")
        if fraction:
            iso += "." + (fraction + "000000")[:6]
    if offset:
        if offset in ("Z", "z"):
            offset = "+00:00"
        elif len(offset) == 3:
            offset += ":00"
        elif ":" not in offset:
            offset = f"{offset[:3]}:{offset[3:]}"
        iso += offset
    try:
        return datetime.fromisoformat(iso)
    except ValueError as exc:
        raise ValueError(f"not a valid date-time: {text[:40]!r} ({exc})") from None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def parse_line(raw: bytes) -> dict[str, Any]:
    """Decode one line of the file into a JSON object.

    Args:
        raw: The line's bytes, without its line break.

    Returns:
        The object.

    Raises:
        RejectedLine: When the line is not UTF-8, not strict JSON (``NaN`` is refused) or
            not an object.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedLine(f"not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise RejectedLine(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise RejectedLine(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RejectedLine(f"not a JSON object but a {type(value).__name__}")
    return value


def submit(client: Client, message: Mapping[str, Any], message_id: str | None = None) -> Receipt:
    """Hand one Segment message to a client, as the matching ``identify``/``track``/``group``.

    Fields other than ``type``, ``userId``, ``anonymousId``, ``event``, ``properties``,
    ``traits``, ``groupId``, ``context``, ``integrations`` and ``timestamp`` are ignored
    (exports carry ``receivedAt``, ``sentAt`` and the like, which are set again on sending).

    Args:
        client: The client.
        message: The Segment message.
        message_id: The ``messageId`` to send it with; the message's own by default.

    Returns:
        The client's receipt.

    Raises:
        RejectedLine: When the type is missing or not one Gainsight accepts, or the
            timestamp cannot be parsed.
        InvalidMessageError: When the client cannot build the message.
    """
    kind = message.get("type")
    if not isinstance(kind, str) or not kind:
        raise RejectedLine("type: missing; expected identify, track or group")
    kind = kind.lower()
    if kind not in SUPPORTED_TYPES:
        raise RejectedLine(
            f"type: {kind!r} is not supported; Gainsight accepts identify, track and group"
        )
    timestamp = message.get("timestamp")
    when: datetime | None = None
    if timestamp is not None:
        if not isinstance(timestamp, str):
            raise RejectedLine(
                f"timestamp: must be an ISO-8601 string, got {type(timestamp).__name__}"
            )
        try:
            when = parse_timestamp(timestamp)
        except ValueError as exc:
            raise RejectedLine(f"timestamp: {exc}") from None
    options: dict[str, Any] = {
        "anonymous_id": message.get("anonymousId"),
        "context": message.get("context"),
        "timestamp": when,
        "message_id": message.get("messageId") if message_id is None else message_id,
        "integrations": message.get("integrations"),
    }
    # Typed Any: the client validates each of them, naming the field when one is wrong.
    user_id: Any = message.get("userId")
    if kind == "identify":
        return client.identify(user_id, message.get("traits"), **options)
    if kind == "track":
        event: Any = message.get("event")
        return client.track(user_id, event, message.get("properties"), **options)
    group_id: Any = message.get("groupId")
    return client.group(user_id, group_id, message.get("traits"), **options)


class RejectWriter:
    """Appends rejected lines to a JSON Lines file; safe to call from any thread.

    Each record is ``{"line": N or null, "reason": "...", "message": original}`` and is
    flushed at once, so a crash loses nothing already rejected.

    Args:
        stream: The open text file to write to.
    """

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.invalid = 0
        self.undelivered = 0
        self.write_error: OSError | None = None

    def write(self, line: int | None, reason: str, message: Any, *, delivery: bool) -> None:
        """Write one record.

        A write error is kept in :attr:`write_error` rather than raised, since this also
        runs in the client's sender threads.

        Args:
            line: The line number in the input, or ``None`` when unknown.
            reason: Why the line was not sent.
            message: The original message (the raw text for a line that is not JSON).
            delivery: Whether it failed delivery (else it was invalid).
        """
        # ASCII escapes keep lone surrogates and odd bytes writable.
        record = json.dumps({"line": line, "reason": reason, "message": message})
        with self._lock:
            if delivery:
                self.undelivered += 1
            else:
                self.invalid += 1
            try:
                self._stream.write(record + "\n")
                self._stream.flush()
            except OSError as exc:
                if self.write_error is None:
                    self.write_error = exc


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


def _format_duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """Shows how far a replay got, on stderr.

    On a terminal: one line redrawn in place at most ten times a second, with a bar and
    an ETA when the input's size is known. Otherwise: a plain line every ``interval``
    seconds and, if set, every ``every`` lines.

    Args:
        stream: Where to write.
        total_bytes: The input's size, when known.
        interval: Seconds between plain lines.
        every: Lines between plain lines; ``0`` for none.
        enabled: ``False`` shows nothing.
        done: What the first count of ``stats`` is called, e.g. ``"sent"``.
        clock: The monotonic clock.
    """

    def __init__(
        self,
        stream: IO[str],
        total_bytes: int | None,
        *,
        interval: float,
        every: int = 0,
        enabled: bool = True,
        done: str = "sent",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._done = done
        self._total = total_bytes if total_bytes else None
        self._interval = interval
        self._every = every
        self._enabled = enabled
        self._clock = clock
        self._tty = enabled and _isatty(stream)
        self._start = clock()
        self._last = self._start
        self._width = 0

    def update(
        self, lines: int, bytes_read: int, stats: Callable[[], tuple[int, int, int]]
    ) -> None:
        """Show progress if it is time to.

        Args:
            lines: Lines read so far.
            bytes_read: Bytes read so far.
            stats: A zero-argument callable returning ``(done, rejected, failed)``.
        """
        if not self._enabled:
            return
        now = self._clock()
        if self._tty:
            if now - self._last >= _TTY_REDRAW:
                self._last = now
                self._draw(lines, bytes_read, now)
            return
        due = now - self._last >= self._interval or (self._every and lines % self._every == 0)
        if due:
            self._last = now
            done, rejected, failed = stats()
            self._stream.write(
                f"replay: {lines:,} lines read{self._percent(bytes_read)}, {done:,} {self._done}, "
                f"{rejected:,} rejected, {failed:,} failed, "
                f"{self._rate(lines, now):,.0f} events/s\n"
            )
            self._stream.flush()

    def finish(self, lines: int, bytes_read: int) -> None:
        """Draw the final state and end the terminal line."""
        if self._tty:
            self._draw(lines, bytes_read, self._clock())
            self._stream.write("\n")
            self._stream.flush()

    def _percent(self, bytes_read: int) -> str:
        if self._total is None:
            return ""
        return f" ({min(100.0, 100.0 * bytes_read / self._total):.1f}%)"

    def _rate(self, lines: int, now: float) -> float:
        elapsed = now - self._start
        return lines / elapsed if elapsed > 0 else 0.0

    def _draw(self, lines: int, bytes_read: int, now: float) -> None:
        rate = self._rate(lines, now)
        parts = []
        if self._total is not None:
            done = min(1.0, bytes_read / self._total)
            filled = int(done * _BAR_WIDTH)
            parts.append(f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {done * 100:5.1f}%")
        parts.append(f"{lines:,} lines")
        parts.append(f"{rate:,.0f} events/s")
        elapsed = now - self._start
        if self._total is not None and bytes_read and elapsed > 0:
            left = (self._total - bytes_read) / (bytes_read / elapsed)
            parts.append(f"ETA {_format_duration(max(0.0, left))}")
        text = "  ".join(parts)
        # Spaces wipe what a longer previous line left behind.
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _input_size(stream: IO[bytes]) -> int | None:
    try:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None
        return max(0, info.st_size - stream.tell())
    except (OSError, ValueError, AttributeError):
        return None


def _read_line(stream: IO[bytes]) -> tuple[bytes, int, bool]:
    """Read one line without ever holding more than ``MAX_LINE_BYTES`` of it.

    Returns:
        The line (its start, if too long) without the line break, the bytes it used in the
        input, and whether it was too long.
    """
    raw = stream.readline(MAX_LINE_BYTES + 1)
    size = len(raw)
    if len(raw) <= MAX_LINE_BYTES or raw.endswith(b"\n"):
        return raw.rstrip(b"\r\n"), size, False
    while True:
        rest = stream.readline(MAX_LINE_BYTES)
        size += len(rest)
        if not rest or rest.endswith(b"\n"):
            return raw[:_LINE_EXCERPT], size, True


def _lines(source: IO[bytes]) -> Iterator[tuple[int, bytes, int, bool]]:
    """Yield each line's number, bytes (without line break), size in the input, and whether
    it was too long (then the bytes are only its start)."""
    number = 0
    while True:
        raw, size, too_long = _read_line(source)
        if not size:
            return
        number += 1
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        yield number, raw, size, too_long


class _Fatal(Exception):
    """The replay cannot go on (e.g. the rejects file cannot be written)."""


def run(args: argparse.Namespace, stdout: IO[str], stderr: IO[str]) -> int:
    """Run ``gainsight-segment replay`` with parsed arguments.

    Args:
        args: The parsed command line (see ``_cli``).
        stdout: Where the summary goes.
        stderr: Where progress and warnings go.

    Returns:
        The exit status: 0 if every line was sent or skipped by the whitelist, 1 if any
        was rejected or failed, 130 when interrupted.

    Raises:
        OSError: When the input or the rejects file cannot be opened.
        ConfigurationError: When a client setting is invalid.
    """
    from_stdin = args.file == "-"
    rejects_path = args.rejects or ("rejects.jsonl" if from_stdin else args.file + ".rejects.jsonl")
    if not from_stdin and os.path.abspath(rejects_path) == os.path.abspath(args.file):
        raise _Fatal("--rejects must not be the input file")
    source: IO[bytes] = sys.stdin.buffer if from_stdin else open(args.file, "rb")  # noqa: SIM115
    try:
        rejects_file = open(rejects_path, "w", encoding="utf-8")  # noqa: SIM115
        writer = RejectWriter(rejects_file)
        try:
            return _replay(args, source, writer, rejects_path, stdout, stderr)
        finally:
            try:
                rejects_file.close()
            except OSError:
                # Closing flushes again and fails again; the first failure, which names
                # the file, is the one to tell.
                if writer.write_error is None:
                    raise
    finally:
        if not from_stdin:
            source.close()


def _replay(
    args: argparse.Namespace,
    source: IO[bytes],
    rejects: RejectWriter,
    rejects_path: str,
    stdout: IO[str],
    stderr: IO[str],
) -> int:
    in_flight = _InFlight()
    dry_run: bool = args.dry_run

    def on_error(error: DeliveryError, payload: dict[str, Any]) -> None:
        line = in_flight.pop(payload.get("messageId"))
        reason = f"not delivered: {error}"
        if error.body:
            reason += f" (response: {error.body})"
        rejects.write(line, reason, payload, delivery=True)

    def on_success(payload: dict[str, Any]) -> None:
        in_flight.pop(payload.get("messageId"))

    client = Client(
        args.access_key,
        track_whitelist=args.track_whitelist or None,
        endpoint=args.endpoint,
        workers=args.workers,
        max_queue_size=args.workers * _QUEUE_PER_WORKER,
        on_queue_full="block",
        block_timeout=_BLOCK_TIMEOUT,
        exit_timeout=0,
        send=not dry_run,
        on_error=on_error,
        on_success=on_success,
    )
    progress = Progress(
        stderr,
        _input_size(source),
        interval=args.progress_interval,
        every=args.progress_every,
        enabled=not args.quiet,
        done="validated" if dry_run else "sent",
    )

    def counts() -> tuple[int, int, int]:
        stats = client.stats()
        done = validated if dry_run else stats.delivered
        return done, rejects.invalid, stats.failed + stats.dropped

    started = time.monotonic()
    read = bytes_read = validated = 0
    interrupted = settled = False
    try:
        try:
            for number, raw, size, too_long in _lines(source):
                bytes_read += size
                if not too_long and not raw.strip():
                    continue
                read += 1
                validated += _replay_line(client, in_flight, rejects, number, raw, too_long, size)
                if rejects.write_error is not None:
                    break
                progress.update(read, bytes_read, counts)
            progress.finish(read, bytes_read)
            settled = client.flush(args.flush_timeout)
            if not settled:
                stats = client.stats()
                stderr.write(
                    f"gainsight-segment: warning: {stats.pending + stats.in_flight:,} messages "
                    f"still undelivered after the {args.flush_timeout:g} s flush deadline; "
                    f"giving up on them (see {rejects_path})\n"
                )
        except KeyboardInterrupt:
            interrupted = True
    finally:
        # Whatever is left is given up here and reported to on_error, so to the rejects file.
        client.shutdown(timeout=5.0 if settled else 1.0)
    elapsed = time.monotonic() - started
    if rejects.write_error is not None:
        raise _Fatal(f"cannot write {rejects_path}: {rejects.write_error}")

    stats = client.stats()
    failed = stats.failed + stats.dropped
    name = "<stdin>" if args.file == "-" else args.file
    rate = read / elapsed if elapsed > 0 else 0.0
    verb = "validated" if dry_run else "sent"
    done = validated if dry_run else stats.delivered
    lines = [
        f"{'interrupted' if interrupted else 'replayed'} {name}: {read:,} lines read "
        f"in {elapsed:.1f} s ({rate:,.0f} events/s)" + (" [dry run]" if dry_run else ""),
        f"  {verb}: {done:,}",
        f"  skipped by whitelist: {stats.filtered:,}",
        f"  rejected: {rejects.invalid:,}",
        f"  failed: {failed:,}",
    ]
    if rejects.invalid or failed:
        lines.append(f"rejects written to {rejects_path}")
    stdout.write("\n".join(lines) + "\n")
    stdout.flush()
    if interrupted:
        return 130
    return 1 if rejects.invalid or failed else 0


def _replay_line(
    client: Client,
    in_flight: _InFlight,
    rejects: RejectWriter,
    number: int,
    raw: bytes,
    too_long: bool,
    size: int,
) -> int:
    """Hand one line to the client; return 1 if it passed validation in a dry run."""
    if too_long:
        rejects.write(
            number,
            f"line of {size:,} bytes is over the {MAX_LINE_BYTES:,}-byte limit "
            f"(message shows its first {_LINE_EXCERPT} bytes)",
            raw.decode("utf-8", "replace"),
            delivery=False,
        )
        return 0
    try:
        message = parse_line(raw)
    except RejectedLine as exc:
        rejects.write(number, str(exc), raw.decode("utf-8", "replace"), delivery=False)
        return 0
    given = message.get("messageId")
    message_id = new_message_id() if given is None else str(given)
    # Registered before the call: a sender thread may report the message before it returns.
    in_flight.add(message_id, number)
    try:
        receipt = submit(client, message, message_id if given is None else None)
    except (RejectedLine, InvalidMessageError) as exc:
        in_flight.pop(message_id)
        rejects.write(number, str(exc), message, delivery=False)
        return 0
    if receipt.outcome in (Outcome.FILTERED, Outcome.DRY_RUN):
        in_flight.pop(message_id)
    return 1 if receipt.outcome is Outcome.DRY_RUN else 0
