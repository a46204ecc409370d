"""``gainsight-segment send identify|track|group``: send one message built from flags."""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone
from typing import Any

import gainsight_segment as gs

from ._messages import parse_timestamp
from ._parser import (
    EXIT_FAILED,
    EXIT_OK,
    CliError,
    CommandParser,
    add_client_options,
    add_command,
    client_access_key,
    json_object,
    positive_seconds,
    print_json,
)

_KINDS = (
    ("identify", "tell Gainsight who a user is"),
    ("track", "record that a user did something"),
    ("group", "associate a user with a group (Salesforce Account)"),
)


def add_parser(commands: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``send`` command and its three subcommands."""
    send = commands.add_parser(
        "send",
        help="send one identify, track or group message",
        description="Send one message in the caller's thread and print its id and outcome.",
    )
    kinds = send.add_subparsers(dest="type", metavar="TYPE", required=True)
    for kind, summary in _KINDS:
        sub = add_command(
            kinds, kind, run, summary=summary, description=f"{summary[0].upper()}{summary[1:]}."
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
            type=positive_seconds,
            default=10.0,
            help="seconds per attempt (default: 10)",
        )
        add_client_options(
            sub,
            whitelist=kind == "track",
            dry_run="build and validate, print the message, send nothing",
        )


def run(args: argparse.Namespace) -> int:
    """Send the message and print its id and outcome."""
    access_key = client_access_key(args)
    options = _call_options(args)
    with gs.Client(
        access_key,
        track_whitelist=getattr(args, "track_whitelist", None) or None,
        endpoint=args.endpoint,
        timeout=args.timeout,
        sync_mode=True,
        send=not args.dry_run,
        exit_timeout=0,
    ) as client:
        receipt = _call(client, args, options)

    out = sys.stdout
    out.write(f"messageId: {receipt.message_id}\n")
    note = ""
    if receipt.outcome is gs.Outcome.FILTERED:
        note = f" (the track whitelist skips {args.event!r}: nothing was sent)"
    out.write(f"outcome: {receipt.outcome.value}{note}\n")
    if receipt.outcome is gs.Outcome.DRY_RUN:
        # The same call, with the same id and time, builds the message the client validated.
        options["message_id"] = receipt.message_id
        print_json(_call(gs.MessageBuilder(), args, options).payload(), out)
    out.flush()
    if receipt.error is not None:
        detail = f" (response: {receipt.error.body})" if receipt.error.body else ""
        raise CliError(f"not delivered: {receipt.error}{detail}", EXIT_FAILED)
    return EXIT_OK


def _call_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of the call, read from the flags."""
    options: dict[str, Any] = {
        "anonymous_id": args.anonymous_id,
        "context": json_object("--context", args.context),
        "integrations": json_object("--integrations", args.integrations),
        "message_id": args.message_id,
        "timestamp": datetime.now(timezone.utc),
    }
    if args.timestamp is not None:
        try:
            options["timestamp"] = parse_timestamp(args.timestamp)
        except ValueError as exc:
            raise CliError(f"--timestamp: {exc}") from None
    options["traits"] = json_object("--traits", getattr(args, "traits", None))
    options["properties"] = json_object("--properties", getattr(args, "properties", None))
    return options


def _call(target: Any, args: argparse.Namespace, options: dict[str, Any]) -> Any:
    """Make the identify, track or group call on a client or a message builder."""
    options = dict(options)
    traits, properties = options.pop("traits"), options.pop("properties")
    if args.type == "identify":
        return target.identify(args.user_id, traits, **options)
    if args.type == "track":
        return target.track(args.user_id, args.event, properties, **options)
    return target.group(args.user_id, args.group_id, traits, **options)
