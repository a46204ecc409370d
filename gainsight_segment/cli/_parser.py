"""What every command shares: the parser, its one-line errors, the client options, exit statuses.

Each command module adds its parser with :func:`add_command` and gives it a handler taking the
parsed arguments and returning an exit status. A handler reports a problem by raising
:class:`CliError`; :func:`gainsight_segment.cli.main` turns that, and the library's own errors,
into one line on standard error.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import IO, Any, Callable, NoReturn

import attrs

import gainsight_segment as gs

PROG = "gainsight-segment"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# Fixed by the design contract (the variable Client reads when it is given no key).
ACCESS_KEY_ENV = "GAINSIGHT_ACCESS_KEY"
# The client's own default, read from its settings rather than copied.
DEFAULT_ENDPOINT = str(attrs.fields(gs.Settings).endpoint.default)

Handler = Callable[[argparse.Namespace], int]


class CliError(Exception):
    """A problem reported as one line on standard error, with an exit status.

    Args:
        message: What went wrong, in one line.
        status: The exit status.
    """

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


def write_error(message: str) -> None:
    """Write ``gainsight-segment: error: MESSAGE`` on standard error."""
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()


class CommandParser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        """Report a usage error in one line and exit with status 2."""
        write_error(f"{message} (see '{self.prog} --help')")
        raise SystemExit(EXIT_USAGE)


def add_command(
    commands: argparse._SubParsersAction[CommandParser],
    name: str,
    handler: Handler,
    *,
    summary: str,
    description: str,
) -> CommandParser:
    """Add a command's parser, whose parsed arguments go to ``handler``."""
    parser = commands.add_parser(name, help=summary, description=description)
    parser.set_defaults(handler=handler)
    return parser


def add_access_key_options(parser: argparse.ArgumentParser, default: str) -> None:
    """Add ``--access-key KEY`` and ``--access-key-file PATH``, of which one may be given."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--access-key", metavar="KEY", help=f"the access key (default: {default})")
    group.add_argument(
        "--access-key-file",
        metavar="PATH",
        help="read the access key from this file, which keeps it out of the process list",
    )


def add_client_options(
    parser: argparse.ArgumentParser, *, whitelist: bool = False, dry_run: str | None
) -> None:
    """Add the options of the client a command sends with.

    Args:
        parser: The command's parser.
        whitelist: Whether to add ``--track-whitelist``.
        dry_run: The help of ``--dry-run``; ``None`` for a command without one.
    """
    add_access_key_options(parser, f"${ACCESS_KEY_ENV}")
    parser.add_argument(
        "--endpoint",
        metavar="URL",
        default=DEFAULT_ENDPOINT,
        help=f"base URL of the event endpoint (default: {DEFAULT_ENDPOINT})",
    )
    if whitelist:
        parser.add_argument(
            "--track-whitelist",
            metavar="NAME",
            action="append",
            default=[],
            help="send only this track event; repeat for several (default: every track)",
        )
    if dry_run is not None:
        parser.add_argument("--dry-run", action="store_true", help=dry_run)


def read_access_key(args: argparse.Namespace) -> str | None:
    """Return the key of ``--access-key`` or ``--access-key-file``, or ``None`` for neither.

    Raises:
        CliError: When the file cannot be read or does not hold a valid key; the message
            names the file, never the key.
    """
    path: str | None = args.access_key_file
    if path is None:
        key: str | None = args.access_key
        return key
    try:
        with open(path, encoding="utf-8") as file:
            # A key is 36 characters: a larger read can only tell that the file is wrong.
            key = file.read(4096).strip()
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        raise CliError(f"--access-key-file {path}: cannot read it: {reason}") from None
    try:
        gs.Settings(access_key=key)
    except gs.ConfigurationError as error:
        raise CliError(f"--access-key-file {path}: {_reason(error)}") from None
    return key


def client_access_key(args: argparse.Namespace) -> str | None:
    """Return the key a command's client is given: ``None`` reads the environment.

    Raises:
        CliError: When there is no key anywhere, or the file cannot be read.
    """
    key = read_access_key(args)
    if key is None and os.environ.get(ACCESS_KEY_ENV) is None:
        raise CliError(
            f"no access key: pass --access-key or --access-key-file, or set {ACCESS_KEY_ENV}"
        )
    return key


def name_flags(message: str, args: argparse.Namespace) -> str:
    """Name the flag, not the Python name, at the head of an error about one of the options.

    The library's errors start with the setting they are about (``failure_rate: must be...``);
    when the command has an option of that name, the message names its flag instead
    (``--failure-rate: must be...``).
    """
    name, colon, rest = message.partition(":")
    if colon and name.isidentifier() and hasattr(args, name):
        return f"--{name.replace('_', '-')}:{rest}"
    return message


def _reason(error: Exception) -> str:
    # "access_key: must be 36 characters long" -> "must be 36 characters long"
    return str(error).partition(": ")[2] or str(error)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse type: a whole number of 0 or more."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 0, got {text!r}")
    return value


def positive_seconds(text: str) -> float:
    """An argparse type: a finite number of seconds greater than zero."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number of seconds > 0, got {text!r}")
    return value


def json_object(option: str, text: str | None) -> dict[str, Any] | None:
    """Parse an option's JSON object; ``None`` stays ``None``.

    Raises:
        CliError: When ``text`` is not JSON or not an object, naming ``option``.
    """
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{option}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(value, dict):
        raise CliError(f"{option}: must be a JSON object, got {type(value).__name__}")
    return value


def print_json(message: dict[str, Any], out: IO[str]) -> None:
    """Write a message as indented JSON."""
    out.write(json.dumps(message, indent=2, ensure_ascii=False) + "\n")


def plural(count: int, noun: str) -> str:
    """``1 line``, ``2 lines``, ``1,000 lines``."""
    return f"{count:,} {noun}{'' if count == 1 else 's'}"
