"""The HTTP transport: wire format, retry rule, redirects and outcome classification."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest
import requests
import responses
from urllib3.response import HTTPResponse
from urllib3.util.retry import RequestHistory

import gainsight_segment as gs
from gainsight_segment._config import Settings
from gainsight_segment._message import MessageBuilder
from gainsight_segment._transport import Transport, _Abandoned, _Retry, _RetryControl

KEY = "35a84f9e-7084-47a1-b8a5-593444e9e862"
ENDPOINT = "https://event.example.test"
URL = ENDPOINT + "/clickstream/segmentio/event"
RETRYABLE = [408, 429, 500, 502, 503, 504]
PERMANENT = [400, 401, 403, 404, 405, 409, 413, 422]


def make_transport(**options: Any) -> Transport:
    settings = Settings(access_key=KEY, endpoint=ENDPOINT, **options)
    return Transport(settings, threading.Event())


def message() -> Any:
    return MessageBuilder().track("123", "Account Created", {"accountId": "o283h08"})


@responses.activate
def test_posts_one_message_to_the_event_path_with_the_wire_headers() -> None:
    responses.post(URL, status=200)
    msg = message()
    make_transport().send(msg)
    (call,) = responses.calls
    assert call.request.method == "POST"
    assert call.request.url == URL
    headers = call.request.headers
    assert headers["accessKey"] == KEY
    assert headers["Content-Type"] == "application/json"
    assert headers["User-Agent"] == f"gainsight-segment-python/{gs.__version__}"
    assert headers["Content-Length"] == str(len(call.request.body))


@responses.activate
def test_body_is_the_message_with_sent_at_added() -> None:
    responses.post(URL, status=200)
    msg = message()
    make_transport().send(msg)
    sent = json.loads(responses.calls[0].request.body)
    assert sent.pop("sentAt").endswith("Z")
    assert sent == msg.payload()


@pytest.mark.parametrize("status", [200, 201, 202, 204])
@responses.activate
def test_any_2xx_is_delivered_in_one_attempt(status: int) -> None:
    responses.post(URL, status=status)
    attempt = make_transport().send(message())
    assert attempt.delivered
    assert attempt.retries == 0
    assert len(responses.calls) == 1


@pytest.mark.parametrize("status", RETRYABLE)
@responses.activate
def test_retryable_status_is_retried_up_to_max_retries(status: int) -> None:
    responses.post(URL, status=status)
    attempt = make_transport(max_retries=2).send(message())
    assert len(responses.calls) == 3
    assert attempt.error is not None
    assert (attempt.error.status, attempt.error.retried, attempt.retries) == (status, True, 2)


@pytest.mark.parametrize("status", PERMANENT)
@responses.activate
def test_permanent_status_is_not_retried(status: int) -> None:
    responses.post(URL, status=status, body="nope")
    attempt = make_transport(max_retries=3).send(message())
    assert len(responses.calls) == 1
    assert attempt.error is not None
    assert (attempt.error.status, attempt.error.retried, attempt.error.body) == (
        status,
        False,
        "nope",
    )


@responses.activate
def test_retry_after_does_not_make_413_retryable() -> None:
    responses.post(URL, status=413, headers={"Retry-After": "1"})
    make_transport().send(message())
    assert len(responses.calls) == 1


@responses.activate
def test_retryable_failure_then_success_is_delivered_with_its_retries_counted() -> None:
    responses.post(URL, status=503)
    responses.post(URL, status=200)
    attempt = make_transport().send(message())
    assert attempt.delivered
    assert attempt.retries == 1


@responses.activate
def test_zero_max_retries_sends_once() -> None:
    responses.post(URL, status=503)
    make_transport(max_retries=0).send(message())
    assert len(responses.calls) == 1


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@responses.activate
def test_redirect_is_not_followed(status: int) -> None:
    target = "https://elsewhere.example.test/steal"
    responses.post(URL, status=status, headers={"Location": target})
    other = responses.post(target, status=200)
    attempt = make_transport().send(message())
    assert other.call_count == 0
    assert attempt.error is not None
    assert attempt.error.status == status
    assert "redirect" in attempt.error.reason


@responses.activate
def test_network_error_is_a_failure_without_status() -> None:
    responses.post(URL, body=requests.ConnectionError("connection refused"))
    attempt = make_transport().send(message())
    assert attempt.error is not None
    assert attempt.error.status is None
    assert "network error" in attempt.error.reason


@responses.activate
def test_failure_carries_the_message_id() -> None:
    responses.post(URL, status=400)
    msg = message()
    attempt = make_transport().send(msg)
    assert attempt.error is not None
    assert attempt.error.message_id == msg.message_id


@responses.activate
def test_body_excerpt_is_short() -> None:
    responses.post(URL, status=400, body="x" * 10_000)
    attempt = make_transport().send(message())
    assert attempt.error is not None
    assert 0 < len(attempt.error.body) <= 200


@responses.activate
def test_a_body_echoing_the_key_is_masked_in_the_error() -> None:
    responses.post(URL, status=401, body=f"bad accessKey {KEY}")
    attempt = make_transport().send(message())
    assert attempt.error is not None
    assert KEY not in attempt.error.body
    assert KEY not in str(attempt.error) + repr(attempt.error)
    assert "****e862" in attempt.error.body


def test_environment_proxies_are_not_read() -> None:
    assert make_transport().session.trust_env is False


class RecordingEvent:
    """Stands in for the interrupt event: records each wait instead of sleeping."""

    def __init__(self, interrupted: bool = False) -> None:
        self.waits: list[float] = []
        self.interrupted = interrupted

    def wait(self, timeout: float) -> bool:
        self.waits.append(timeout)
        return self.interrupted


def make_retry(event: RecordingEvent, **options: Any) -> _Retry:
    retry = _Retry(total=3, backoff_factor=0.5, backoff_max=30.0, **options)
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
    failure = RequestHistory("POST", URL, None, 503, None)
    retry = make_retry(event).new(history=(failure,) * 3)  # before the third retry
    retry.sleep(response_with({}))
    (wait,) = event.waits
    assert 2.0 <= wait <= 2.5  # 0.5 * 2**2, plus up to backoff_factor of jitter


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
