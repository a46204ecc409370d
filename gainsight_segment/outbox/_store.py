"""The outbox file: message bodies on disk until delivered, shared by many processes.

An SQLite database in WAL mode. A call appends its message to its process's spool file
(see ``_spool``); senders move spooled messages into the ``outbox`` table as they claim.
A message is a row there until a sender deletes it after a 2xx; a permanent refusal
moves it to ``dead_letters``. Senders *claim* rows before sending: the row records who
(an owner) and until when (a lease). A claim whose owner process is gone (killed,
crashed) is taken back at once by the next process that looks, on this host; elsewhere,
when its lease ends.

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

from gainsight_segment.delivery._callbacks import logger

from . import _spool
from ._database import BUSY_TIMEOUT_MS, OutboxError, connect, open_pair, transaction
from ._os import host_identity, process_alive, process_started, sync

# Claims last this long unless their owner is seen gone sooner.
LEASE_SECONDS = 300.0
# How long a fork waits for a call on the file to end (SQLite may wait that long for a lock).
FORK_WAIT_SECONDS = BUSY_TIMEOUT_MS / 1000 + 1.0

# Where spool files cannot be locked (Windows), calls commit to the file themselves. The
# writer's connection leaves checkpoints (copying the WAL into the file, the slow part
# of some commits) to the senders' connection, which makes one every 1,000 pages, off the
# callers' path. With no sender anywhere (a write-only client whose relay is down), the
# writer makes them itself past this many pages: a commit gets slower as the log grows.
WRITER_CHECKPOINT_PAGES = 10_000
# How long the writer trusts its estimate of how many messages are stored.
DEPTH_SECONDS = 0.1
# The most spooled messages one claim moves into the table.
MOVE_BATCH = 2_000


class Store:
    """One process's handle on an outbox file.

    Thread-safe: calls serialize on a lock per connection; callers and senders use
    separate connections so that a caller rarely waits for a sender.

    Args:
        path: The file; created (mode 0600) when missing.
        fsync: Sync every write to the disk (survives power loss, costs a disk flush per
            call) rather than leaving it to the OS (survives any crash of the process).
        register: Record this process as an owner that may write and claim messages (a
            store opened only to look at the file does not).

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
        self._writer, self._reader = open_pair(self.path, fsync=fsync)
        self._writer.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
        spools = _spool.directory_of(self.path)
        self._spool = (
            _spool.Spool(spools, self.owner, fsync=fsync)
            if register and _spool.supported()
            else None
        )
        self._spools = _spool.Reader(spools)
        self._depth = 0
        self._depth_until = 0.0
        self._write_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._closed = False
        self._held_for_fork = False
        _watch_forks(self)
        if register:
            self._register()

    def _register(self) -> None:
        pid = os.getpid()
        self._write(
            "INSERT OR REPLACE INTO owners VALUES (?, ?, ?, ?, ?)",
            (self.owner, host_identity(), pid, process_started(pid), time.time()),
        )

    # --- the callers' side --------------------------------------------------------------

    def add(self, body: bytes, limit: int) -> bool:
        """Write a message (to this process's spool); ``False`` when ``limit`` are stored.

        The bound is checked against an estimate refreshed every ``DEPTH_SECONDS``: the
        span of the stored ids, which a gap (a dead letter) can only make larger, and what
        this process spooled that is not moved yet. So the outbox may exceed it by what
        that long (or other processes' spools) let in, and may refuse a little early.

        Raises:
            OutboxError: When it cannot be written (disk full, file gone read-only...).
        """
        try:
            with self._write_lock:
                if self._closed:
                    raise OutboxError(f"outbox {self.path}: closed")
                now = time.time()
                if now >= self._depth_until:
                    self._depth = self._estimate()
                    self._depth_until = now + DEPTH_SECONDS
                if self._depth >= limit:
                    return False
                if self._spool is None:
                    self._writer.execute(
                        "INSERT INTO outbox (body, created) VALUES (?, ?)", (body, now)
                    )
                else:
                    self._spool.append(body, now)
                self._depth += 1
                return True
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox {self.path}: {exc}") from None
        except OSError as exc:
            raise OutboxError(f"outbox {self.path}: {exc.strerror or exc}") from None

    def _estimate(self) -> int:
        low, high = self._writer.execute("SELECT min(id), max(id) FROM outbox").fetchone()
        stored = 0 if low is None else high - low + 1
        if self._spool is None:
            return int(stored)
        names = self._spool.names()
        marks = ",".join("?" * len(names))
        moved = dict(
            self._writer.execute(
                f"SELECT name, records FROM spools WHERE name IN ({marks})", names
            ).fetchall()
        )
        for name in names:
            if name not in moved and _spool.gone(self._spools.path(name)):
                moved[name] = 1 << 62  # moved to its end, and deleted
        return int(stored) + self._spool.unmoved(moved)

    def marks(self) -> dict[str, int]:
        """How far this process wrote each of its spool files not known to be moved."""
        with self._write_lock:
            return {} if self._spool is None else self._spool.marks()

    def _write(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        try:
            with self._write_lock:
                return self._writer.execute(sql, parameters)
        except sqlite3.Error as exc:
            raise OutboxError(f"outbox {self.path}: {exc}") from None

    # --- the senders' side --------------------------------------------------------------

    def claim(self, limit: int) -> list[tuple[int, bytes]]:
        """Claim up to ``limit`` of the oldest messages nobody holds, for this owner.

        Spooled messages are moved into the table first, in the same transaction.
        """
        now = time.time()
        with self._locked_reader() as db:
            names = self._spools.names()
            with transaction(db, immediate=True):
                _, finished = _spool.move(db, self._spools, names, MOVE_BATCH)
                rows = db.execute(
                    "SELECT id, body FROM outbox WHERE not_before <= ? ORDER BY id LIMIT ?",
                    (now, limit),
                ).fetchall()
                if rows:
                    marks = ",".join("?" * len(rows))
                    db.execute(
                        "UPDATE outbox SET owner = ?, not_before = ?, "
                        f"attempts = attempts + 1 WHERE id IN ({marks})",
                        (self.owner, now + LEASE_SECONDS, *(row[0] for row in rows)),
                    )
                    db.execute("UPDATE owners SET seen = ? WHERE owner = ?", (now, self.owner))
            self._delete(finished)
        return [(row[0], bytes(row[1])) for row in rows]

    def _delete(self, finished: list[str]) -> None:
        """Delete spool files moved to their end; one that resists is tried again later.

        The claim is committed by now: failing here must not keep its rows from the
        sender that claimed them.
        """
        try:
            if any(_spool.FSYNC in name for name in finished):
                self._sync_log()
            for name in finished:
                self._spools.delete(name)
        except OSError as exc:
            logger.warning("outbox %s: a moved spool file stays for now: %s", self.path, exc)

    def _sync_log(self) -> None:
        """Put every commit so far on the disk: moves from a file written with fsync, before
        that file goes.

        A store opened without fsync (a relay's, say) commits moves without a sync (one
        lost to a power cut is made again from the spool file, while it lasts), so the
        write-ahead log is synced here, once per file deleted.
        SQLite locks the database and its -shm file, never the -wal: a descriptor of the
        log may be opened and closed without dropping its locks. A log that is gone was
        checkpointed, and a checkpoint syncs.
        """
        with contextlib.suppress(FileNotFoundError):
            sync(self.path + "-wal")

    def spooled(self) -> bool:
        """Whether a spool file may hold messages not yet moved into the table."""
        with self._locked_reader():
            return self._spools.grown()

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
        with self._locked_reader() as db, transaction(db, immediate=True):
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
            with transaction(db, immediate=True):
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
        """Messages stored (spooled ones too), the age in seconds of the oldest, and dead
        letters."""
        return self.figures()[:3]

    def waiting(self) -> int:
        """Messages nobody holds (spooled ones too): ready for any sender to claim."""
        return self.figures()[3]

    def figures(self) -> tuple[int, float | None, int, int]:
        """What :meth:`depth` and :meth:`waiting` say, of one moment.

        One read transaction, so that a move committed meanwhile is counted once: in the
        table or in its spool file. The files are listed before it begins: one moved and
        deleted after is in the table read. One deleted before it could be read (moved
        to its end meanwhile) is not counted: then the figures are read again.
        """
        stored, oldest, dead, unclaimed = self._figures()
        age = None if oldest is None else max(0.0, time.time() - oldest)
        return stored, age, dead, unclaimed

    def _figures(self) -> tuple[int, float | None, int, int]:
        with self._locked_reader() as db:
            for _ in range(3):
                names = self._spools.names()
                with transaction(db):
                    rows, oldest, unclaimed = db.execute(
                        "SELECT count(*), min(created), coalesce(sum(not_before <= ?), 0) "
                        "FROM outbox",
                        (time.time(),),
                    ).fetchone()
                    (dead,) = db.execute("SELECT count(*) FROM dead_letters").fetchone()
                    spooled, first = self._spools.backlog(self._spool_offsets(db), names)
                if not any(_spool.gone(self._spools.path(name)) for name in names):
                    break
        if first is not None:
            oldest = first if oldest is None else min(oldest, first)
        return int(rows) + spooled, oldest, int(dead), int(unclaimed) + spooled

    def _spool_offsets(self, db: sqlite3.Connection) -> dict[str, int]:
        return dict(db.execute("SELECT name, offset FROM spools").fetchall())

    def left_from(self, marks: dict[str, int], written: float, settled: Sequence[int] = ()) -> bool:
        """Whether a message written by ``written`` is stored, or this process's spool
        files are not moved as far as ``marks`` (see :meth:`marks`).

        Rows in ``settled`` (delivered, their deletion still to be written) do not count.
        """
        with self._locked_reader() as db:
            for name, size in marks.items():
                found = db.execute("SELECT offset FROM spools WHERE name = ?", (name,)).fetchone()
                if found is None:
                    if not _spool.gone(self._spools.path(name)):
                        return True  # not moved at all yet (else moved, and deleted)
                elif found[0] < size:
                    return True
            marks_sql = ",".join("?" * len(settled))
            stored = db.execute(
                f"SELECT 1 FROM outbox WHERE created <= ? AND id NOT IN ({marks_sql}) LIMIT 1",
                (written, *settled),
            ).fetchone()
        return stored is not None

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
        with self._locked_reader() as db, transaction(db, immediate=True):
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
        except OSError as exc:  # reading a spool file
            raise OutboxError(f"outbox {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        """Leave the file: the owner's record goes; its claims, if any, are given back.

        Its spool file is sealed: whoever claims next moves what it holds, and deletes it.
        """
        if self._spool is not None:
            with self._write_lock:
                self._spool.close()
        with (
            contextlib.suppress(OutboxError),
            self._locked_reader() as db,
            transaction(db, immediate=True),
        ):
            db.execute(
                "UPDATE outbox SET owner = NULL, not_before = 0 WHERE owner = ?",
                (self.owner,),
            )
            db.execute("DELETE FROM owners WHERE owner = ?", (self.owner,))
        with self._write_lock, self._read_lock:
            self._closed = True
            self._close_connections()
            self._spools.close()

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
                # The parent's spool file stays the parent's (its lock too).
                if self._spool is not None:
                    self._spool.close()  # the parent's descriptor; its lock stays the parent's
                self._spools.close()
                self._closed = True
            elif not self._closed:
                self._reopen()
        finally:
            self._read_lock.release()
            self._write_lock.release()

    def _reopen(self) -> None:
        try:
            self._writer = connect(self.path, fsync=self._fsync)
            self._reader = connect(self.path, fsync=self._fsync)
            self._writer.execute(f"PRAGMA wal_autocheckpoint={WRITER_CHECKPOINT_PAGES}")
        except (sqlite3.Error, OSError, OutboxError) as exc:
            # Every later call says so, as OutboxError: clients keep messages in memory.
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
