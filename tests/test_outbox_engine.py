"""The outbox engine through the Client: on disk before the call returns, delivered from it."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import gainsight_segment as gs
from gainsight_segment.outbox import Outbox, OutboxError
from gainsight_segment.outbox._store import Store
from gainsight_segment.testing import Faults, LocalCollector, MockTransport
from gainsight_segment.transport import Request, Response, TransportError

from .conftest import ACCESS_KEY, FAST_RETRIES, ClientFactory
from .outbox_support import (
    file_bytes,
    messages_in,
    read_only_dir,  # noqa: F401 - a fixture
    run_script,
    script,
)
from .outcomes import Outcomes, reconciles

PATIENCE = 20.0  # the longest any wait here may take before the test fails


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
def outbox_client(make_client: ClientFactory, path: Path) -> ClientFactory:
    """Clients on the test's outbox file, aimed at the collector."""

    def make(**options: Any) -> gs.Client:
        return make_client(outbox=str(options.pop("outbox", path)), **options)

    return make


@pytest.fixture
def mock_clients(path: Path) -> Iterator[list[gs.Client]]:
    clients: list[gs.Client] = []
    yield clients
    for client in clients:
        client.shutdown(timeout=5)


def mock_client(clients: list[gs.Client], transport: MockTransport, **options: Any) -> gs.Client:
    settings = {"exit_timeout": 0, **FAST_RETRIES, **options}
    client = gs.Client(ACCESS_KEY, transport=transport, **settings)
    clients.append(client)
    return client


def waiting(path: Path) -> int:
    with Outbox(path) as outbox:
        return outbox.summary().waiting


def sender_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("gainsight-segment-sender")}


# --- writing -----------------------------------------------------------------------------


def test_a_call_returns_once_its_message_is_in_the_file(
    outbox_client: ClientFactory, path: Path
) -> None:
    client = outbox_client(workers=0)
    receipt = client.track("u", "Clicked", {"n": 1})
    assert receipt.outcome is gs.Outcome.QUEUED
    (stored,) = messages_in(path)
    assert (stored["messageId"], stored["properties"]) == (receipt.message_id, {"n": 1})


def test_the_file_is_private_and_never_holds_the_access_key(
    outbox_client: ClientFactory, collector: LocalCollector, path: Path
) -> None:
    client = outbox_client()
    for n in range(50):
        client.track("u", "Clicked", {"n": n})
    client.shutdown()
    writer = outbox_client(workers=0)
    writer.identify("u", {"plan": "pro"})  # left in the file, for the relay
    # Read once no connection of this process is open: closing a descriptor of the file
    # would drop their locks.
    writer.shutdown()
    data = file_bytes(path)
    assert b'"plan":"pro"' in data  # the test looks where the data is
    assert ACCESS_KEY.encode() not in data
    assert ACCESS_KEY.replace("-", "").encode() not in data
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_messages_are_delivered_once_and_deleted(
    outbox_client: ClientFactory, collector: LocalCollector, path: Path
) -> None:
    client = outbox_client()
    ids = [client.track("u", "Clicked", {"n": n}).message_id for n in range(300)]
    assert client.flush(timeout=PATIENCE)
    assert sorted(m["messageId"] for m in collector.messages) == sorted(ids)
    assert waiting(path) == 0


def test_stats_reconcile_after_flush(
    outbox_client: ClientFactory, collector: LocalCollector
) -> None:
    collector.faults = Faults(statuses=(400, 200, 500, 200, 401))
    client = outbox_client(max_retries=0, backoff_max=0.01)
    for n in range(200):
        client.track("u", "Clicked", {"n": n})
    assert client.flush(timeout=PATIENCE)
    stats = client.stats()
    assert (stats.queued, stats.delivered, stats.failed) == (200, 198, 2)
    assert (stats.pending, stats.in_flight, stats.outbox_depth, stats.dead_letters) == (0, 0, 0, 2)
    assert stats.not_persisted == 0
    assert reconciles(stats)


# --- what survives the client --------------------------------------------------------------


def test_a_new_client_delivers_and_counts_what_an_earlier_one_left(
    outbox_client: ClientFactory, collector: LocalCollector
) -> None:
    writer = outbox_client(workers=0)
    ids = [writer.track("u", "Clicked", {"n": n}).message_id for n in range(40)]
    writer.shutdown()
    client = outbox_client()
    assert client.stats().queued == 40
    assert collector.wait_for(40, PATIENCE)
    assert sorted(m["messageId"] for m in collector.messages) == sorted(ids)
    client.shutdown(timeout=PATIENCE)
    stats = client.stats()
    assert (stats.queued, stats.delivered, stats.outbox_depth) == (40, 40, 0)
    assert reconciles(stats)


def test_shutdown_leaves_what_it_could_not_deliver_in_the_file_unreported(
    outbox_client: ClientFactory, collector: LocalCollector, path: Path
) -> None:
    collector.faults = Faults(stall=True)
    outcomes = Outcomes()
    client = outbox_client(workers=2, **outcomes.callbacks())
    for n in range(10):
        client.track("u", "Clicked", {"n": n})
    assert client.shutdown(timeout=0.5) is False
    with Outbox(path) as outbox:
        summary = outbox.summary()
    assert (summary.waiting, summary.claimed) == (10, 0)
    assert outcomes.errors == []
    stats = client.stats()
    assert (stats.failed, stats.dropped, stats.outbox_depth) == (0, 0, 10)


def test_shutdown_delivers_what_the_client_wrote_before_it_stops(
    outbox_client: ClientFactory, collector: LocalCollector
) -> None:
    collector.faults = Faults(latency=0.002)
    client = outbox_client(max_workers=2)
    ids = [client.track("u", "Clicked", {"n": n}).message_id for n in range(500)]
    assert client.shutdown(timeout=PATIENCE) is True
    assert sorted(m["messageId"] for m in collector.messages) == sorted(ids)
    assert client.stats().outbox_depth == 0


@pytest.mark.parametrize("method", ["flush", "shutdown"])
def test_flush_or_shutdown_from_a_callback_returns_at_once(
    outbox_client: ClientFactory, caplog: pytest.LogCaptureFixture, method: str
) -> None:
    answers: list[bool] = []
    client: gs.Client | None = None

    def on_success(message: dict[str, Any]) -> None:
        assert client is not None
        answers.append(getattr(client, method)())

    client = outbox_client(on_success=on_success)
    client.track("u", "Clicked")
    assert getattr(client, method)(timeout=PATIENCE)
    assert answers == [False]
    assert f"{method}() called from a callback" in caplog.text


def test_a_second_shutdown_returns_the_first_ones_answer(
    outbox_client: ClientFactory, collector: LocalCollector
) -> None:
    collector.faults = Faults(stall=True)
    client = outbox_client()
    client.track("u", "Clicked")
    assert client.shutdown(timeout=0.3) is False
    assert client.shutdown(timeout=0.3) is False


def test_messages_in_memory_left_at_the_shutdown_deadline_are_reported(
    outbox_client: ClientFactory,
    collector: LocalCollector,
    read_only_dir: Path,  # noqa: F811 - the fixture
) -> None:
    collector.faults = Faults(stall=True)
    outcomes = Outcomes()
    client = outbox_client(outbox=read_only_dir / "events.db", workers=1, **outcomes.callbacks())
    for n in range(3):
        client.track("u", "Clicked", {"n": n})
    assert client.shutdown(timeout=0.5) is False
    assert sorted(outcomes.kinds) == ["shutdown"] * 3
    stats = client.stats()
    assert (stats.dropped, stats.failed, stats.not_persisted) == (2, 1, 3)
    assert reconciles(stats)


def test_stats_after_shutdown_show_the_file_as_it_was_left_without_a_warning(
    outbox_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    client = outbox_client(workers=0)
    for n in range(5):
        client.track("u", "Clicked", {"n": n})
    client.shutdown()
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
        stats = client.stats()
        assert client.flush(timeout=1)
    assert (stats.outbox_depth, stats.pending, stats.queued) == (5, 5, 5)
    assert stats.outbox_oldest_age is not None
    assert reconciles(stats)
    assert caplog.records == []


LOOK = """
    import sys
    from gainsight_segment.outbox import Outbox

    with Outbox(sys.argv[1]) as outbox:
        print(outbox.summary().waiting)
"""


def test_what_a_client_writes_survives_another_process_looking_at_the_file(
    outbox_client: ClientFactory, path: Path
) -> None:
    writer = outbox_client(workers=0)
    writer.track("u", "Clicked", {"n": 0})
    assert run_script(LOOK, str(path)).stdout == "1\n"
    for n in range(1, 5):
        writer.track("u", "Clicked", {"n": n})
    assert run_script(LOOK, str(path)).stdout == "5\n"


# --- flush -------------------------------------------------------------------------------


def test_flush_waits_until_another_client_delivered_what_this_one_wrote(
    outbox_client: ClientFactory, collector: LocalCollector
) -> None:
    writer = outbox_client(workers=0)
    ids = [writer.track("u", "Clicked", {"n": n}).message_id for n in range(30)]
    assert writer.flush(timeout=0.2) is False
    relay = outbox_client()
    assert writer.flush(timeout=PATIENCE)
    assert sorted(m["messageId"] for m in collector.messages) == sorted(ids)
    assert relay.stats().delivered == 30


def test_a_client_that_never_writes_delivers_what_others_write_later(
    outbox_client: ClientFactory, collector: LocalCollector
) -> None:
    outbox_client()  # on an empty file: a relay, started before the apps
    writer = outbox_client(workers=0)
    ids = [writer.track("u", "Clicked", {"n": n}).message_id for n in range(10)]
    assert writer.flush(timeout=PATIENCE)
    assert sorted(m["messageId"] for m in collector.messages) == sorted(ids)


def test_flush_counts_a_dead_letter_as_gone(
    outbox_client: ClientFactory, collector: LocalCollector
) -> None:
    collector.faults = Faults(statuses=(400,))
    client = outbox_client()
    client.track("u", "Clicked")
    assert client.flush(timeout=PATIENCE)
    assert client.stats().dead_letters == 1


# --- write-only clients --------------------------------------------------------------------


def test_a_write_only_client_starts_no_thread(outbox_client: ClientFactory, path: Path) -> None:
    before = sender_threads()
    client = outbox_client(workers=0)
    for n in range(20):
        client.track("u", "Clicked", {"n": n})
    assert sender_threads() == before
    assert waiting(path) == 20


def test_a_write_only_client_shuts_down_at_once_leaving_its_messages(
    outbox_client: ClientFactory, path: Path
) -> None:
    client = outbox_client(workers=0)
    for n in range(20):
        client.track("u", "Clicked", {"n": n})
    started = time.monotonic()
    assert client.shutdown(timeout=PATIENCE) is True
    assert time.monotonic() - started < 1.0
    assert waiting(path) == 20


# --- refusals and failures ---------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 401, 403, 404, 413])
def test_a_permanent_refusal_becomes_a_dead_letter_reported_once(
    outbox_client: ClientFactory, collector: LocalCollector, path: Path, status: int
) -> None:
    collector.faults = Faults(failure_rate=1.0, failure_statuses=(status,))
    outcomes = Outcomes()
    client = outbox_client(max_retries=3, **outcomes.callbacks())
    ids = [client.track("u", "Clicked", {"n": n}).message_id for n in range(5)]
    assert client.flush(timeout=PATIENCE)
    assert sorted(outcomes.reported) == sorted(ids)
    assert {(e.kind, e.status) for e, _ in outcomes.errors} == {("http_status", status)}
    assert len(collector.requests) == 5
    with Outbox(path) as outbox:
        letters = list(outbox.dead_letters())
    assert sorted(letter.message["messageId"] for letter in letters) == sorted(ids)
    assert {letter.status for letter in letters} == {status}
    stats = client.stats()
    assert (stats.failed, stats.dead_letters, stats.outbox_depth) == (5, 5, 0)


def failing(first: int, answer: Response | TransportError) -> tuple[MockTransport, list[float]]:
    """A transport that fails ``first`` requests with ``answer``, then accepts; and when."""
    times: list[float] = []

    def handler(request: Request) -> Response:
        times.append(time.monotonic())
        if len(times) <= first:
            if isinstance(answer, TransportError):
                raise answer
            return answer
        return Response(200)

    return MockTransport(handler), times


CURABLE = [
    pytest.param(Response(500), id="500"),
    pytest.param(Response(502), id="502"),
    pytest.param(Response(503), id="503"),
    pytest.param(Response(504), id="504"),
    pytest.param(Response(408), id="408"),
    pytest.param(Response(429), id="429"),
    pytest.param(TransportError("connection refused", kind="network"), id="network"),
    pytest.param(TransportError("read timed out", kind="timeout"), id="timeout"),
]


@pytest.mark.parametrize("answer", CURABLE)
def test_a_curable_failure_keeps_the_message_and_retries_it_after_the_pause(
    mock_clients: list[gs.Client], path: Path, answer: Response | TransportError
) -> None:
    transport, times = failing(1, answer)
    outcomes = Outcomes()
    pause = 0.3
    client = mock_client(
        mock_clients,
        transport,
        outbox=str(path),
        max_retries=0,
        backoff_max=pause,
        **outcomes.callbacks(),
    )
    client.track("u", "Clicked")
    assert client.flush(timeout=PATIENCE)
    assert len(times) == 2
    assert times[1] - times[0] >= pause
    assert (outcomes.errors, len(outcomes.delivered)) == ([], 1)
    stats = client.stats()
    assert (stats.delivered, stats.failed, stats.dead_letters) == (1, 0, 0)
    assert reconciles(stats)


def test_a_curable_failure_is_never_dead_lettered_however_often_it_recurs(
    mock_clients: list[gs.Client], path: Path
) -> None:
    transport, times = failing(25, Response(503))
    outcomes = Outcomes()
    client = mock_client(
        mock_clients, transport, outbox=str(path), max_retries=2, **outcomes.callbacks()
    )
    client.track("u", "Clicked")
    assert client.flush(timeout=PATIENCE)
    assert len(times) == 26
    assert outcomes.errors == []
    assert client.stats().dead_letters == 0


def test_an_unexpected_transport_error_is_a_dead_letter(
    mock_clients: list[gs.Client], path: Path
) -> None:
    def broken(request: Request) -> Response:
        raise RuntimeError("a bug in a custom transport")

    outcomes = Outcomes()
    client = mock_client(
        mock_clients, MockTransport(broken), outbox=str(path), **outcomes.callbacks()
    )
    client.track("u", "Clicked")
    assert client.flush(timeout=PATIENCE)
    assert outcomes.kinds == ["unexpected"]
    assert client.stats().dead_letters == 1


def test_flush_waits_for_the_callback_of_a_settled_message(
    mock_clients: list[gs.Client], path: Path
) -> None:
    release = threading.Event()
    kinds: list[str] = []

    def on_error(error: gs.DeliveryError, message: dict[str, Any]) -> None:
        release.wait(PATIENCE)
        kinds.append(error.kind)

    client = mock_client(
        mock_clients,
        MockTransport(lambda request: Response(400)),
        outbox=str(path),
        on_error=on_error,
    )
    client.track("u", "Clicked")
    flushed_while_reporting = client.flush(timeout=1.0)
    release.set()
    assert not flushed_while_reporting
    assert client.flush(timeout=PATIENCE)
    assert kinds == ["http_status"]


# --- the bound -----------------------------------------------------------------------------


def test_a_full_outbox_drops_the_new_message_and_reports_it(outbox_client: ClientFactory) -> None:
    outcomes = Outcomes()
    client = outbox_client(workers=0, outbox_max_messages=3, **outcomes.callbacks())
    receipts = [client.track("u", "Clicked", {"n": n}) for n in range(5)]
    assert [r.outcome for r in receipts] == [gs.Outcome.QUEUED] * 3 + [gs.Outcome.DROPPED] * 2
    assert {r.error.kind for r in receipts[3:] if r.error is not None} == {"queue_full"}
    assert outcomes.kinds == ["queue_full", "queue_full"]
    assert outcomes.reported == [r.message_id for r in receipts[3:]]
    stats = client.stats()
    assert (stats.queued, stats.dropped, stats.outbox_depth) == (5, 2, 3)
    assert reconciles(stats)


def test_a_blocked_call_goes_through_once_a_relay_makes_room(
    outbox_client: ClientFactory, collector: LocalCollector
) -> None:
    writer = outbox_client(
        workers=0, outbox_max_messages=2, on_queue_full="block", block_timeout=PATIENCE
    )
    writer.track("u", "Clicked", {"n": 0})
    writer.track("u", "Clicked", {"n": 1})
    relay_started = threading.Event()

    def start_relay() -> None:
        outbox_client()
        relay_started.set()

    threading.Timer(0.3, start_relay).start()
    started = time.monotonic()
    receipt = writer.track("u", "Clicked", {"n": 2})
    assert receipt.outcome is gs.Outcome.QUEUED
    assert relay_started.is_set()
    assert time.monotonic() - started >= 0.3
    assert writer.flush(timeout=PATIENCE)
    assert len(collector.messages) == 3


def test_a_blocked_call_is_dropped_at_the_block_timeout(outbox_client: ClientFactory) -> None:
    writer = outbox_client(
        workers=0, outbox_max_messages=1, on_queue_full="block", block_timeout=0.2
    )
    writer.track("u", "Clicked")
    started = time.monotonic()
    receipt = writer.track("u", "Clicked")
    assert receipt.outcome is gs.Outcome.DROPPED
    assert receipt.error is not None
    assert receipt.error.kind == "queue_full"
    assert time.monotonic() - started >= 0.2


# --- when the file cannot be used ----------------------------------------------------------


def test_an_unwritable_directory_falls_back_to_memory(
    outbox_client: ClientFactory,
    collector: LocalCollector,
    read_only_dir: Path,  # noqa: F811 - the fixture
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = outbox_client(outbox=read_only_dir / "events.db")
    receipts = [client.track("u", "Clicked", {"n": n}) for n in range(20)]
    assert {r.outcome for r in receipts} == {gs.Outcome.QUEUED}
    assert client.flush(timeout=PATIENCE)
    assert len(collector.messages) == 20
    stats = client.stats()
    assert (stats.delivered, stats.not_persisted, stats.outbox_depth) == (20, 20, 0)
    assert "messages are kept in memory only" in caplog.text
    assert list(read_only_dir.iterdir()) == []


def test_a_corrupt_file_is_moved_aside_and_a_new_one_used(
    outbox_client: ClientFactory, collector: LocalCollector, path: Path
) -> None:
    garbage = b"\x00garbage, not an outbox\xff" * 500
    path.write_bytes(garbage)
    client = outbox_client()
    for n in range(10):
        client.track("u", "Clicked", {"n": n})
    assert client.flush(timeout=PATIENCE)
    assert len(collector.messages) == 10
    assert client.stats().not_persisted == 0
    (moved,) = path.parent.glob("events.db.corrupt-*")
    assert moved.read_bytes() == garbage


def test_a_write_only_client_without_a_file_drops_and_reports_every_call(
    outbox_client: ClientFactory,
    read_only_dir: Path,  # noqa: F811 - the fixture
) -> None:
    outcomes = Outcomes()
    client = outbox_client(outbox=read_only_dir / "events.db", workers=0, **outcomes.callbacks())
    receipts = [client.track("u", "Clicked", {"n": n}) for n in range(3)]
    assert {r.outcome for r in receipts} == {gs.Outcome.DROPPED}
    assert outcomes.kinds == ["outbox"] * 3
    assert client.stats().dropped == 3


def test_memory_kept_while_the_file_is_unusable_is_bounded(
    outbox_client: ClientFactory,
    collector: LocalCollector,
    read_only_dir: Path,  # noqa: F811 - the fixture
) -> None:
    collector.faults = Faults(stall=True)
    outcomes = Outcomes()
    client = outbox_client(
        outbox=read_only_dir / "events.db", workers=1, max_queue_size=3, **outcomes.callbacks()
    )
    receipts = [client.track("u", "Clicked", {"n": n}) for n in range(10)]
    dropped = [r for r in receipts if r.outcome is gs.Outcome.DROPPED]
    assert 5 <= len(dropped) <= 7  # 3 queued, and 0 or 1 taken by the sender meanwhile
    assert set(outcomes.kinds) == {"outbox"}
    collector.release()
    assert client.flush(timeout=PATIENCE)
    assert len(collector.messages) + len(dropped) == 10


class Refusing:
    """Makes one of a Store's writes fail, as a full disk would, ``times`` times."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, method: str, times: int) -> None:
        self.left = times
        real = getattr(Store, method)

        def refuse(store: Store, *args: Any, **kwargs: Any) -> Any:
            if self.left > 0:
                self.left -= 1
                raise OutboxError(f"outbox {store.path}: database or disk is full")
            return real(store, *args, **kwargs)

        monkeypatch.setattr(Store, method, refuse)


def test_a_message_the_file_refuses_is_kept_in_memory_and_delivered(
    outbox_client: ClientFactory,
    collector: LocalCollector,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    client = outbox_client()
    refusing = Refusing(monkeypatch, "add", 4)
    receipts = [client.track("u", "Clicked", {"n": n}) for n in range(10)]
    assert refusing.left == 0
    assert {r.outcome for r in receipts} == {gs.Outcome.QUEUED}
    assert client.flush(timeout=PATIENCE)
    assert sorted(m["messageId"] for m in collector.messages) == sorted(
        r.message_id for r in receipts
    )
    stats = client.stats()
    assert (stats.delivered, stats.not_persisted) == (10, 4)
    assert caplog.text.count("database or disk is full") == 1  # one line per interval


def test_a_delivered_message_whose_deletion_is_refused_is_not_waited_for_or_sent_again(
    outbox_client: ClientFactory,
    collector: LocalCollector,
    path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = outbox_client()
    Refusing(monkeypatch, "delivered", 1)
    client.track("u", "Clicked", {"n": 0})
    assert client.flush(timeout=PATIENCE)
    client.track("u", "Clicked", {"n": 1})  # the file takes writes again
    assert client.flush(timeout=PATIENCE)
    assert waiting(path) == 0
    assert sorted(m["properties"]["n"] for m in collector.messages) == [0, 1]


def test_a_refused_message_whose_move_is_refused_is_not_reported_twice(
    outbox_client: ClientFactory,
    collector: LocalCollector,
    path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    collector.faults = Faults(statuses=(400,))
    outcomes = Outcomes()
    client = outbox_client(**outcomes.callbacks())
    Refusing(monkeypatch, "dead", 1)
    client.track("u", "Clicked")
    assert client.flush(timeout=PATIENCE)
    client.shutdown(timeout=5)
    assert outcomes.kinds == ["http_status"]
    with Outbox(path) as outbox:
        assert (outbox.summary().waiting, outbox.summary().dead_letters) == (0, 1)


def test_a_message_the_file_cannot_take_back_is_retried_by_its_client(
    mock_clients: list[gs.Client], path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport, times = failing(1, Response(503))
    client = mock_client(mock_clients, transport, outbox=str(path), max_retries=0)
    Refusing(monkeypatch, "release", 1)
    client.track("u", "Clicked")
    assert client.flush(timeout=PATIENCE)
    assert len(times) == 2
    assert waiting(path) == 0


def test_a_file_that_fails_when_the_client_opens_it_is_tried_again_later(
    outbox_client: ClientFactory, collector: LocalCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    Refusing(monkeypatch, "take_back_from_the_departed", 1)
    client = outbox_client()
    client.track("u", "Clicked")
    assert client.flush(timeout=PATIENCE)
    assert len(collector.messages) == 1


def test_a_claim_the_file_refuses_is_made_again_later(
    outbox_client: ClientFactory, collector: LocalCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    refusing = Refusing(monkeypatch, "claim", 1)
    client = outbox_client()
    client.track("u", "Clicked")
    assert client.flush(timeout=PATIENCE)
    assert (refusing.left, len(collector.messages)) == (0, 1)


def test_flush_looks_again_when_the_file_cannot_be_read(
    outbox_client: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = outbox_client()
    client.track("u", "Clicked")
    refusing = Refusing(monkeypatch, "left_from", 1)
    assert client.flush(timeout=PATIENCE)
    assert refusing.left == 0


# --- processes -----------------------------------------------------------------------------

CLAIM_AND_HANG = """
    import sys, time
    import gainsight_segment as gs
    from gainsight_segment.outbox import Outbox

    key, endpoint, path = sys.argv[1:4]
    client = gs.Client(key, endpoint=endpoint, outbox=path, workers=2, exit_timeout=0)
    for n in range(20):
        client.track("u", "Clicked", {"n": n})
    with Outbox(path) as outbox:
        while outbox.summary().claimed == 0:
            time.sleep(0.01)
    print("claimed", flush=True)
    time.sleep(600)
"""


def test_the_claims_of_a_killed_process_are_taken_back_by_the_next_client_at_once(
    outbox_client: ClientFactory, collector: LocalCollector, path: Path
) -> None:
    with LocalCollector(ACCESS_KEY, faults=Faults(stall=True)) as stalled:
        child = subprocess.Popen(
            [*script(CLAIM_AND_HANG), ACCESS_KEY, stalled.endpoint, str(path)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "claimed\n"
        finally:
            child.kill()
            child.wait(PATIENCE)
            if child.stdout is not None:
                child.stdout.close()
    started = time.monotonic()
    outbox_client()
    assert collector.wait_for(20, PATIENCE)
    assert time.monotonic() - started < 10  # far less than a lease
    assert sorted(m["properties"]["n"] for m in collector.messages) == list(range(20))


WRITE = """
    import sys
    import gainsight_segment as gs

    key, path, who = sys.argv[1:4]
    client = gs.Client(key, outbox=path, workers=0, endpoint="http://127.0.0.1:9")
    for n in range(500):
        client.track(who, "Clicked", {"n": n})
    client.shutdown()
"""


def test_two_processes_write_one_file_and_nothing_is_lost(
    outbox_client: ClientFactory, collector: LocalCollector, path: Path
) -> None:
    writers = [subprocess.Popen([*script(WRITE), ACCESS_KEY, str(path), who]) for who in ("a", "b")]
    assert [writer.wait(60) for writer in writers] == [0, 0]
    outbox_client()
    assert collector.wait_for(1000, PATIENCE)
    sent = sorted((m["userId"], m["properties"]["n"]) for m in collector.messages)
    assert sent == sorted((who, n) for who in ("a", "b") for n in range(500))


FORK = """
    import os, sys
    import gainsight_segment as gs

    key, endpoint, path = sys.argv[1:4]
    client = gs.Client(key, endpoint=endpoint, outbox=path, exit_timeout=0)
    client.track("parent", "Before Fork")
    assert client.flush(timeout=10)
    pid = os.fork()
    if pid == 0:
        for n in range(50):
            client.track("child", "In Child", {"n": n})
        # Shut down, not just flushed: its senders may hold the parent's messages too.
        os._exit(0 if client.shutdown(timeout=20) else 1)
    for n in range(50):
        client.track("parent", "After Fork", {"n": n})
    _, status = os.waitpid(pid, 0)
    assert client.flush(timeout=20), "parent flush"
    assert status == 0, "child failed"
    print("ok")
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_client_created_before_fork_writes_and_delivers_from_the_child(
    collector: LocalCollector, path: Path
) -> None:
    result = run_script(FORK, ACCESS_KEY, collector.endpoint, str(path))
    assert result.returncode == 0, result.stderr
    events = [m["event"] for m in collector.messages]
    assert (events.count("Before Fork"), events.count("In Child")) == (1, 50)
    assert events.count("After Fork") == 50
    assert len({m["messageId"] for m in collector.messages}) == 101
