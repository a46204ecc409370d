"""One message's attempts through a transport, with the retry policy and a gate."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Iterable
from typing import Callable

import pytest

from gainsight_segment._errors import TransportErrorKind
from gainsight_segment._message import MessageBuilder
from gainsight_segment.delivery._attempts import FREE_RETRIES, Attempts, Result
from gainsight_segment.delivery._policy import RetryPolicy, Scrubber, Verdict
from gainsight_segment.testing import MockTransport
from gainsight_segment.transport import Request, Response, TransportError

KEY = "35a84f9e-7084-47a1-b8a5-593444e9e862"
URL = "https://example.invalid/clickstream/segmentio/event"
HEADERS = {"accessKey": KEY, "Content-Type": "application/json"}
MESSAGE = MessageBuilder().track("u", "Clicked", {"n": 1})


class Interrupt(threading.Event):
    """An interrupt whose waits are recorded and end at once, unless told to interrupt."""

    def __init__(self, interrupt_on: int | None = None) -> None:
        super().__init__()
        self.waits: list[float | None] = []
        self._interrupt_on = interrupt_on

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        return len(self.waits) == self._interrupt_on


class Gate:
    """A gate that never pauses (unless told to refuse) and records what it learns."""

    def __init__(self, open_turns: int | None = None, others_admitted: bool = False) -> None:
        self.turns = 0
        self.finished_with: list[tuple[Verdict, float]] = []
        self._open_turns = open_turns
        self._others_admitted = others_admitted  # other senders' attempts go through
        self._seen = 0

    def wait_turn(self, interrupt: threading.Event) -> bool:
        self.turns += 1
        return self._open_turns is None or self.turns <= self._open_turns

    def finished(self, verdict: Verdict, latency: float) -> None:
        self.finished_with.append((verdict, latency))

    def admitted(self) -> int:
        # Others' attempts go through meanwhile: the count grows between two looks.
        self._seen += self._others_admitted
        return self._seen


def answers(*outcomes: Response | Exception) -> MockTransport:
    """A transport answering with ``outcomes`` in turn (raising the exceptions)."""
    queue = iter(outcomes)

    def handler(request: Request) -> Response:
        outcome = next(queue)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return MockTransport(handler)


def attempts(max_retries: int = 3, sent_at: Callable[[], str] | None = None) -> Attempts:
    return Attempts(
        url=URL,
        headers=HEADERS,
        timeout=10.0,
        policy=RetryPolicy(max_retries=max_retries, backoff_factor=0.5, backoff_max=30.0),
        scrub=Scrubber(KEY),
        sent_at=sent_at or (lambda: "2024-01-01T00:00:00.000Z"),
        jitter=lambda: 0.0,
    )


def deliver(
    transport: MockTransport,
    *,
    max_retries: int = 3,
    interrupt: Interrupt | None = None,
    gate: Gate | None = None,
) -> Result:
    return attempts(max_retries).deliver(
        transport, MESSAGE.body, interrupt or Interrupt(), gate or Gate()
    )


def statuses(*codes: int) -> Iterable[Response]:
    return [Response(code) for code in codes]


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503, 504])
def test_a_retryable_status_is_retried_up_to_max_retries(status: int) -> None:
    transport = answers(*statuses(*[status] * 4))
    result = deliver(transport)
    assert result.error is not None
    assert (result.retries, result.error.kind, result.error.status) == (3, "http_status", status)
    assert len(transport.requests) == 4


@pytest.mark.parametrize("max_retries", [0, 1, 5])
def test_attempts_are_one_more_than_max_retries(max_retries: int) -> None:
    transport = answers(*statuses(*[503] * (max_retries + 1)))
    result = deliver(transport, max_retries=max_retries)
    assert result.retries == max_retries
    assert len(transport.requests) == max_retries + 1


def test_success_after_failures_counts_the_retries() -> None:
    transport = answers(Response(503), TransportError("reset"), Response(200))
    assert deliver(transport) == Result(2, None)


def test_success_at_once_takes_no_retries() -> None:
    assert deliver(MockTransport()) == Result(0, None)


@pytest.mark.parametrize("status", [400, 401, 404, 413, 301])
def test_a_permanent_status_is_not_retried(status: int) -> None:
    transport = answers(Response(status))
    result = deliver(transport)
    assert result.error is not None
    assert (result.retries, result.error.status, result.error.retried) == (0, status, False)
    assert len(transport.requests) == 1


def test_every_retry_sends_the_very_same_body() -> None:
    times = (f"2024-01-01T00:00:0{n}.000Z" for n in itertools.count())
    transport = answers(*statuses(500, 502, 200))
    attempts(sent_at=lambda: next(times)).deliver(transport, MESSAGE.body, Interrupt(), Gate())
    bodies = [request.body for request in transport.requests]
    assert bodies == [MESSAGE.body_sent_at("2024-01-01T00:00:00.000Z")] * 3


def test_each_request_carries_the_url_and_headers() -> None:
    transport = MockTransport()
    deliver(transport)
    (request,) = transport.requests
    assert (request.method, request.url, dict(request.headers)) == ("POST", URL, HEADERS)


def test_backoff_waits_are_taken_on_the_interrupt() -> None:
    interrupt = Interrupt()
    deliver(answers(*statuses(503, 503, 503, 200)), interrupt=interrupt)
    assert interrupt.waits == [0.5, 1.0, 2.0]


def test_a_retry_after_lengthens_the_wait_on_the_interrupt() -> None:
    interrupt = Interrupt()
    deliver(answers(Response(429, {"Retry-After": "7"}), Response(200)), interrupt=interrupt)
    assert interrupt.waits == [7.0]


def test_an_interrupt_during_a_wait_gives_up_with_kind_shutdown() -> None:
    transport = answers(*statuses(503, 503, 200))
    result = deliver(transport, interrupt=Interrupt(interrupt_on=2))
    assert result.error is not None
    assert result.error.kind == "shutdown"
    assert result.error.reason == "given up at shutdown while waiting to retry"
    assert result.error.message_id == MESSAGE.message_id
    assert len(transport.requests) == 2


def test_a_retry_interrupted_during_its_wait_is_not_counted() -> None:
    transport = answers(Response(503), Response(200))
    result = deliver(transport, interrupt=Interrupt(interrupt_on=1))
    assert result.error is not None
    assert len(transport.requests) == 1
    assert (result.retries, result.error.retried) == (0, False)


def test_a_closed_gate_gives_up_before_sending_with_kind_shutdown() -> None:
    transport = MockTransport()
    result = deliver(transport, gate=Gate(open_turns=0))
    assert result.error is not None
    assert (result.retries, result.error.kind) == (0, "shutdown")
    assert result.error.reason == "given up at shutdown before it could be sent"
    assert transport.requests == []


def test_the_gate_is_asked_before_every_attempt() -> None:
    gate = Gate(open_turns=2)
    transport = answers(*statuses(503, 503, 503))
    result = deliver(transport, gate=gate)
    assert result.error is not None
    assert result.error.kind == "shutdown"
    assert (gate.turns, len(transport.requests)) == (3, 2)


def test_the_gate_learns_every_verdict_with_its_latency() -> None:
    gate = Gate()
    deliver(answers(Response(503), TransportError("reset"), Response(200)), gate=gate)
    learnt = [(verdict.pushback, verdict.delivered) for verdict, _ in gate.finished_with]
    assert learnt == [(True, False), (False, False), (False, True)]
    assert all(latency >= 0 for _, latency in gate.finished_with)


def test_the_gate_learns_a_retry_after_pause() -> None:
    gate = Gate()
    deliver(answers(Response(503, {"Retry-After": "3"}), Response(200)), gate=gate)
    assert gate.finished_with[0][0].pause == 3.0


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("network", "network error: boom (after 3 retries)"),
        ("timeout", "timeout: boom (after 3 retries)"),
        ("invalid_response", "invalid response: boom (after 3 retries)"),
        ("tls", "TLS error: boom"),
    ],
)
def test_transport_error_kinds_become_delivery_error_kinds(
    kind: TransportErrorKind, reason: str
) -> None:
    transport = answers(*[TransportError("boom", kind=kind)] * 4)
    result = deliver(transport)
    assert result.error is not None
    assert (result.error.kind, result.error.reason, result.error.status) == (kind, reason, None)


def test_tls_errors_are_sent_once() -> None:
    transport = answers(TransportError("bad certificate", kind="tls"))
    assert deliver(transport).retries == 0
    assert len(transport.requests) == 1


def broken(request: Request) -> Response:
    raise RuntimeError(f"header dump: accessKey={KEY.upper()}")


def test_an_unexpected_exception_from_the_transport_is_given_up_as_unexpected() -> None:
    result = deliver(MockTransport(broken))
    assert result.error is not None
    assert (result.retries, result.error.kind) == (0, "unexpected")
    assert result.error.reason == "unexpected error while sending: RuntimeError"


def test_an_unexpected_exception_is_logged_with_its_traceback_and_the_key_masked(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="gainsight_segment"):
        deliver(MockTransport(broken))
    (record,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    text = record.getMessage()
    assert "Traceback (most recent call last)" in text
    assert "in broken" in text
    assert "RuntimeError: header dump: accessKey=****e862" in text
    assert KEY not in caplog.text.lower()


def test_an_unexpected_exception_after_retries_says_it_was_retried() -> None:
    result = deliver(answers(Response(503), RuntimeError("bug")))
    assert result.error is not None
    assert (result.retries, result.error.kind, result.error.retried) == (1, "unexpected", True)


@pytest.mark.parametrize("status", [429, 503])
def test_push_back_while_others_get_through_does_not_count_against_max_retries(
    status: int,
) -> None:
    # The endpoint admits a few requests at a time: this message lost the race for a
    # slot five times, more than max_retries allows, and still goes through.
    transport = answers(*[Response(status)] * 5, Response(200))
    result = deliver(transport, gate=Gate(others_admitted=True))
    assert (result.error, result.retries) == (None, 5)


def test_push_back_with_nobody_getting_through_counts_against_max_retries() -> None:
    transport = answers(*[Response(429)] * 5, Response(200))
    result = deliver(transport, gate=Gate(others_admitted=False))
    assert result.error is not None
    assert result.error.status == 429
    assert result.retries == 3


def test_free_retries_after_push_back_are_bounded() -> None:
    transport = MockTransport(lambda request: Response(429))
    result = deliver(transport, gate=Gate(others_admitted=True))
    assert result.error is not None
    assert result.retries == FREE_RETRIES + 3
