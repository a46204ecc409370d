"""Spool files: records, their checks, writers' locks, moving into the table, deleting."""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gainsight_segment.outbox import OutboxError, _spool, _store
from gainsight_segment.outbox._store import Store

from .outbox_support import body, messages_in, run_script, spool_files


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


@pytest.fixture
def store(path: Path) -> Iterator[Store]:
    opened = Store(path)
    yield opened
    opened.close()


bodies = st.binary(max_size=2000)
times = st.floats(allow_nan=False, allow_infinity=False)


# --- records -----------------------------------------------------------------------------


@given(bodies, times)
def test_a_record_decodes_to_its_body_and_time(data: bytes, created: float) -> None:
    record = _spool.encode(data, created)
    assert _spool.decode(record, 0) == ((data, created), len(record))


@given(bodies, times, st.data())
def test_a_record_cut_short_does_not_decode(
    data: bytes, created: float, cut: st.DataObject
) -> None:
    record = _spool.encode(data, created)
    end = cut.draw(st.integers(min_value=0, max_value=len(record) - 1))
    assert _spool.decode(record[:end], 0) == (None, 0)


@given(bodies, times, st.data())
def test_a_record_with_any_byte_changed_does_not_decode(
    data: bytes, created: float, change: st.DataObject
) -> None:
    record = bytearray(_spool.encode(data, created))
    at = change.draw(st.integers(min_value=0, max_value=len(record) - 1))
    record[at] ^= change.draw(st.integers(min_value=1, max_value=255))
    assert _spool.decode(bytes(record), 0)[0] is None


# --- writing -----------------------------------------------------------------------------


def test_the_spool_directory_and_files_are_private(path: Path, store: Store) -> None:
    store.add(body(1), 10)
    (name,) = spool_files(path)
    assert stat.S_IMODE(os.stat(_spool.directory_of(str(path))).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(name).st_mode) == 0o600


def test_a_writer_moves_to_a_new_file_past_the_segment_size(
    path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_spool, "SEGMENT_BYTES", 3 * len(_spool.encode(body(1), 0.0)))
    for n in range(7):
        store.add(body(n), 100)
    assert len(spool_files(path)) == 3
    assert [row for row, _ in store.claim(10)] == list(range(1, 8))
    assert len(spool_files(path)) == 1  # the sealed two, moved to their end, are gone


def test_a_write_the_disk_takes_half_of_is_cut_off_again(
    path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add(body(1), 10)
    (name,) = spool_files(path)
    size = os.path.getsize(name)
    write = os.pwrite
    monkeypatch.setattr(
        _spool.os, "pwrite", lambda fd, data, at: write(fd, data[: len(data) // 2], at)
    )
    with pytest.raises(OutboxError, match="No space left"):
        store.add(body(2), 10)
    monkeypatch.undo()
    assert os.path.getsize(name) == size
    store.add(body(3), 10)
    assert [message["messageId"] for message in messages_in(path)] == ["m-1", "m-3"]


def test_with_fsync_each_record_is_synced(path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    synced: list[int] = []
    monkeypatch.setattr(_spool.os, "fdatasync", synced.append)
    store = Store(path, fsync=True)
    try:
        for n in range(3):
            store.add(body(n), 10)
    finally:
        store.close()
    assert len(synced) == 3
    assert all(_spool.FSYNC in name for name in spool_files(path))


def test_with_fsync_a_new_files_name_is_synced_too(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    fsync = os.fsync

    def record(fd: int) -> None:
        synced.append(os.fstat(fd).st_ino)
        fsync(fd)

    monkeypatch.setattr(_spool.os, "fsync", record)
    store = Store(path, fsync=True)
    try:
        store.add(body(1), 10)
    finally:
        store.close()
    assert synced == [os.stat(_spool.directory_of(str(path))).st_ino]


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names descriptors by /proc")
def test_the_log_is_synced_before_a_file_written_with_fsync_is_deleted(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer = Store(path, fsync=True)
    writer.add(body(1), 10)
    writer.close()
    synced: list[str] = []
    fsync = os.fsync

    def record(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(_store.os, "fsync", record)
    reader = Store(path)
    try:
        assert reader.claim(5) == [(1, body(1))]
    finally:
        reader.close()
    assert synced == [f"{path}-wal"]
    assert spool_files(path) == []


def test_where_files_cannot_be_locked_calls_commit_to_the_table(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_spool, "supported", lambda: False)
    store = Store(path)
    try:
        store.add(body(1), 10)
        assert spool_files(path) == []
        assert store.claim(5) == [(1, body(1))]
    finally:
        store.close()


# --- moving ------------------------------------------------------------------------------


def test_a_live_writers_file_is_moved_but_kept(path: Path, store: Store) -> None:
    store.add(body(1), 10)
    reader = Store(path)
    try:
        assert reader.claim(5) == [(1, body(1))]
        assert len(spool_files(path)) == 1
        store.add(body(2), 10)
        assert reader.claim(5) == [(2, body(2))]  # from where the last move ended
    finally:
        reader.close()


def test_a_closed_writers_file_is_deleted_once_moved(path: Path) -> None:
    writer = Store(path)
    writer.add(body(1), 10)
    writer.close()
    reader = Store(path)
    try:
        assert reader.claim(5) == [(1, body(1))]
        assert spool_files(path) == []
        assert reader.claim(5) == []
    finally:
        reader.close()


KILLED_WRITER = """
    import os, sys
    from gainsight_segment.outbox._store import Store

    store = Store(sys.argv[1])
    for n in range(100):
        store.add(b'{"n": %d}' % n, 1000)
    os._exit(0)  # no close: the file's lock goes with the process
"""


def test_a_dead_writers_file_is_moved_and_deleted(path: Path) -> None:
    assert run_script(KILLED_WRITER, str(path)).returncode == 0
    store = Store(path)
    try:
        assert [claimed for _, claimed in store.claim(200)] == [
            b'{"n": %d}' % n for n in range(100)
        ]
        assert spool_files(path) == []
    finally:
        store.close()


def test_a_sealed_file_ending_in_a_torn_record_is_moved_to_it_and_deleted(
    path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    writer = Store(path)
    writer.add(body(1), 10)
    writer.close()
    (name,) = spool_files(path)
    with open(name, "ab") as spooled:
        spooled.write(_spool.encode(body(2), 0.0)[:-3])
    store = Store(path)
    try:
        with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
            assert store.claim(5) == [(1, body(1))]
    finally:
        store.close()
    assert spool_files(path) == []
    assert "cut short" in caplog.text


RECORD = len(_spool.encode(body(1), 0.0))


@pytest.mark.parametrize(
    "chunk",
    [10, 2 * RECORD + 5, _spool.CHUNK_BYTES],
    ids=["shorter-than-a-record", "two-records-and-a-bit", "default"],
)
def test_files_are_read_and_counted_a_chunk_at_a_time(
    store: Store, monkeypatch: pytest.MonkeyPatch, chunk: int
) -> None:
    monkeypatch.setattr(_spool, "CHUNK_BYTES", chunk)
    for n in range(5):
        store.add(body(n), 10)
    assert store.depth()[0] == 5
    assert [claimed for _, claimed in store.claim(10)] == [body(n) for n in range(5)]


def test_a_move_takes_at_most_a_batch_and_the_next_claim_goes_on(
    path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_store, "MOVE_BATCH", 3)
    for n in range(5):
        store.add(body(n), 10)
    assert len(store.claim(10)) == 3
    assert len(store.claim(10)) == 2


def test_readers_moving_at_once_move_each_message_once(path: Path, store: Store) -> None:
    readers = [Store(path) for _ in range(3)]
    claimed: list[bytes] = []
    done = threading.Event()

    def claim_until_done(reader: Store) -> None:
        while True:
            finished = done.is_set()
            found = reader.claim(50)
            claimed.extend(body for _, body in found)
            if finished and not found and not reader.spooled():
                return

    threads = [threading.Thread(target=claim_until_done, args=(r,)) for r in readers]
    for thread in threads:
        thread.start()
    for n in range(2000):
        store.add(body(n), 10**6)
    store.close()
    done.set()
    for thread in threads:
        thread.join(timeout=60)
    for reader in readers:
        reader.close()
    assert len(claimed) == 2000
    assert sorted(claimed) == sorted(body(n) for n in range(2000))


# --- counting ----------------------------------------------------------------------------


def test_depth_and_waiting_count_spooled_messages_and_their_age(store: Store) -> None:
    for n in range(3):
        store.add(body(n), 10)
    store.claim(1)
    depth, oldest, dead = store.depth()
    assert (depth, dead, store.waiting()) == (3, 0, 2)
    assert oldest is not None
    assert 0 <= oldest < 60


@pytest.mark.parametrize("closed", [False, True], ids=["file-kept", "file-deleted"])
@pytest.mark.parametrize("when", ["listing", "offsets"])
def test_counts_are_of_one_moment_while_another_process_moves(
    path: Path, monkeypatch: pytest.MonkeyPatch, closed: bool, when: str
) -> None:
    writer = Store(path)
    for n in range(3):
        writer.add(body(n), 10)
    if closed:
        writer.close()  # sealed: the move deletes it
    looker, mover = Store(path, register=False), Store(path)
    moved: list[bool] = []

    def moving_first(read: Callable[..., Any]) -> Callable[..., Any]:
        def read_after_a_move(*args: Any) -> Any:
            if not moved:
                moved.append(True)
                mover.claim(0)
            return read(*args)

        return read_after_a_move

    if when == "listing":
        monkeypatch.setattr(looker._spools, "names", moving_first(looker._spools.names))
    else:
        monkeypatch.setattr(looker, "_spool_offsets", moving_first(looker._spool_offsets))
    try:
        assert looker.depth()[0] == 3
        assert looker.waiting() == 3
    finally:
        for store in (writer, looker, mover):
            store.close()


def test_the_bound_counts_what_this_process_spooled(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_store, "DEPTH_SECONDS", 0.0)
    assert [store.add(body(n), 3) for n in range(4)] == [True, True, True, False]
    (row, _), *_ = store.claim(1)
    store.delivered(row)
    assert store.add(body(5), 3)


def test_a_full_disk_is_an_outbox_error(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(fd: int, data: bytes, at: int) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_spool.os, "pwrite", full)
    with pytest.raises(OutboxError, match="No space left on device"):
        store.add(body(1), 10)


def test_a_spool_file_that_cannot_be_read_is_left_with_one_warning(
    path: Path, store: Store, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    store.add(body(1), 10)
    opener = os.open

    def refuse_spools(name: str, flags: int, *args: int) -> int:
        if name.endswith(_spool.SUFFIX):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
        return opener(name, flags, *args)

    monkeypatch.setattr(_spool.os, "open", refuse_spools)
    reader = Store(path)
    try:
        with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
            assert reader.claim(5) == []
            assert reader.claim(5) == []
    finally:
        reader.close()
    assert caplog.text.count("cannot be read (Permission denied)") == 1
    assert len(spool_files(path)) == 1


FORKED = """
    import os, sys
    from gainsight_segment.outbox._store import Store

    store = Store(sys.argv[1])
    store.add(b'{"who": "parent"}', 10)
    pid = os.fork()
    if pid == 0:
        names = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                names.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:
                pass  # the listing's own descriptor, closed meanwhile
        os._exit(3 if any(name.endswith(".spool") for name in names) else 0)
    _, status = os.waitpid(pid, 0)
    sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists descriptors in /proc")
def test_a_forked_child_does_not_hold_the_parents_spool_file(path: Path) -> None:
    # Else the file would stay locked, and never be deleted, while the child lives.
    assert run_script(FORKED, str(path)).returncode == 0


def test_a_record_whose_sync_fails_stays_and_the_next_goes_to_a_new_file(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A sender may have moved the record already: cutting it off would leave its offset in
    # the middle of the records written next, which would then never be moved.
    writer, mover = Store(path, fsync=True), Store(path)
    sync = os.fdatasync

    def fail_the_second(fd: int) -> None:
        if len(spooled) == 1:
            spooled.append(len(mover.claim(0)))  # moved between the write and the sync
            raise OSError(errno.EIO, os.strerror(errno.EIO))
        spooled.append(0)
        sync(fd)

    spooled: list[int] = []
    monkeypatch.setattr(_spool.os, "fdatasync", fail_the_second)
    try:
        writer.add(body(1), 10)
        with pytest.raises(OutboxError, match="Input/output error"):
            writer.add(body(2), 10)
        writer.add(body(3), 10)
        assert len(spool_files(path)) == 2
        writer.close()
        assert [claimed for _, claimed in mover.claim(10)] == [body(n) for n in (1, 2, 3)]
    finally:
        writer.close()
        mover.close()
    assert spool_files(path) == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="lists descriptors in /proc")
def test_a_reader_lets_go_of_files_another_reader_deleted(path: Path) -> None:
    writer = Store(path)
    writer.add(body(1), 10)
    writer.close()
    looker, mover = Store(path, register=False), Store(path)
    try:
        assert looker.depth()[0] == 1  # the looker opens the file
        assert len(mover.claim(5)) == 1  # the mover moves it and deletes it
        assert looker.depth()[0] == 1
        held = [os.readlink(f"/proc/self/fd/{fd}") for fd in os.listdir("/proc/self/fd")[:-1]]
    finally:
        looker.close()
        mover.close()
    assert not [name for name in held if _spool.SUFFIX in name and "(deleted)" in name]


def test_a_spool_file_that_cannot_be_deleted_does_not_keep_the_claim_from_its_sender(
    path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    writer = Store(path)
    writer.add(body(1), 10)
    writer.close()

    def refuse(self: _spool.Reader, name: str) -> None:
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(_spool.Reader, "delete", refuse)
    store = Store(path)
    try:
        with caplog.at_level(logging.WARNING, logger="gainsight_segment"):
            assert store.claim(5) == [(1, body(1))]
        monkeypatch.undo()
        assert store.claim(5) == []  # deleted this time
    finally:
        store.close()
    assert "a moved spool file stays for now" in caplog.text
    assert spool_files(path) == []


def test_a_file_that_cannot_be_looked_at_is_not_taken_for_deleted(
    path: Path, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.add(body(1), 10)
    (name,) = spool_files(path)
    stat_ = os.stat

    def unreachable(where: str, *args: Any, **kwargs: Any) -> os.stat_result:
        if where == name:
            raise OSError(errno.ESTALE, os.strerror(errno.ESTALE))
        return stat_(where, *args, **kwargs)

    monkeypatch.setattr(_spool.os, "stat", unreachable)
    assert store.left_from(store.marks(), time.time())
