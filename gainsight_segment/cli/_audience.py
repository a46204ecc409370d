"""``gainsight-segment audience``: sync an audience computed in your own database."""

from __future__ import annotations

import argparse
import csv
import sqlite3
import sys
import time
from collections.abc import Iterator, Sequence
from typing import IO, Any, NoReturn

import gainsight_segment as gs
from gainsight_segment.sync import AudienceSync, SyncProgress, SyncResult

DEFAULT_STATE_FILE = "gainsight-sync-state.sqlite3"
"""The state file the command line uses when ``--state`` is not given."""


_PROG = "gainsight-segment"
_EXIT_OK, _EXIT_FAILED, _EXIT_USAGE, _EXIT_INTERRUPTED = 0, 1, 2, 130


def _error(message: str) -> None:
    # The same one-line form as the rest of the gainsight-segment command line.
    print(f"{_PROG}: error: {message}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line."""

    def error(self, message: str) -> NoReturn:
        _error(f"{message} (see '{self.prog} --help')")
        raise SystemExit(_EXIT_USAGE)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{_PROG} audience",
        description="Sync audiences computed in your own database to Gainsight.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sync = commands.add_parser(
        "sync",
        help="send the membership changes of an audience since its last sync",
        description=(
            "Send an identify {KEY: true} to each member who joined the audience and "
            "{KEY: false} to each one who left since the last sync (every member the first "
            "time). Changes are recorded in the state file only once delivered: run the "
            "same command again after a failure to send what is missing."
        ),
    )
    sync.add_argument("name", metavar="NAME", help="the audience's name or key")
    sync.add_argument(
        "--members",
        metavar="FILE",
        required=True,
        help="the current members: one user id per line, or a CSV file with --column; "
        "'-' reads standard input",
    )
    sync.add_argument(
        "--column", metavar="COL", help="read FILE as CSV with a header; user ids are in COL"
    )
    sync.add_argument(
        "--state",
        metavar="PATH",
        default=DEFAULT_STATE_FILE,
        help=f"the SQLite state file (default: ./{DEFAULT_STATE_FILE})",
    )
    sync.add_argument(
        "--access-key",
        metavar="KEY",
        help="the Gainsight access key (default: $GAINSIGHT_ACCESS_KEY)",
    )
    sync.add_argument("--endpoint", metavar="URL", help="the Gainsight event endpoint's base URL")
    sync.add_argument(
        "--concurrency",
        metavar="N",
        type=_positive_int,
        default=4,
        help="requests at once (default: 4)",
    )
    sync.add_argument(
        "--dry-run", action="store_true", help="count the changes; send and record nothing"
    )
    sync.add_argument("--quiet", action="store_true", help="no progress on standard error")
    return parser


def _open_members(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    # utf-8-sig: spreadsheet exports often start with a byte-order mark.
    return open(path, encoding="utf-8-sig", newline="")


def _read_lines(stream: IO[str]) -> Iterator[str]:
    for line in stream:
        user_id = line.strip()
        if user_id:
            yield user_id


def _read_column(stream: IO[str], column: str) -> Iterator[str]:
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        raise _CliError("the members file is empty: expected a CSV header")
    names = [name.strip() for name in header]
    if column not in names:
        raise _CliError(
            f"no column {column!r} in the members file; its columns: {', '.join(names)}"
        )
    index = names.index(column)

    def ids() -> Iterator[str]:
        for row in reader:
            if index < len(row):
                user_id = row[index].strip()
                if user_id:
                    yield user_id

    return ids()


class _CliError(Exception):
    """A problem the command line reports in one line."""


class _Printer:
    """Progress on standard error, at most about once a second."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._last = 0.0

    def __call__(self, progress: SyncProgress) -> None:
        now = time.monotonic()
        final = progress.total is not None and progress.done == progress.total
        if not final and progress.done and now - self._last < 1.0:
            return
        self._last = now
        if progress.phase == "reading":
            text = f"read {progress.done:,} members" + ("" if final else "...")
        else:
            text = f"sent {progress.done:,} of {progress.total or 0:,} changes"
        print(text, file=self._stream, flush=True)


def _summary(key: str, result: SyncResult, dry_run: bool) -> str:
    if dry_run:
        return (
            f"audience {key}: would add {result.added:,}, remove {result.removed:,}; "
            f"{result.unchanged:,} unchanged (dry run: nothing sent)"
        )
    return (
        f"audience {key}: {result.added:,} added, {result.removed:,} removed, "
        f"{result.unchanged:,} unchanged, {result.failed:,} failed"
    )


def _sync_command(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"sync_mode": True, "exit_timeout": 0}
    if args.endpoint is not None:
        options["endpoint"] = args.endpoint
    options["workers"] = args.concurrency
    if args.dry_run:
        options["send"] = False
    with gs.Client(args.access_key, **options) as client:
        try:
            stream = _open_members(args.members)
        except OSError as error:
            raise _CliError(f"cannot read the members file: {error}") from None
        try:
            members = (
                _read_lines(stream) if args.column is None else _read_column(stream, args.column)
            )
            with AudienceSync(client, args.name, state=args.state) as audience:
                if args.dry_run:
                    result = audience.preview(members)
                else:
                    printer = None if args.quiet else _Printer(sys.stderr)
                    result = audience.sync(members, progress=printer)
        finally:
            if stream is not sys.stdin:
                stream.close()
    print(_summary(audience.key, result, args.dry_run), flush=True)
    if not result.ok:
        _error(
            f"{result.failed:,} changes not delivered (first: {result.error}); "
            "run the same sync again to send them"
        )
        return _EXIT_FAILED
    return _EXIT_OK


def audience_main(argv: Sequence[str]) -> int:
    """Run ``gainsight-segment audience ...``: the audience command line.

    ``sync NAME --members FILE [--column COL] [--state PATH] [--access-key KEY]
    [--endpoint URL] [--concurrency N] [--dry-run] [--quiet]`` sends the membership changes
    of audience ``NAME`` since its last sync. Progress goes to standard error, a one-line
    summary to standard output; errors are one line on standard error, without traceback.

    Args:
        argv: The arguments after ``audience``.

    Returns:
        The exit status: 0 when every change was delivered, 1 when some were not (run the
        same command again to send them), 2 for a usage or configuration error, 130 when
        interrupted.
    """
    parser = _parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit:
        # --help, or a usage error argparse has already reported.
        return exit.code if isinstance(exit.code, int) else _EXIT_USAGE
    try:
        return _sync_command(args)
    except KeyboardInterrupt:
        _error(
            "interrupted: the changes delivered so far are recorded; "
            "run the same sync again to send the rest"
        )
        return _EXIT_INTERRUPTED
    except (_CliError, gs.GainsightError) as error:
        _error(str(error))
        return _EXIT_USAGE
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        _error(f"reading the members file: {error}")
        return _EXIT_USAGE
    except sqlite3.Error as error:
        _error(f"state file {args.state!r}: {error}")
        return _EXIT_USAGE
