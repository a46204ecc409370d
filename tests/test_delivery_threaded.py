"""The threaded engine through the Client: queue, senders, deadlines, callbacks, fork."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap
import threading
import time
import types
from typing import Any

import pytest

import gainsight_segment as gs
from gainsight_segment.testing import Faults, LocalCollector

from .conftest import ACCESS_KEY, ClientFactory

# Deadline tests allow this much past the deadline for thread scheduling on a busy machine.
MARGIN = 0.5


def reconciles(stats: gs.Stats) -> bool:
    settled = stats.delivered + stats.failed + stats.dropped
    return stats.queued == settled + stats.pending + stats.in_flight


def sender_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("gainsight-segment-sender")]


def test_5000_messages_arrive_exactly_once(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    client = make_client(workers=8)
    ids = [client.track("u", "Clicked", {"n": n}).message_id for n in range(5000)]
    assert client.flush(timeout=60)
    received = [m["messageId"] for m in collector.messages]
    assert sorted(received) == sorted(ids)
    stats = client.stats()
    assert (stats.queued, stats.delivered, stats.failed, stats.dropped) == (5000, 5000, 0, 0)
    assert reconciles(stats)


def test_sender_threads_start_lazily_named_and_daemonic(make_client: ClientFactory) -> None:
    before = set(sender_threads())
    client = make_client(workers=3)
    assert set(sender_threads()) == before
    client.track("u", "Clicked")
    started = [t for t in sender_threads() if t not in before]
    assert len(started) == 3
    assert all(t.daemon for t in started)


def test_retry_after_is_honoured_and_the_retry_counted(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    collector.faults = Faults(statuses=(429,), retry_after=0.01)
    client = make_client()
    client.track("u", "Clicked")
    assert client.flush(timeout=10)
    assert client.stats().retried == 1
    assert [r.status for r in collector.requests] == [429, 200]


def test_flush_returns_false_at_its_deadline_and_keeps_the_rest_queued(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    collector.faults = Faults(stall=True)
    client = make_client(workers=1)
    for _ in range(3):
        client.track("u", "Clicked")
    started = time.monotonic()
    assert client.flush(timeout=1) is False
    assert time.monotonic() - started < 1 + MARGIN
    stats = client.stats()
    assert (stats.in_flight, stats.pending) == (1, 2)
    collector.release()
    collector.faults = Faults()
    assert client.flush(timeout=10)
    assert client.stats().delivered == 3


def test_shutdown_honours_its_deadline_and_reports_every_undelivered_message(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    collector.faults = Faults(stall=True)
    errors: list[gs.DeliveryError] = []
    client = make_client(workers=2, on_error=lambda e, m: errors.append(e))
    ids = {client.track("u", "Clicked").message_id for _ in range(10)}
    started = time.monotonic()
    assert client.shutdown(timeout=1) is False
    assert time.monotonic() - started < 1 + MARGIN
    assert {e.message_id for e in errors} == ids
    stats = client.stats()
    assert (stats.failed, stats.dropped, stats.delivered) == (2, 8, 0)
    assert reconciles(stats)


def test_shutdown_interrupts_a_long_retry_after_wait(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    collector.faults = Faults(statuses=(503,), retry_after=60)
    errors: list[gs.DeliveryError] = []
    client = make_client(backoff_max=120, on_error=lambda e, m: errors.append(e))
    client.track("u", "Clicked")
    assert collector.wait_for(0, timeout=1)
    started = time.monotonic()
    client.shutdown(timeout=1)
    assert time.monotonic() - started < 1 + MARGIN
    assert len(errors) == 1
    assert client.stats().delivered == 0


def test_queue_full_drops_counts_and_reports(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    collector.faults = Faults(stall=True)
    errors: list[gs.DeliveryError] = []
    client = make_client(workers=1, max_queue_size=2, on_error=lambda e, m: errors.append(e))
    receipts = [client.track("u", "Clicked") for _ in range(10)]
    dropped = [r for r in receipts if r.outcome is gs.Outcome.DROPPED]
    assert 6 <= len(dropped) <= 8  # the sender may or may not have taken one off the queue
    assert [e.message_id for e in errors] == [r.message_id for r in dropped]
    assert all("queue full" in e.reason for e in errors)
    assert client.stats().dropped == len(dropped)
    collector.release()


def test_queue_full_warning_is_logged_once_per_interval(
    make_client: ClientFactory, collector: LocalCollector, caplog: pytest.LogCaptureFixture
) -> None:
    collector.faults = Faults(stall=True)
    client = make_client(workers=1, max_queue_size=1)
    with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
        for _ in range(50):
            client.track("u", "Clicked")
    assert len([r for r in caplog.records if "dropped" in r.getMessage()]) == 1
    collector.release()


def test_an_outage_logs_one_warning_per_interval(
    make_client: ClientFactory, collector: LocalCollector, caplog: pytest.LogCaptureFixture
) -> None:
    collector.faults = Faults(failure_rate=1.0, failure_statuses=(400,))
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
        for _ in range(20):
            client.track("u", "Clicked")
        assert client.flush(timeout=10)
    assert client.stats().failed == 20
    assert len([r for r in caplog.records if "not delivered" in r.getMessage()]) == 1
    collector.release()


def test_block_policy_waits_for_space_then_queues(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    collector.faults = Faults(stall=True)
    client = make_client(workers=1, max_queue_size=1, on_queue_full="block", block_timeout=30)
    client.track("u", "Clicked")  # taken by the sender, which stalls
    while client.stats().in_flight == 0:
        client.flush(timeout=0.01)
    client.track("u", "Clicked")  # fills the queue
    outcome: list[gs.Receipt] = []
    blocked = threading.Thread(target=lambda: outcome.append(client.track("u", "Clicked")))
    blocked.start()
    collector.faults = Faults()  # releases the stalled request: the queue drains
    blocked.join(timeout=30)
    assert [r.outcome for r in outcome] == [gs.Outcome.QUEUED]
    assert client.flush(timeout=10)
    assert client.stats().delivered == 3


def test_block_policy_drops_after_block_timeout(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    collector.faults = Faults(stall=True)
    client = make_client(workers=1, max_queue_size=1, on_queue_full="block", block_timeout=0.1)
    receipts = [client.track("u", "Clicked") for _ in range(3)]
    assert receipts[-1].outcome is gs.Outcome.DROPPED
    collector.release()


@pytest.mark.parametrize("exception", [RuntimeError, SystemExit])
@pytest.mark.parametrize("callback", ["on_error", "on_success"])
def test_a_raising_callback_is_logged_and_delivery_goes_on(
    make_client: ClientFactory,
    collector: LocalCollector,
    caplog: pytest.LogCaptureFixture,
    callback: str,
    exception: type[BaseException],
) -> None:
    def explode(*args: Any) -> None:
        raise exception("callback bug")

    collector.faults = Faults(statuses=(400,) * 5)
    client = make_client(workers=1, **{callback: explode})
    with caplog.at_level(logging.ERROR, logger="gainsight_segment"):
        for _ in range(10):
            client.track("u", "Clicked")
        assert client.flush(timeout=10)
    stats = client.stats()
    assert (stats.failed, stats.delivered) == (5, 5)
    assert any("callback raised" in r.getMessage() for r in caplog.records)


def test_on_success_receives_the_message(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    seen: list[dict[str, Any]] = []
    client = make_client(on_success=seen.append)
    receipt = client.track("u", "Clicked", {"plan": "pro"})
    client.flush(timeout=10)
    assert [(m["messageId"], m["properties"]) for m in seen] == [
        (receipt.message_id, {"plan": "pro"})
    ]


def test_flush_from_a_sender_thread_does_not_wait_for_itself(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    results: list[bool] = []
    holder: list[gs.Client] = []
    client = make_client(on_success=lambda m: results.append(holder[0].flush()))
    holder.append(client)
    client.track("u", "Clicked")
    assert client.flush(timeout=10)
    assert results == [False]


def test_eight_producer_threads_deliver_everything(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    client = make_client(workers=4)
    ids: list[str] = []

    def produce() -> None:
        ids.extend(client.track("u", "Clicked").message_id for _ in range(500))

    producers = [threading.Thread(target=produce) for _ in range(8)]
    for producer in producers:
        producer.start()
    for producer in producers:
        producer.join(timeout=60)
    assert client.flush(timeout=60)
    assert sorted(m["messageId"] for m in collector.messages) == sorted(ids)
    assert len(ids) == 4000


def test_uwsgi_without_threads_logs_a_warning(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "uwsgi", types.SimpleNamespace(opt={}))
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
        client.track("u", "Clicked")
    assert any("--enable-threads" in r.getMessage() for r in caplog.records)


def test_uwsgi_with_threads_logs_nothing(
    make_client: ClientFactory, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "uwsgi", types.SimpleNamespace(opt={"enable-threads": True}))
    client = make_client()
    with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
        client.track("u", "Clicked")
    assert not caplog.records


def run_script(script: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


FORK_SCRIPT = """
    import os, sys
    import gainsight_segment as gs

    client = gs.Client(sys.argv[1], endpoint=sys.argv[2], exit_timeout=0)
    client.track("parent", "Before Fork")
    assert client.flush(timeout=10)
    pid = os.fork()
    if pid == 0:
        for n in range(50):
            client.track("child", "In Child", {"n": n})
        ok = client.flush(timeout=20) and client.stats().delivered == 50
        os._exit(0 if ok else 1)
    for n in range(50):
        client.track("parent", "After Fork", {"n": n})
    _, status = os.waitpid(pid, 0)
    assert client.flush(timeout=20), "parent flush"
    assert status == 0, "child failed"
    assert client.stats().delivered == 51
    print("ok")
"""


def test_a_client_created_before_fork_delivers_from_child_and_parent(
    collector: LocalCollector,
) -> None:
    result = run_script(FORK_SCRIPT, ACCESS_KEY, collector.endpoint)
    assert result.returncode == 0, result.stderr
    events = [m["event"] for m in collector.messages]
    assert events.count("In Child") == 50
    assert events.count("After Fork") == 50
    assert events.count("Before Fork") == 1
    assert len({m["messageId"] for m in collector.messages}) == 101


EXIT_SCRIPT = """
    import sys
    import gainsight_segment as gs

    client = gs.Client(sys.argv[1], endpoint=sys.argv[2])
    for n in range(20):
        client.track("u", "At Exit", {"n": n})
"""


def test_interpreter_exit_flushes_what_is_queued(collector: LocalCollector) -> None:
    result = run_script(EXIT_SCRIPT, ACCESS_KEY, collector.endpoint)
    assert result.returncode == 0, result.stderr
    assert len(collector.messages) == 20


MULTIPROCESSING_SCRIPT = """
    import multiprocessing, sys
    import gainsight_segment as gs

    client = gs.Client(sys.argv[1], endpoint=sys.argv[2])

    def work(n):
        for i in range(10):
            client.track("child", "In Worker", {"n": n, "i": i})

    if __name__ == "__main__":
        context = multiprocessing.get_context("fork")
        workers = [context.Process(target=work, args=(n,)) for n in range(3)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(30)
        assert [w.exitcode for w in workers] == [0, 0, 0]
"""


def test_multiprocessing_children_flush_when_they_exit(collector: LocalCollector) -> None:
    result = run_script(MULTIPROCESSING_SCRIPT, ACCESS_KEY, collector.endpoint)
    assert result.returncode == 0, result.stderr
    assert len(collector.messages) == 30


RAW_FORK_SCRIPT = """
    import ctypes, os, sys
    import gainsight_segment as gs

    client = gs.Client(sys.argv[1], endpoint=sys.argv[2], exit_timeout=0)
    client.track("parent", "Before Fork")
    assert client.flush(timeout=10)
    # The C library's fork(), as uWSGI calls it: Python's fork hooks do not run.
    pid = ctypes.CDLL(None).fork()
    if pid == 0:
        for n in range(20):
            client.track("child", "In Child", {"n": n})
        ok = client.flush(timeout=20) and client.stats().delivered == 20
        os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert status == 0, "child failed"
    client.track("parent", "After Fork")
    assert client.flush(timeout=10), "parent flush"
    print("ok")
"""


def test_a_fork_that_skips_pythons_hooks_still_delivers_from_the_child(
    collector: LocalCollector,
) -> None:
    result = run_script(RAW_FORK_SCRIPT, ACCESS_KEY, collector.endpoint)
    assert result.returncode == 0, result.stderr
    events = [m["event"] for m in collector.messages]
    assert (events.count("In Child"), events.count("After Fork")) == (20, 1)


def test_shutdown_logs_one_warning_with_what_was_not_delivered_by_reason(
    make_client: ClientFactory, collector: LocalCollector, caplog: pytest.LogCaptureFixture
) -> None:
    collector.faults = Faults(stall=True)
    client = make_client(workers=1)
    for _ in range(5):
        client.track("u", "Clicked")
    with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
        client.shutdown(timeout=0.2)
    summaries = [r.getMessage() for r in caplog.records if "Client.stats()" in r.getMessage()]
    assert summaries == ["5 messages not delivered (shutdown: 5); see on_error and Client.stats()"]
    collector.release()


def test_shutdown_logs_no_summary_when_everything_was_delivered(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = make_client()
    client.track("u", "Clicked")
    with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
        assert client.shutdown(timeout=10)
    assert caplog.records == []


def test_the_exit_flush_logs_what_it_could_not_deliver(collector: LocalCollector) -> None:
    collector.faults = Faults(stall=True)
    script = textwrap.dedent(
        """
        import logging, sys
        import gainsight_segment as gs

        logging.basicConfig(level=logging.WARNING, format="%(message)s")
        client = gs.Client(sys.argv[1], endpoint=sys.argv[2], exit_timeout=0.5, workers=1)
        for n in range(3):
            client.track("u", "Clicked", {"n": n})
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script, ACCESS_KEY, collector.endpoint],
        capture_output=True,
        text=True,
        timeout=30,
    )
    collector.release()
    assert done.returncode == 0
    assert "3 messages not delivered (shutdown: 3); see on_error" in done.stderr
