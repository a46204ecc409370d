"""``gainsight-segment outbox PATH``: what an outbox file holds, and its dead letters mended.

It prints how many messages wait (and how many a sender holds), how old the oldest is, and
the dead letters (messages the endpoint refused for good), the most recent ones with why.
``--export`` writes the dead letters as JSON Lines, which ``replay`` sends again;
``--retry`` puts them back in the outbox, for the clients and relays on the file to send.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time
from typing import IO, Any

from gainsight_segment.outbox import DeadLetter, Outbox, OutboxError, OutboxSummary

from ._logs import warnings_to
from ._parser import (
    EXIT_OK,
    CliError,
    CommandParser,
    add_command,
    non_negative_int,
    plural,
)

SHOWN = 5


def add_parser(commands: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``outbox`` command."""
    parser = add_command(
        commands,
        "outbox",
        run,
        summary="show what an outbox file holds; export or retry its dead letters",
        description="Print how many messages wait in the outbox file PATH, how old the "
        "oldest is, and its dead letters (messages the endpoint refused for good), the most "
        "recent ones with why. --export writes the dead letters as JSON Lines (which replay "
        "sends); --retry moves them back to the outbox, to be sent again.",
    )
    parser.add_argument("path", metavar="PATH", help="the outbox file")
    parser.add_argument(
        "--export",
        metavar="FILE",
        help="write the dead letters to FILE as JSON Lines, one message each; - for stdout",
    )
    parser.add_argument(
        "--retry",
        action="store_true",
        help="move the dead letters back to the outbox, to be sent again (after --export)",
    )
    parser.add_argument(
        "--show",
        metavar="N",
        type=non_negative_int,
        default=SHOWN,
        help=f"how many of the most recent dead letters to show (default: {SHOWN})",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")


def run(args: argparse.Namespace) -> int:
    """Run ``gainsight-segment outbox`` with parsed arguments."""
    path: str = args.path
    if not os.path.exists(path):
        # Opening creates the file: a mistyped path must not look like an empty outbox.
        raise CliError(f"{path}: No such file or directory")
    if os.path.isdir(path):
        raise CliError(f"{path}: is a directory; give the outbox file's path")
    # With the dead letters on stdout, the report goes to stderr.
    report = sys.stderr if args.export == "-" else sys.stdout
    try:
        with warnings_to(sys.stderr), Outbox(path) as outbox:
            summary = outbox.summary()
            recent = list(collections.deque(outbox.dead_letters(), maxlen=args.show))
            done: dict[str, int] = {}
            if args.export is not None:
                done["exported"] = _export(outbox, args.export)
            if args.retry:
                done["retried"] = outbox.retry_dead_letters()
    except OutboxError as exc:
        raise CliError(str(exc)) from None
    if args.json:
        _print_json(path, summary, recent, done, report)
    else:
        _print_text(path, summary, recent, done, args.export, report)
    report.flush()
    return EXIT_OK


def _export(outbox: Outbox, target: str) -> int:
    if target == "-":
        count = outbox.export_dead_letters(sys.stdout)
        sys.stdout.flush()
        return count
    # Created readable by its owner only, as the outbox itself: it holds users' data.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w", encoding="utf-8") as stream:
        return outbox.export_dead_letters(stream)


def _print_text(
    path: str,
    summary: OutboxSummary,
    recent: list[DeadLetter],
    done: dict[str, int],
    export: str | None,
    out: IO[str],
) -> None:
    oldest = "-" if summary.oldest_age is None else f"{summary.oldest_age:.1f} s ago"
    out.write(
        f"{path}\n"
        f"  waiting:      {summary.waiting:,} ({summary.claimed:,} claimed by a sender)\n"
        f"  oldest:       {oldest}\n"
        f"  dead letters: {summary.dead_letters:,}\n"
    )
    if recent:
        out.write(f"most recent dead letters ({len(recent):,} of {summary.dead_letters:,}):\n")
        for letter in recent:
            out.writelines(f"  {line}\n" for line in _described(letter))
    if "exported" in done:
        where = "standard output" if export == "-" else export
        out.write(f"exported {plural(done['exported'], 'dead letter')} to {where}\n")
    if "retried" in done:
        out.write(f"moved {plural(done['retried'], 'dead letter')} back, to be sent again\n")


def _described(letter: DeadLetter) -> tuple[str, str]:
    """Two lines about a dead letter: when and why, then which message."""
    message = letter.message
    what = str(message.get("type", "?"))
    if "event" in message:
        what += f" {json.dumps(message['event'], ensure_ascii=False)}"
    status = "" if letter.status is None else f" {letter.status}"
    return (
        f"#{letter.id} {_utc(letter.failed)} {letter.kind}{status}: {letter.reason}",
        f"    {what}, messageId {message.get('messageId', '?')}",
    )


def _utc(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


def _print_json(
    path: str,
    summary: OutboxSummary,
    recent: list[DeadLetter],
    done: dict[str, int],
    out: IO[str],
) -> None:
    document: dict[str, Any] = {
        "path": path,
        "waiting": summary.waiting,
        "claimed": summary.claimed,
        "oldest_age": summary.oldest_age,
        "dead_letters": summary.dead_letters,
        "recent_dead_letters": [
            {
                "id": letter.id,
                "failed": _utc(letter.failed),
                "kind": letter.kind,
                "status": letter.status,
                "reason": letter.reason,
                "attempts": letter.attempts,
                "message": letter.message,
            }
            for letter in recent
        ],
        **done,
    }
    out.write(json.dumps(document, ensure_ascii=False) + "\n")
