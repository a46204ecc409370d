"""The simple engines and what engines share: deadlines, transports, pauses, reporting."""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import Any

import pytest

import gainsight_segment as gs
from gainsight_segment._message import MessageBuilder
from gainsight_segment.delivery._attempts import Attempts, Result
from gainsight_segment.delivery._callbacks import Callbacks
from gainsight_segment.delivery._engines import (
    PauseGate,
    SyncEngine,
    Transports,
    deadline,
    remaining,
    report,
)
from gainsight_segment.delivery._ledger import Ledger, Settled
from gainsight_segment.delivery._policy import RetryPolicy, Scrubber, Verdict
from gainsight_segment.testing import MockTransport
from gainsight_segment.transport import Request, Response

KEY = "35a84f9e-7084-47a1-b8a5-593444e9e862"
MESSAGE = MessageBuilder().track("u", "Clicked", {"n": 1})
FAST_RETRIES: dict[str, Any] = {"backoff_factor": 0.001, "backoff_max": 0.005}
WAKE = 2.0


def sync_client(transport: MockTransport, **options: Any) -> gs.Client:
    return gs.Client(KEY, sync_mode=True, transport=transport, **options)


def replies(*codes: int, headers: dict[str, str] | None = None) -> MockTransport:
    """A transport answering with these statuses in turn."""
    queue = iter(codes)
    return MockTransport(lambda request: Response(next(queue), headers or {}))


class Counting(MockTransport):
    """A transport that counts how often it is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.closes = 0

    def close(self) -> None:
        self.closes += 1
        super().close()


class FakeTime:
    """A monotonic clock that moves only when an interrupt's wait lets time pass."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = 1000.0
        monkeypatch.setattr("gainsight_segment.delivery._engines.time.monotonic", self.clock)

    def clock(self) -> float:
        return self.now


class Passing(threading.Event):
    """An interrupt that is never set; its waits move the fake clock on."""

    def __init__(self, time_: FakeTime) -> None:
        super().__init__()
        self.waits: list[float | None] = []
        self._time = time_

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        self._time.now += timeout or 0.0
        return False


# --- deadline() and remaining() ----------------------------------------------------------


@pytest.mark.parametrize(
    "timeout",
    [
        pytest.param(None, id="none"),
        pytest.param(math.inf, id="inf"),
        pytest.param(threading.TIMEOUT_MAX * 2, id="twice-timeout-max"),
        pytest.param(int(threading.TIMEOUT_MAX) + 1, id="int-just-over-timeout-max"),
        pytest.param(10**400, id="int-beyond-float"),
    ],
)
def test_a_wait_beyond_what_the_platform_can_time_has_no_deadline(timeout: float | None) -> None:
    assert deadline(timeout) is None


@pytest.mark.parametrize(
    "timeout",
    [
        pytest.param(math.nan, id="nan"),
        pytest.param(-1.0, id="negative"),
        pytest.param(-(10**400), id="hugely-negative-int"),
        pytest.param(0, id="zero"),
    ],
)
def test_nan_and_negative_timeouts_mean_now(timeout: float) -> None:
    before = time.monotonic()
    until = deadline(timeout)
    assert until is not None
    assert before <= until <= time.monotonic()


@pytest.mark.parametrize("timeout", [5, 2.5, int(threading.TIMEOUT_MAX)])
def test_a_deadline_is_timeout_seconds_from_now(timeout: float) -> None:
    before = time.monotonic()
    until = deadline(timeout)
    after = time.monotonic()
    assert until is not None
    assert before + timeout <= until <= after + timeout


def test_remaining_is_none_without_a_deadline() -> None:
    assert remaining(None) is None


def test_remaining_is_zero_once_the_deadline_passed() -> None:
    assert remaining(time.monotonic() - 10) == 0.0


def test_remaining_counts_down_to_the_deadline() -> None:
    left = remaining(deadline(10))
    assert left is not None
    assert 9.0 < left <= 10.0


# --- the synchronous engine, through a Client ---------------------------------------------


def test_a_delivered_synchronous_call_returns_sent() -> None:
    transport = MockTransport()
    receipt = sync_client(transport).track("u", "Clicked")
    assert (receipt.outcome, receipt.error) == (gs.Outcome.SENT, None)
    assert len(transport.requests) == 1


def test_a_failed_synchronous_call_returns_failed_with_the_error() -> None:
    receipt = sync_client(replies(400)).track("u", "Clicked")
    assert receipt.outcome is gs.Outcome.FAILED
    assert receipt.error is not None
    assert (receipt.error.status, receipt.error.message_id) == (400, receipt.message_id)


def test_synchronous_calls_are_counted() -> None:
    client = sync_client(replies(200, 503, 503, 200, 404), **FAST_RETRIES)
    for _ in range(3):
        client.track("u", "Clicked")
    assert client.stats() == gs.Stats(queued=3, delivered=2, failed=1, retried=2)


def test_a_call_interrupted_while_sending_is_not_counted_delivered() -> None:
    def interrupted(request: Request) -> Response:
        raise KeyboardInterrupt

    delivered: list[dict[str, Any]] = []
    client = sync_client(MockTransport(interrupted), on_success=delivered.append)
    with pytest.raises(KeyboardInterrupt):
        client.track("u", "Clicked")
    stats = client.stats()
    assert (stats.delivered, stats.failed, delivered) == (0, 1, [])


def test_a_synchronous_flush_has_nothing_to_wait_for() -> None:
    client = sync_client(MockTransport())
    client.track("u", "Clicked")
    assert client.flush(timeout=0) is True


def test_callbacks_run_before_the_message_is_counted_settled() -> None:
    seen: list[int] = []
    client: gs.Client

    def look(message: dict[str, Any]) -> None:
        seen.append(client.stats().in_flight)

    client = sync_client(MockTransport(), on_success=look)
    client.track("u", "Clicked")
    assert seen == [1]
    assert client.stats().delivered == 1


def test_shutdown_refuses_later_calls() -> None:
    client = sync_client(MockTransport())
    client.shutdown()
    with pytest.raises(gs.ClientClosedError):
        client.track("u", "Clicked")
    assert client.stats() == gs.Stats()


def test_shutdown_closes_the_transport_once() -> None:
    transport = Counting()
    client = sync_client(transport)
    assert client.shutdown() is True
    assert client.shutdown() is True
    assert transport.closes == 1


def test_shutdown_logs_what_was_not_delivered(caplog: pytest.LogCaptureFixture) -> None:
    client = sync_client(replies(400, 401))
    client.track("u", "Clicked")
    client.track("u", "Clicked")
    with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
        client.shutdown()
    assert "2 messages not delivered (http_status: 2); see on_error and Client.stats()" in [
        r.getMessage() for r in caplog.records
    ]


def test_shutdown_cuts_a_synchronous_callers_retry_wait_short() -> None:
    sent = threading.Event()

    def overloaded(request: Request) -> Response:
        sent.set()
        return Response(503)

    client = sync_client(MockTransport(overloaded), backoff_factor=60, backoff_max=60)
    receipts: list[gs.Receipt] = []
    caller = threading.Thread(target=lambda: receipts.append(client.track("u", "Clicked")))
    caller.start()
    assert sent.wait(WAKE)
    client.shutdown()
    caller.join(WAKE)
    assert not caller.is_alive()
    (receipt,) = receipts
    assert receipt.error is not None
    assert (receipt.outcome, receipt.error.kind) == (gs.Outcome.FAILED, "shutdown")


def test_a_second_caller_waits_out_a_retry_after() -> None:
    answered: list[float] = []
    arrived: list[float] = []
    outcomes = iter([Response(503, {"Retry-After": "0.05"}), Response(200)])

    def handler(request: Request) -> Response:
        arrived.append(time.monotonic())
        response = next(outcomes)
        answered.append(time.monotonic())
        return response

    client = sync_client(MockTransport(handler), max_retries=0)
    assert client.track("u", "Clicked").outcome is gs.Outcome.FAILED
    assert client.track("u", "Clicked").outcome is gs.Outcome.SENT
    assert arrived[1] - answered[0] >= 0.05


def test_after_a_fork_a_synchronous_engine_counts_afresh_with_a_new_transport() -> None:
    made: list[MockTransport] = []

    def make() -> MockTransport:
        made.append(MockTransport())
        return made[-1]

    attempts = Attempts(
        url="https://example.invalid/clickstream/segmentio/event",
        headers={"accessKey": KEY},
        timeout=1.0,
        policy=RetryPolicy(),
        scrub=Scrubber(KEY),
        sent_at=lambda: "2024-01-01T00:00:00.000Z",
    )
    engine = SyncEngine(Transports(make), attempts, Ledger(), Callbacks())
    engine.submit(MESSAGE)
    engine.after_fork()
    engine.submit(MESSAGE)
    assert engine.stats() == gs.Stats(queued=1, delivered=1)
    assert [len(t.requests) for t in made] == [1, 1]


# --- the pause gate -----------------------------------------------------------------------


def test_the_pause_gate_is_open_at_first() -> None:
    interrupted = threading.Event()
    interrupted.set()  # a wait would return False at once
    assert PauseGate().wait_turn(interrupted) is True


def test_the_pause_gate_waits_out_a_retry_after_on_the_interrupt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeTime(monkeypatch)
    gate = PauseGate()
    gate.finished(Verdict(wait=2.0, pause=2.0, pushback=True), latency=0.1)
    interrupt = Passing(clock)
    assert gate.wait_turn(interrupt) is True
    assert interrupt.waits == [2.0]


@pytest.mark.parametrize(
    "verdict",
    [Verdict(), Verdict(wait=1.0), Verdict(wait=1.0, pause=0.0, pushback=True)],
    ids=["delivered", "no-retry-after", "retry-after-0"],
)
def test_the_pause_gate_stays_open_without_a_retry_after(verdict: Verdict) -> None:
    gate = PauseGate()
    gate.finished(verdict, latency=0.1)
    interrupted = threading.Event()
    interrupted.set()
    assert gate.wait_turn(interrupted) is True


def test_an_interrupt_ends_a_pause_gate_wait() -> None:
    gate = PauseGate()
    gate.finished(Verdict(wait=30.0, pause=30.0), latency=0.1)
    interrupted = threading.Event()
    interrupted.set()
    assert gate.wait_turn(interrupted) is False


def test_a_shorter_retry_after_does_not_cut_a_pause_short(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = FakeTime(monkeypatch)
    gate = PauseGate()
    gate.finished(Verdict(wait=5.0, pause=5.0), latency=0.1)
    clock.now += 1.0
    gate.finished(Verdict(wait=0.5, pause=0.5), latency=0.1)
    interrupt = Passing(clock)
    assert gate.wait_turn(interrupt) is True
    assert interrupt.waits == [4.0]


# --- transports ---------------------------------------------------------------------------


def test_a_factory_is_called_again_after_a_fork() -> None:
    made: list[MockTransport] = []

    def make() -> MockTransport:
        made.append(MockTransport())
        return made[-1]

    transports = Transports(make)
    assert transports.current is made[0]
    transports.after_fork()
    assert len(made) == 2
    assert transports.current is made[1]


def test_a_given_transport_is_kept_after_a_fork() -> None:
    given = MockTransport()
    transports = Transports(None, given)
    transports.after_fork()
    assert transports.current is given


def test_a_transport_that_fails_to_close_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Unclosable(MockTransport):
        def close(self) -> None:
            raise OSError("already gone")

    with caplog.at_level(logging.ERROR, logger="gainsight_segment"):
        Transports(None, Unclosable()).close()
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [OSError]


# --- report() -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("result", "failure", "expected"),
    [
        (Result(2, None), "failed", gs.Stats(queued=1, delivered=1, retried=2)),
        (
            Result(1, gs.DeliveryError("HTTP 400: not retried", kind="http_status")),
            "failed",
            gs.Stats(queued=1, failed=1, retried=1),
        ),
        (
            Result(0, gs.DeliveryError("shutdown deadline", kind="shutdown")),
            "dropped",
            gs.Stats(queued=1, dropped=1),
        ),
    ],
)
def test_report_settles_the_ticket_by_outcome(
    result: Result, failure: Settled, expected: gs.Stats
) -> None:
    ledger = Ledger()
    report(ledger, Callbacks(), MESSAGE.body, ledger.take(), result, failure)
    assert ledger.snapshot() == expected


def test_a_raising_log_handler_still_settles_the_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a broken log handler")

    monkeypatch.setattr("gainsight_segment.delivery._callbacks.logger.warning", broken)
    ledger = Ledger()
    error = gs.DeliveryError("HTTP 400: not retried", kind="http_status")
    with pytest.raises(RuntimeError):
        report(ledger, Callbacks(), MESSAGE.body, ledger.take(), Result(0, error))
    assert ledger.snapshot() == gs.Stats(queued=1, failed=1)
    assert ledger.wait(deadline=time.monotonic() - 1) is True


# --- the dry run --------------------------------------------------------------------------


def test_a_dry_run_returns_dry_run_receipts_and_counts_nothing_queued() -> None:
    client = gs.Client(KEY, send=False)
    receipts = [client.track("u", "Clicked"), client.identify("u"), client.group("u", "g")]
    assert [r.outcome for r in receipts] == [gs.Outcome.DRY_RUN] * 3
    assert client.stats() == gs.Stats()
    assert client.flush() is True


def test_a_dry_run_never_sends() -> None:
    transport = MockTransport()
    client = gs.Client(KEY, send=False, transport=transport)
    client.track("u", "Clicked")
    client.shutdown()
    assert transport.requests == []


def test_a_dry_run_refuses_calls_after_shutdown() -> None:
    client = gs.Client(KEY, send=False)
    assert client.shutdown() is True
    with pytest.raises(gs.ClientClosedError):
        client.track("u", "Clicked")
