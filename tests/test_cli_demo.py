"""gainsight-segment demo: Segment's examples, sent to a local collector and shown."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from gainsight_segment import testing
from gainsight_segment.cli import main
from gainsight_segment.testing import Faults, LocalCollector

from .cli_support import assert_one_error_line, json_blocks, run_cli

ACCOUNT = "o283h08fh2390f923uofu23"


@pytest.fixture(scope="module")
def demo_output() -> str:
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_demo_through_main_exits_0_and_prints_the_three_messages(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["demo"]) == 0
    messages = json_blocks(capsys.readouterr().out)
    assert [m["type"] for m in messages] == ["identify", "track", "group"]


def test_demo_shows_what_the_collector_received(demo_output: str) -> None:
    identify, track, group = json_blocks(demo_output)
    assert identify["userId"] == "123"
    assert identify["traits"] == {
        "accountId": ACCOUNT,
        "name": "Miles Morales",
        "email": "miles@example.com",
    }
    assert (track["event"], track["properties"]) == (
        "Account Created",
        {"accountId": ACCOUNT, "source": "Invite", "title": "CEO"},
    )
    assert (group["userId"], group["groupId"], group["traits"]) == (
        "123",
        "555",
        {"name": "Twitter"},
    )


def test_demo_messages_carry_sent_at_as_received(demo_output: str) -> None:
    assert all("sentAt" in message for message in json_blocks(demo_output))


def test_demo_prints_each_message_with_the_id_its_call_returned(demo_output: str) -> None:
    returned = re.findall(r"-> queued\s+(\S+)", demo_output)
    shown = re.findall(r"^#\d .*messageId (\S+)$", demo_output, re.M)
    assert returned == shown == [m["messageId"] for m in json_blocks(demo_output)]
    assert len(set(returned)) == 3


def test_demo_says_which_event_the_whitelist_skipped(demo_output: str) -> None:
    assert re.search(r'track\("123", "Page Scrolled", \.\.\.\)\s+-> filtered', demo_output)
    assert 'Skipped by the track whitelist: "Page Scrolled"' in demo_output
    assert "Page Scrolled" not in "".join(json.dumps(m) for m in json_blocks(demo_output))


@pytest.mark.parametrize(
    ("counter", "value"),
    [("queued", 3), ("delivered", 3), ("filtered", 1), ("failed", 0), ("dropped", 0)],
)
def test_demo_prints_the_client_counters(demo_output: str, counter: str, value: int) -> None:
    assert re.search(rf"^\s+{counter}\s+{value}$", demo_output, re.M)


def test_demo_exits_1_when_a_message_does_not_reach_the_collector(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    class RefusingOnce(LocalCollector):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, faults=Faults(statuses=[400]), **kwargs)

    monkeypatch.setattr(testing, "LocalCollector", RefusingOnce)
    assert main(["demo"]) == 1
    captured = capsys.readouterr()
    assert "The collector received 2 messages" in captured.out
    assert_one_error_line(captured.err, "the demo messages did not all reach the collector")
