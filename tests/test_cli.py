"""The gainsight-segment command line: demo, send, collector, audience, and its errors."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import pytest

import gainsight_segment as gs
from gainsight_segment._cli import main
from gainsight_segment._collector import Faults, LocalCollector

from .conftest import ACCESS_KEY

ACCOUNT = "o283h08fh2390f923uofu23"
OTHER_KEY = "35a84f9e-7084-47a1-b8a5-593444e9e862"
LIBRARY = {"name": "gainsight-segment", "version": gs.__version__}


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m gainsight_segment`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "gainsight_segment", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def json_blocks(text: str) -> list[dict[str, Any]]:
    """The pretty-printed JSON objects of an output, in order."""
    return [json.loads(block) for block in re.findall(r"^\{\n.*?^\}$", text, re.M | re.S)]


def assert_one_error_line(stderr: str, fragment: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("gainsight-segment: error: ")
    assert fragment in lines[0]


# demo ------------------------------------------------------------------------------------


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


# send ------------------------------------------------------------------------------------


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


# errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(
            ["send", "identify", "--user-id", "1", "--access-key", "short"],
            "36 characters",
            id="bad-key",
        ),
        pytest.param(
            ["send", "identify", "--user-id", "1"],
            "no access key: pass --access-key or set GAINSIGHT_ACCESS_KEY",
            id="no-key",
        ),
        pytest.param(
            ["send", "identify", "--user-id", "1", "--access-key", ACCESS_KEY, "--traits", "{bad"],
            "--traits: not valid JSON",
            id="bad-json",
        ),
        pytest.param(
            ["send", "identify", "--user-id", "1", "--access-key", ACCESS_KEY, "--traits", "[1]"],
            "--traits: must be a JSON object, got list",
            id="json-not-object",
        ),
        pytest.param(
            ["send", "identify", "--user-id", "1", "--access-key", ACCESS_KEY, "--timestamp", "x"],
            "--timestamp: not an ISO-8601 date-time",
            id="bad-timestamp",
        ),
        pytest.param(
            ["send", "identify", "--access-key", ACCESS_KEY],
            "userId: a userId or an anonymousId is required",
            id="invalid-message",
        ),
        pytest.param(
            ["send", "identify", "--user-id", "1", "--access-key", ACCESS_KEY, "--endpoint", "x"],
            "endpoint:",
            id="bad-endpoint",
        ),
        pytest.param(
            ["send", "track", "--user-id", "1", "--access-key", ACCESS_KEY],
            "the following arguments are required: --event",
            id="missing-flag",
        ),
        pytest.param(["frobnicate"], "invalid choice: 'frobnicate'", id="unknown-command"),
        pytest.param([], "the following arguments are required: COMMAND", id="no-command"),
        pytest.param(
            ["replay", "/nonexistent/file.jsonl", "--access-key", ACCESS_KEY],
            "/nonexistent/file.jsonl: No such file or directory",
            id="missing-file",
        ),
        pytest.param(
            ["collector", "--host", "example.com"], "only binds loopback", id="collector-host"
        ),
        pytest.param(["collector", "--failure-rate", "2"], "failure_rate", id="collector-faults"),
    ],
)
def test_errors_are_one_line_with_exit_status_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragment: str,
) -> None:
    monkeypatch.delenv("GAINSIGHT_ACCESS_KEY", raising=False)
    assert main(args) == 2
    assert_one_error_line(capsys.readouterr().err, fragment)


def test_a_bad_key_is_never_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    bad = "35a84f9e-7084-47a1-b8a5-593444e9e86"
    main(["send", "identify", "--user-id", "1", "--access-key", bad])
    captured = capsys.readouterr()
    assert bad not in captured.out + captured.err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(
            ["send", "identify", "--user-id", "1", "--access-key", "short"],
            "36 characters",
            id="bad-key",
        ),
        pytest.param(
            [
                "send",
                "track",
                "--user-id",
                "1",
                "--event",
                "x",
                "--access-key",
                ACCESS_KEY,
                "--properties",
                "{",
            ],
            "--properties: not valid JSON",
            id="bad-json",
        ),
        pytest.param(
            ["replay", "/nonexistent.jsonl", "--access-key", ACCESS_KEY],
            "No such file",
            id="missing-file",
        ),
    ],
)
def test_errors_in_a_subprocess_have_no_traceback(args: list[str], fragment: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert_one_error_line(result.stderr, fragment)


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "replay" in capsys.readouterr().out


def test_version_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"gainsight-segment {gs.__version__}"


def test_python_dash_m_runs_the_cli() -> None:
    result = run_cli("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"gainsight-segment {gs.__version__}")


def test_console_script_runs_the_cli() -> None:
    script = Path(sys.executable).with_name("gainsight-segment")
    if not script.exists():
        pytest.skip("the package is not installed with its console script")
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout.strip()) == (0, f"gainsight-segment {gs.__version__}")


# collector -------------------------------------------------------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="sends POSIX signals")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_collector_prints_its_endpoint_then_each_message_and_stops_cleanly(
    signum: signal.Signals,
) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "gainsight_segment", "collector", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        match = re.fullmatch(r"listening on (http://127\.0\.0\.1:\d+)\n", first)
        assert match, first
        with gs.Client(ACCESS_KEY, endpoint=match[1], sync_mode=True) as client:
            receipt = client.track("123", "Account Created", {"accountId": ACCOUNT})
        printed = json.loads(process.stdout.readline())
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert printed["messageId"] == receipt.message_id
    assert process.returncode == 0
    assert "Traceback" not in stderr
    assert "1 message received" in stderr


def test_collector_accepts_only_its_access_key() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "gainsight_segment", "collector", "--access-key", OTHER_KEY],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        endpoint = process.stdout.readline().split()[-1]
        with gs.Client(ACCESS_KEY, endpoint=endpoint, sync_mode=True, max_retries=0) as client:
            wrong = client.identify("1")
        with gs.Client(OTHER_KEY, endpoint=endpoint, sync_mode=True) as client:
            right = client.identify("1")
    finally:
        process.terminate()
        process.communicate(timeout=30)
    assert wrong.error is not None
    assert wrong.error.status == 401
    assert right.outcome is gs.Outcome.SENT


# audience --------------------------------------------------------------------------------


def test_audience_dispatches_the_rest_of_the_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[list[str]] = []

    def audience_main(argv: list[str]) -> int:
        seen.append(list(argv))
        return 3

    fake = types.ModuleType("gainsight_segment._audience")
    fake.audience_main = audience_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gainsight_segment._audience", fake)
    assert main(["audience", "sync", "VIP", "--help"]) == 3
    assert seen == [["sync", "VIP", "--help"]]


def test_audience_without_its_module_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(
        sys.modules, "gainsight_segment._audience", types.ModuleType("gainsight_segment._audience")
    )
    assert main(["audience", "sync"]) == 2
    assert_one_error_line(capsys.readouterr().err, "audience command is not available")
