"""gainsight-segment relay: deliver an outbox file from a process of its own."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import gainsight_segment as gs
from gainsight_segment.cli import main
from gainsight_segment.outbox import Outbox
from gainsight_segment.testing import Faults, LocalCollector

from .cli_support import assert_one_error_line
from .conftest import ACCESS_KEY

PATIENCE = 20.0
KEY_ENV = "GAINSIGHT_ACCESS_KEY"

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX signals")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


def fill(path: Path, count: int, start: int = 0) -> list[str]:
    """Write ``count`` tracks to the outbox as a write-only app does; their ids."""
    with gs.Client(ACCESS_KEY, outbox=str(path), workers=0, exit_timeout=0) as client:
        return [client.track("u", "Clicked", {"n": n}).message_id for n in range(start, count)]


def summary(path: Path) -> tuple[int, int, int]:
    """Waiting, claimed and dead letters."""
    with Outbox(path) as outbox:
        found = outbox.summary()
    return found.waiting, found.claimed, found.dead_letters


def relay_args(path: Path, collector: LocalCollector, *more: str) -> list[str]:
    return ["relay", str(path), "--access-key", ACCESS_KEY, "--endpoint", collector.endpoint, *more]


def ids(collector: LocalCollector) -> list[str]:
    return sorted(m["messageId"] for m in collector.messages)


def until(condition: Any, what: str) -> None:
    """Wait for a condition another process brings about, looking every 10 ms."""
    deadline = time.monotonic() + PATIENCE
    while not condition():
        assert time.monotonic() < deadline, f"waited {PATIENCE} s for {what}"
        time.sleep(0.01)


def claimed(path: Path) -> bool:
    return summary(path)[1] > 0


# --- --once ------------------------------------------------------------------------------


def test_once_delivers_what_the_file_holds_and_exits_0(
    path: Path, collector: LocalCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    sent = fill(path, 50)
    assert main(relay_args(path, collector, "--once")) == 0
    assert ids(collector) == sorted(sent)
    assert summary(path) == (0, 0, 0)
    first, second, *_, ending, last = capsys.readouterr().out.splitlines()
    assert first == f"relay (once): delivering from {path} to {collector.endpoint}"
    assert re.fullmatch(r"relay: 50 waiting \(oldest \d+\.\d s\), 0 dead letters", second)
    assert re.fullmatch(r"relay done in \d+\.\d s: 50 delivered, 0 refused", ending)
    assert last == "relay: 0 waiting, 0 dead letters"


def test_once_on_an_empty_file_exits_0_at_once(
    path: Path, collector: LocalCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    started = time.monotonic()
    assert main(relay_args(path, collector, "--once")) == 0
    assert time.monotonic() - started < 5
    assert path.exists()  # created: a relay may start before its apps
    assert ": 0 delivered, 0 refused\nrelay: 0 waiting" in capsys.readouterr().out


def test_once_exits_1_when_messages_were_refused(
    path: Path, collector: LocalCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    collector.faults = Faults(statuses=(400, 400))
    fill(path, 5)
    assert main(relay_args(path, collector, "--once")) == 1
    assert summary(path) == (0, 0, 2)
    assert capsys.readouterr().out.endswith(
        ": 3 delivered, 2 refused\nrelay: 0 waiting, 2 dead letters\n"
    )


def test_once_gives_up_at_its_timeout_leaving_the_rest_in_the_file(
    path: Path, collector: LocalCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    collector.faults = Faults(stall=True)
    fill(path, 5)
    started = time.monotonic()
    assert main(relay_args(path, collector, "--once", "--timeout", "0.5", "--grace", "0.5")) == 1
    assert time.monotonic() - started < 5
    assert summary(path) == (5, 0, 0)
    assert "relay stopped at --timeout 0.5 s: 0 delivered, 0 refused" in capsys.readouterr().out


def test_once_does_not_wait_for_messages_written_after_it_started(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(path, 10)
    writer = gs.Client(ACCESS_KEY, outbox=str(path), workers=0, exit_timeout=0)
    later: list[str] = []

    def write_another(message: dict[str, Any]) -> None:
        # Every delivery brings a new message: the file is never empty while it runs.
        if message["properties"]["n"] < 10:
            later.append(writer.track("u", "Clicked", {"n": 100}).message_id)

    with LocalCollector(ACCESS_KEY, on_message=write_another) as collector:
        assert main(relay_args(path, collector, "--once", "--max-workers", "1")) == 0
    writer.shutdown()
    delivered = {m["messageId"] for m in collector.messages}
    assert {m["properties"]["n"] for m in collector.messages} >= set(range(10))
    assert summary(path)[0] == len(set(later) - delivered)


# --- the access key ------------------------------------------------------------------------


def test_the_key_is_read_from_the_environment(
    path: Path, collector: LocalCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, ACCESS_KEY)
    fill(path, 3)
    assert main(["relay", str(path), "--once", "--endpoint", collector.endpoint]) == 0
    assert len(collector.messages) == 3


def test_the_key_is_read_from_a_file(
    path: Path,
    tmp_path: Path,
    collector: LocalCollector,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    key_file = tmp_path / "key"
    key_file.write_text(ACCESS_KEY + "\n", encoding="utf-8")
    fill(path, 3)
    args = ["relay", str(path), "--once", "--endpoint", collector.endpoint]
    assert main([*args, "--access-key-file", str(key_file)]) == 0
    assert len(collector.messages) == 3
    captured = capsys.readouterr()
    assert ACCESS_KEY not in captured.out + captured.err


def test_no_key_anywhere_is_a_one_line_error(
    path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    assert main(["relay", str(path), "--once"]) == 2
    assert_one_error_line(capsys.readouterr().err, "no access key")


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(["--max-workers", "0"], "--max-workers: must be a whole number", id="workers"),
        pytest.param(["--grace", "0"], "--grace: must be a number of seconds", id="grace"),
        pytest.param(["--timeout", "-1"], "--timeout: must be a number of seconds", id="timeout"),
        pytest.param(["--interval", "x"], "--interval: must be a number of seconds", id="interval"),
        pytest.param(["--endpoint", "http://example.com"], "endpoint:", id="plain-http"),
    ],
)
def test_bad_options_are_one_line_errors(
    path: Path, args: list[str], fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["relay", str(path), "--once", "--access-key", ACCESS_KEY, *args]) == 2
    assert_one_error_line(capsys.readouterr().err, fragment)


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        pytest.param(".", "is a directory", id="directory"),
        pytest.param("missing/events.db", "No such file or directory", id="missing-directory"),
    ],
)
def test_a_path_that_cannot_be_an_outbox_is_a_one_line_error(
    tmp_path: Path, where: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["relay", str(tmp_path / where), "--once", "--access-key", ACCESS_KEY]
    assert main(args) == 2
    assert_one_error_line(capsys.readouterr().err, fragment)


# --- running until told to stop ------------------------------------------------------------


@pytest.fixture
def signal_when_handled() -> Iterator[Any]:
    """Send this process a signal once the relay handles it (never to the default action)."""
    threads: list[threading.Thread] = []

    def send(signum: int, when: threading.Event) -> None:
        def run() -> None:
            when.wait(PATIENCE)
            until(
                lambda: (
                    signal.getsignal(signum) not in (signal.SIG_DFL, signal.default_int_handler)
                ),
                "the relay to handle the signal",
            )
            os.kill(os.getpid(), signum)

        thread = threading.Thread(target=run)
        thread.start()
        threads.append(thread)

    yield send
    for thread in threads:
        thread.join(PATIENCE)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_stops_the_relay_which_exits_0(
    path: Path,
    capsys: pytest.CaptureFixture[str],
    signal_when_handled: Any,
    signum: int,
) -> None:
    fill(path, 20)
    first = threading.Event()
    with LocalCollector(ACCESS_KEY, on_message=lambda message: first.set()) as collector:
        signal_when_handled(signum, first)
        assert main(relay_args(path, collector)) == 0
    out = capsys.readouterr().out
    assert f"relay stopped by {signal.Signals(signum).name} after " in out
    assert signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler)
    waiting, claimed, _ = summary(path)
    assert claimed == 0
    assert waiting + len(collector.messages) == 20


def test_the_relay_prints_a_line_per_interval(
    path: Path,
    collector: LocalCollector,
    capsys: pytest.CaptureFixture[str],
    signal_when_handled: Any,
) -> None:
    fill(path, 5)
    lines = threading.Event()
    threading.Timer(1.0, lines.set).start()
    signal_when_handled(signal.SIGTERM, lines)
    assert main(relay_args(path, collector, "--interval", "0.2")) == 0
    out = capsys.readouterr().out.splitlines()
    progress = [line for line in out if line.startswith("relay: ") and "delivered" in line]
    assert len(progress) >= 2
    assert progress[-1] == "relay: 5 delivered, 0 refused; 0 waiting, 0 dead letters"


# --- in a process of its own ---------------------------------------------------------------


@pytest.fixture
def relays() -> Iterator[list[subprocess.Popen[str]]]:
    """Relay processes, killed after the test if still running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for relay in started:
        if relay.poll() is None:
            relay.kill()
        relay.communicate(timeout=PATIENCE)


def start_relay(
    relays: list[subprocess.Popen[str]], path: Path, endpoint: str, *more: str
) -> subprocess.Popen[str]:
    """Start ``relay PATH`` in a process of its own; return once it runs."""
    command = [
        sys.executable,
        "-m",
        "gainsight_segment",
        "relay",
        str(path),
        "--endpoint",
        endpoint,
    ]
    relay = subprocess.Popen(
        [*command, *more],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, KEY_ENV: ACCESS_KEY},
    )
    relays.append(relay)
    assert relay.stdout is not None
    assert relay.stdout.readline().startswith("relay: delivering from ")
    assert " waiting" in relay.stdout.readline()  # what the file held at the start
    return relay


def finish(relay: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = relay.communicate(timeout=PATIENCE)
    return relay.returncode, out, err


def test_sigterm_lets_requests_in_flight_finish_and_leaves_the_rest_in_the_file(
    path: Path, relays: list[subprocess.Popen[str]]
) -> None:
    sent = fill(path, 40)
    with LocalCollector(ACCESS_KEY, faults=Faults(latency=0.2)) as collector:
        relay = start_relay(relays, path, collector.endpoint, "--max-workers", "2", "--grace", "10")
        assert collector.wait_for(1, PATIENCE)
        relay.send_signal(signal.SIGTERM)
        status, out, err = finish(relay)
        delivered = ids(collector)
    assert status == 0
    assert out.splitlines()[-2].startswith("relay stopped by SIGTERM after ")
    assert "Traceback" not in err
    assert len(set(delivered)) == len(delivered)  # in flight at the signal: answered, once
    waiting, claimed, _ = summary(path)
    assert claimed == 0
    assert waiting + len(delivered) == len(sent)


def test_a_relay_started_before_the_apps_delivers_what_they_write(
    path: Path, collector: LocalCollector, relays: list[subprocess.Popen[str]]
) -> None:
    relay = start_relay(relays, path, collector.endpoint)
    sent = fill(path, 25)
    assert collector.wait_for(25, PATIENCE)
    relay.send_signal(signal.SIGTERM)
    assert finish(relay)[0] == 0
    assert ids(collector) == sorted(sent)


def test_a_request_longer_than_the_grace_period_is_cut_and_its_message_kept(
    path: Path, relays: list[subprocess.Popen[str]]
) -> None:
    fill(path, 3)
    with LocalCollector(ACCESS_KEY, faults=Faults(stall=True)) as collector:
        relay = start_relay(relays, path, collector.endpoint, "--grace", "0.5")
        until(lambda: claimed(path), "the relay to claim messages")
        started = time.monotonic()
        relay.send_signal(signal.SIGTERM)
        status, _, _ = finish(relay)
        assert time.monotonic() - started < 5
    assert status == 0
    assert summary(path) == (3, 0, 0)


def test_a_second_signal_ends_the_grace_period_and_the_claims_are_taken_back(
    path: Path, collector: LocalCollector, relays: list[subprocess.Popen[str]]
) -> None:
    sent = fill(path, 10)
    with LocalCollector(ACCESS_KEY, faults=Faults(stall=True)) as stalled:
        relay = start_relay(relays, path, stalled.endpoint, "--grace", "60")
        until(lambda: claimed(path), "the relay to claim messages")
        relay.send_signal(signal.SIGTERM)
        assert relay.stdout is not None
        assert "SIGTERM received" in relay.stdout.readline()
        relay.send_signal(signal.SIGTERM)
        status, _, _ = finish(relay)
    assert status == -signal.SIGTERM
    started = time.monotonic()
    assert main(relay_args(path, collector, "--once")) == 0
    assert time.monotonic() - started < 10  # taken back at once, not after a lease
    assert ids(collector) == sorted(sent)
