"""The user's callbacks and the log of what was not delivered."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Mapping
from typing import Any, Callable

import pytest

import gainsight_segment as gs
from gainsight_segment._message import MessageBuilder
from gainsight_segment.delivery._callbacks import LOG_INTERVAL, Callbacks, summary
from gainsight_segment.delivery._policy import RetryPolicy, Scrubber, judge
from gainsight_segment.transport import TransportError

KEY = "35a84f9e-7084-47a1-b8a5-593444e9e862"
MESSAGE = MessageBuilder().track("u", "Clicked", {"n": 1})
# The start of a message as the builder writes it, for bodies that go wrong after it.
HEAD = b'{"type":"track","messageId":"id-1",'
SENDER = "gainsight-segment-sender-1"
WAKE = 2.0


def error() -> gs.DeliveryError:
    return gs.DeliveryError(
        "HTTP 400: not retried", kind="http_status", status=400, message_id=MESSAGE.message_id
    )


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def on_thread(name: str, target: Callable[[], object]) -> list[BaseException]:
    """Run ``target`` on a thread called ``name``; what escaped it, if anything."""
    escaped: list[BaseException] = []

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            escaped.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join(WAKE)
    assert not thread.is_alive()
    return escaped


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The time the log's rate limit reads; advance it by changing ``clock[0]``."""
    now = [1000.0]
    monkeypatch.setattr("gainsight_segment.delivery._callbacks.time.monotonic", lambda: now[0])
    return now


def test_on_success_receives_the_decoded_message() -> None:
    seen: list[dict[str, Any]] = []
    Callbacks(on_success=seen.append).delivered(MESSAGE.body)
    assert seen == [MESSAGE.payload()]
    assert seen[0]["event"] == "Clicked"


def test_on_error_receives_the_error_and_the_decoded_message() -> None:
    seen: list[tuple[gs.DeliveryError, dict[str, Any]]] = []
    failure = error()
    Callbacks(on_error=lambda e, m: seen.append((e, m))).undelivered(MESSAGE.body, failure)
    assert seen == [(failure, MESSAGE.payload())]


def test_no_callbacks_is_fine() -> None:
    callbacks = Callbacks()
    callbacks.delivered(MESSAGE.body)
    callbacks.undelivered(MESSAGE.body, error())
    assert not callbacks.running_here()


def test_a_raising_callback_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def explode(*args: Any) -> None:
        raise RuntimeError("bug in callback")

    callbacks = Callbacks(on_error=explode, on_success=explode)
    with caplog.at_level(logging.ERROR, logger="gainsight_segment"):
        callbacks.delivered(MESSAGE.body)
        callbacks.undelivered(MESSAGE.body, error())
    logged = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert [r.exc_info[0] for r in logged if r.exc_info] == [RuntimeError, RuntimeError]
    assert "explode" in logged[0].getMessage()


@pytest.mark.parametrize(
    ("thread", "raised"),
    [(SENDER, SystemExit), (SENDER, KeyboardInterrupt)],
)
def test_system_exits_and_interrupts_on_a_sender_are_logged_not_raised(
    caplog: pytest.LogCaptureFixture, thread: str, raised: type[BaseException]
) -> None:
    def stop(message: dict[str, Any]) -> None:
        raise raised

    callbacks = Callbacks(on_success=stop)
    with caplog.at_level(logging.ERROR, logger="gainsight_segment"):
        assert on_thread(thread, lambda: callbacks.delivered(MESSAGE.body)) == []
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [raised]


def test_a_keyboard_interrupt_from_a_callback_on_a_callers_thread_propagates() -> None:
    def interrupt(message: dict[str, Any]) -> None:
        raise KeyboardInterrupt

    callbacks = Callbacks(on_success=interrupt)
    with pytest.raises(KeyboardInterrupt):
        callbacks.delivered(MESSAGE.body)
    assert not callbacks.running_here()


def test_running_here_is_true_inside_a_callback_and_false_after() -> None:
    inside: list[bool] = []
    callbacks = Callbacks(on_success=lambda m: inside.append(callbacks.running_here()))
    assert not callbacks.running_here()
    callbacks.delivered(MESSAGE.body)
    assert inside == [True]
    assert not callbacks.running_here()


def test_running_here_is_false_after_a_callback_that_raised() -> None:
    def explode(message: dict[str, Any]) -> None:
        raise RuntimeError("bug in callback")

    callbacks = Callbacks(on_success=explode)
    callbacks.delivered(MESSAGE.body)
    assert not callbacks.running_here()


def test_running_here_is_true_in_nested_callbacks_until_the_outer_one_ends() -> None:
    seen: list[bool] = []

    def outer(message: dict[str, Any]) -> None:
        callbacks.undelivered(MESSAGE.body, error())  # e.g. a callback that sends and fails
        seen.append(callbacks.running_here())

    callbacks = Callbacks(on_success=outer, on_error=lambda e, m: None)
    callbacks.delivered(MESSAGE.body)
    assert seen == [True]
    assert not callbacks.running_here()


def test_running_here_is_per_thread() -> None:
    entered, release = threading.Event(), threading.Event()
    on_sender: list[bool] = []

    def block(message: dict[str, Any]) -> None:
        on_sender.append(callbacks.running_here())
        entered.set()
        release.wait(WAKE)

    callbacks = Callbacks(on_success=block)
    thread = threading.Thread(target=callbacks.delivered, args=(MESSAGE.body,), name=SENDER)
    thread.start()
    try:
        assert entered.wait(WAKE)
        assert not callbacks.running_here()
    finally:
        release.set()
        thread.join(WAKE)
    assert on_sender == [True]


def test_an_undelivered_message_is_logged_with_its_id_kind_and_reason(
    caplog: pytest.LogCaptureFixture, clock: list[float]
) -> None:
    with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
        Callbacks().undelivered(MESSAGE.body, error())
    assert warnings(caplog) == [
        f"message {MESSAGE.message_id} not delivered (http_status): HTTP 400: not retried"
    ]


def test_warnings_are_logged_once_per_interval(
    caplog: pytest.LogCaptureFixture, clock: list[float]
) -> None:
    callbacks = Callbacks()
    with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
        for _ in range(5):
            callbacks.undelivered(MESSAGE.body, error())
        clock[0] += LOG_INTERVAL - 0.001
        callbacks.undelivered(MESSAGE.body, error())
        assert len(warnings(caplog)) == 1
        clock[0] += 0.001
        callbacks.undelivered(MESSAGE.body, error())
    assert len(warnings(caplog)) == 2


def test_the_next_warning_says_how_many_were_not_logged(
    caplog: pytest.LogCaptureFixture, clock: list[float]
) -> None:
    callbacks = Callbacks()
    with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
        for _ in range(5):
            callbacks.undelivered(MESSAGE.body, error())
        clock[0] += LOG_INTERVAL
        callbacks.undelivered(MESSAGE.body, error())
        clock[0] += LOG_INTERVAL
        callbacks.undelivered(MESSAGE.body, error())
    first, second, third = warnings(caplog)
    assert "more since" not in first
    assert second.endswith("; 4 more since the last such line")
    assert "more since" not in third


def test_rate_limited_messages_still_reach_on_error(clock: list[float]) -> None:
    seen: list[gs.DeliveryError] = []
    callbacks = Callbacks(on_error=lambda e, m: seen.append(e))
    for _ in range(3):
        callbacks.undelivered(MESSAGE.body, error())
    assert len(seen) == 3


def test_the_log_says_what_the_scrubbed_error_says_and_never_the_key(
    caplog: pytest.LogCaptureFixture, clock: list[float]
) -> None:
    echoed = TransportError(f"proxy refused: accessKey={KEY.upper()}", kind="network")
    verdict = judge(
        echoed,
        retries=3,
        policy=RetryPolicy(),
        jitter=0.0,
        now=0.0,
        scrub=Scrubber(KEY),
        message_id=MESSAGE.message_id,
    )
    assert verdict.error is not None
    with caplog.at_level(logging.DEBUG, logger="gainsight_segment"):
        Callbacks().undelivered(MESSAGE.body, verdict.error)
    assert verdict.error.reason in caplog.text
    assert KEY not in caplog.text.lower()
    assert "****e862" in caplog.text


@pytest.mark.parametrize(
    "body",
    [
        pytest.param(
            HEAD + b'"properties":' + b"[" * 100_000 + b"]" * 100_000 + b"}", id="nested-too-deep"
        ),
        pytest.param(HEAD, id="not-json"),
        pytest.param(HEAD + b'"event":"\xff"}', id="not-utf-8"),
    ],
)
def test_a_message_that_cannot_be_decoded_still_reaches_its_callbacks(
    caplog: pytest.LogCaptureFixture, body: bytes
) -> None:
    seen: list[dict[str, Any]] = []
    callbacks = Callbacks(on_error=lambda e, m: seen.append(m), on_success=seen.append)
    with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
        callbacks.delivered(body)
        callbacks.undelivered(body, error())
    assert seen == [{"type": "track", "messageId": "id-1"}] * 2
    assert "message id-1 could not be decoded for its callback" in warnings(caplog)


@pytest.mark.parametrize(
    ("undelivered", "expected"),
    [
        ({}, None),
        (Counter(), None),
        ({"http_status": 0}, None),
        ({"http_status": 1}, "1 message not delivered (http_status: 1)"),
        ({"queue_full": 7}, "7 messages not delivered (queue_full: 7)"),
        (
            Counter({"shutdown": 1, "http_status": 2, "network": 3}),
            "6 messages not delivered (http_status: 2, network: 3, shutdown: 1)",
        ),
    ],
)
def test_summary_says_how_many_were_not_delivered_by_kind(
    undelivered: Mapping[str, int], expected: str | None
) -> None:
    assert summary(undelivered) == expected
