"""Attacks and accidents the client must survive, through its public API only.

Each test is the regression test of a defect once found this way: a hang, crossed
answers after a fork, memory blown by an answer, a deadline that did not hold, a key sent
in clear text. Each records what it measured with ``record_figures`` (times, counts,
memory growth); ``scripts/reliability_figures.py`` collects them for docs/reliability.md.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import gainsight_segment as gs

from .conftest import ACCESS_KEY
from .servers import ScriptedServer, Step, answer, elapsed, gzip_bomb, trickle
from .test_reliability import record_figures

MARGIN = 0.5
# Long enough for any sound run on a busy machine; a hang shows as this much and a failure.
PATIENCE = 10.0


def slow(seconds: float) -> ScriptedServer:
    """A server that answers 200 after ``seconds``."""
    return ScriptedServer(lambda request: [seconds, answer(200)])


def stalled() -> ScriptedServer:
    """A server that never answers (until it stops)."""
    return ScriptedServer(lambda request: [60.0])


@pytest.fixture
def clients() -> Iterator[list[gs.Client]]:
    made: list[gs.Client] = []
    yield made
    for client in made:
        client.shutdown(timeout=1)


def client_for(server: ScriptedServer, made: list[gs.Client], **options: Any) -> gs.Client:
    settings: dict[str, Any] = {"endpoint": server.endpoint, "exit_timeout": 0}
    client = gs.Client(ACCESS_KEY, **{**settings, **options})
    made.append(client)
    return client


def lost(client: gs.Client) -> int:
    """Messages a call accepted that were neither delivered nor reported (after a shutdown)."""
    stats = client.stats()
    return stats.queued - stats.delivered - stats.failed - stats.dropped


def rss_mb() -> float:
    """The process's peak resident memory so far, in MB (Linux counts ru_maxrss in KB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def in_thread(target: Any) -> tuple[threading.Thread, list[Any]]:
    """Run ``target`` in a daemon thread; what it returns or raises lands in the list."""
    result: list[Any] = []

    def run() -> None:
        try:
            result.append(target())
        except BaseException as error:
            result.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


# --- deadlocks ---------------------------------------------------------------------------


def test_two_flushes_wait_independently_when_one_gives_up(clients: list[gs.Client]) -> None:
    with slow(1.0) as server:
        client = client_for(server, clients, workers=2)
        for _ in range(4):
            client.track("u", "Clicked")
        started = time.monotonic()
        waiting, result = in_thread(lambda: client.flush())
        time.sleep(0.05)  # the other flush is waiting before this one starts
        timed = time.monotonic()
        assert client.flush(timeout=0.2) is False
        timed_seconds = elapsed(timed)
        waiting.join(PATIENCE)
        assert result == [True]
        assert client.stats().delivered == 4
        untimed_seconds = elapsed(started)
    record_figures(
        "two-flushes",
        sent=4,
        timed_flush_timeout=0.2,
        timed_flush_seconds=round(timed_seconds, 3),
        untimed_flush_seconds=round(untimed_seconds, 3),
        delivered=4,
        lost=lost(client),
    )


def test_leaving_a_with_block_while_a_timed_flush_runs_returns(clients: list[gs.Client]) -> None:
    flushed: list[bool] = []

    def use() -> None:
        with client_for(server, clients, workers=1) as client:
            client.track("u", "Clicked")
            # This flush starts while leaving the block waits for delivery, and gives up
            # first: it must not take the other wait with it.
            timer = threading.Timer(0.05, lambda: flushed.append(client.flush(timeout=0.1)))
            timer.start()

    with slow(0.5) as server:
        started = time.monotonic()
        using, done = in_thread(use)
        using.join(PATIENCE)
        block_seconds = elapsed(started)
    assert (flushed, done) == ([False], [None])
    (client,) = clients
    record_figures(
        "with-block-exit",
        answer_delay=0.5,
        timed_flush_timeout=0.1,
        block_exit_seconds=round(block_seconds, 3),
        delivered=client.stats().delivered,
        lost=lost(client),
    )


def test_flush_from_on_error_on_the_callers_thread_returns(clients: list[gs.Client]) -> None:
    # A full queue drops the new message on the caller's thread, calling on_error there.
    flushed: list[bool] = []
    with stalled() as server:
        client: gs.Client = client_for(
            server,
            clients,
            workers=1,
            max_queue_size=1,
            on_error=lambda error, message: flushed.append(client.flush()),
        )
        client.track("u", "In flight")
        deadline = time.monotonic() + PATIENCE
        while client.stats().in_flight < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        client.track("u", "Queued")
        started = time.monotonic()
        calling, receipt = in_thread(lambda: client.track("u", "Dropped"))
        calling.join(PATIENCE)
        call_seconds = elapsed(started)
    assert [r.outcome for r in receipt] == [gs.Outcome.DROPPED]
    assert flushed == [False]
    record_figures("flush-from-on-error", call_seconds=round(call_seconds, 3), dropped=1)


def test_shutdown_from_on_error_during_shutdown_keeps_its_deadline(
    clients: list[gs.Client],
) -> None:
    with stalled() as server:
        client: gs.Client = client_for(
            server, clients, workers=2, on_error=lambda error, message: client.shutdown()
        )
        for _ in range(5):
            client.track("u", "Clicked")
        started = time.monotonic()
        closing, answer_ = in_thread(lambda: client.shutdown(timeout=0.5))
        closing.join(PATIENCE)
        shutdown_seconds = elapsed(started)
        assert answer_ == [False]
        assert shutdown_seconds < 0.5 + MARGIN
        assert client.stats().failed + client.stats().dropped == 5
    record_figures(
        "shutdown-from-on-error",
        sent=5,
        shutdown_timeout=0.5,
        shutdown_seconds=round(shutdown_seconds, 3),
        reported=client.stats().failed + client.stats().dropped,
        lost=lost(client),
    )


def test_shutdown_from_a_sender_callback_while_another_shuts_down(
    clients: list[gs.Client],
) -> None:
    with slow(0.3) as server:
        client: gs.Client = client_for(
            server, clients, workers=2, on_success=lambda message: client.shutdown()
        )
        for _ in range(4):
            client.track("u", "Clicked")
        started = time.monotonic()
        closing, answer_ = in_thread(lambda: client.shutdown(timeout=5))
        closing.join(PATIENCE)
        shutdown_seconds = elapsed(started)
    assert answer_ == [True]
    assert client.stats().delivered == 4
    record_figures(
        "shutdown-from-sender-callback",
        sent=4,
        shutdown_seconds=round(shutdown_seconds, 3),
        delivered=4,
        lost=lost(client),
    )


def test_a_flushing_on_error_lets_the_interpreter_exit_within_exit_timeout() -> None:
    script = textwrap.dedent(
        """
        import sys
        import gainsight_segment as gs

        client = gs.Client(
            sys.argv[1],
            endpoint=sys.argv[2],
            exit_timeout=2,
            timeout=30,
            on_error=lambda error, message: client.flush(),
        )
        for n in range(200):
            client.track("u", "Clicked", {"n": n})
        """
    )
    with stalled() as server:
        started = time.monotonic()
        process = subprocess.run(
            [sys.executable, "-c", script, ACCESS_KEY, server.endpoint],
            capture_output=True,
            timeout=30,
        )
        exit_seconds = elapsed(started)
    assert process.returncode == 0, process.stderr
    assert exit_seconds < 2 + 3.0  # the exit flush's 2 s, and the interpreter's start
    record_figures(
        "exit-with-flushing-on-error",
        sent=200,
        exit_timeout=2,
        process_seconds=round(exit_seconds, 2),
        exit_status=process.returncode,
    )


def test_shutdown_wakes_a_caller_blocked_on_a_full_queue(clients: list[gs.Client]) -> None:
    with stalled() as server:
        client = client_for(
            server, clients, workers=1, max_queue_size=1, on_queue_full="block", block_timeout=30
        )
        client.track("u", "In flight")
        deadline = time.monotonic() + PATIENCE
        while client.stats().in_flight < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        client.track("u", "Queued")
        returned: list[float] = []

        def blocked_call() -> gs.Receipt:
            try:
                return client.track("u", "Blocked")
            finally:
                returned.append(time.monotonic())

        calling, receipt = in_thread(blocked_call)
        time.sleep(0.1)
        shutting = time.monotonic()
        client.shutdown(timeout=0.2)
        started = time.monotonic()
        calling.join(PATIENCE)
        assert elapsed(started) < MARGIN
    (blocked,) = receipt
    assert blocked.outcome is gs.Outcome.DROPPED
    assert blocked.error.kind == "shutdown"
    record_figures(
        "shutdown-wakes-blocked-caller",
        block_timeout=30,
        shutdown_timeout=0.2,
        woken_after_shutdown_began_seconds=round(returned[0] - shutting, 3),
        reported=client.stats().failed + client.stats().dropped,
        lost=lost(client),
    )


def test_a_child_forked_during_shutdown_can_shut_down(clients: list[gs.Client]) -> None:
    with stalled() as server:
        client = client_for(server, clients, workers=1)
        client.track("u", "Clicked")
        closing, _ = in_thread(lambda: client.shutdown(timeout=3))
        time.sleep(0.2)  # the other thread is inside shutdown() now
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            signal.alarm(int(PATIENCE))  # a hang becomes a failure, not a stuck suite
            try:
                started = time.monotonic()
                done = client.shutdown(timeout=1)
                os._exit(0 if done and elapsed(started) < 1 + MARGIN else 1)
            finally:
                os._exit(2)
        forked = time.monotonic()
        _, status = os.waitpid(pid, 0)
        child_seconds = elapsed(forked)
        closing.join(PATIENCE)
    assert os.waitstatus_to_exitcode(status) == 0
    record_figures(
        "fork-during-shutdown",
        child_shutdown_timeout=1,
        child_seconds=round(child_seconds, 2),
        child_exit_status=os.waitstatus_to_exitcode(status),
    )


# --- forks and connections ---------------------------------------------------------------


def by_sender(request: bytes) -> list[Step]:
    # The parent's messages are refused, the child's accepted: a crossed answer shows.
    status = 400 if b'"parent"' in request else 200
    return [0.001, answer(status, b"{}")]


def test_sync_mode_in_a_forked_child_never_gets_the_parents_answers() -> None:
    with ScriptedServer(by_sender) as server:
        client = gs.Client(ACCESS_KEY, endpoint=server.endpoint, sync_mode=True, max_retries=0)
        assert client.track("parent", "Warm up").outcome is gs.Outcome.FAILED
        pid = os.fork()
        who = "child" if pid == 0 else "parent"
        wrong = 0
        for _ in range(200):
            outcome = client.track(who, "Clicked").outcome
            wrong += outcome is not (gs.Outcome.SENT if pid == 0 else gs.Outcome.FAILED)
        if pid == 0:  # pragma: no cover - the child reports through its exit status
            os._exit(min(wrong, 100))
        _, status = os.waitpid(pid, 0)
        client.shutdown()
    assert (wrong, os.waitstatus_to_exitcode(status)) == (0, 0)
    record_figures(
        "sync-mode-after-fork",
        calls_per_process=200,
        crossed_answers=wrong + os.waitstatus_to_exitcode(status),
    )


# --- what an endpoint can do to the client -----------------------------------------------


def test_a_compressed_error_body_is_never_inflated(clients: list[gs.Client]) -> None:
    bomb = gzip_bomb()
    script = [answer(400, bomb, {"Content-Encoding": "gzip"})]
    with ScriptedServer(lambda request: script) as server:
        client = client_for(server, clients, sync_mode=True)
        before = rss_mb()
        started = time.monotonic()
        receipt = client.track("u", "Clicked")
        took = elapsed(started)
        grown_mb = rss_mb() - before
    assert receipt.error is not None
    assert receipt.error.status == 400
    assert grown_mb < 50
    record_figures(
        "gzip-bomb",
        compressed_kb=round(len(bomb) / 1024),
        inflated_mb=200,
        call_seconds=round(took, 3),
        rss_growth_mb=round(grown_mb, 1),
        body_excerpt_chars=len(receipt.error.body),
    )


def huge_answer(request: bytes) -> Iterator[Step]:
    # 200 MB, written a megabyte at a time: the server itself holds little of it.
    chunk = b"x" * (1024 * 1024)
    yield f"HTTP/1.1 400 Bad Request\r\nContent-Length: {200 * len(chunk)}\r\n\r\n".encode()
    for _ in range(200):
        yield chunk


def test_a_huge_error_body_is_not_read(clients: list[gs.Client]) -> None:
    with ScriptedServer(huge_answer) as server:
        client = client_for(server, clients, sync_mode=True)
        before = rss_mb()
        started = time.monotonic()
        receipt = client.track("u", "Clicked")
        took = elapsed(started)
        grown_mb = rss_mb() - before
    assert receipt.error is not None
    assert receipt.error.body == "x" * 200
    assert (took < 2.0, grown_mb < 50) == (True, True)
    record_figures(
        "huge-body",
        body_mb=200,
        call_seconds=round(took, 3),
        rss_growth_mb=round(grown_mb, 1),
        body_excerpt_chars=len(receipt.error.body),
    )


def test_a_trickling_server_cannot_hold_an_attempt_past_its_timeout(
    clients: list[gs.Client],
) -> None:
    with ScriptedServer(lambda request: trickle(answer(200, b"x" * 500), 0.2)) as server:
        client = client_for(server, clients, sync_mode=True, timeout=1, max_retries=0)
        calling, receipt = in_thread(lambda: client.track("u", "Clicked"))
        started = time.monotonic()
        calling.join(PATIENCE)
        took = elapsed(started)
    assert receipt
    assert receipt[0].outcome is gs.Outcome.FAILED
    assert took < 1 + MARGIN
    record_figures(
        "trickling-server",
        timeout=1,
        byte_every_seconds=0.2,
        attempt_seconds=round(took, 3),
        error_kind=receipt[0].error.kind if receipt[0].error else None,
    )


# --- the access key ----------------------------------------------------------------------


def test_a_plain_http_endpoint_refuses_a_remote_proxy() -> None:
    with pytest.raises(gs.ConfigurationError, match="clear text") as raised:
        gs.Client(
            ACCESS_KEY,
            endpoint="http://127.0.0.1:8080",
            proxies={"http": "http://proxy.example.com:3128"},
        )
    assert ACCESS_KEY not in str(raised.value)
    record_figures("proxy-refusal", refused_at_construction=True, key_in_error=False)


@pytest.mark.parametrize(
    ("endpoint", "proxies"),
    [
        pytest.param("http://127.0.0.1:8080", {"http": "http://127.0.0.1:3128"}, id="local"),
        pytest.param(
            "https://event.gainsight.com", {"https": "http://proxy.example.com:3128"}, id="tls"
        ),
    ],
)
def test_a_proxy_that_never_sees_the_key_in_clear_is_accepted(
    endpoint: str, proxies: dict[str, str]
) -> None:
    assert gs.Client(ACCESS_KEY, endpoint=endpoint, proxies=proxies, send=False)
