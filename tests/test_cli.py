"""The gainsight-segment command line: demo, send, collector, audience, and its errors."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import types
from pathlib import Path
from typing import Any, Callable

import pytest

import gainsight_segment as gs
from gainsight_segment import _cli, testing
from gainsight_segment._cli import main
from gainsight_segment.testing import Faults, LocalCollector

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

    fake = types.ModuleType("gainsight_segment.cli._audience")
    fake.audience_main = audience_main  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "gainsight_segment.cli._audience", fake)
    assert main(["audience", "sync", "VIP", "--help"]) == 3
    assert seen == [["sync", "VIP", "--help"]]


def test_audience_without_its_module_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(
        sys.modules,
        "gainsight_segment.cli._audience",
        types.ModuleType("gainsight_segment.cli._audience"),
    )
    assert main(["audience", "sync"]) == 2
    assert_one_error_line(capsys.readouterr().err, "audience command is not available")


# collector, in-process -------------------------------------------------------------------


class _Stdout(io.StringIO):
    """A stdout that can be told to refuse what ASCII cannot encode, like a C-locale tty."""

    def __init__(self, *, ascii_only: bool = False) -> None:
        super().__init__()
        self._ascii_only = ascii_only

    def write(self, text: str) -> int:
        if self._ascii_only:
            text.encode("ascii")
        return super().write(text)

    def endpoint(self) -> str:
        match = re.match(r"listening on (http://127\.0\.0\.1:\d+)\n", self.getvalue())
        assert match, self.getvalue()
        return match[1]


def ctrl_c() -> None:
    raise KeyboardInterrupt


def sigterm() -> None:
    # Only while the command's handler is installed: the default one would end pytest.
    assert signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, signal.SIG_IGN, None)
    signal.raise_signal(signal.SIGTERM)


def run_collector_command(
    monkeypatch: pytest.MonkeyPatch,
    out: _Stdout,
    *args: str,
    meanwhile: Callable[[str], None],
    stop: Callable[[], None],
) -> int:
    """Run ``main(["collector", ...])`` in this thread. Its first wait for Ctrl-C or SIGTERM
    runs ``meanwhile(endpoint)`` and times out at once; its second calls ``stop()``."""
    waits: list[float | None] = []

    class ScriptedEvent(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            waits.append(timeout)
            if len(waits) == 1:
                meanwhile(out.endpoint())
                return super().wait(0)
            assert len(waits) == 2, "the collector command did not stop"
            stop()
            return super().wait(timeout)

    scripted = types.ModuleType("threading")
    scripted.__dict__.update(vars(threading))
    scripted.Event = ScriptedEvent  # type: ignore[attr-defined]
    monkeypatch.setattr(_cli, "threading", scripted)
    monkeypatch.setattr(sys, "stdout", out)
    return main(["collector", *args])


def send_tracks(count: int, properties: dict[str, Any] | None = None) -> Callable[[str], None]:
    def send(endpoint: str) -> None:
        with gs.Client(ACCESS_KEY, endpoint=endpoint, sync_mode=True) as client:
            for _ in range(count):
                client.track("123", "Account Created", properties or {"accountId": ACCOUNT})

    return send


@pytest.mark.skipif(not hasattr(signal, "raise_signal"), reason="needs signal.raise_signal")
@pytest.mark.parametrize(
    ("stop", "count", "summary"),
    [
        pytest.param(ctrl_c, 0, "collector stopped; 0 messages received\n", id="ctrl-c-none"),
        pytest.param(sigterm, 1, "collector stopped; 1 message received\n", id="sigterm-one"),
        pytest.param(sigterm, 2, "collector stopped; 2 messages received\n", id="sigterm-two"),
    ],
)
def test_collector_command_stops_with_status_0_and_counts_what_it_received(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    stop: Callable[[], None],
    count: int,
    summary: str,
) -> None:
    status = run_collector_command(monkeypatch, _Stdout(), meanwhile=send_tracks(count), stop=stop)
    assert (status, capsys.readouterr().err) == (0, summary)


def test_collector_command_prints_each_message_as_one_json_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = _Stdout()
    run_collector_command(monkeypatch, out, meanwhile=send_tracks(2), stop=ctrl_c)
    _, *lines = out.getvalue().splitlines()
    messages = [json.loads(line) for line in lines]
    assert [(m["type"], m["event"]) for m in messages] == [("track", "Account Created")] * 2


def test_collector_command_quiet_prints_only_where_it_listens(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = _Stdout()
    run_collector_command(monkeypatch, out, "--quiet", meanwhile=send_tracks(1), stop=ctrl_c)
    assert out.getvalue() == f"listening on {out.endpoint()}\n"


def test_collector_command_escapes_what_stdout_cannot_encode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out = _Stdout(ascii_only=True)
    send = send_tracks(1, {"accountId": ACCOUNT, "name": "Zoé"})
    run_collector_command(monkeypatch, out, meanwhile=send, stop=ctrl_c)
    _, line = out.getvalue().splitlines()
    assert "Zo\\u00e9" in line
    assert json.loads(line)["properties"]["name"] == "Zoé"


@pytest.mark.skipif(not hasattr(signal, "raise_signal"), reason="needs signal.raise_signal")
def test_collector_command_restores_the_previous_sigterm_handler(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def previous(signum: int, frame: types.FrameType | None) -> None:
        raise AssertionError("the command's own handler should have run")

    original = signal.signal(signal.SIGTERM, previous)
    try:
        run_collector_command(monkeypatch, _Stdout(), meanwhile=send_tracks(0), stop=sigterm)
        assert signal.getsignal(signal.SIGTERM) is previous
    finally:
        signal.signal(signal.SIGTERM, original)


def test_sigterm_is_left_alone_outside_the_main_thread() -> None:
    before = signal.getsignal(signal.SIGTERM)
    seen: list[object] = []

    def body() -> None:
        with _cli._StopOnSigterm(threading.Event()):
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(timeout=10)
    assert seen == [before]


def test_collector_on_a_port_in_use_is_a_one_line_error(
    collector: LocalCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["collector", "--port", str(collector.port)]) == 2
    assert_one_error_line(capsys.readouterr().err, "Address already in use")


# interruptions and broken pipes -----------------------------------------------------------


def test_ctrl_c_exits_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> gs.Receipt:
        raise KeyboardInterrupt

    monkeypatch.setattr(gs.Client, "identify", interrupted)
    assert main(["send", "identify", "--user-id", "1", "--access-key", ACCESS_KEY]) == 130
    assert capsys.readouterr().err == "\n"


class _BrokenPipe(io.StringIO):
    """A stdout whose reader went away; its descriptor is a real file, to see what lands."""

    def __init__(self, fd: int | None) -> None:
        super().__init__()
        self._fd = fd

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        if self._fd is None:
            raise io.UnsupportedOperation("fileno")
        return self._fd


DRY_RUN_SEND = ["send", "identify", "--user-id", "1", "--access-key", ACCESS_KEY, "--dry-run"]


def test_a_broken_pipe_exits_1_without_a_word(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdout", _BrokenPipe(None))
    assert main(DRY_RUN_SEND) == 1
    assert capsys.readouterr().err == ""


def test_a_broken_pipe_points_stdout_at_devnull_so_the_exit_flush_cannot_fail(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "stdout"
    with target.open("wb") as file:
        monkeypatch.setattr(sys, "stdout", _BrokenPipe(file.fileno()))
        main(DRY_RUN_SEND)
        os.write(file.fileno(), b"written after the pipe broke")
    assert target.read_bytes() == b""


# demo ------------------------------------------------------------------------------------


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


# audience, continued ------------------------------------------------------------------------


def test_audience_not_installed_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # None in sys.modules makes the import fail as if the module were not there.
    monkeypatch.setitem(sys.modules, "gainsight_segment.cli._audience", None)
    assert main(["audience", "sync"]) == 2
    assert_one_error_line(capsys.readouterr().err, "audience command is not available")


def test_audience_with_a_missing_dependency_raises_it_rather_than_hide_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(sys.modules, "gainsight_segment.cli._audience", raising=False)
    monkeypatch.setitem(sys.modules, "sqlite3", None)
    with pytest.raises(ModuleNotFoundError) as raised:
        main(["audience", "sync"])
    assert raised.value.name == "sqlite3"
