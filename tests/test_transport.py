"""The HTTP transport: wire format, retry rule, redirects and outcome classification."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from typing import Any, Callable

import pytest
from urllib3.response import HTTPResponse
from urllib3.util.retry import RequestHistory

import gainsight_segment as gs
from gainsight_segment._config import Settings
from gainsight_segment._message import Message, MessageBuilder
from gainsight_segment._transport import Attempt, Transport, _Abandoned, _Retry, _RetryControl
from gainsight_segment.testing import Faults, LocalCollector

from .conftest import ACCESS_KEY, FAST_RETRIES

KEY = ACCESS_KEY
RETRYABLE = [408, 429, 500, 502, 503, 504]
PERMANENT = [400, 401, 403, 404, 405, 409, 413, 422]


@pytest.fixture
def send(collector: LocalCollector) -> Callable[..., Attempt]:
    """Send one message to the collector through a transport with the given settings."""

    def send_one(message: Message | None = None, **options: Any) -> Attempt:
        options = {"endpoint": collector.endpoint, **FAST_RETRIES, **options}
        transport = Transport(Settings(access_key=KEY, **options), threading.Event())
        try:
            return transport.send(message or make_message())
        finally:
            transport.close()

    return send_one


def make_message() -> Message:
    return MessageBuilder().track("123", "Account Created", {"accountId": "o283h08"})


def statuses(collector: LocalCollector) -> list[int | None]:
    return [request.status for request in collector.requests]


def test_posts_one_message_to_the_event_path_with_the_wire_headers(
    send: Callable[..., Attempt], collector: LocalCollector
) -> None:
    send()
    (request,) = collector.requests
    assert (request.method, request.path) == ("POST", "/clickstream/segmentio/event")
    headers = {name.lower(): value for name, value in request.headers.items()}
    assert headers["accesskey"] == KEY
    assert headers["content-type"] == "application/json"
    assert headers["user-agent"] == f"gainsight-segment-python/{gs.__version__}"
    assert headers["content-length"] == str(len(request.body))


def test_body_is_the_message_with_sent_at_added(
    send: Callable[..., Attempt], collector: LocalCollector
) -> None:
    message = make_message()
    send(message)
    sent = json.loads(collector.requests[0].body)
    assert sent.pop("sentAt").endswith("Z")
    assert sent == message.payload()


@pytest.mark.parametrize("status", [200, 201, 202, 204])
def test_any_2xx_is_delivered_in_one_attempt(
    send: Callable[..., Attempt], collector: LocalCollector, status: int
) -> None:
    collector.faults = Faults(statuses=(status,))
    attempt = send()
    assert (attempt.delivered, attempt.retries) == (True, 0)
    assert statuses(collector) == [status]


@pytest.mark.parametrize("status", RETRYABLE)
def test_retryable_status_is_retried_up_to_max_retries(
    send: Callable[..., Attempt], collector: LocalCollector, status: int
) -> None:
    collector.faults = Faults(statuses=(status,) * 3)
    attempt = send(max_retries=2)
    assert statuses(collector) == [status] * 3
    assert attempt.error is not None
    assert (attempt.error.status, attempt.error.retried, attempt.retries) == (status, True, 2)


@pytest.mark.parametrize("status", PERMANENT)
def test_permanent_status_is_not_retried(
    send: Callable[..., Attempt], collector: LocalCollector, status: int
) -> None:
    collector.faults = Faults(statuses=(status,))
    attempt = send(max_retries=3)
    assert statuses(collector) == [status]
    assert attempt.error is not None
    assert (attempt.error.status, attempt.error.retried) == (status, False)
    assert "injected fault" in attempt.error.body


def test_retry_after_does_not_make_413_retryable(
    send: Callable[..., Attempt], collector: LocalCollector
) -> None:
    collector.faults = Faults(statuses=(413,), retry_after=1)
    send()
    assert statuses(collector) == [413]


def test_retryable_failure_then_success_is_delivered_with_its_retries_counted(
    send: Callable[..., Attempt], collector: LocalCollector
) -> None:
    collector.faults = Faults(statuses=(503, 429))
    attempt = send()
    assert (attempt.delivered, attempt.retries) == (True, 2)
    assert statuses(collector) == [503, 429, 200]


def test_zero_max_retries_sends_once(
    send: Callable[..., Attempt], collector: LocalCollector
) -> None:
    collector.faults = Faults(statuses=(503,))
    send(max_retries=0)
    assert statuses(collector) == [503]


def test_a_dropped_connection_is_retried(
    send: Callable[..., Attempt], collector: LocalCollector
) -> None:
    collector.faults = Faults(drop_rate=1.0)
    attempt = send(max_retries=2)
    assert statuses(collector) == [None] * 3
    assert attempt.error is not None
    assert (attempt.error.status, attempt.error.retried) == (None, True)
    assert "network error" in attempt.error.reason


def test_a_response_slower_than_the_timeout_is_retried(
    send: Callable[..., Attempt], collector: LocalCollector
) -> None:
    collector.faults = Faults(slow_rate=1.0, slow_latency=1.0)
    attempt = send(max_retries=1, timeout=0.05)
    assert attempt.error is not None
    assert attempt.retries == 1
    assert "ReadTimeout" in attempt.error.reason


def test_a_refused_connection_is_a_failure_without_status(send: Callable[..., Attempt]) -> None:
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    attempt = send(endpoint=f"http://127.0.0.1:{port}", max_retries=1)
    assert attempt.error is not None
    assert (attempt.error.status, attempt.retries) == (None, 1)
    assert "network error" in attempt.error.reason


def test_failure_carries_the_message_id(
    send: Callable[..., Attempt], collector: LocalCollector
) -> None:
    collector.faults = Faults(statuses=(400,))
    message = make_message()
    attempt = send(message)
    assert attempt.error is not None
    assert attempt.error.message_id == message.message_id


class Redirecting(http.server.BaseHTTPRequestHandler):
    """Answers every POST with a redirect to the collector in ``target``."""

    status = 307
    target = ""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(self.status)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
def test_redirect_is_not_followed(
    send: Callable[..., Attempt], collector: LocalCollector, status: int
) -> None:
    handler = type("Handler", (Redirecting,), {"status": status, "target": collector.endpoint})
    with http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            attempt = send(endpoint=f"http://127.0.0.1:{server.server_address[1]}")
        finally:
            server.shutdown()
            thread.join(timeout=5)
    assert collector.requests == []
    assert attempt.error is not None
    assert attempt.error.status == status
    assert "redirect" in attempt.error.reason


def test_environment_proxies_are_not_read() -> None:
    transport = Transport(Settings(access_key=KEY), threading.Event())
    assert transport.session.trust_env is False


class RecordingEvent:
    """Stands in for the interrupt event: records each wait instead of sleeping."""

    def __init__(self, interrupted: bool = False) -> None:
        self.waits: list[float] = []
        self.interrupted = interrupted

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        return self.interrupted


def make_retry(event: RecordingEvent, **options: Any) -> _Retry:
    retry = _Retry(total=3, backoff_factor=0.5, backoff_max=30.0, backoff_jitter=0.5, **options)
    retry.control = _RetryControl(event)  # type: ignore[arg-type]
    return retry


def response_with(headers: dict[str, str]) -> HTTPResponse:
    return HTTPResponse(body=b"", headers=headers, status=503)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        pytest.param("2", 2.0, id="integer-seconds"),
        pytest.param("0.25", 0.25, id="fractional-seconds"),
        pytest.param("0", 0.0, id="zero"),
        pytest.param("3600", 30.0, id="capped-by-backoff-max"),
    ],
)
def test_retry_after_sets_the_wait_before_the_next_attempt(header: str, expected: float) -> None:
    event = RecordingEvent()
    make_retry(event).sleep(response_with({"Retry-After": header}))
    assert event.waits == [expected]


def test_without_retry_after_the_wait_is_the_exponential_backoff() -> None:
    event = RecordingEvent()
    failure = RequestHistory("POST", "/clickstream/segmentio/event", None, 503, None)
    retry = make_retry(event).new(history=(failure,) * 3)  # before the third retry
    retry.sleep(response_with({}))
    (wait,) = event.waits
    assert 2.0 <= wait <= 2.5  # 0.5 * 2**2, plus up to backoff_factor of jitter


def test_the_first_retry_already_waits_with_jitter() -> None:
    event = RecordingEvent()
    failure = RequestHistory("POST", "/clickstream/segmentio/event", None, 503, None)
    make_retry(event).new(history=(failure,)).sleep(response_with({}))
    (wait,) = event.waits
    assert 0.5 <= wait <= 1.0  # backoff_factor, plus up to backoff_factor of jitter


def test_an_unparsable_retry_after_falls_back_to_backoff() -> None:
    event = RecordingEvent()
    make_retry(event).sleep(response_with({"Retry-After": "soon"}))
    assert event.waits == [0.0]


def test_a_wait_interrupted_by_shutdown_abandons_the_message() -> None:
    event = RecordingEvent(interrupted=True)
    with pytest.raises(_Abandoned):
        make_retry(event).sleep(response_with({"Retry-After": "5"}))


def test_retry_objects_made_by_urllib3_keep_the_control() -> None:
    event = RecordingEvent()
    retry = make_retry(event)
    assert retry.new(total=1).control is retry.control
