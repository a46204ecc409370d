"""Reliability of the durable outbox: kills, many processes, an outage, a file that fails.

Each scenario runs real processes against the real loopback collector and checks what
arrived against what the calls returned, message id by message id: *lost* counts the
messages whose call returned and that neither arrived nor were reported to ``on_error``;
it is 0 in every scenario, and every scenario asserts it. Figures are printed on a
``RELIABILITY {json}`` line and appended to ``$GAINSIGHT_RELIABILITY_FIGURES`` as the other
reliability files do; ``docs/outbox.md`` quotes them.

The long scenarios carry the ``long`` marker (``-m "not long"`` leaves them out of a quick
run; the full suite runs them). The outage's size and pace are set by environment
variables, so that the full figure, 10 minutes at 200 events a second, can be run by hand::

    GAINSIGHT_OUTAGE_EVENTS=120000 GAINSIGHT_OUTAGE_RATE=200 \\
        python -m pytest tests/test_reliability_outbox.py -k outage --no-cov -s
"""

from __future__ import annotations

import collections
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import pytest

import gainsight_segment as gs
from gainsight_segment.outbox import Outbox
from gainsight_segment.testing import Faults, LocalCollector

from .conftest import ACCESS_KEY
from .outbox_support import read_only_dir, script  # noqa: F401 - a fixture
from .test_reliability import record_figures

PATIENCE = 120.0  # the longest any wait may take before the scenario fails
OUTAGE_EVENTS = int(os.environ.get("GAINSIGHT_OUTAGE_EVENTS", "10000"))
OUTAGE_RATE = float(os.environ.get("GAINSIGHT_OUTAGE_RATE", "0"))  # events/s; 0: full speed
RSS_LIMIT_MB = 50

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX processes")


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """Child processes, killed after the scenario if still running."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=PATIENCE)


def start(
    processes: list[subprocess.Popen[str]], source: str, *args: str, stdin: bool = False
) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        [*script(source), *args],
        stdin=subprocess.PIPE if stdin else None,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    processes.append(process)
    return process


def read_json(stream: IO[str] | None) -> dict[str, Any]:
    assert stream is not None
    line = stream.readline()
    assert line, "the process ended without reporting"
    document: dict[str, Any] = json.loads(line)
    return document


def summary(path: Path) -> Any:
    with Outbox(path) as outbox:
        return outbox.summary()


def until_empty(path: Path) -> float:
    """Wait until the outbox holds nothing (others deliver it); how long it took."""
    started = time.monotonic()
    while summary(path).waiting:
        assert time.monotonic() - started < PATIENCE, "the outbox was never emptied"
        time.sleep(0.05)
    return time.monotonic() - started


def duplicated(ids: list[str]) -> int:
    return sum(count - 1 for count in collections.Counter(ids).values())


# --------------------------------------------------------------------------------------------
# (a, b) A process killed in the middle of a 10,000-call burst; a new client on the file.
# --------------------------------------------------------------------------------------------

BURST = """
    import sys, time
    import gainsight_segment as gs

    key, endpoint, path, count = sys.argv[1:5]
    client = gs.Client(key, endpoint=endpoint, outbox=path, exit_timeout=0)
    for n in range(int(count)):
        receipt = client.track("u", "Burst", {"n": n})
        # Written once the call returned: every id read by the test is a call that did.
        sys.stdout.write(receipt.message_id + "\\n")
        sys.stdout.flush()
    time.sleep(600)
"""
BURST_CALLS = 10_000


@pytest.mark.long
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_process_killed_mid_burst_loses_no_call_that_returned(
    path: Path,
    collector: LocalCollector,
    processes: list[subprocess.Popen[str]],
    signum: int,
) -> None:
    child = start(processes, BURST, ACCESS_KEY, collector.endpoint, str(path), str(BURST_CALLS))
    assert child.stdout is not None
    returned = [child.stdout.readline().strip() for _ in range(BURST_CALLS // 2)]
    child.send_signal(signum)  # SIGTERM's default action: the process just ends
    assert child.wait(timeout=PATIENCE) == -signum
    # From the reader readline() used: communicate() reads the pipe past what that reader
    # holds, and may begin in the middle of an id (seen once, as a 21-character "id").
    returned += child.stdout.read().split()
    at_kill = summary(path)
    delivered_before = len(collector.messages)
    started = time.monotonic()
    with gs.Client(ACCESS_KEY, endpoint=collector.endpoint, outbox=str(path), exit_timeout=0):
        until_empty(path)
    drained = time.monotonic() - started
    arrived = [m["messageId"] for m in collector.messages]
    lost = set(returned) - set(arrived)
    duplicates = duplicated(arrived)
    record_figures(
        f"outbox-{'kill-9' if signum == signal.SIGKILL else 'sigterm'}",
        calls_returned=len(returned),
        delivered_before_kill=delivered_before,
        waiting_at_kill=at_kill.waiting,
        claimed_at_kill=at_kill.claimed,
        delivered=len(set(arrived)),
        duplicated=duplicates,
        lost=len(lost),
        drain_seconds=round(drained, 1),
    )
    assert lost == set()
    assert duplicates <= at_kill.claimed  # only messages a sender held at the kill
    assert BURST_CALLS // 2 <= len(returned) < BURST_CALLS


# --------------------------------------------------------------------------------------------
# (c) Four processes write one outbox while a relay process drains it.
# --------------------------------------------------------------------------------------------

WRITER = """
    import json, sys, time
    import gainsight_segment as gs

    key, path, who, count = sys.argv[1:5]
    client = gs.Client(key, outbox=path, workers=0, endpoint="http://127.0.0.1:9")
    started = time.perf_counter()
    for n in range(int(count)):
        client.track(who, "Written", {"n": n})
    took = time.perf_counter() - started
    client.shutdown()
    print(json.dumps({"seconds": took}))
"""
WRITERS, PER_WRITER = 4, 5_000


@pytest.mark.long
def test_four_writers_and_a_relay_share_one_outbox_and_lose_nothing(
    path: Path, collector: LocalCollector, processes: list[subprocess.Popen[str]]
) -> None:
    relay_args = ["-m", "gainsight_segment", "relay", str(path), "--endpoint", collector.endpoint]
    relay = subprocess.Popen(
        [sys.executable, *relay_args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "GAINSIGHT_ACCESS_KEY": ACCESS_KEY},
    )
    processes.append(relay)
    assert relay.stdout is not None
    assert relay.stdout.readline().startswith("relay: delivering from ")
    started = time.monotonic()
    writers = [
        start(processes, WRITER, ACCESS_KEY, str(path), f"writer-{w}", str(PER_WRITER))
        for w in range(WRITERS)
    ]
    written = [read_json(writer.stdout)["seconds"] for writer in writers]
    total = WRITERS * PER_WRITER
    assert collector.wait_for(total, PATIENCE)
    took = time.monotonic() - started
    relay.send_signal(signal.SIGTERM)
    relay.communicate(timeout=PATIENCE)
    arrived = [(m["userId"], m["properties"]["n"]) for m in collector.messages]
    expected = {(f"writer-{w}", n) for w in range(WRITERS) for n in range(PER_WRITER)}
    lost = expected - set(arrived)
    record_figures(
        "outbox-four-writers-one-relay",
        writers=WRITERS,
        calls=total,
        write_seconds_per_writer=round(max(written), 2),
        caller_microseconds_per_call=round(1e6 * max(written) / PER_WRITER, 1),
        delivered=len(set(arrived)),
        duplicated=duplicated([f"{who}:{n}" for who, n in arrived]),
        lost=len(lost),
        seconds_to_deliver_all=round(took, 1),
    )
    assert lost == set()
    assert relay.returncode == 0
    assert summary(path).waiting == 0


# --------------------------------------------------------------------------------------------
# (d) An outage while the app writes, then recovery; the app's memory stays flat.
# --------------------------------------------------------------------------------------------

OUTAGE_WRITER = """
    import json, sys, time
    import gainsight_segment as gs

    def rss_mb(field):
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
        return 0.0

    key, endpoint, path, count, rate = sys.argv[1:6]
    count, rate = int(count), float(rate)
    client = gs.Client(
        key, endpoint=endpoint, outbox=path, exit_timeout=0,
        timeout=1.0, max_retries=1, backoff_factor=0.05, backoff_max=0.5,
    )
    client.track("u", "Warm Up")  # the senders, the connection pool, the file: all opened
    time.sleep(1.0)
    before = rss_mb("VmRSS")
    started = time.monotonic()
    for n in range(count):
        client.track("u", "During Outage", {"n": n})
        if rate:
            late = started + (n + 1) / rate - time.monotonic()
            if late > 0:
                time.sleep(late)
    written = time.monotonic() - started
    print(json.dumps({
        "rss_before_mb": before, "rss_after_writes_mb": rss_mb("VmRSS"),
        "write_seconds": written, "depth": client.stats().outbox_depth,
    }), flush=True)
    sys.stdin.readline()  # the endpoint is back
    started = time.monotonic()
    flushed = client.flush(timeout=float(sys.argv[6]))
    stats = client.stats()
    print(json.dumps({
        "flushed": flushed, "recovery_seconds": time.monotonic() - started,
        "rss_peak_mb": rss_mb("VmHWM"), "rss_end_mb": rss_mb("VmRSS"),
        "delivered": stats.delivered, "failed": stats.failed, "dropped": stats.dropped,
        "retried": stats.retried, "not_persisted": stats.not_persisted,
    }), flush=True)
    client.shutdown()
"""


@pytest.mark.long
@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads RSS from /proc")
@pytest.mark.parametrize(
    "outage",
    [
        pytest.param(Faults(failure_rate=1.0, failure_statuses=(503,)), id="refusing"),
        pytest.param(Faults(stall=True), id="stalled"),
    ],
)
def test_an_outage_costs_no_message_and_no_memory(
    path: Path,
    collector: LocalCollector,
    processes: list[subprocess.Popen[str]],
    outage: Faults,
) -> None:
    collector.faults = outage
    flush_timeout = str(PATIENCE + OUTAGE_EVENTS / 200)
    writer = start(
        processes,
        OUTAGE_WRITER,
        ACCESS_KEY,
        collector.endpoint,
        str(path),
        str(OUTAGE_EVENTS),
        str(OUTAGE_RATE),
        flush_timeout,
        stdin=True,
    )
    during = read_json(writer.stdout)
    collector.faults = Faults()  # recovery: held requests are answered, new ones accepted
    assert writer.stdin is not None
    writer.stdin.write("back\n")
    writer.stdin.flush()
    after = read_json(writer.stdout)
    writer.communicate(timeout=PATIENCE)
    arrived = [m["messageId"] for m in collector.messages]
    counted = collections.Counter(m["event"] for m in collector.messages)
    growth = after["rss_peak_mb"] - during["rss_before_mb"]
    ns = {m["properties"]["n"] for m in collector.messages if m["event"] == "During Outage"}
    lost = OUTAGE_EVENTS - len(ns)
    record_figures(
        f"outbox-outage-{'refusing' if outage.failure_rate else 'stalled'}",
        events=OUTAGE_EVENTS,
        rate=OUTAGE_RATE or "full speed",
        write_seconds=round(during["write_seconds"], 1),
        waiting_at_recovery=during["depth"],
        requests_refused_or_held=sum(1 for r in collector.requests if r.status != 200),
        recovery_seconds=round(after["recovery_seconds"], 1),
        delivered=counted["During Outage"],
        duplicated=duplicated(arrived),
        lost=lost,
        rss_before_mb=round(during["rss_before_mb"], 1),
        rss_growth_mb=round(growth, 1),
    )
    assert after["flushed"] is True
    assert lost == 0
    assert (after["failed"], after["dropped"], after["not_persisted"]) == (0, 0, 0)
    assert growth < RSS_LIMIT_MB
    assert summary(path).waiting == 0


# --------------------------------------------------------------------------------------------
# (e) The file cannot be used: a full disk, a read-only directory, a corrupt file.
# --------------------------------------------------------------------------------------------

FAULTY_FILE = """
    import json, os, resource, signal, sys
    import gainsight_segment as gs

    key, endpoint, path, mode, count = sys.argv[1:6]
    reported = []
    client = gs.Client(
        key, endpoint=endpoint, outbox=path, exit_timeout=0,
        on_error=lambda error, message: reported.append(message["messageId"]),
    )
    if mode == "disk-full":
        # A full disk, for this process: no file may grow past its size now. Writes
        # then fail with EFBIG (SIGXFSZ ignored) as they would with ENOSPC.
        client.track("u", "Before Full")
        assert client.flush(timeout=30)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        biggest = max(os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s))
        resource.setrlimit(resource.RLIMIT_FSIZE, (biggest + 64 * 1024, resource.RLIM_INFINITY))
    returned, raised = [], 0
    for n in range(int(count)):
        try:
            receipt = client.track("u", "Faulty", {"n": n})
        except Exception:
            raised += 1
        else:
            returned.append((receipt.message_id, receipt.outcome.value))
    during = client.stats()
    flushed_while_full = client.flush(timeout=5)
    if mode == "disk-full":
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
    flushed = client.flush(timeout=60)
    client.shutdown(timeout=10)
    stats = client.stats()
    print(json.dumps({
        "returned": returned, "raised": raised, "reported": reported,
        "not_persisted": stats.not_persisted, "waiting_while_full": during.outbox_depth,
        "flushed_while_full": flushed_while_full, "flushed": flushed,
        "delivered": stats.delivered, "left": stats.outbox_depth,
    }))
"""
FAULTY_CALLS = 3_000


@pytest.mark.long
@pytest.mark.parametrize("mode", ["disk-full", "read-only", "corrupt"])
def test_a_file_that_cannot_be_used_costs_no_call_an_exception_and_no_message(
    tmp_path: Path,
    collector: LocalCollector,
    request: pytest.FixtureRequest,
    mode: str,
) -> None:
    if mode == "read-only":
        where = request.getfixturevalue("read_only_dir") / "events.db"
    else:
        where = tmp_path / "events.db"
    if mode == "corrupt":
        where.write_bytes(b"\x13not an outbox, and never was\x00" * 1000)
    args = [ACCESS_KEY, collector.endpoint, str(where), mode, str(FAULTY_CALLS)]
    finished = subprocess.run(
        [*script(FAULTY_FILE), *args], capture_output=True, text=True, timeout=PATIENCE
    )
    assert finished.returncode == 0, finished.stderr
    report = json.loads(finished.stdout)
    returned = {message_id for message_id, _ in report["returned"]}
    arrived = [m["messageId"] for m in collector.messages if m["event"] == "Faulty"]
    lost = returned - set(arrived) - set(report["reported"])
    record_figures(
        f"outbox-{mode}",
        calls=FAULTY_CALLS,
        raised=report["raised"],
        kept_in_memory=report["not_persisted"],
        written_to_the_file=FAULTY_CALLS - report["not_persisted"],
        delivered=len(set(arrived)),
        duplicated=duplicated(arrived),
        reported=len(report["reported"]),
        lost=len(lost),
        flushed_while_unusable=report["flushed_while_full"],
    )
    assert report["raised"] == 0
    assert len(returned) == FAULTY_CALLS
    assert lost == set()
    assert report["flushed"] is True
    assert report["left"] == 0
    if mode == "read-only":
        assert report["not_persisted"] == FAULTY_CALLS
    elif mode == "corrupt":
        assert report["not_persisted"] == 0
        assert len(list(tmp_path.glob("events.db.corrupt-*"))) == 1
    else:
        assert 0 < report["not_persisted"] < FAULTY_CALLS
