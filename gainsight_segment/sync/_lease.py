"""One sync of a key at a time: the lease a sync holds on its key while it runs.

Two syncs of one audience at once would both diff against the same confirmed state and both
send every change. So a sync first takes a lease on its key, and a second sync of that key is
refused with :class:`ConcurrentSyncError` while the lease is held.

For a :class:`~gainsight_segment.sync.SQLiteStore`, the lease is a row of the state file
(``gainsight_sync_lease``): it works across threads and processes, on any platform SQLite
runs on, and needs no other file. A holder renews its lease from a background thread every
third of ``lease_timeout``; a holder that dies (crash, ``kill -9``, power loss) stops
renewing, and its lease lapses within ``lease_timeout`` seconds, so a crashed sync never
blocks the next one for long. A sync that ends, fails or is interrupted releases its lease at
once. Process ids are not used to detect dead holders: they are reused, and a process id from
another machine or container means nothing here.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Protocol

import gainsight_segment as gs

DEFAULT_LEASE_TIMEOUT = 30.0
"""Seconds after which the lease of a holder that stopped renewing it lapses."""


class ConcurrentSyncError(gs.GainsightError):
    """Another sync of the same audience or trait is running: this one did not start.

    Run one sync of a key at a time. A sync that crashed stops renewing its lease, which lapses
    within the store's ``lease_timeout``; then the next sync runs.

    Attributes:
        key: The audience's or trait's key.
        holder: Who holds the lease, e.g. ``"process 4242 on host-a"``.
    """

    def __init__(self, message: str, *, key: str, holder: str) -> None:
        super().__init__(message)
        self.key = key
        self.holder = holder


class Lease(Protocol):
    """What a sync holds while it runs; the store's ``lease(key)`` gives one."""

    def check(self) -> None:
        """Raise :class:`ConcurrentSyncError` if the lease was lost to another sync."""


class NoLease:
    """The lease of a store only one sync can ever see (in memory): always held."""

    def check(self) -> None:
        """Never raises."""


class LocalLeases:
    """Leases on keys within one process, for :class:`~gainsight_segment.sync.MemoryStore`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: set[str] = set()

    @contextlib.contextmanager
    def lease(self, key: str) -> Iterator[Lease]:
        """Hold the lease on ``key`` within the block.

        Raises:
            ConcurrentSyncError: When it is already held.
        """
        with self._lock:
            if key in self._held:
                raise _refusal(key, "this process")
            self._held.add(key)
        try:
            yield NoLease()
        finally:
            with self._lock:
                self._held.discard(key)


def _refusal(key: str, holder: str, lapses_in: float | None = None) -> ConcurrentSyncError:
    message = (
        f"another sync of {key!r} is running ({holder}); run one sync of an audience or "
        f"trait at a time"
    )
    if lapses_in is not None:
        message += f" (if that process is gone, its lease lapses within {lapses_in:.0f} s)"
    return ConcurrentSyncError(message, key=key, holder=holder)


class SQLiteLease:
    """A lease on one key of a SQLite state file, renewed in the background while held.

    Args:
        db: The store's connection, used to take and release the lease.
        path: The state file, which the renewing thread opens on its own connection.
        key: The key.
        timeout: Seconds the lease outlives its last renewal.

    Attributes:
        lost: Set when a renewal found the lease held by another sync.
    """

    def __init__(self, db: sqlite3.Connection, path: str, key: str, timeout: float) -> None:
        self._db = db
        self._path = path
        self._key = key
        self._timeout = timeout
        self._owner = uuid.uuid4().hex
        self._stop = threading.Event()
        self.lost = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self) -> None:
        """Take the lease, unless another sync holds it and has renewed it in time.

        Raises:
            ConcurrentSyncError: When another sync holds it.
        """
        holder = f"process {os.getpid()} on {socket.gethostname()}"
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            now = time.time()
            row = db.execute(
                "SELECT holder, expires FROM gainsight_sync_lease WHERE key = ?", (self._key,)
            ).fetchone()
            if row is not None and row[1] > now:
                raise _refusal(self._key, row[0], row[1] - now)
            db.execute(
                "INSERT OR REPLACE INTO gainsight_sync_lease (key, owner, holder, expires) "
                "VALUES (?, ?, ?, ?)",
                (self._key, self._owner, holder, now + self._timeout),
            )
            db.execute("COMMIT")
        except BaseException:
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        self._thread = threading.Thread(
            target=self._renew_until_released, name="gainsight-segment-sync-lease", daemon=True
        )
        self._thread.start()

    def renew(self, db: sqlite3.Connection) -> bool:
        """Push the lease's expiry forward; ``False`` if another sync holds it now."""
        cursor = db.execute(
            "UPDATE gainsight_sync_lease SET expires = ? WHERE key = ? AND owner = ?",
            (time.time() + self._timeout, self._key, self._owner),
        )
        return cursor.rowcount == 1

    def _renew_until_released(self) -> None:
        interval = self._timeout / 3
        # Its own connection: the store's belongs to the syncing thread. A short busy timeout,
        # so that a renewal waits for a writer no longer than a renewal period.
        db = sqlite3.connect(self._path, timeout=interval, isolation_level=None)
        try:
            while not self._stop.wait(interval):
                try:
                    renewed = self.renew(db)
                except sqlite3.Error:
                    # Busy or briefly unreadable: the next period tries again, and the lease
                    # holds for two more.
                    continue
                if not renewed:
                    self.lost.set()
                    return
        finally:
            db.close()

    def check(self) -> None:
        """Raise :class:`ConcurrentSyncError` if the lease was lost to another sync.

        That happens only when this process could not renew it for ``timeout`` seconds (it
        was suspended, or the file was unwritable) and another sync took it meanwhile.
        """
        if self.lost.is_set():
            raise ConcurrentSyncError(
                f"the lease on {self._key!r} was lost to another sync; this sync stopped",
                key=self._key,
                holder="another sync",
            )

    def release(self) -> None:
        """Stop renewing and give the lease up. Idempotent; never raises."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self._timeout)
        # A lease that cannot be deleted now lapses on its own.
        with contextlib.suppress(sqlite3.Error):
            self._db.execute(
                "DELETE FROM gainsight_sync_lease WHERE key = ? AND owner = ?",
                (self._key, self._owner),
            )
