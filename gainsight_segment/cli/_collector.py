"""``gainsight-segment collector``: run the local collector in the foreground."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from types import FrameType
from typing import Any

from gainsight_segment import testing

from ._parser import EXIT_OK, CliError, CommandParser, add_command


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
    parser.add_argument(
        "--access-key", metavar="KEY", help="the access key to accept (default: the demo key)"
    )
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
    try:
        faults = testing.Faults(
            latency=args.latency,
            failure_rate=args.failure_rate,
            drop_rate=args.drop_rate,
            seed=args.seed,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
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

    try:
        collector = testing.LocalCollector(
            args.access_key or testing.DEMO_ACCESS_KEY,
            host=args.host,
            port=args.port,
            faults=faults,
            on_message=None if args.quiet else show,
        )
    except ValueError as exc:
        raise CliError(str(exc)) from None
    stop = threading.Event()
    with collector, _StopOnSigterm(stop):
        with lock:
            out.write(f"listening on {collector.endpoint}\n")
            out.flush()
        try:
            # A timed wait: a plain wait() would not see Ctrl-C on every platform.
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    count = len(collector.messages)
    sys.stderr.write(f"collector stopped; {count} message{'s' * (count != 1)} received\n")
    return EXIT_OK


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
