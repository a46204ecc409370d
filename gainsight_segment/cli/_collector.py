"""``gainsight-segment collector``: run the local collector in the foreground."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType
from typing import Any, Callable

import gainsight_segment as gs
from gainsight_segment import testing

from ._parser import (
    EXIT_OK,
    CliError,
    CommandParser,
    add_access_key_options,
    add_command,
    name_flags,
    plural,
    read_access_key,
)


def add_parser(commands: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``collector`` command."""
    parser = add_command(
        commands,
        "collector",
        run,
        summary="run a local collector and print the messages it receives",
        description="Run a loopback HTTP server that accepts what Gainsight's event endpoint "
        "accepts, and print each message it receives as one line of JSON. Ctrl-C stops it.",
    )
    parser.add_argument(
        "--port", type=int, default=0, help="the port to listen on (default: 0, a free one)"
    )
    parser.add_argument(
        "--host",
        metavar="ADDRESS",
        default="127.0.0.1",
        help="a loopback address (default: 127.0.0.1)",
    )
    add_access_key_options(parser, "the demo key")
    parser.add_argument("--quiet", action="store_true", help="do not print the messages")
    parser.add_argument(
        "--latency",
        metavar="SECONDS",
        type=float,
        default=0.0,
        help="seconds to wait before each answer",
    )
    parser.add_argument(
        "--failure-rate",
        metavar="RATE",
        type=float,
        default=0.0,
        help="share of requests answered with 500, from 0 to 1",
    )
    parser.add_argument(
        "--drop-rate",
        metavar="RATE",
        type=float,
        default=0.0,
        help="share of requests whose connection is closed unanswered, from 0 to 1",
    )
    parser.add_argument("--seed", metavar="N", type=int, help="seed of the random faults")


def run(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C or SIGTERM, printing each accepted message as one line of JSON."""
    access_key = _access_key(args)
    out = sys.stdout
    lock = threading.Lock()

    def show(message: dict[str, Any]) -> None:
        line = json.dumps(message, ensure_ascii=False)
        with lock:
            try:
                out.write(line + "\n")
            except UnicodeEncodeError:
                # A terminal that cannot show some characters still gets valid JSON.
                out.write(json.dumps(message) + "\n")
            out.flush()

    collector = _collector(args, access_key, None if args.quiet else show)
    stop = threading.Event()
    with collector, _StopOnSigterm(stop):
        with lock:
            out.write(f"listening on {collector.endpoint} (access key {_shown(access_key)})\n")
            out.flush()
        try:
            # A timed wait: a plain wait() would not see Ctrl-C on every platform.
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    received = plural(len(collector.messages), "message")
    sys.stderr.write(f"collector stopped; {received} received\n")
    return EXIT_OK


def _access_key(args: argparse.Namespace) -> str:
    """The key to accept, validated as a client validates its own."""
    key = read_access_key(args)
    if key is None:
        return testing.DEMO_ACCESS_KEY
    # ConfigurationError names access_key, which main() tells as --access-key.
    gs.Settings(access_key=key)
    return key.strip()


def _shown(access_key: str) -> str:
    # The demo key is public, and the one a user needs to know; their own key stays masked.
    return access_key if access_key == testing.DEMO_ACCESS_KEY else "****" + access_key[-4:]


def _collector(
    args: argparse.Namespace, access_key: str, on_message: Callable[[dict[str, Any]], object] | None
) -> testing.LocalCollector:
    try:
        faults = testing.Faults(
            latency=args.latency,
            failure_rate=args.failure_rate,
            drop_rate=args.drop_rate,
            seed=args.seed,
        )
        return testing.LocalCollector(
            access_key, host=args.host, port=args.port, faults=faults, on_message=on_message
        )
    except ValueError as exc:
        raise CliError(name_flags(str(exc), args)) from None
    except OSError as exc:
        host = f"[{args.host}]" if ":" in args.host else args.host
        reason = exc.strerror or str(exc)
        raise CliError(f"cannot listen on {host}:{args.port}: {reason}") from None


class _StopOnSigterm:
    """Within the block, SIGTERM sets ``stop`` (main thread only; elsewhere a no-op)."""

    def __init__(self, stop: threading.Event) -> None:
        self._stop = stop
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> None:
        if threading.current_thread() is threading.main_thread() and hasattr(signal, "SIGTERM"):
            self._previous = signal.signal(signal.SIGTERM, self._handle)
            self._installed = True

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()

    def __exit__(self, *exc_info: object) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
