"""``gainsight-segment audience sync``: sync an audience computed in your own database."""

from __future__ import annotations

import argparse
import csv
import sqlite3
import sys
import time
from collections.abc import Iterator
from typing import IO, TYPE_CHECKING

import gainsight_segment as gs

from ._parser import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    CliError,
    CommandParser,
    add_client_options,
    add_command,
    client_access_key,
    positive_int,
    write_error,
)

if TYPE_CHECKING:
    # Imported when the command runs: sqlite3 and the sync machinery cost every other
    # command nothing.
    from gainsight_segment.sync import SyncProgress, SyncResult

DEFAULT_STATE_FILE = "gainsight-sync-state.sqlite3"
"""The state file the command line uses when ``--state`` is not given."""


def add_parser(commands: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``audience`` command and its ``sync`` subcommand."""
    audience = commands.add_parser(
        "audience",
        help="sync an audience computed in your own database",
        description="Sync audiences computed in your own database to Gainsight.",
    )
    subcommands = audience.add_subparsers(dest="subcommand", metavar="COMMAND", required=True)
    sync = add_command(
        subcommands,
        "sync",
        run,
        summary="send the membership changes of an audience since its last sync",
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
    add_client_options(sync, dry_run="count the changes; send and record nothing")
    sync.add_argument(
        "--concurrency",
        metavar="N",
        type=positive_int,
        default=4,
        help="requests at once (default: 4)",
    )
    sync.add_argument("--quiet", action="store_true", help="no progress on standard error")


def run(args: argparse.Namespace) -> int:
    """Sync the audience and print a one-line summary.

    Returns:
        0 when every change was delivered, 1 when some were not (run the same command again
        to send them), 130 when interrupted.
    """
    try:
        return _sync(args)
    except KeyboardInterrupt:
        raise CliError(
            "interrupted: the changes delivered so far are recorded; "
            "run the same sync again to send the rest",
            EXIT_INTERRUPTED,
        ) from None
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise CliError(f"reading the members file: {error}") from None
    except sqlite3.Error as error:
        raise CliError(f"state file {args.state!r}: {error}") from None


def _sync(args: argparse.Namespace) -> int:
    from gainsight_segment.sync import AudienceSync

    with gs.Client(
        client_access_key(args),
        endpoint=args.endpoint,
        workers=args.concurrency,
        sync_mode=True,
        send=not args.dry_run,
        exit_timeout=0,
    ) as client:
        try:
            stream = _open_members(args.members)
        except OSError as error:
            raise CliError(f"cannot read the members file: {error}") from None
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
        write_error(
            f"{result.failed:,} changes not delivered (first: {result.error}); "
            "run the same sync again to send them"
        )
        return EXIT_FAILED
    return EXIT_OK


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
        raise CliError("the members file is empty: expected a CSV header")
    names = [name.strip() for name in header]
    if column not in names:
        raise CliError(f"no column {column!r} in the members file; its columns: {', '.join(names)}")
    index = names.index(column)

    def ids() -> Iterator[str]:
        for row in reader:
            if index < len(row):
                user_id = row[index].strip()
                if user_id:
                    yield user_id

    return ids()


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
