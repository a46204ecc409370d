"""Reliability under load and faults: every message is delivered or reported, never lost.

Each scenario drives a real client against the real loopback collector and checks what
arrived against what was sent, message id by message id. The figures each scenario measures
are printed on a ``RELIABILITY {json}`` line (visible with ``pytest -s``) and, when the
environment variable ``GAINSIGHT_RELIABILITY_FIGURES`` names a file, appended to it as JSON
lines, with the test file that recorded them. ``scripts/reliability_figures.py`` runs these
files with the variable set, keeps the figures in ``docs/_data/reliability.json`` and renders
the tables of ``docs/reliability.md`` from them.

Hostile input is in ``test_reliability_input.py``; key secrecy and TLS in
``test_reliability_security.py``.
"""

from __future__ import annotations

import collections
import json
import logging
import math
import os
import queue
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

import gainsight_segment as gs
from gainsight_segment._message import Message
from gainsight_segment.testing import Faults, LocalCollector
from gainsight_segment.transport import DefaultTransport, Request, Response, TransportError

from .conftest import ACCESS_KEY, ClientFactory
from .outcomes import Outcomes, reconciles, settled

FIGURES_ENV = "GAINSIGHT_RELIABILITY_FIGURES"


def record_figures(scenario: str, **figures: Any) -> None:
    """Print a scenario's measured figures, and append them to $GAINSIGHT_RELIABILITY_FIGURES.

    Every scenario's name must be a literal (or an f-string whose fixed parts name it):
    tests/test_docs.py checks that each name recorded here has figures in
    docs/_data/reliability.json.
    """
    line = json.dumps({"scenario": scenario, **figures})
    print(f"\nRELIABILITY {line}")
    path = os.environ.get(FIGURES_ENV)
    if path:
        # The test that recorded them ("tests/test_x.py::test_y[id] (call)"), to find its file
        # and duration; one write per line, so that parallel workers do not interleave.
        test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" ", 1)[0]
        with open(path, "a", encoding="utf-8") as out:
            out.write(json.dumps({"scenario": scenario, "test": test, **figures}) + "\n")


def sender_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("gainsight-segment-sender")]


# --------------------------------------------------------------------------------------------
# Scenario 1: 20,000 messages through 30% 5xx, 10% 429, 5% dropped connections, 2% timeouts.
# --------------------------------------------------------------------------------------------

# The collector picks a failure status uniformly from this tuple: 12 of 16 entries are 5xx and
# 4 are 429, so a failure is a 5xx three times out of four.
FAULT_STATUSES = (500, 502, 503, 504) * 3 + (429,) * 4
FAILURE_SHARE = 0.40  # of all requests: 0.30 answered 5xx + 0.10 answered 429
DROP_RATE = 0.05
SLOW_RATE = 0.02
# The collector draws "drop" before "fail", so failure_rate is the share among requests not
# dropped: 0.95 * FAILURE_RATE = 0.40 of all requests.
FAILURE_RATE = FAILURE_SHARE / (1 - DROP_RATE)
CLIENT_TIMEOUT = 0.2
SLOW_LATENCY = 0.5  # well past the client's timeout: a slow answer is never read in time
# The collector sends one Retry-After value at a time; the run goes through the 0-1 s range
# in phases, spending few messages on the long waits to stay under a minute: a Retry-After
# pauses every sender of the client, so each such answer costs the whole client its wait.
RETRY_AFTER_PHASES = ((15_000, 0.0), (4_600, 0.01), (370, 0.1), (30, 1.0))
# An attempt fails with p = 1 - 0.98 * 0.95 * (1 - FAILURE_RATE) = 0.461 (slow, dropped or
# failed). 30 retries (31 attempts) exhaust with p**31 = 3.8e-11 per message, an expected
# 7.6e-7 exhausted messages in 20,000: none, without making the test depend on luck.
MAX_RETRIES = 30


# A LocalCollector in a process of its own: under load, client and collector then each have
# a core and a GIL, as they would in production, instead of slowing each other down. It is
# driven over stdin/stdout, one JSON document per line, and taps its own plan and record
# steps to report, for each request, when it arrived and whether its answer was held past the
# client's timeout (which `LocalCollector.requests` does not say).
COLLECTOR_PROCESS_SCRIPT = """
    import hashlib, json, sys, threading, time
    from gainsight_segment.testing import Faults, LocalCollector

    key, slow_threshold = sys.argv[1], float(sys.argv[2])
    collector = LocalCollector(key)
    seen = []
    local = threading.local()
    plan, record = collector._plan, collector._record_request

    def tapped_plan():
        local.arrived = time.monotonic()
        local.plan = planned = plan()
        return planned

    def tapped_record(request):
        planned = local.__dict__.pop("plan", None)
        arrived = local.__dict__.pop("arrived", time.monotonic())
        seen.append((arrived, planned, request))
        record(request)

    collector._plan = tapped_plan
    collector._record_request = tapped_record
    collector.start()
    print(json.dumps(collector.endpoint), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        if "faults" in command:
            collector.faults = Faults(**command["faults"])
            print(json.dumps("ok"), flush=True)
        elif "stop" in command:
            collector.stop()
            requests = [
                {
                    "arrived": arrived,
                    "slow": planned is not None and planned.delay >= slow_threshold,
                    "retry_after": planned.retry_after if planned is not None else None,
                    "status": request.status,
                    "message_id": json.loads(request.body)["messageId"],
                    "body_sha1": hashlib.sha1(request.body).hexdigest(),
                }
                for arrived, planned, request in seen
            ]
            messages = [m["messageId"] for m in collector.messages]
            print(json.dumps({"requests": requests, "messages": messages}), flush=True)
            break
"""


@attrs.frozen
class Seen:
    """One request as the collector saw it: when it arrived and what the faults planned."""

    arrived: float
    slow: bool
    retry_after: float | None
    status: int | None
    message_id: str
    body_sha1: str


@attrs.frozen
class Collected:
    """Everything a collector process saw, once stopped."""

    requests: list[Seen]
    messages: list[str]  # the message ids accepted, in arrival order


class CollectorProcess:
    """A LocalCollector running in a child process; see COLLECTOR_PROCESS_SCRIPT."""

    def __init__(self, slow_threshold: float = math.inf) -> None:
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                textwrap.dedent(COLLECTOR_PROCESS_SCRIPT),
                ACCESS_KEY,
                str(slow_threshold),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._lines: queue.SimpleQueue[str] = queue.SimpleQueue()
        assert self._process.stdout is not None
        threading.Thread(
            target=lambda out: [self._lines.put(line) for line in out],
            args=(self._process.stdout,),
            daemon=True,
        ).start()
        self.endpoint: str = self._answer()

    def _answer(self) -> Any:
        try:
            return json.loads(self._lines.get(timeout=120))
        except queue.Empty:
            raise AssertionError("the collector process did not answer") from None

    def _command(self, command: dict[str, Any]) -> Any:
        assert self._process.stdin is not None
        self._process.stdin.write(json.dumps(command) + "\n")
        self._process.stdin.flush()
        return self._answer()

    def set_faults(self, **faults: Any) -> None:
        assert self._command({"faults": faults}) == "ok"

    def stop(self) -> Collected:
        """Stop serving (answering held requests at once) and return what was seen."""
        result = self._command({"stop": True})
        self._process.wait(timeout=30)
        return Collected([Seen(**r) for r in result["requests"]], result["messages"])

    def close(self) -> None:
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                pipe.close()


@pytest.fixture
def collector_process() -> Iterator[CollectorProcess]:
    process = CollectorProcess(slow_threshold=SLOW_LATENCY)
    yield process
    process.close()


class TimeoutTap:
    """The default transport, counting per message the attempts that timed out.

    The client sends through it (``transport=``), so it sees exactly the attempts the
    client abandoned at its timeout.
    """

    def __init__(self) -> None:
        self.inner = DefaultTransport()
        self.timeouts: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def send(self, request: Request, timeout: float) -> Response:
        try:
            return self.inner.send(request, timeout)
        except TransportError as error:
            if error.kind == "timeout":
                with self._lock:
                    self.timeouts[json.loads(request.body)["messageId"]] += 1
            raise

    def close(self) -> None:
        self.inner.close()


def binomial_tolerance(p: float, n: int) -> float:
    # Five standard deviations: a sound run never fails it, a missing fault always does.
    return 5 * math.sqrt(p * (1 - p) / n)


@pytest.mark.long
def test_faults_every_message_arrives_duplicates_only_from_timeouts(
    collector_process: CollectorProcess,
) -> None:
    outcomes = Outcomes()
    client_side = TimeoutTap()
    client = gs.Client(
        ACCESS_KEY,
        endpoint=collector_process.endpoint,
        transport=client_side,
        exit_timeout=0,
        timeout=CLIENT_TIMEOUT,
        max_retries=MAX_RETRIES,
        backoff_factor=0.001,
        backoff_max=1.0,  # Retry-After is honoured up to backoff_max
        workers=32,
        max_queue_size=20_000,
        **outcomes.callbacks(),
    )
    started = time.monotonic()
    sent: list[str] = []
    try:
        for phase, (count, retry_after) in enumerate(RETRY_AFTER_PHASES):
            collector_process.set_faults(
                failure_rate=FAILURE_RATE,
                failure_statuses=FAULT_STATUSES,
                retry_after=retry_after,
                drop_rate=DROP_RATE,
                slow_rate=SLOW_RATE,
                slow_latency=SLOW_LATENCY,
                seed=phase,
            )
            sent += [
                client.track(
                    f"user-{n % 97}", "Faulty Network", {"n": n, "phase": phase}
                ).message_id
                for n in range(count)
            ]
            assert client.flush(timeout=120), f"phase {phase} did not settle"
        elapsed = time.monotonic() - started
    finally:
        client.shutdown(timeout=10)
    # Answers held past the client's timeout may still be on their way; stopping answers
    # them at once, so that every request is recorded before the analysis.
    collected = collector_process.stop()
    stats = client.stats()
    seen = collected.requests
    timeouts = client_side.timeouts
    total = len(sent)

    # Counters reconcile, with each other and with what the collector saw.
    assert total == sum(count for count, _ in RETRY_AFTER_PHASES) == 20_000
    assert (stats.queued, stats.delivered, stats.failed, stats.dropped) == (total, total, 0, 0)
    assert (stats.pending, stats.in_flight) == (0, 0)
    # Every attempt reached the collector, but for attempts whose whole timeout passed
    # before their request was written (a sender thread starved of the GIL).
    assert 0 <= total + stats.retried - len(seen) <= sum(timeouts.values())
    assert sorted(outcomes.delivered) == sorted(sent)
    assert outcomes.errors == []

    # Every message id arrived.
    accepted = [s for s in seen if s.status == 200]
    copies = collections.Counter(s.message_id for s in accepted)
    assert set(copies) == set(sent)
    assert collections.Counter(collected.messages) == copies

    # Duplicates only for timed-out requests. A copy beyond the first is an attempt whose
    # answer the client did not read in time: no message has more extra copies than attempts
    # the client abandoned at its read timeout. All attempts of a message carry the very same
    # body (same messageId, same sentAt): retries, never a new message. (The answers the
    # collector held are most of those timeouts, not all: a sender thread starved of the GIL
    # starts its timeout late, and an answer held 0.5 s is then, rarely, read in time.)
    by_id: dict[str, list[Seen]] = collections.defaultdict(list)
    for s in seen:
        by_id[s.message_id].append(s)
    unexplained = {m: c - 1 for m, c in copies.items() if c - 1 > timeouts[m]}
    assert not unexplained, f"duplicates without a client timeout: {list(unexplained)[:5]}"
    slow_copies = collections.Counter(s.message_id for s in accepted if s.slow)
    assert all(len({s.body_sha1 for s in attempts}) == 1 for attempts in by_id.values())
    duplicates = sum(copies.values()) - total

    # The faults were really injected, at the rates asked.
    statuses = collections.Counter(s.status for s in seen)
    assert set(statuses) <= {200, None, *FAULT_STATUSES}, "the collector rejected a request"
    n = len(seen)
    observed = {
        "5xx": sum(statuses[s] for s in (500, 502, 503, 504)) / n,
        "429": statuses[429] / n,
        "dropped": statuses[None] / n,
        "slow": sum(s.slow for s in seen) / n,
    }
    expected = {"5xx": 0.30, "429": 0.10, "dropped": DROP_RATE, "slow": SLOW_RATE}
    for kind, rate in expected.items():
        assert abs(observed[kind] - rate) <= binomial_tolerance(rate, n), (kind, observed[kind])

    # Retry-After is honoured: after a 429 or 503, the same message's next attempt arrives
    # no sooner than the header said. (Messages with an abandoned attempt are left out: after
    # a timeout the client rightly retries without having read any Retry-After.)
    gaps: dict[float, list[float]] = collections.defaultdict(list)
    for message, attempts in by_id.items():
        if timeouts[message]:
            continue
        attempts.sort(key=lambda s: s.arrived)
        for answer, retry in zip(attempts, attempts[1:]):
            if answer.status in (429, 503):
                assert answer.retry_after is not None
                gaps[answer.retry_after].append(retry.arrived - answer.arrived)
    assert set(gaps) == {r for _, r in RETRY_AFTER_PHASES}
    for retry_after, waits in gaps.items():
        assert min(waits) >= retry_after, (retry_after, min(waits))

    record_figures(
        "faults",
        sent=total,
        requests=n,
        delivered=len(copies),
        duplicated=duplicates,
        duplicated_from_held_answers=sum(slow_copies.values()),
        reported=len(outcomes.errors),
        lost=len(set(sent) - set(copies)),
        retried=stats.retried,
        client_timeouts=sum(timeouts.values()),
        injected={kind: round(rate, 4) for kind, rate in observed.items()},
        retry_after_min_gap={str(r): round(min(w), 3) for r, w in sorted(gaps.items())},
        max_attempts_per_message=max(len(a) for a in by_id.values()),
        seconds=round(elapsed, 1),
        workers=32,
        timeout=CLIENT_TIMEOUT,
        max_retries=MAX_RETRIES,
        planned=expected,
    )


# --------------------------------------------------------------------------------------------
# Scenario 2: permanent failures are reported once and never retried.
# --------------------------------------------------------------------------------------------

PERMANENT_STATUSES = [400, 401, 403, 404, 413]


@pytest.mark.parametrize("status", PERMANENT_STATUSES)
def test_permanent_status_is_reported_exactly_once_and_not_retried(
    make_client: ClientFactory, collector: LocalCollector, status: int
) -> None:
    collector.faults = Faults(failure_rate=1.0, failure_statuses=(status,))
    outcomes = Outcomes()
    client = make_client(max_retries=5, **outcomes.callbacks())
    sent = [client.track("u", "Rejected", {"n": n}).message_id for n in range(20)]
    assert client.flush(timeout=10)

    assert [r.status for r in collector.requests] == [status] * 20
    assert sorted(outcomes.reported) == sorted(sent)
    for error, message in outcomes.errors:
        assert (error.status, error.retried, error.message_id) == (
            status,
            False,
            message["messageId"],
        )
        assert str(status) in error.reason
    stats = client.stats()
    assert (stats.queued, stats.failed, stats.retried, stats.delivered) == (20, 20, 0, 0)
    assert reconciles(stats)
    record_figures(
        f"permanent-{status}",
        sent=20,
        requests=len(collector.requests),
        delivered=0,
        duplicated=0,
        reported=len(outcomes.errors),
        lost=len(set(sent) - set(outcomes.reported)),
    )


@pytest.mark.parametrize(
    ("case", "status"),
    [pytest.param("wrong-key", 401, id="401-wrong-key"), pytest.param("wrong-path", 404, id="404")],
)
def test_a_real_permanent_rejection_is_reported_once(
    collector: LocalCollector, case: str, status: int
) -> None:
    outcomes = Outcomes()
    key = "35a84f9e-7084-47a1-b8a5-593444e9e862" if case == "wrong-key" else ACCESS_KEY
    endpoint = collector.endpoint + ("/wrong" if case == "wrong-path" else "")
    with gs.Client(key, endpoint=endpoint, exit_timeout=0, **outcomes.callbacks()) as client:
        receipt = client.identify("u", {"accountId": "o283"})
        assert client.flush(timeout=10)
    assert [r.status for r in collector.requests] == [status]
    ((error, _),) = outcomes.errors
    assert (error.status, error.retried, error.message_id) == (status, False, receipt.message_id)


# --------------------------------------------------------------------------------------------
# Scenario 3: the collector goes away mid-burst (its port closed) and comes back.
# --------------------------------------------------------------------------------------------


def test_outage_every_message_is_delivered_or_reported(collector: LocalCollector) -> None:
    total = 4_000
    outcomes = Outcomes()
    enough_reported = threading.Event()

    def on_error(error: gs.DeliveryError, message: dict[str, Any]) -> None:
        outcomes.on_error(error, message)
        if len(outcomes.errors) >= 100:
            enough_reported.set()

    client = gs.Client(
        ACCESS_KEY,
        endpoint=collector.endpoint,
        exit_timeout=0,
        workers=8,
        # Connection refused is immediate, so a message exhausts 3 retries in about
        # 0 + 0.02 + 0.04 s of backoff (plus jitter): a short outage exhausts many.
        max_retries=3,
        backoff_factor=0.01,
        backoff_max=0.05,
        on_success=outcomes.on_success,
        on_error=on_error,
    )
    sent: list[str] = []

    def produce() -> None:
        for n in range(total):
            sent.append(client.track("u", "Burst", {"n": n}).message_id)
            if n % 20 == 19:
                time.sleep(0.005)  # a steady stream, not one instant burst

    producer = threading.Thread(target=produce)
    producer.start()
    assert collector.wait_for(1_000, timeout=30)
    port = collector.port
    started = time.monotonic()
    collector.stop()  # the listening socket closes: connections are refused
    assert enough_reported.wait(timeout=30), "no message exhausted its retries"
    outage = time.monotonic() - started
    with LocalCollector(ACCESS_KEY, port=port) as back:
        producer.join(timeout=60)
        assert not producer.is_alive()
        assert client.flush(timeout=60)
        client.shutdown(timeout=10)
        arrived = [m["messageId"] for m in collector.messages + back.messages]
        arrived_after = len(back.messages)

    reported = outcomes.reported
    stats = client.stats()
    assert len(sent) == total
    assert len(arrived) == len(set(arrived)), "a message arrived twice"
    assert len(reported) == len(set(reported)), "a message was reported twice"
    assert not set(arrived) & set(reported), "a message was both delivered and reported"
    assert sorted(arrived + reported) == sorted(sent)  # nothing unaccounted for
    assert arrived_after > 0
    for error, _ in outcomes.errors:
        assert (error.status, error.retried, error.kind) == (None, True, "network")
        assert "network error" in error.reason
    assert (stats.queued, stats.delivered, stats.failed) == (total, len(arrived), len(reported))
    assert (stats.dropped, stats.pending, stats.in_flight) == (0, 0, 0)
    assert sorted(outcomes.delivered) == sorted(arrived)
    record_figures(
        "outage",
        sent=total,
        workers=8,
        max_retries=3,
        outage_seconds=round(outage, 2),
        delivered=len(arrived),
        delivered_after_restart=arrived_after,
        duplicated=len(arrived) - len(set(arrived)),
        reported=len(reported),
        lost=len(set(sent) - set(arrived) - set(reported)),
    )


# --------------------------------------------------------------------------------------------
# Scenario 4: deadlines hold against a server that never answers.
# --------------------------------------------------------------------------------------------

DEADLINE = 2.0
DEADLINE_MARGIN = 0.5


@pytest.fixture
def silent_endpoint() -> Iterator[str]:
    """A loopback port that completes TCP handshakes (the kernel does) but never answers."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


@pytest.mark.parametrize("server", ["stalled-collector", "silent-socket"])
def test_shutdown_deadline_holds_and_every_undelivered_message_is_reported(
    collector: LocalCollector, silent_endpoint: str, server: str
) -> None:
    collector.faults = Faults(stall=True)
    endpoint = collector.endpoint if server == "stalled-collector" else silent_endpoint
    outcomes = Outcomes()
    # The default 10 s request timeout: each sender is stuck in a request past the deadline.
    client = gs.Client(
        ACCESS_KEY, endpoint=endpoint, exit_timeout=0, workers=4, **outcomes.callbacks()
    )
    sent = [client.track("u", "Unanswered", {"n": n}).message_id for n in range(100)]
    started = time.monotonic()
    assert client.shutdown(timeout=DEADLINE) is False
    elapsed = time.monotonic() - started
    assert elapsed < DEADLINE + DEADLINE_MARGIN
    stats = client.stats()
    assert sorted(outcomes.reported) == sorted(sent)
    assert (stats.delivered, stats.failed, stats.dropped) == (0, 4, 96)
    assert (stats.pending, stats.in_flight) == (0, 0)
    assert all(e.status is None for e, _ in outcomes.errors)
    collector.release()
    record_figures(
        f"deadline-{server}",
        sent=len(sent),
        workers=4,
        shutdown_timeout=DEADLINE,
        shutdown_seconds=round(elapsed, 3),
        delivered=0,
        duplicated=0,
        reported=len(outcomes.errors),
        lost=len(set(sent) - set(outcomes.reported)),
    )


@pytest.mark.parametrize(
    "timeout",
    [0, -1, float("nan"), float("inf"), 1e300, 10**400],
    ids=["0", "-1", "nan", "inf", "1e300", "10**400"],
)
@pytest.mark.parametrize("call", ["flush", "shutdown"])
def test_any_deadline_value_is_accepted_by_flush_and_shutdown(
    make_client: ClientFactory, collector: LocalCollector, call: str, timeout: float
) -> None:
    client = make_client()
    client.track("u", "Clicked")
    assert client.flush(timeout=10)
    assert getattr(client, call)(timeout=timeout) is True


# --------------------------------------------------------------------------------------------
# Scenario 5: fork, as gunicorn --preload does it.
# --------------------------------------------------------------------------------------------

FORK_SCRIPT = """
    import json, os, sys
    import gainsight_segment as gs

    key, endpoint = sys.argv[1], sys.argv[2]
    client = gs.Client(key, endpoint=endpoint, workers=4, exit_timeout=30)
    # The app module sends while it is imported, and the master forks without flushing:
    # its sender threads are busy at the moment of the fork.
    for n in range(500):
        client.track("parent", "Before Fork", {"n": n})
    children = []
    for k in range(4):
        pid = os.fork()
        if pid == 0:
            for n in range(1000):
                client.track(f"child-{k}", "In Worker", {"n": n})
            ok = client.flush(timeout=60)
            stats = client.stats()
            # One write per line: processes sharing the pipe must not interleave halves.
            os.write(1, (json.dumps({"child": k, "flushed": ok, "queued": stats.queued,
                                     "delivered": stats.delivered, "failed": stats.failed,
                                     "dropped": stats.dropped}) + "\\n").encode())
            os._exit(0 if ok and stats.delivered == stats.queued == 1000 else 1)
        children.append(pid)
    for n in range(500):
        client.track("parent", "After Fork", {"n": n})
    codes = [os.waitpid(pid, 0)[1] for pid in children]
    flushed = client.flush(timeout=60)
    stats = client.stats()
    report = {"parent": True, "codes": codes, "flushed": flushed,
              "queued": stats.queued, "delivered": stats.delivered}
    os.write(1, (json.dumps(report) + "\\n").encode())
    sys.exit(0 if flushed and not any(codes) else 1)
"""


def test_fork_after_sending_children_and_parent_each_deliver_exactly_once(
    collector: LocalCollector,
) -> None:
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FORK_SCRIPT), ACCESS_KEY, collector.endpoint],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stdout + result.stderr
    reports = [json.loads(line) for line in result.stdout.splitlines()]
    children = sorted((r for r in reports if "child" in r), key=lambda r: r["child"])
    assert [(r["queued"], r["delivered"], r["failed"], r["dropped"]) for r in children] == [
        (1000, 1000, 0, 0)
    ] * 4
    (parent,) = [r for r in reports if "parent" in r]
    assert (parent["queued"], parent["delivered"]) == (1000, 1000)

    messages = collector.messages
    ids = [m["messageId"] for m in messages]
    by_user = collections.Counter(m["userId"] for m in messages)
    assert by_user == {"parent": 1000, **{f"child-{k}": 1000 for k in range(4)}}
    assert len(ids) == len(set(ids)), "a message arrived twice"
    for k in range(4):
        numbers = sorted(m["properties"]["n"] for m in messages if m["userId"] == f"child-{k}")
        assert numbers == list(range(1000))
    record_figures(
        "fork",
        sent=5000,
        children=4,
        delivered=len(set(ids)),
        duplicated=len(ids) - len(set(ids)),
        reported=0,
        lost=5000 - len(set(ids)),
        seconds=round(elapsed, 1),
    )


# --------------------------------------------------------------------------------------------
# Scenario 6: many producer threads, a small queue, and no deadlock.
# --------------------------------------------------------------------------------------------

PRODUCERS = 16
PER_PRODUCER = 2_000


@pytest.mark.long
def test_16_producers_all_messages_arrive_without_deadlock(
    collector_process: CollectorProcess,
) -> None:
    outcomes = Outcomes()
    # A queue much smaller than the load: producers block on it all the time, which is
    # where a lost wake-up would deadlock.
    client = gs.Client(
        ACCESS_KEY,
        endpoint=collector_process.endpoint,
        exit_timeout=0,
        workers=4,
        max_queue_size=500,
        on_queue_full="block",
        block_timeout=60,
        **outcomes.callbacks(),
    )
    receipts: list[list[gs.Receipt]] = [[] for _ in range(PRODUCERS)]
    done = threading.Event()
    snapshots: list[gs.Stats] = []

    def produce(k: int) -> None:
        for n in range(PER_PRODUCER):
            receipts[k].append(client.track(f"producer-{k}", "Concurrent", {"n": n}))

    def watch() -> None:
        # stats() must reconcile at every instant, not only when the client is idle.
        while not done.wait(0.001):
            snapshots.append(client.stats())

    started = time.monotonic()
    threads = [threading.Thread(target=produce, args=(k,), daemon=True) for k in range(PRODUCERS)]
    watcher = threading.Thread(target=watch, daemon=True)
    try:
        watcher.start()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=120)
        alive = [t.name for t in threads if t.is_alive()]
        assert not alive, f"producers still blocked after 120 s: {alive}"
        assert client.flush(timeout=60)
        elapsed = time.monotonic() - started
    finally:
        done.set()
        watcher.join(timeout=10)
        client.shutdown(timeout=10)
    arrived = collector_process.stop().messages

    total = PRODUCERS * PER_PRODUCER
    sent = [r.message_id for rs in receipts for r in rs]
    assert [r.outcome for rs in receipts for r in rs] == [gs.Outcome.QUEUED] * total
    assert len(arrived) == len(set(arrived)) == total
    assert set(arrived) == set(sent)
    assert sorted(outcomes.delivered) == sorted(sent)
    stats = client.stats()
    assert (stats.queued, stats.delivered, stats.failed, stats.dropped) == (total, total, 0, 0)
    unreconciled = [s for s in snapshots if not reconciles(s)]
    assert not unreconciled, f"{len(unreconciled)} of {len(snapshots)}: {unreconciled[:3]}"
    record_figures(
        "concurrency",
        sent=total,
        producers=PRODUCERS,
        workers=4,
        max_queue_size=500,
        delivered=len(set(arrived)),
        duplicated=len(arrived) - len(set(arrived)),
        reported=len(outcomes.errors),
        lost=len(set(sent) - set(arrived)),
        stats_snapshots_checked=len(snapshots),
        seconds=round(elapsed, 1),
    )


def test_flush_waits_for_what_was_queued_before_it_even_as_others_keep_sending(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    # The first request is answered 503 with Retry-After: 1, so the first message waits a
    # second before its retry while a second sender delivers other threads' messages.
    collector.faults = Faults(statuses=(503,), retry_after=1)
    client = make_client(workers=2, backoff_max=5)
    first = client.track("u", "Slow").message_id
    while not collector.requests:
        client.flush(timeout=0.01)
    stop = threading.Event()

    def produce() -> None:
        while not stop.is_set():
            client.track("other", "Fast")
            time.sleep(0.002)

    producer = threading.Thread(target=produce)
    producer.start()
    try:
        assert client.flush(timeout=10)
        arrived = {m["messageId"] for m in collector.messages}
    finally:
        stop.set()
        producer.join(timeout=10)
    assert first in arrived, "flush() returned before a message queued earlier was delivered"


def test_shutdown_racing_producers_leaves_nothing_unaccounted(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    outcomes = Outcomes()
    client = make_client(workers=4, **outcomes.callbacks())
    receipts: list[gs.Receipt] = []

    def produce() -> None:
        # Until the client closes: on a busy machine, a fixed number of calls could all
        # be made before the main thread gets to shut the client down.
        try:
            while True:
                receipts.append(client.track("u", "Racing"))
        except gs.ClientClosedError:
            return

    threads = [threading.Thread(target=produce, daemon=True) for _ in range(8)]
    for thread in threads:
        thread.start()
    while client.stats().queued < 2_000:  # mid-stream: the producers are still sending
        client.flush(timeout=0.001)
    client.shutdown(timeout=0)
    for thread in threads:
        thread.join(timeout=10)
    assert not any(t.is_alive() for t in threads)
    # A sender that took a message off the queue as the deadline passed reports it itself,
    # a moment later: flush() waits for that.
    assert client.flush(timeout=10)
    accepted = [r.message_id for r in receipts if r.outcome is gs.Outcome.QUEUED]
    dropped = [r.message_id for r in receipts if r.outcome is gs.Outcome.DROPPED]
    stats = client.stats()
    assert (stats.pending, stats.in_flight) == (0, 0), stats
    assert stats.queued == len(receipts) == settled(stats)
    unaccounted = set(accepted) - set(outcomes.delivered) - set(outcomes.reported)
    assert not unaccounted, f"{len(unaccounted)} accepted messages were never settled"
    assert sorted(outcomes.delivered + outcomes.reported) == sorted(accepted + dropped)
    record_figures(
        "shutdown-race",
        sent=len(receipts),
        producers=8,
        delivered=len(outcomes.delivered),
        duplicated=len(outcomes.delivered) - len(set(outcomes.delivered)),
        reported=len(outcomes.reported),
        lost=len(unaccounted),
    )


class PausingCheck:
    """Pauses one chosen thread in the engine's fork check.

    ``submit`` runs that check between seeing that the client is open and queueing the
    message, so the pause holds a producer exactly in that window, the way an unlucky
    thread switch would, while the test shuts the client down.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.paused = threading.Event()
        self.resume = threading.Event()
        self.thread: threading.Thread | None = None

    def __call__(self, *args: Any) -> None:
        if threading.current_thread() is self.thread and not self.resume.is_set():
            self.paused.set()
            self.resume.wait(timeout=30)
        self.inner(*args)


def test_a_call_caught_between_open_check_and_queueing_by_shutdown_is_not_lost(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    outcomes = Outcomes()
    client = make_client(workers=2, **outcomes.callbacks())
    watch = client._engine._watch  # type: ignore[attr-defined]
    watch.check = gate = PausingCheck(watch.check)
    client.track("u", "Before")
    assert client.flush(timeout=10)
    result: list[gs.Receipt | gs.ClientClosedError] = []

    def produce() -> None:
        gate.thread = threading.current_thread()
        try:
            result.append(client.track("u", "Late"))
        except gs.ClientClosedError as closed:
            result.append(closed)

    producer = threading.Thread(target=produce)
    producer.start()
    assert gate.paused.wait(timeout=10)
    assert client.shutdown(timeout=5)
    gate.resume.set()
    producer.join(timeout=10)
    assert not producer.is_alive()

    # Either the late call is refused, or its message is delivered or reported: never
    # accepted and then forgotten in a queue nobody reads any more.
    (late,) = result
    stats = client.stats()
    assert (stats.pending, stats.in_flight) == (0, 0), stats
    assert stats.queued == settled(stats)
    if isinstance(late, gs.Receipt):
        assert late.message_id in outcomes.delivered + outcomes.reported


class BuggyTransport:
    """The default transport, with a bug that fires for one event's messages."""

    def __init__(self) -> None:
        self.inner = DefaultTransport()

    def send(self, request: Request, timeout: float) -> Response:
        if b'"Explodes"' in request.body:
            raise RuntimeError(f"a bug in the transport, with the headers {request.headers}")
        return self.inner.send(request, timeout)

    def close(self) -> None:
        self.inner.close()


def test_an_unexpected_error_while_sending_is_reported_and_the_sender_goes_on(
    make_client: ClientFactory, collector: LocalCollector, caplog: pytest.LogCaptureFixture
) -> None:
    outcomes = Outcomes()
    client = make_client(workers=1, transport=BuggyTransport, **outcomes.callbacks())
    with caplog.at_level(logging.ERROR, logger="gainsight_segment"):
        bad = client.track("u", "Explodes").message_id
        good = client.track("u", "Fine").message_id
        # The message is settled (reported), not left "in flight" until a shutdown.
        assert client.flush(timeout=10)
    assert outcomes.delivered == [good]
    ((error, _),) = outcomes.errors
    assert (error.message_id, error.status, error.kind) == (bad, None, "unexpected")
    assert "RuntimeError" in error.reason
    stats = client.stats()
    assert (stats.delivered, stats.failed, stats.pending, stats.in_flight) == (1, 1, 0, 0)
    logged = caplog.text
    assert "Traceback" in logged, "the unexpected error is logged with its traceback"
    assert ACCESS_KEY not in logged, "the key quoted by the exception is masked"


def test_callbacks_may_use_the_client_without_deadlock(collector: LocalCollector) -> None:
    # Callbacks run on sender threads with no lock held: they may read stats() and send.
    seen: list[gs.Stats] = []
    done = threading.Event()
    clients: list[gs.Client] = []

    def on_success(message: dict[str, Any]) -> None:
        seen.append(clients[0].stats())
        if message["event"] == "First":
            clients[0].track("u", "Second")
        else:
            done.set()

    with gs.Client(
        ACCESS_KEY, endpoint=collector.endpoint, exit_timeout=0, on_success=on_success
    ) as client:
        clients.append(client)
        client.track("u", "First")
        assert done.wait(timeout=10)
        assert client.flush(timeout=10)
    assert [m["event"] for m in collector.messages] == ["First", "Second"]
    assert len(seen) == 2
    assert all(reconciles(s) for s in seen)


def test_a_message_whose_report_cannot_be_decoded_still_settles(
    make_client: ClientFactory, collector: LocalCollector, caplog: pytest.LogCaptureFixture
) -> None:
    # A body nested deeper than a thread's stack can decode: the collector answers 400, and
    # the callback's argument (the decoded message) cannot be made either.
    nested = b"[" * 100_000 + b"]" * 100_000
    body = b'{"type":"track","messageId":"deep-1","properties":' + nested + b"}"
    outcomes = Outcomes()
    client = make_client(**outcomes.callbacks())
    engine = client._engine  # type: ignore[attr-defined]
    with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
        engine.submit(Message("track", "deep-1", body, "Deep"))
        assert client.flush(timeout=10)
    stats = client.stats()
    assert (stats.queued, stats.failed, stats.pending, stats.in_flight) == (1, 1, 0, 0)
    assert [r.status for r in collector.requests] == [400]
    # on_error is still told, with what is known of the message.
    ((error, message),) = outcomes.errors
    assert (error.status, message) == (400, {"type": "track", "messageId": "deep-1"})
    assert any("could not be decoded" in r.getMessage() for r in caplog.records)
