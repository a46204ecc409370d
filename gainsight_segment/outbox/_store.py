"""The outbox file: message bodies on disk until delivered, shared by many processes.

An SQLite database in WAL mode. A message is a row of ``outbox`` from the moment a call
writes it until a sender deletes it after a 2xx; a permanent refusal moves it to
``dead_letters``. Senders *claim* rows before sending: the row records who (an owner) and
until when (a lease). A claim whose owner process is gone (killed, crashed) is taken back
at once by the next process that looks, on this host; elsewhere, when its lease ends.

The access key is never written: only message bodies, times and delivery outcomes.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

from gainsight_segment._errors import GainsightError

from ._os import create_private, host_identity, process_alive, process_started

SCHEMA_VERSION = 1
# Claims last this long unless their owner is seen gone sooner.
LEASE_SECONDS = 300.0
BUSY_TIMEOUT_MS = 10_000
# How long a fork waits for a call on the file to end (SQLite may wait that long for a lock).
FORK_WAIT_SECONDS = BUSY_TIMEOUT_MS / 1000 + 1.0
PAGE_SIZE = 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id INTEGER PRIMARY KEY,
    body BLOB NOT NULL,
    created REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    owner TEXT,
    not_before REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS dead_letters (
    id INTEGER PRIMARY KEY,
    body BLOB NOT NULL,
    created REAL NOT NULL,
    failed REAL NOT NULL,
    attempts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    status INTEGER,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS owners (
    owner TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started TEXT NOT NULL,
    seen REAL NOT NULL
);
"""
# The writer's connection leaves checkpoints (copying the WAL into the file, the slow part
# of some commits) to the senders' connection, which makes one every 1,000 pages, off the
# callers' path. With no sender anywhere (a write-only client whose relay is down), the
# writer makes them itself past this many pages: a commit gets slower as the log grows.
WRITER_CHECKPOINT_PAGES = 10_000
# How long the writer trusts its estimate of how many messages are stored.
DEPTH_SECONDS = 0.1


class OutboxError(GainsightError):
    """The outbox file cannot be used: unreadable, unwritable, full or corrupt."""


class Store:
    """One process's handle on an outbox file.

    Thread-safe: calls serialize on a lock per connection; callers and senders use
    separate connections so that a caller rarely waits for a sender.

    Args:
        path: The file; created (mode 0600) when missing.
        fsync: Sync every write to the disk (survives power loss, costs a disk flush per
            call) rather than leaving it to the OS (survives any crash of the process).
        register: Record this process as an owner that may claim messages (a store
            opened only to look at the file does not).

    Raises:
        OutboxError: When the file cannot be created, opened or understood; a corrupt
            file is moved aside first and a new one created.
    """

    def __init__(
        self, path: str | os.PathLike[str], *, fsync: bool = False, register: bool = True
    ) -> None:
        self.path = os.fspath(path)
        self._fsync = fsync
        self.owner = uuid.uuid4().hex
        self._writer, self._reader = self._open_both()
        self._writer.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
        self._depth = 0
        self._depth_until = 0.0
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._closed = False
        self._held_for_fork = False
        _watch_forks(self)
        if register:
            self._register()

    def _open_both(self) -> tuple[sqlite3.Connection, sqlite3.Connection]:
        try:
            return self._connect(), self._connect()
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError):
                raise OutboxError(f"outbox {self.path}: {exc}") from None
            moved = self._move_aside()
            try:
                return self._connect(), self._connect()
            except sqlite3.Error as again:
                raise OutboxError(f"outbox {self.path}: {again}") from None
            finally:
                _log_moved(self.path, moved, exc)
        except OSError as exc:
            raise OutboxError(f"outbox {self.path}: {exc.strerror or exc}") from None

    def _connect(self) -> sqlite3.Connection:
        private = create_private(self.path)
        db = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
        )
        try:
            if not private:
                # SQLite made it: private before anything is written to it.
                os.chmod(self.path, 0o600)
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise OutboxError(
                    f"outbox {self.path}: written by a newer gainsight-segment (schema "
                    f"{version}); upgrade to use it"
                )
            if version == 0:
                # Before the file has tables: each call commits one page to the WAL, and a
                # small page keeps that (and the disk a backlog takes) small.
                db.execute(f"PRAGMA page_size={PAGE_SIZE}")
            _enable_wal(db)
            db.execute(f"PRAGMA synchronous={'FULL' if self._fsync else 'NORMAL'}")
            db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if version < SCHEMA_VERSION:
                # One script, one transaction: two processes opening a new file at once
                # create it once.
                db.executescript(
                    f"BEGIN IMMEDIATE; {_SCHEMA} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;"
                )
        except BaseException:
            db.close()
            raise
        return db

    def _move_aside(self) -> str:
        moved = f"{self.path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
        os.replace(self.path, moved)
        for suffix in ("-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.path + suffix, moved + suffix)
        return moved

    def _register(self) -> None:
        pid = os.getpid()
        self._write(
            "INSERT OR REPLACE INTO owners VALUES (?, ?, ?, ?, ?)",
            (self.owner, host_identity(), pid, process_started(pid), time.time()),
        )

    # --- the callers' side --------------------------------------------------------------

    def add(self, body: bytes, limit: int) -> int | None:
        """Write a message; return its row id, or ``None`` when ``limit`` rows are stored.

        The bound is checked against an estimate refreshed every ``DEPTH_SECONDS``: the
        span of the stored ids, which a gap (a dead letter) can only make larger. So the
        outbox may exceed it by what that long lets in, and may refuse a little early.

        Raises:
            OutboxError: When it cannot be written (disk full, file gone read-only...).
        """
        try:
            with self._write_lock:
                now = time.time()
                if now >= self._depth_until:
                    low, high = self._writer.execute(
                        "SELECT min(id), max(id) FROM outbox"
                    ).fetchone()
                    self._depth = 0 if low is None else high - low + 1
                    self._depth_until = now + DEPTH_SECONDS
                if self._depth >= limit:
                    return None
                row = self._writer.execute(
                    "INSERT INTO outbox (body, created) VALUES (?, ?)", (body, now)
                ).lastrowid
                self._depth += 1
                return row
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox {self.path}: {exc}") from None

    def _write(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            with self._write_lock:
                return self._writer.execute(sql, parameters)
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox {self.path}: {exc}") from None

    # --- the senders' side --------------------------------------------------------------

    def claim(self, limit: int) -> list[tuple[int, bytes]]:
        """Claim up to ``limit`` of the oldest messages nobody holds, for this owner."""
        now = time.time()
        with self._locked_reader() as db, _transaction(db, immediate=True):
            rows = db.execute(
                "SELECT id, body FROM outbox WHERE not_before <= ? ORDER BY id LIMIT ?",
                (now, limit),
            ).fetchall()
            if rows:
                marks = ",".join("?" * len(rows))
                db.execute(
                    f"UPDATE outbox SET owner = ?, not_before = ?, attempts = attempts + 1 "
                    f"WHERE id IN ({marks})",
                    (self.owner, now + LEASE_SECONDS, *(row[0] for row in rows)),
                )
                db.execute("UPDATE owners SET seen = ? WHERE owner = ?", (now, self.owner))
        return [(row[0], bytes(row[1])) for row in rows]

    def delivered(self, row: int) -> None:
        """Forget a delivered message."""
        with self._locked_reader() as db:
            db.execute("DELETE FROM outbox WHERE id = ?", (row,))

    def release(self, rows: Sequence[int]) -> None:
        """Give claimed messages back, for any sender to take."""
        if not rows:
            return
        marks = ",".join("?" * len(rows))
        with self._locked_reader() as db:
            db.execute(
                f"UPDATE outbox SET owner = NULL, not_before = 0 WHERE id IN ({marks}) "
                "AND owner = ?",
                (*rows, self.owner),
            )

    def dead(self, row: int, *, kind: str, status: int | None, reason: str) -> None:
        """Move a refused message to the dead letters, with why."""
        with self._locked_reader() as db, _transaction(db, immediate=True):
            # A number of its own: outbox ids are reused once the outbox empties, and a
            # later dead letter must not replace an earlier one.
            db.execute(
                "INSERT INTO dead_letters (body, created, failed, attempts, kind, status, reason) "
                "SELECT body, created, ?, attempts, ?, ?, ? FROM outbox WHERE id = ?",
                (time.time(), kind, status, reason, row),
            )
            db.execute("DELETE FROM outbox WHERE id = ?", (row,))

    def take_back_from_the_departed(self) -> int:
        """Release the claims of owners whose process is gone; how many messages."""
        host = host_identity()
        now = time.time()
        with self._locked_reader() as db:
            owners = db.execute("SELECT owner, host, pid, started, seen FROM owners").fetchall()
            gone = [
                owner
                for owner, owner_host, pid, started, seen in owners
                if owner != self.owner
                and (
                    not process_alive(pid, started)
                    if owner_host == host
                    else now - seen > LEASE_SECONDS
                )
            ]
            if not gone:
                return 0
            marks = ",".join("?" * len(gone))
            with _transaction(db, immediate=True):
                freed = db.execute(
                    f"UPDATE outbox SET owner = NULL, not_before = 0 WHERE owner IN ({marks})",
                    gone,
                ).rowcount
                db.execute(f"DELETE FROM owners WHERE owner IN ({marks})", gone)
        return int(freed)

    def changed(self) -> int:
        """A number that changes whenever another connection commits to the file."""
        with self._locked_reader() as db:
            version: int = db.execute("PRAGMA data_version").fetchone()[0]
        return version

    # --- looking ------------------------------------------------------------------------

    def depth(self) -> tuple[int, float | None, int]:
        """Messages stored, the age in seconds of the oldest, and dead letters."""
        with self._locked_reader() as db:
            rows = db.execute("SELECT count(*) FROM outbox").fetchone()[0]
            oldest = db.execute("SELECT min(created) FROM outbox").fetchone()[0]
            dead = db.execute("SELECT count(*) FROM dead_letters").fetchone()[0]
        age = None if oldest is None else max(0.0, time.time() - oldest)
        return int(rows), age, int(dead)

    def waiting(self) -> int:
        """Messages nobody holds: ready for any sender to claim."""
        with self._locked_reader() as db:
            found = db.execute(
                "SELECT count(*) FROM outbox WHERE not_before <= ?", (time.time(),)
            ).fetchone()
        return int(found[0])

    def left_from(self, row: int, written: float, settled: Sequence[int] = ()) -> bool:
        """Whether a message with an id up to ``row``, written by ``written``, is stored.

        Ids are reused once the outbox empties (no AUTOINCREMENT: it would cost a second
        page write per call); the time tells a later message that got an old id. Rows in
        ``settled`` (delivered, their deletion still to be written) do not count.
        """
        marks = ",".join("?" * len(settled))
        with self._locked_reader() as db:
            found = db.execute(
                f"SELECT 1 FROM outbox WHERE id <= ? AND created <= ? AND id NOT IN ({marks}) "
                "LIMIT 1",
                (row, written, *settled),
            ).fetchone()
        return found is not None

    def dead_rows(self) -> list[tuple[int, bytes, str, int | None, str, int, float]]:
        """The dead letters, oldest first: id, body, kind, status, reason, attempts, when."""
        with self._locked_reader() as db:
            rows = db.execute(
                "SELECT id, body, kind, status, reason, attempts, failed FROM dead_letters "
                "ORDER BY failed, id"
            ).fetchall()
        return [(r[0], bytes(r[1]), r[2], r[3], r[4], r[5], r[6]) for r in rows]

    def revive(self) -> int:
        """Move every dead letter back to the outbox; how many."""
        with self._locked_reader() as db, _transaction(db, immediate=True):
            moved = db.execute(
                "INSERT INTO outbox (body, created) SELECT body, created FROM dead_letters "
                "ORDER BY id"
            ).rowcount
            db.execute("DELETE FROM dead_letters")
        return int(moved)

    @contextlib.contextmanager
    def _locked_reader(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._read_lock:
                yield self._reader
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox {self.path}: {exc}") from None

    def close(self) -> None:
        """Leave the file: the owner's record goes; its claims, if any, are given back."""
        with (
            contextlib.suppress(OutboxError),
            self._locked_reader() as db,
            _transaction(db, immediate=True),
        ):
            db.execute(
                "UPDATE outbox SET owner = NULL, not_before = 0 WHERE owner = ?",
                (self.owner,),
            )
            db.execute("DELETE FROM owners WHERE owner = ?", (self.owner,))
        with self._write_lock, self._read_lock:
            self._closed = True
            self._close_connections()

    def _close_connections(self) -> None:
        for db in (self._writer, self._reader):
            with contextlib.suppress(sqlite3.Error):
                db.close()

    # --- forks --------------------------------------------------------------------------
    #
    # A child must not inherit open connections: SQLite would count their locks as the
    # child's, so that the child's own connections would take none, and another process
    # closing the file could take it for unused and delete its write-ahead log, with what
    # the child writes to it. The connections are closed for the fork, with no call on
    # them in progress, and opened again in the parent; a child opens a store of its own.

    def before_fork(self) -> None:
        """Close the connections for a fork (os.register_at_fork's ``before``)."""
        if not self._write_lock.acquire(timeout=FORK_WAIT_SECONDS):
            return
        if not self._read_lock.acquire(timeout=FORK_WAIT_SECONDS):
            self._write_lock.release()
            return
        self._held_for_fork = True
        if not self._closed:
            self._close_connections()

    def after_fork(self, *, child: bool) -> None:
        """Open the connections again in the parent; leave them closed in a child."""
        if not self._held_for_fork:
            return
        self._held_for_fork = False
        try:
            if child:
                self._closed = True
            elif not self._closed:
                self._reopen()
        finally:
            self._read_lock.release()
            self._write_lock.release()

    def _reopen(self) -> None:
        try:
            self._writer, self._reader = self._connect(), self._connect()
            self._writer.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
        except (sqlite3.Error, OSError, OutboxError) as exc:
            # Every later call says so, as OutboxError: clients keep messages in memory.
            from gainsight_segment.delivery._callbacks import logger

            logger.error("outbox %s could not be opened again after a fork: %s", self.path, exc)


def _watch_forks(store: Store) -> None:
    """Close and reopen ``store``'s connections around every fork while it lives."""
    if not hasattr(os, "register_at_fork"):  # pragma: no cover - not on Windows
        return
    ref = weakref.ref(store)
    os.register_at_fork(
        before=functools.partial(_on_fork, ref, "before"),
        after_in_parent=functools.partial(_on_fork, ref, "parent"),
        after_in_child=functools.partial(_on_fork, ref, "child"),
    )


def _on_fork(ref: weakref.ReferenceType[Store], when: str) -> None:
    store = ref()
    if store is None:
        return
    if when == "before":
        store.before_fork()
    else:
        store.after_fork(child=when == "child")


@contextlib.contextmanager
def _transaction(db: sqlite3.Connection, *, immediate: bool = False) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _enable_wal(db: sqlite3.Connection) -> None:
    """Put the file in WAL mode (a no-op once it is), trying again while it is locked.

    The change takes the file for itself. When another connection is opening it at the
    same moment, SQLite may answer "locked" at once instead of waiting out the busy
    timeout (waiting could deadlock the two); so the wait is made here, as long.
    """
    until = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= until:
                raise
        time.sleep(0.005)


def _log_moved(path: str, moved: str, error: BaseException) -> None:
    from gainsight_segment.delivery._callbacks import logger

    logger.error(
        "outbox %s could not be read (%s): moved aside to %s, and a new one started",
        path,
        error,
        moved,
    )
