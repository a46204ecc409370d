"""Outcome reporting: counters, waiting for settled messages, callbacks and the log."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest

import gainsight_segment as gs
from gainsight_segment._message import MessageBuilder
from gainsight_segment._report import Reporter

MESSAGE = MessageBuilder().track("u", "Clicked", {"n": 1})


def error() -> gs.DeliveryError:
    return gs.DeliveryError("HTTP 400: not retried", status=400, message_id=MESSAGE.message_id)


def test_counters_add_up_by_outcome() -> None:
    reporter = Reporter()
    reporter.queued = 4
    reporter.delivered_one(MESSAGE, retries=2)
    reporter.failed_one(MESSAGE, error(), retries=1)
    reporter.dropped_one(MESSAGE, error())
    reporter.count_filtered()
    assert reporter.snapshot(pending=1, in_flight=0) == gs.Stats(
        queued=4, delivered=1, failed=1, dropped=1, filtered=1, retried=3, pending=1
    )


def test_reset_zeroes_the_counters() -> None:
    reporter = Reporter()
    reporter.delivered_one(MESSAGE, retries=0)
    reporter.reset()
    assert reporter.snapshot(pending=0, in_flight=0) == gs.Stats()


def test_callbacks_receive_the_decoded_message() -> None:
    seen: list[Any] = []
    reporter = Reporter(on_error=lambda e, m: seen.append((e.status, m)), on_success=seen.append)
    reporter.delivered_one(MESSAGE, retries=0)
    reporter.failed_one(MESSAGE, error(), retries=0)
    assert seen == [MESSAGE.payload(), (400, MESSAGE.payload())]


def test_a_raising_callback_is_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def explode(*args: Any) -> None:
        raise RuntimeError("bug in callback")

    reporter = Reporter(on_error=explode, on_success=explode)
    with caplog.at_level(logging.ERROR, logger="gainsight_segment"):
        reporter.delivered_one(MESSAGE, retries=0)
        reporter.dropped_one(MESSAGE, error())
    assert [r.exc_info[0] for r in caplog.records if r.exc_info] == [RuntimeError] * 2


def test_wait_queued_returns_false_at_the_deadline() -> None:
    reporter = Reporter()
    reporter.queued_one()
    assert reporter.wait_queued(deadline=time.monotonic() + 0.05) is False


def test_wait_queued_wakes_when_what_was_queued_settles() -> None:
    reporter = Reporter()
    ticket = reporter.queued_one()
    settle = threading.Thread(target=reporter.delivered_one, args=(MESSAGE, 0, ticket))
    settle.start()
    assert reporter.wait_queued(deadline=time.monotonic() + 10)
    settle.join()


def test_messages_queued_later_do_not_stand_in_for_earlier_ones() -> None:
    reporter = Reporter()
    first = reporter.queued_one()
    result: list[bool] = []
    waiting = threading.Thread(
        target=lambda: result.append(reporter.wait_queued(time.monotonic() + 10))
    )
    waiting.start()
    registered = time.monotonic() + 10
    while not reporter._waiters and time.monotonic() < registered:
        threading.Event().wait(0.001)  # until the waiter has counted what came before it
    later = reporter.queued_one()
    reporter.delivered_one(MESSAGE, 0, later)
    assert waiting.is_alive()
    reporter.delivered_one(MESSAGE, 0, first)
    waiting.join(timeout=10)
    assert result == [True]


def test_pending_and_in_flight_follow_each_ticket() -> None:
    reporter = Reporter()
    sent, waiting = reporter.queued_one(), reporter.queued_one()
    reporter.sending_one(sent)
    assert reporter.snapshot() == gs.Stats(queued=2, pending=1, in_flight=1)
    reporter.delivered_one(MESSAGE, 0, sent)
    reporter.dropped_one(MESSAGE, error(), waiting)
    assert reporter.snapshot() == gs.Stats(queued=2, delivered=1, dropped=1)


def test_enqueue_refuses_once_closed() -> None:
    reporter = Reporter()
    reporter.closed = True
    queued: list[object] = []
    with pytest.raises(gs.ClientClosedError):
        reporter.enqueue(queued.append, MESSAGE, limit=10)
    assert (queued, reporter.queued) == ([], 0)


def test_enqueue_refuses_past_the_limit_of_pending_messages() -> None:
    reporter = Reporter()
    queued: list[object] = []
    assert [reporter.enqueue(queued.append, MESSAGE, limit=2) for _ in range(3)] == [
        True,
        True,
        False,
    ]
    assert [ticket for ticket, _ in queued] == [1, 2]  # type: ignore[misc]
    assert reporter.snapshot() == gs.Stats(queued=2, pending=2)


def test_a_raising_log_handler_still_settles_the_message(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reporter = Reporter()
    ticket = reporter.queued_one()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("a broken log handler")

    monkeypatch.setattr("gainsight_segment._report.logger.warning", broken)
    with pytest.raises(RuntimeError):
        reporter.failed_one(MESSAGE, error(), 0, ticket)
    assert reporter.snapshot() == gs.Stats(queued=1, failed=1)


def test_warnings_are_throttled_and_say_how_many_were_skipped(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: clock[0])
    reporter = Reporter()
    with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
        for _ in range(5):
            reporter.failed_one(MESSAGE, error(), retries=0)
        clock[0] += 11
        reporter.dropped_one(MESSAGE, error())
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 2
    assert "(4 more not delivered" in messages[1]
