"""The outbox file: rows, claims, owners and their liveness, dead letters, a corrupt file."""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import stat
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gainsight_segment.outbox import OutboxError, _database, _spool, _store
from gainsight_segment.outbox._os import host_identity, process_alive, process_started
from gainsight_segment.outbox._store import Store

from .outbox_support import body


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    opened = Store(path)
    yield opened
    opened.close()


@pytest.fixture
def direct_store(path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Store]:
    """A store that commits each message to the file, as where spools cannot be locked."""
    monkeypatch.setattr(_spool, "supported", lambda: False)
    opened = Store(path)
    yield opened
    opened.close()


def raw(path: Path, sql: str, parameters: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Run SQL on the file through a connection of the test's own."""
    db = sqlite3.connect(path, isolation_level=None, timeout=10)
    try:
        return db.execute(sql, parameters).fetchall()
    finally:
        db.close()


# --- the file ----------------------------------------------------------------------------


def test_the_file_and_its_companions_are_private(path: Path, store: Store) -> None:
    store.add(body(1), 10)
    names = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in names}
    assert modes == {p.name: 0o600 for p in names}


def test_a_file_system_without_hard_links_still_gets_a_private_file(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_links(source: str, target: str) -> None:
        raise OSError(1, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_links)
    store = Store(path)
    try:
        store.add(body(1), 10)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        assert [p.name for p in path.parent.iterdir() if p.name.endswith(".new")] == []
    finally:
        store.close()


COUNT = """
    import sqlite3, sys
    db = sqlite3.connect(sys.argv[1])
    print(db.execute("SELECT count(*) FROM outbox").fetchone()[0])
    db.close()
"""


def count_from_another_process(path: Path) -> int:
    found = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(COUNT), str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return int(found.stdout)


@pytest.mark.parametrize("stores", [1, 2], ids=["one-store", "two-stores"])
def test_writes_stay_visible_after_another_process_opens_and_closes_the_file(
    path: Path, stores: int
) -> None:
    # Opening a store must not drop this process's locks on the file: the other process
    # would take the file for unused on closing, and delete the write-ahead log.
    opened = [Store(path) for _ in range(stores)]
    try:
        assert count_from_another_process(path) == 0
        for n in range(5):
            opened[0].add(body(n), 10)
        opened[0].claim(0)  # moves them from the spool into the table
        assert count_from_another_process(path) == 5
        assert os.path.exists(f"{path}-wal")
    finally:
        for store in opened:
            store.close()


FORKED_WRITER = """
    import os, subprocess, sys, textwrap
    from gainsight_segment.outbox._store import Store

    path, count = sys.argv[1], sys.argv[2]
    parent = Store(path)
    parent.add(b'{"who": "parent"}', 100)
    ready, go = os.pipe()
    pid = os.fork()
    if pid == 0:
        child = Store(path)  # as a client does in a child: a store of its own
        os.read(ready, 1)  # the parent has closed its store
        for n in range(5):
            child.add(b'{"who": "child"}', 100)
        child.claim(0)  # moves its spool and the parent's (sealed) into the table
        seen = subprocess.run([sys.executable, "-c", textwrap.dedent(count), path],
                              capture_output=True, text=True).stdout
        print(seen.strip(), flush=True)
        os._exit(0)
    parent.close()
    os.write(go, b"x")
    os.waitpid(pid, 0)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_child_keeps_its_writes_after_the_parent_closes_the_file(path: Path) -> None:
    # The child's connections hold locks of their own: when another process then opens and
    # closes the file, it does not take it for unused and delete the write-ahead log.
    forked = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(FORKED_WRITER), str(path), COUNT],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert forked.stdout == "6\n"


def test_a_store_works_again_in_the_parent_after_a_fork(store: Store) -> None:
    store.add(body(1), 10)
    store.before_fork()
    store.after_fork(child=False)
    assert store.add(body(2), 10)
    assert store.claim(5) == [(1, body(1)), (2, body(2))]


def test_a_store_inherited_by_a_child_is_closed_there(path: Path) -> None:
    store = Store(path)
    store.before_fork()
    store.after_fork(child=True)
    with pytest.raises(OutboxError):
        store.add(body(1), 10)
    store.close()  # harmless


def test_a_fork_goes_ahead_without_closing_when_a_call_does_not_end(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_store, "FORK_WAIT_SECONDS", 0.01)
    for held in (store._write_lock, store._read_lock):
        with held:
            store.before_fork()
            store.after_fork(child=False)
    assert store.add(body(1), 10)  # never closed


def test_a_closed_store_stays_closed_across_a_fork(path: Path) -> None:
    store = Store(path)
    store.close()
    store.before_fork()
    store.after_fork(child=False)
    with pytest.raises(OutboxError):
        store.add(body(1), 10)


def test_a_missing_directory_is_an_outbox_error(tmp_path: Path) -> None:
    with pytest.raises(OutboxError, match="No such file or directory"):
        Store(tmp_path / "missing" / "events.db")


def test_a_file_written_by_a_newer_version_is_refused(path: Path) -> None:
    Store(path).close()
    raw(path, f"PRAGMA user_version={_database.SCHEMA_VERSION + 1}")
    with pytest.raises(OutboxError, match="newer gainsight-segment"):
        Store(path)


def test_a_corrupt_file_is_moved_aside_not_deleted_and_a_new_one_works(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    garbage = b"not an SQLite database, whatever it was" * 100
    path.write_bytes(garbage)
    with caplog.at_level(logging.ERROR, logger="gainsight_segment"):
        store = Store(path)
    try:
        (moved,) = path.parent.glob("events.db.corrupt-*")
        assert moved.read_bytes() == garbage
        assert store.add(body(1), 10)
        assert store.claim(5) == [(1, body(1))]
    finally:
        store.close()
    assert f"moved aside to {moved}" in caplog.text


def test_opening_a_new_file_from_many_threads_at_once_creates_it_once(path: Path) -> None:
    stores: list[Store] = []
    errors: list[BaseException] = []
    start = threading.Barrier(8)

    def open_one() -> None:
        start.wait()
        try:
            stores.append(Store(path))
        except BaseException as exc:  # pragma: no cover - the failure is the assertion
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert all(store.add(body(n), 100) for n, store in enumerate(stores))
    assert sorted(row for row, _ in stores[0].claim(10)) == list(range(1, 9))
    for store in stores:
        store.close()


class LockedAtFirst:
    """A connection whose journal-mode change meets another opener ``times`` times."""

    def __init__(self, times: int) -> None:
        self.left = times
        self.statements: list[str] = []

    def execute(self, sql: str) -> None:
        self.statements.append(sql)
        if self.left > 0:
            self.left -= 1
            raise sqlite3.OperationalError("database is locked")


def test_switching_to_wal_tries_again_when_another_opener_holds_the_file() -> None:
    # SQLite answers a journal-mode change that would deadlock with another connection at
    # once, without waiting out the busy timeout: two threads opening a new file met it.
    db = LockedAtFirst(times=3)
    _database.enable_wal(db)  # type: ignore[arg-type]
    assert db.statements == ["PRAGMA journal_mode=WAL"] * 4


def test_switching_to_wal_gives_up_at_the_busy_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_database, "BUSY_TIMEOUT_MS", 50)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        _database.enable_wal(LockedAtFirst(times=10**9))  # type: ignore[arg-type]


# --- writing and the bound ---------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 3, 10])
def test_add_refuses_once_the_limit_is_stored(store: Store, limit: int) -> None:
    written = [store.add(body(n), limit) for n in range(limit + 2)]
    assert written == [True] * limit + [False, False]


def test_add_finds_room_again_once_messages_are_delivered(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_store, "DEPTH_SECONDS", 0.0)
    assert [store.add(body(n), 2) for n in range(3)] == [True, True, False]
    (row, _), _ = store.claim(2)
    store.delivered(row)
    assert store.add(body(3), 2)


def test_a_writer_alone_keeps_its_write_ahead_log_bounded(path: Path, direct_store: Store) -> None:
    # A write-only client whose relay is down checkpoints itself; else every commit gets
    # slower as the log grows (12 ms a call at 40,000 messages).
    for n in range(2 * _store.WRITER_CHECKPOINT_PAGES + 1000):
        direct_store.add(body(n), 10**9)
    frame = _database.PAGE_SIZE + 24  # a WAL frame: its header and one page
    assert os.path.getsize(f"{path}-wal") <= (_store.WRITER_CHECKPOINT_PAGES + 100) * frame


def test_add_on_a_closed_store_is_an_outbox_error(path: Path) -> None:
    store = Store(path)
    store.close()
    with pytest.raises(OutboxError, match=str(path)):
        store.add(body(1), 10)


# --- claims ------------------------------------------------------------------------------


def test_claims_take_the_oldest_first_up_to_the_limit(store: Store) -> None:
    for n in range(5):
        store.add(body(n), 10)
    assert [row for row, _ in store.claim(3)] == [1, 2, 3]
    assert [row for row, _ in store.claim(3)] == [4, 5]
    assert store.claim(3) == []


def test_a_claimed_message_is_not_claimed_by_another_owner(path: Path, store: Store) -> None:
    store.add(body(1), 10)
    other = Store(path)
    try:
        assert len(store.claim(5)) == 1
        assert other.claim(5) == []
    finally:
        other.close()


def test_a_released_message_can_be_claimed_again(store: Store) -> None:
    store.add(body(1), 10)
    ((row, _),) = store.claim(5)
    store.release([row])
    assert store.claim(5) == [(row, body(1))]


def test_release_does_not_touch_another_owners_claim(path: Path, store: Store) -> None:
    store.add(body(1), 10)
    other = Store(path)
    try:
        ((row, _),) = other.claim(5)
        store.release([row])
        assert store.claim(5) == []
    finally:
        other.close()


def test_a_claim_whose_lease_ran_out_can_be_claimed_by_anyone(
    path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_store, "LEASE_SECONDS", 0.0)
    store.add(body(1), 10)
    store.claim(5)
    other = Store(path)
    try:
        assert [row for row, _ in other.claim(5)] == [1]
    finally:
        other.close()


def test_each_claim_counts_an_attempt(path: Path, store: Store) -> None:
    store.add(body(1), 10)
    for _ in range(3):
        ((row, _),) = store.claim(5)
        store.release([row])
    assert raw(path, "SELECT attempts FROM outbox") == [(3,)]


def test_closing_gives_the_claims_back_and_forgets_the_owner(path: Path) -> None:
    store = Store(path)
    store.add(body(1), 10)
    store.claim(5)
    store.close()
    assert raw(path, "SELECT owner, not_before FROM outbox") == [(None, 0)]
    assert raw(path, "SELECT count(*) FROM owners") == [(0,)]


# --- owners and their liveness -----------------------------------------------------------


def test_the_current_process_is_alive_and_a_reaped_one_is_not() -> None:
    me = os.getpid()
    assert process_alive(me, process_started(me))
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert not process_alive(int(child.stdout), "")


def test_a_pid_reused_by_a_later_process_is_not_the_owner() -> None:
    me = os.getpid()
    assert not process_alive(me, "1")  # a start time this process does not have


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="needs /proc")
def test_the_start_time_marker_is_stable_for_a_process() -> None:
    assert process_started(os.getpid()) == process_started(os.getpid()) != ""


def test_the_start_time_marker_is_empty_for_a_missing_process() -> None:
    assert process_started(2**22 + 12345) == ""


CLAIM_AND_DIE = """
    import os, sys
    from gainsight_segment.outbox._store import Store
    store = Store(sys.argv[1])
    print(len(store.claim(100)), flush=True)
    os._exit(0)  # no close(): the claims stay, as after kill -9
"""


def test_the_claims_of_a_dead_process_are_taken_back_at_once(path: Path, store: Store) -> None:
    for n in range(3):
        store.add(body(n), 10)
    died = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(CLAIM_AND_DIE), str(path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert died.stdout.strip() == "3"
    assert store.claim(5) == []  # held, by an owner nobody has looked at yet
    assert store.take_back_from_the_departed() == 3
    assert [row for row, _ in store.claim(5)] == [1, 2, 3]
    assert raw(path, "SELECT count(*) FROM owners") == [(1,)]  # only this store's


def test_the_claims_of_a_live_process_are_left_alone(path: Path, store: Store) -> None:
    store.add(body(1), 10)
    other = Store(path)
    try:
        other.claim(5)
        assert store.take_back_from_the_departed() == 0
        assert store.claim(5) == []
    finally:
        other.close()


@pytest.mark.parametrize(
    ("host", "seen_ago", "taken_back"),
    [
        pytest.param("elsewhere", 1.0, False, id="other-host-seen-lately"),
        pytest.param("elsewhere", _store.LEASE_SECONDS + 60, True, id="other-host-silent"),
        pytest.param(host_identity(), 1.0, True, id="this-host-pid-gone"),
    ],
)
def test_an_owner_is_judged_by_its_process_here_and_by_its_lease_elsewhere(
    path: Path, store: Store, host: str, seen_ago: float, taken_back: bool
) -> None:
    store.add(body(1), 10)
    store.claim(0)  # moved into the table, claimed by nobody
    gone_pid = 2**22 + 4321  # above Linux's pid_max: never a live process
    raw(
        path,
        "INSERT INTO owners VALUES ('ghost', ?, ?, '', ?)",
        (host, gone_pid, time.time() - seen_ago),
    )
    raw(path, "UPDATE outbox SET owner = 'ghost', not_before = ?", (time.time() + 300,))
    assert store.take_back_from_the_departed() == (1 if taken_back else 0)


# --- outcomes ----------------------------------------------------------------------------


def test_a_delivered_message_is_deleted(store: Store) -> None:
    store.add(body(1), 10)
    ((row, _),) = store.claim(5)
    store.delivered(row)
    assert store.depth() == (0, None, 0)


def test_a_refused_message_becomes_a_dead_letter_with_why(store: Store) -> None:
    store.add(body(1), 10)
    ((row, _),) = store.claim(5)
    store.dead(row, kind="http_status", status=400, reason="HTTP 400: not retried")
    ((_, kept, kind, status, reason, attempts, failed),) = store.dead_rows()
    assert (kept, kind, status, reason, attempts) == (
        body(1),
        "http_status",
        400,
        "HTTP 400: not retried",
        1,
    )
    assert failed == pytest.approx(time.time(), abs=5)
    assert store.depth()[0::2] == (0, 1)


def test_dead_letters_of_rows_with_a_reused_id_are_all_kept(store: Store) -> None:
    for n in range(3):
        store.add(body(n), 10)  # each time into an empty outbox: id 1 each time
        ((row, _),) = store.claim(5)
        store.dead(row, kind="http_status", status=400, reason="HTTP 400: not retried")
    assert [kept for _, kept, *_ in store.dead_rows()] == [body(n) for n in range(3)]


def test_revived_dead_letters_are_waiting_again_with_their_age(store: Store) -> None:
    store.add(body(1), 10)
    ((row, _),) = store.claim(5)
    created = store.depth()[1]
    store.dead(row, kind="http_status", status=401, reason="HTTP 401: not retried")
    assert store.revive() == 1
    depth, age, dead = store.depth()
    assert (depth, dead) == (1, 0)
    assert age is not None
    assert created is not None
    assert age >= created
    assert store.claim(5)[0][1] == body(1)


# --- looking -----------------------------------------------------------------------------


def test_depth_counts_messages_the_oldest_age_and_dead_letters(store: Store) -> None:
    assert store.depth() == (0, None, 0)
    store.add(body(1), 10)
    store.add(body(2), 10)
    depth, age, dead = store.depth()
    assert (depth, dead) == (2, 0)
    assert age is not None
    assert 0 <= age < 5


def test_waiting_leaves_out_claimed_messages(store: Store) -> None:
    for n in range(3):
        store.add(body(n), 10)
    store.claim(1)
    assert store.waiting() == 2


def test_changed_moves_when_another_connection_commits(path: Path, store: Store) -> None:
    before = store.changed()
    assert store.changed() == before
    raw(path, "INSERT INTO outbox (body, created) VALUES (x'00', 0)")
    assert store.changed() != before


def test_left_from_waits_for_the_spool_to_be_moved_then_for_the_rows(store: Store) -> None:
    store.add(body(1), 10)
    marks = store.marks()
    written = time.time()
    assert store.left_from(marks, written)  # still in the spool only
    ((row, _),) = store.claim(5)
    assert store.left_from(marks, written)  # claimed, not delivered
    store.delivered(row)
    assert not store.left_from(marks, written)


def test_left_from_leaves_out_later_messages_and_settled_rows(store: Store) -> None:
    store.add(body(1), 10)
    marks = store.marks()
    ((row, _),) = store.claim(5)
    written = time.time()
    store.add(body(2), 10)
    store.claim(5)
    assert store.left_from(marks, written)
    assert not store.left_from(marks, written, settled=[row])


@pytest.mark.parametrize(
    ("namespace", "taken_back"),
    [
        pytest.param(None, True, id="same-process-namespace"),
        pytest.param("pid:[1]", False, id="another-container-of-the-pod"),
    ],
)
def test_claims_of_a_gone_process_are_taken_back_only_where_its_id_means_something(
    tmp_path: Path, namespace: str | None, taken_back: bool
) -> None:
    # Containers of one pod share a host name, not process ids: a process id from another
    # namespace says nothing, and its claims wait for their lease instead.
    store = Store(tmp_path / "events.db")
    store.add(b'{"type":"track"}', 10)
    store.claim(0)
    host = host_identity() if namespace is None else f"{socket.gethostname()}/{namespace}"
    with sqlite3.connect(tmp_path / "events.db") as db:
        db.execute("INSERT INTO owners VALUES ('gone', ?, 2147483646, '', ?)", (host, time.time()))
        db.execute("UPDATE outbox SET owner = 'gone', not_before = ?", (time.time() + 300,))
    assert (store.take_back_from_the_departed() == 1) is taken_back
    store.close()


def test_with_fsync_both_connections_sync_again_after_a_fork(path: Path) -> None:
    store = Store(path, fsync=True)
    try:
        store.before_fork()
        store.after_fork(child=False)
        modes = [
            db.execute("PRAGMA synchronous").fetchone()[0] for db in (store._writer, store._reader)
        ]
    finally:
        store.close()
    assert modes == [2, 2]  # FULL
