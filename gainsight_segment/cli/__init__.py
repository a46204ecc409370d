"""The ``gainsight-segment`` command line (also ``python -m gainsight_segment``).

Commands:

- ``demo``: send Segment's Gainsight examples to a local collector and show what arrived.
- ``send identify|track|group``: send one message built from flags.
- ``replay FILE``: send a JSON Lines file of Segment messages (e.g. a Segment export).
- ``collector``: run the local collector in the foreground and print what it receives.
- ``audience sync NAME``: send the membership changes of an audience since its last sync.
- ``relay PATH``: deliver the messages of an outbox file, from a process of its own.
- ``outbox PATH``: show what an outbox file holds; export or retry its dead letters.

Exit statuses: 0 success; 1 something was not delivered (or was rejected); 2 the command
could not run (bad arguments, bad access key, unreadable file); 130 interrupted.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import gainsight_segment as gs

from . import _audience, _collector, _demo, _outbox, _relay, _replay, _send
from ._parser import (
    EXIT_FAILED,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    PROG,
    CliError,
    CommandParser,
    name_flags,
    write_error,
)

__all__ = ["main"]


def _build_parser() -> CommandParser:
    parser = CommandParser(
        prog=PROG,
        description="Send Segment-spec identify, track and group calls straight to Gainsight.",
        epilog="Exit status: 0 success, 1 not delivered or rejected, 2 usage or setup error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {gs.__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (_demo, _send, _replay, _collector, _audience, _relay, _outbox):
        command.add_parser(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gainsight-segment`` command line.

    Args:
        argv: The arguments, without the program name; ``sys.argv[1:]`` by default.

    Returns:
        The exit status: 0 success, 1 something was not delivered or was rejected, 2 the
        command could not run (bad arguments or settings, unreadable file), 130 interrupted.
    """
    try:
        args = _build_parser().parse_args(argv)
    except SystemExit as exc:
        # --help, --version, or a usage error already reported in one line.
        if exc.code is None:
            return EXIT_OK
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    try:
        status: int = args.handler(args)
    except CliError as exc:
        write_error(str(exc))
        return exc.status
    except gs.GainsightError as exc:
        # ConfigurationError and InvalidMessageError: the text names the setting or field,
        # which is told by its flag when the command has one.
        write_error(name_flags(str(exc), args))
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (e.g. piped into head): nobody is left to tell.
        _silence_stdout()
        return EXIT_FAILED
    except OSError as exc:
        reason = exc.strerror or str(exc)
        write_error(f"{exc.filename}: {reason}" if exc.filename is not None else reason)
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return EXIT_INTERRUPTED
    return status


def _silence_stdout() -> None:
    # Python flushes stdout again at exit, which would fail on the broken pipe once more.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass
