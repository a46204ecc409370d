"""gainsight-segment send: one identify, track or group message built from flags."""

from __future__ import annotations

from typing import Any

import pytest

import gainsight_segment as gs
from gainsight_segment.cli import main
from gainsight_segment.testing import Faults, LocalCollector

from .cli_support import assert_one_error_line, json_blocks
from .conftest import ACCESS_KEY

ACCOUNT = "o283h08fh2390f923uofu23"
LIBRARY = {"name": "gainsight-segment", "version": gs.__version__}


def send_args(collector: LocalCollector, *args: str) -> list[str]:
    return ["send", *args, "--access-key", ACCESS_KEY, "--endpoint", collector.endpoint]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        pytest.param(
            ["identify", "--user-id", "123", "--traits", f'{{"accountId": "{ACCOUNT}"}}'],
            {"type": "identify", "userId": "123", "traits": {"accountId": ACCOUNT}},
            id="identify",
        ),
        pytest.param(
            ["track", "--user-id", "123", "--event", "Account Created", "--properties", "{}"],
            {"type": "track", "event": "Account Created", "properties": {}},
            id="track",
        ),
        pytest.param(
            ["group", "--user-id", "123", "--group-id", "555", "--traits", '{"name": "Twitter"}'],
            {"type": "group", "groupId": "555", "traits": {"name": "Twitter"}},
            id="group",
        ),
        pytest.param(
            ["identify", "--anonymous-id", "anon-1"],
            {"anonymousId": "anon-1"},
            id="anonymous-id",
        ),
        pytest.param(
            ["identify", "--user-id", "1", "--context", '{"ip": "1.2.3.4"}'],
            {"context": {"ip": "1.2.3.4", "library": LIBRARY}},
            id="context",
        ),
        pytest.param(
            ["identify", "--user-id", "1", "--timestamp", "2014-05-05T10:00:00+02:00"],
            {"timestamp": "2014-05-05T08:00:00.000Z"},
            id="timestamp",
        ),
        pytest.param(
            ["identify", "--user-id", "1", "--message-id", "my-id"],
            {"messageId": "my-id"},
            id="message-id",
        ),
    ],
)
def test_send_delivers_the_message_built_from_flags(
    collector: LocalCollector,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    expected: dict[str, Any],
) -> None:
    assert main(send_args(collector, *args)) == 0
    [received] = collector.messages
    assert {key: received[key] for key in expected} == expected


def test_send_prints_the_message_id_and_outcome(
    collector: LocalCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    main(send_args(collector, "identify", "--user-id", "123"))
    out = capsys.readouterr().out
    assert out == f"messageId: {collector.messages[0]['messageId']}\noutcome: sent\n"


def test_send_reads_the_key_from_the_environment(
    collector: LocalCollector, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("GAINSIGHT_ACCESS_KEY", ACCESS_KEY)
    assert main(["send", "identify", "--user-id", "1", "--endpoint", collector.endpoint]) == 0
    assert len(collector.messages) == 1


def test_send_dry_run_prints_the_message_and_sends_nothing(
    collector: LocalCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        main(send_args(collector, "group", "--user-id", "1", "--group-id", "555", "--dry-run")) == 0
    )
    out = capsys.readouterr().out
    assert "outcome: dry_run" in out
    [message] = json_blocks(out)
    assert (message["type"], message["groupId"]) == ("group", "555")
    assert collector.requests == []


def test_send_track_skipped_by_the_whitelist_sends_nothing_and_succeeds(
    collector: LocalCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    args = send_args(collector, "track", "--user-id", "1", "--event", "Page Scrolled")
    assert main([*args, "--track-whitelist", "Account Created"]) == 0
    assert "outcome: filtered" in capsys.readouterr().out
    assert collector.requests == []


def test_send_whitelist_flag_is_repeatable(
    collector: LocalCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    args = send_args(collector, "track", "--user-id", "1", "--event", "Logged In")
    whitelist = ["--track-whitelist", "Account Created", "--track-whitelist", "Logged In"]
    assert main([*args, *whitelist]) == 0
    assert [m["event"] for m in collector.messages] == ["Logged In"]


def test_send_failure_exits_1_with_one_error_line(
    collector: LocalCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    collector.faults = Faults(statuses=[400])
    assert main(send_args(collector, "identify", "--user-id", "1")) == 1
    captured = capsys.readouterr()
    assert "outcome: failed" in captured.out
    assert_one_error_line(captured.err, "not delivered: HTTP 400")
