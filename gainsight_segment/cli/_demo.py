"""``gainsight-segment demo``: Segment's Gainsight examples, sent to a local collector."""

from __future__ import annotations

import argparse
import sys
from typing import IO, Any

import gainsight_segment as gs
from gainsight_segment import testing

from ._parser import EXIT_FAILED, EXIT_OK, CliError, CommandParser, add_command, print_json

# The examples of Segment's Gainsight destination documentation.
USER_ID = "123"
ACCOUNT_ID = "o283h08fh2390f923uofu23"
TRAITS = {"accountId": ACCOUNT_ID, "name": "Miles Morales", "email": "miles@example.com"}
EVENT = "Account Created"
PROPERTIES = {"accountId": ACCOUNT_ID, "source": "Invite", "title": "CEO"}
GROUP_ID = "555"
GROUP_TRAITS = {"name": "Twitter"}
SKIPPED_EVENT = "Page Scrolled"


def add_parser(commands: argparse._SubParsersAction[CommandParser]) -> None:
    """Add the ``demo`` command."""
    add_command(
        commands,
        "demo",
        run,
        summary="send Segment's Gainsight examples to a local collector and show what arrived",
        description="Start a local collector, send Segment's documented Gainsight examples "
        "through a Client with a track whitelist, and show what the collector received. "
        "Needs no account, key or network.",
    )


def run(args: argparse.Namespace) -> int:
    """Send the examples, then show what the collector received and the client's counters."""
    out = sys.stdout
    with testing.LocalCollector(testing.DEMO_ACCESS_KEY) as collector:
        out.write(f"Local collector listening on {collector.endpoint}\n")
        out.write(f'Client(DEMO_ACCESS_KEY, track_whitelist=["{EVENT}"])\n\n')
        client = gs.Client(
            testing.DEMO_ACCESS_KEY,
            endpoint=collector.endpoint,
            track_whitelist=[EVENT],
            exit_timeout=0,
        )
        try:
            calls = _send_examples(client)
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
    _show_received(received, out)
    out.write(
        f'\nSkipped by the track whitelist: "{SKIPPED_EVENT}" '
        f'(only "{EVENT}" is whitelisted; nothing was sent for it)\n'
    )
    out.write("\nClient counters (client.stats()):\n")
    for name in ("queued", "delivered", "filtered", "failed", "dropped", "retried"):
        out.write(f"  {name:<10} {getattr(stats, name)}\n")
    out.flush()
    if not (stats.delivered == 3 and len(received) == 3):
        raise CliError("the demo messages did not all reach the collector", EXIT_FAILED)
    return EXIT_OK


def _send_examples(client: gs.Client) -> list[tuple[str, gs.Receipt]]:
    return [
        (f'identify("{USER_ID}", ...)', client.identify(USER_ID, TRAITS)),
        (f'track("{USER_ID}", "{EVENT}", ...)', client.track(USER_ID, EVENT, PROPERTIES)),
        (
            f'group("{USER_ID}", "{GROUP_ID}", ...)',
            client.group(USER_ID, GROUP_ID, GROUP_TRAITS),
        ),
        (
            f'track("{USER_ID}", "{SKIPPED_EVENT}", ...)',
            client.track(USER_ID, SKIPPED_EVENT, {"accountId": ACCOUNT_ID}),
        ),
    ]


def _show_received(received: list[dict[str, Any]], out: IO[str]) -> None:
    out.write(f"\nThe collector received {len(received)} messages:\n")
    for index, message in enumerate(received, 1):
        label = message.get("type", "?")
        if label == "track":
            label += f' "{message.get("event")}"'
        out.write(f"\n#{index} {label}, messageId {message.get('messageId')}\n")
        print_json(message, out)
