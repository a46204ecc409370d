"""gainsight-segment collector: the local collector in the foreground."""

from __future__ import annotations

import io
import json
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
from gainsight_segment.cli import _collector, main
from gainsight_segment.testing import DEMO_ACCESS_KEY, LocalCollector

from .conftest import ACCESS_KEY

ACCOUNT = "o283h08fh2390f923uofu23"
OTHER_KEY = "35a84f9e-7084-47a1-b8a5-593444e9e862"
DEMO_KEY_SHOWN = f"(access key {DEMO_ACCESS_KEY})"


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
        match = re.fullmatch(
            rf"listening on (http://127\.0\.0\.1:\d+) {re.escape(DEMO_KEY_SHOWN)}\n", first
        )
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
        endpoint = process.stdout.readline().split()[2]
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
        match = re.match(r"listening on (http://127\.0\.0\.1:\d+) ", self.getvalue())
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
    monkeypatch.setattr(_collector, "threading", scripted)
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
    assert out.getvalue() == f"listening on {out.endpoint()} {DEMO_KEY_SHOWN}\n"


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
        with _collector._StopOnSigterm(threading.Event()):
            seen.append(signal.getsignal(signal.SIGTERM))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join(timeout=10)
    assert seen == [before]


def test_collector_on_a_port_in_use_is_a_one_line_error(
    collector: LocalCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["collector", "--port", str(collector.port)]) == 2
    assert capsys.readouterr().err == (
        f"gainsight-segment: error: cannot listen on 127.0.0.1:{collector.port}: "
        "Address already in use\n"
    )


@pytest.mark.parametrize(
    ("args", "shown"),
    [
        pytest.param([], DEMO_KEY_SHOWN, id="the-demo-key-in-full"),
        pytest.param(["--access-key", OTHER_KEY], "(access key ****e862)", id="a-key-masked"),
    ],
)
def test_collector_command_says_where_it_listens_and_which_key_it_accepts(
    monkeypatch: pytest.MonkeyPatch, args: list[str], shown: str
) -> None:
    out = _Stdout()
    run_collector_command(monkeypatch, out, "--quiet", *args, meanwhile=send_tracks(0), stop=ctrl_c)
    assert out.getvalue() == f"listening on {out.endpoint()} {shown}\n"


def test_collector_command_reads_the_key_to_accept_from_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "key"
    key_file.write_text(OTHER_KEY + "\n", encoding="utf-8")
    accepted: list[gs.Receipt] = []

    def send_with_the_key(endpoint: str) -> None:
        with gs.Client(OTHER_KEY, endpoint=endpoint, sync_mode=True) as client:
            accepted.append(client.identify("1"))

    out = _Stdout()
    args = ["--quiet", "--access-key-file", str(key_file)]
    run_collector_command(monkeypatch, out, *args, meanwhile=send_with_the_key, stop=ctrl_c)
    assert [receipt.outcome for receipt in accepted] == [gs.Outcome.SENT]
