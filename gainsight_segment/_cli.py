"""The ``gainsight-segment`` command line (also ``python -m gainsight_segment``).

Subcommands:

- ``demo``: send Segment's Gainsight examples to a local collector and show what arrived.
- ``send identify|track|group``: send one message built from flags.
- ``replay FILE``: send a JSON Lines file of Segment messages (e.g. a Segment export).
- ``collector``: run the local collector in the foreground and print what it receives.
- ``audience``: audience tools, when installed.

Exit statuses: 0 success; 1 something was not delivered (or was rejected); 2 the command
could not run (bad arguments, bad access key, unreadable file); 130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import IO, Any, NoReturn

import attrs

from ._config import ACCESS_KEY_ENV, DEFAULT_ENDPOINT
from ._errors import GainsightError
from ._message import Message, MessageBuilder
from ._version import __version__

PROG = "gainsight-segment"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

# The examples of Segment's Gainsight destination documentation.
DEMO_USER_ID = "123"
DEMO_ACCOUNT_ID = "o283h08fh2390f923uofu23"
DEMO_TRAITS = {"accountId": DEMO_ACCOUNT_ID, "name": "Miles Morales", "email": "miles@example.com"}
DEMO_EVENT = "Account Created"
DEMO_PROPERTIES = {"accountId": DEMO_ACCOUNT_ID, "source": "Invite", "title": "CEO"}
DEMO_GROUP_ID = "555"
DEMO_GROUP_TRAITS = {"name": "Twitter"}
DEMO_SKIPPED_EVENT = "Page Scrolled"


class CliError(Exception):
    """An error reported as one line on stderr, with an exit status.

    Args:
        message: What went wrong, in one line.
        status: The exit status.
    """

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose errors are one line, like every other error of the command."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{PROG}: error: {message} (see '{self.prog} --help')\n")
        raise SystemExit(EXIT_USAGE)


@attrs.frozen
class _KeepingBuilder(MessageBuilder):
    """A builder that keeps what it builds, so that a dry run can show the message."""

    built: list[Message] = attrs.field(factory=list)

    def build(self, *args: Any, **kwargs: Any) -> Message:
        message = super().build(*args, **kwargs)
        self.built.append(message)
        return message


def _json_object(option: str, text: str | None) -> dict[str, Any] | None:
    if text is None:
        return None
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CliError(f"{option}: not valid JSON: {exc.msg} (column {exc.colno})") from None
    if not isinstance(value, dict):
        raise CliError(f"{option}: must be a JSON object, got {type(value).__name__}")
    return value


def _add_client_options(parser: argparse.ArgumentParser, *, whitelist: bool = True) -> None:
    parser.add_argument(
        "--access-key",
        metavar="KEY",
        help=f"the Gainsight access key (default: ${ACCESS_KEY_ENV})",
    )
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
    parser.add_argument(
        "--dry-run", action="store_true", help="build and validate, but send nothing"
    )


def _build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG,
        description="Send Segment-spec identify, track and group calls straight to Gainsight.",
        epilog="Exit status: 0 success, 1 not delivered or rejected, 2 usage or setup error.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    demo = commands.add_parser(
        "demo",
        help="send Segment's Gainsight examples to a local collector and show what arrived",
        description="Start a local collector, send Segment's documented Gainsight examples "
        "through a Client with a track whitelist, and show what the collector received. "
        "Needs no account, key or network.",
    )
    demo.set_defaults(handler=_demo)

    send = commands.add_parser(
        "send",
        help="send one identify, track or group message",
        description="Send one message in the caller's thread and print its id and outcome.",
    )
    kinds = send.add_subparsers(dest="type", metavar="TYPE", required=True)
    for kind, summary in (
        ("identify", "tell Gainsight who a user is"),
        ("track", "record that a user did something"),
        ("group", "associate a user with a group (Salesforce Account)"),
    ):
        sub = kinds.add_parser(
            kind, help=summary, description=f"{summary[0].upper()}{summary[1:]}."
        )
        sub.add_argument("--user-id", metavar="ID", help="the user's id")
        sub.add_argument(
            "--anonymous-id", metavar="ID", help="an anonymous id (when there is no user id)"
        )
        if kind == "track":
            sub.add_argument(
                "--event", metavar="NAME", required=True, help='the event name, e.g. "Signed Up"'
            )
            sub.add_argument("--properties", metavar="JSON", help="the properties, a JSON object")
        if kind == "group":
            sub.add_argument(
                "--group-id", metavar="ID", required=True, help="the group (account) id"
            )
        if kind != "track":
            sub.add_argument("--traits", metavar="JSON", help="the traits, a JSON object")
        sub.add_argument("--context", metavar="JSON", help="extra context, a JSON object")
        sub.add_argument("--integrations", metavar="JSON", help="integrations, a JSON object")
        sub.add_argument("--message-id", metavar="ID", help="the messageId (default: a fresh UUID)")
        sub.add_argument(
            "--timestamp", metavar="ISO", help="when it happened, ISO-8601 (default: now)"
        )
        sub.add_argument(
            "--timeout",
            metavar="SECONDS",
            type=float,
            default=10.0,
            help="seconds per attempt (default: 10)",
        )
        _add_client_options(sub, whitelist=kind == "track")
        sub.set_defaults(handler=_send)

    replay = commands.add_parser(
        "replay",
        help="send a JSON Lines file of Segment messages (e.g. a Segment export)",
        description="Send each line of FILE, a Segment message, through the client, applying "
        "the track whitelist. Lines that cannot be sent go to the rejects file with their "
        "line number and the reason.",
    )
    replay.add_argument("file", metavar="FILE", help="the JSON Lines file; - for stdin")
    _add_client_options(replay)
    replay.add_argument(
        "--workers",
        metavar="N",
        type=int,
        default=8,
        help="requests in flight at once (default: 8)",
    )
    replay.add_argument(
        "--rejects",
        metavar="PATH",
        help="where lines that were not sent go (default: FILE.rejects.jsonl, "
        "or rejects.jsonl for stdin)",
    )
    replay.add_argument(
        "--progress-interval",
        metavar="SECONDS",
        type=float,
        default=10.0,
        help="seconds between progress lines when stderr is not a terminal (default: 10)",
    )
    replay.add_argument(
        "--progress-every",
        metavar="LINES",
        type=int,
        default=0,
        help="also print a progress line every LINES lines when stderr is not a terminal",
    )
    replay.add_argument("--quiet", action="store_true", help="show no progress")
    replay.add_argument(
        "--flush-timeout",
        metavar="SECONDS",
        type=float,
        default=300.0,
        help="seconds to wait at the end for delivery (default: 300)",
    )
    replay.set_defaults(handler=_replay)

    collector = commands.add_parser(
        "collector",
        help="run a local collector and print the messages it receives",
        description="Run a loopback HTTP server that accepts what Gainsight's event endpoint "
        "accepts, and print each message it receives as one line of JSON. Ctrl-C stops it.",
    )
    collector.add_argument(
        "--port", type=int, default=0, help="the port to listen on (default: 0, a free one)"
    )
    collector.add_argument(
        "--host",
        metavar="ADDRESS",
        default="127.0.0.1",
        help="a loopback address (default: 127.0.0.1)",
    )
    collector.add_argument(
        "--access-key", metavar="KEY", help="the access key to accept (default: the demo key)"
    )
    collector.add_argument("--quiet", action="store_true", help="do not print the messages")
    collector.add_argument(
        "--latency",
        metavar="SECONDS",
        type=float,
        default=0.0,
        help="seconds to wait before each answer",
    )
    collector.add_argument(
        "--failure-rate",
        metavar="RATE",
        type=float,
        default=0.0,
        help="share of requests answered with 500, from 0 to 1",
    )
    collector.add_argument(
        "--drop-rate",
        metavar="RATE",
        type=float,
        default=0.0,
        help="share of requests whose connection is closed unanswered, from 0 to 1",
    )
    collector.add_argument("--seed", metavar="N", type=int, help="seed of the random faults")
    collector.set_defaults(handler=_collector)

    commands.add_parser(
        "audience",
        help="audience tools (when installed)",
        description="Audience tools; run 'gainsight-segment audience --help'.",
        add_help=False,
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gainsight-segment`` command line.

    Args:
        argv: The arguments, without the program name; ``sys.argv[1:]`` by default.

    Returns:
        The exit status: 0 success, 1 something was not delivered or was rejected, 2 the
        command could not run (bad arguments or settings, unreadable file), 130 interrupted.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    try:
        if args_list and args_list[0] == "audience":
            return _audience(args_list[1:])
        try:
            args = _build_parser().parse_args(args_list)
        except SystemExit as exc:
            return _exit_status(exc.code)
        status: int = args.handler(args)
        return status
    except CliError as exc:
        _error(str(exc))
        return exc.status
    except GainsightError as exc:
        # ConfigurationError and InvalidMessageError: the text names the setting or field.
        _error(str(exc))
        return EXIT_USAGE
    except BrokenPipeError:
        # The reader went away (e.g. piped into head): nobody is left to tell.
        _silence_stdout()
        return EXIT_FAILED
    except OSError as exc:
        _error(_describe_os_error(exc))
        return EXIT_USAGE
    except KeyboardInterrupt:
        sys.stderr.write("\n")
        return EXIT_INTERRUPTED


def _exit_status(code: object) -> int:
    if code is None:
        return EXIT_OK
    return code if isinstance(code, int) else EXIT_USAGE


def _silence_stdout() -> None:
    # Python flushes stdout again at exit, which would fail on the broken pipe once more.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _error(message: str) -> None:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()


def _describe_os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    return f"{exc.filename}: {reason}" if exc.filename is not None else reason


def _check_access_key(value: str | None) -> None:
    if value is None and os.environ.get(ACCESS_KEY_ENV) is None:
        raise CliError(f"no access key: pass --access-key or set {ACCESS_KEY_ENV}")


def _print_json(message: dict[str, Any], out: IO[str]) -> None:
    out.write(json.dumps(message, indent=2, ensure_ascii=False) + "\n")


# demo ------------------------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from ._client import Client
    from .testing import DEMO_ACCESS_KEY, LocalCollector

    out = sys.stdout
    with LocalCollector(DEMO_ACCESS_KEY) as collector:
        out.write(f"Local collector listening on {collector.endpoint}\n")
        out.write(f'Client(DEMO_ACCESS_KEY, track_whitelist=["{DEMO_EVENT}"])\n\n')
        client = Client(
            DEMO_ACCESS_KEY,
            endpoint=collector.endpoint,
            track_whitelist=[DEMO_EVENT],
            exit_timeout=0,
        )
        try:
            calls = [
                (
                    f'identify("{DEMO_USER_ID}", ...)',
                    client.identify(DEMO_USER_ID, DEMO_TRAITS),
                ),
                (
                    f'track("{DEMO_USER_ID}", "{DEMO_EVENT}", ...)',
                    client.track(DEMO_USER_ID, DEMO_EVENT, DEMO_PROPERTIES),
                ),
                (
                    f'group("{DEMO_USER_ID}", "{DEMO_GROUP_ID}", ...)',
                    client.group(DEMO_USER_ID, DEMO_GROUP_ID, DEMO_GROUP_TRAITS),
                ),
                (
                    f'track("{DEMO_USER_ID}", "{DEMO_SKIPPED_EVENT}", ...)',
                    client.track(DEMO_USER_ID, DEMO_SKIPPED_EVENT, {"accountId": DEMO_ACCOUNT_ID}),
                ),
            ]
            for call, receipt in calls:
                out.write(f"  {call:<42} -> {receipt.outcome.value:<8} {receipt.message_id}\n")
            client.flush(timeout=30)
        finally:
            client.shutdown(timeout=5)
        received = collector.messages
    stats = client.stats()

    # Sender threads deliver concurrently; show the messages in the order they were sent.
    order = {receipt.message_id: index for index, (_, receipt) in enumerate(calls)}
    received.sort(key=lambda message: order.get(str(message.get("messageId")), len(order)))
    out.write(f"\nThe collector received {len(received)} messages:\n")
    for index, message in enumerate(received, 1):
        label = message.get("type", "?")
        if label == "track":
            label += f' "{message.get("event")}"'
        out.write(f"\n#{index} {label}, messageId {message.get('messageId')}\n")
        _print_json(message, out)
    out.write(
        f'\nSkipped by the track whitelist: "{DEMO_SKIPPED_EVENT}" '
        f'(only "{DEMO_EVENT}" is whitelisted; nothing was sent for it)\n'
    )
    out.write("\nClient counters (client.stats()):\n")
    for name in ("queued", "delivered", "filtered", "failed", "dropped", "retried"):
        out.write(f"  {name:<10} {getattr(stats, name)}\n")
    out.flush()
    delivered_all = stats.delivered == 3 and len(received) == 3
    if not delivered_all:
        raise CliError("the demo messages did not all reach the collector", EXIT_FAILED)
    return EXIT_OK


# send ------------------------------------------------------------------------------------


def _send(args: argparse.Namespace) -> int:
    from ._client import Client
    from ._receipt import Outcome
    from ._replay import parse_timestamp

    _check_access_key(args.access_key)
    kind: str = args.type
    traits = _json_object("--traits", getattr(args, "traits", None))
    properties = _json_object("--properties", getattr(args, "properties", None))
    options: dict[str, Any] = {
        "anonymous_id": args.anonymous_id,
        "context": _json_object("--context", args.context),
        "integrations": _json_object("--integrations", args.integrations),
        "message_id": args.message_id,
    }
    if args.timestamp is not None:
        try:
            options["timestamp"] = parse_timestamp(args.timestamp)
        except ValueError as exc:
            raise CliError(f"--timestamp: {exc}") from None

    builder = _KeepingBuilder()
    with Client(
        args.access_key,
        track_whitelist=getattr(args, "track_whitelist", None) or None,
        endpoint=args.endpoint,
        timeout=args.timeout,
        sync_mode=True,
        send=not args.dry_run,
        exit_timeout=0,
        builder=builder,
    ) as client:
        if kind == "identify":
            receipt = client.identify(args.user_id, traits, **options)
        elif kind == "track":
            receipt = client.track(args.user_id, args.event, properties, **options)
        else:
            receipt = client.group(args.user_id, args.group_id, traits, **options)

    out = sys.stdout
    out.write(f"messageId: {receipt.message_id}\n")
    note = ""
    if receipt.outcome is Outcome.FILTERED:
        note = f" (the track whitelist skips {args.event!r}: nothing was sent)"
    out.write(f"outcome: {receipt.outcome.value}{note}\n")
    if receipt.outcome is Outcome.DRY_RUN and builder.built:
        _print_json(builder.built[-1].payload(), out)
    out.flush()
    if receipt.error is not None:
        detail = f" (response: {receipt.error.body})" if receipt.error.body else ""
        raise CliError(f"not delivered: {receipt.error}{detail}", EXIT_FAILED)
    return EXIT_OK


# replay ----------------------------------------------------------------------------------


def _replay(args: argparse.Namespace) -> int:
    from . import _replay

    _check_access_key(args.access_key)
    if args.workers < 1:
        raise CliError("--workers: must be at least 1")
    if args.progress_interval <= 0:
        raise CliError("--progress-interval: must be greater than zero")
    if args.progress_every < 0:
        raise CliError("--progress-every: must be zero or more")
    try:
        return _replay.run(args, sys.stdout, sys.stderr)
    except _replay._Fatal as exc:
        raise CliError(str(exc)) from None


# collector -------------------------------------------------------------------------------


def _collector(args: argparse.Namespace) -> int:
    from .testing import DEMO_ACCESS_KEY, Faults, LocalCollector

    try:
        faults = Faults(
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
        collector = LocalCollector(
            args.access_key or DEMO_ACCESS_KEY,
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


# audience --------------------------------------------------------------------------------


def _audience(argv: list[str]) -> int:
    import importlib

    try:
        module = importlib.import_module("gainsight_segment.cli._audience")
    except ModuleNotFoundError as exc:
        if exc.name != "gainsight_segment.cli._audience":
            raise
        module = None
    audience_main = getattr(module, "audience_main", None)
    if audience_main is None:
        raise CliError("the audience command is not available in this version")
    status = audience_main(argv)
    return int(status or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
