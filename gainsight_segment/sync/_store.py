"""Where audience and computed-trait syncs keep what Gainsight was last confirmed to hold.

A store holds, per key (the Gainsight trait name), each user's last *confirmed* value as
canonical JSON text. An audience is a trait whose members hold ``true``; a user who leaves
is forgotten. A sync asks the store for the difference between a new snapshot and that
state (:meth:`StateStore.diff`), sends the changes, and hands back the delivered ones
(:meth:`StateStore.confirm`). Nothing else ever changes the state, which is what makes an
interrupted sync safe to run again.

:class:`SQLiteStore` is the default: one SQLite file (WAL mode) that holds any number of
keys and computes the difference with SQL, in constant Python memory. :class:`MemoryStore`
keeps everything in dicts, for tests and small audiences. Anything that implements
:class:`StateStore` can be plugged in instead.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from types import TracebackType
from typing import Protocol, Union

import attrs

import gainsight_segment as gs

from ._lease import DEFAULT_LEASE_TIMEOUT, Lease, NoLease, SQLiteLease

__all__ = ["SQLiteStore", "StateChange", "StateDiff", "StateStore"]

StatePath = Union[str, "os.PathLike[str]"]

# Bumped when the tables change incompatibly; a file written by a newer version is refused,
# not guessed at. The lease table was added without a bump: older versions ignore it.
_SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS gainsight_sync_state (
    key TEXT NOT NULL,
    user_id TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (key, user_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS gainsight_sync_lease (
    key TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires REAL NOT NULL
) WITHOUT ROWID;
"""


@attrs.frozen(slots=True)
class StateChange:
    """One user whose value differs from the confirmed state.

    Attributes:
        user_id: The user's id.
        value: The new value as canonical JSON text, or ``None`` when the user is no longer
            in the snapshot (left the audience, or has no value any more).
        previous: The last confirmed value as canonical JSON text, or ``None`` when there
            was none.
    """

    user_id: str
    value: str | None
    previous: str | None


class StateDiff(Protocol):
    """The changes between a snapshot and the confirmed state of one key.

    It reflects the state at the time :meth:`StateStore.diff` was called: confirming
    changes while iterating :meth:`batches` does not alter what it yields.
    """

    @property
    def staged(self) -> int:
        """Distinct users in the snapshot."""

    @property
    def unchanged(self) -> int:
        """Users of the snapshot whose confirmed value is already the snapshot's."""

    @property
    def pending(self) -> int:
        """Changes to send: :meth:`batches` yields this many in all."""

    def batches(self, size: int) -> Iterator[Sequence[StateChange]]:
        """Yield the changes, at most ``size`` at a time, each change once."""

    def close(self) -> None:
        """Release what the diff holds (temporary tables, memory). Idempotent."""


class StateStore(Protocol):
    """Keeps each user's last confirmed value per key; see the module documentation.

    A store is used by one sync at a time, from the thread that created it. A store may also
    offer ``lease(key)``, a context manager that a sync holds while it runs and that refuses
    a second sync of the same key with :class:`ConcurrentSyncError` (as :class:`SQLiteStore`
    and :class:`MemoryStore` do); a store without one does not prevent concurrent syncs.
    """

    def diff(self, key: str, snapshot: Iterable[tuple[str, str]], *, complete: bool) -> StateDiff:
        """Consume a snapshot and compute its changes against the confirmed state.

        Args:
            key: The Gainsight trait name the state belongs to.
            snapshot: ``(user_id, canonical JSON value)`` pairs, consumed once, possibly
                many millions long; when a user appears twice, the last value wins.
            complete: Whether the snapshot lists every user: if so, users of the state
                missing from it become changes with ``value=None``; if not, they are left
                alone.

        Returns:
            The changes; the state is not modified.
        """

    def confirm(self, key: str, changes: Sequence[StateChange]) -> None:
        """Durably record that these changes reached Gainsight.

        A change with a value becomes the user's confirmed value; a change with
        ``value=None`` forgets the user. All of them are recorded, or none.

        Args:
            key: The Gainsight trait name.
            changes: Delivered changes.
        """

    def close(self) -> None:
        """Release the store's resources. Idempotent."""


class SQLiteStore:
    """A :class:`StateStore` in one SQLite file, in WAL mode.

    The snapshot is streamed into a temporary table and compared with SQL, so memory stays
    flat however large the audience. Each :meth:`confirm` is one transaction; with
    ``synchronous=NORMAL`` a power loss may forget the last few confirmations (they are then
    sent again, which is harmless) but never corrupts the file.

    Example:
        >>> with SQLiteStore(":memory:") as store:
        ...     diff = store.diff("vip", [("u1", "true")], complete=True)
        ...     [change.user_id for batch in diff.batches(100) for change in batch]
        ['u1']

    Args:
        path: The database file; created if missing, readable by its owner only.
            ``":memory:"`` keeps nothing.
        timeout: Seconds to wait for another process's write to finish.
        lease_timeout: Seconds after which the lease of a sync that stopped renewing it (its
            process crashed) lapses; see :meth:`lease`.

    Raises:
        ConfigurationError: When the file cannot be opened as this store (not a SQLite
            database, written by a newer version, unwritable directory).
    """

    def __init__(
        self,
        path: StatePath,
        *,
        timeout: float = 30.0,
        lease_timeout: float = DEFAULT_LEASE_TIMEOUT,
    ) -> None:
        self.path = os.fspath(path)
        self._lease_timeout = lease_timeout
        try:
            _create_private(self.path)
            self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None)
        except OSError as error:
            reason = error.strerror or str(error)
            raise gs.ConfigurationError(f"state {self.path!r}: cannot open: {reason}") from None
        except sqlite3.Error as error:
            raise gs.ConfigurationError(f"state {self.path!r}: cannot open: {error}") from None
        try:
            self._setup()
        except sqlite3.Error as error:
            self._db.close()
            raise gs.ConfigurationError(f"state {self.path!r}: {error}") from None
        except gs.ConfigurationError:
            self._db.close()
            raise
        self._diff: _SQLiteDiff | None = None

    def _setup(self) -> None:
        db = self._db
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > _SCHEMA_VERSION:
            raise gs.ConfigurationError(
                f"state {self.path!r}: written by a newer gainsight-segment "
                f"(schema {version}); upgrade to use it"
            )
        # WAL lets readers (another process inspecting the file) work during a sync.
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # Temporary tables spill to a file rather than the heap: memory stays flat.
        db.execute("PRAGMA temp_store=FILE")
        db.execute("PRAGMA cache_size=-32768")
        db.executescript(_SCHEMA)
        if version < _SCHEMA_VERSION:
            db.execute(f"PRAGMA user_version={_SCHEMA_VERSION}")

    def __repr__(self) -> str:
        return f"<SQLiteStore {self.path!r}>"

    def diff(self, key: str, snapshot: Iterable[tuple[str, str]], *, complete: bool) -> StateDiff:
        """Stream a snapshot into a temporary table and compute its changes with SQL.

        See :meth:`StateStore.diff`. A previous diff of this store is closed first.
        """
        if self._diff is not None:
            self._diff.close()
        db = self._db
        db.execute("BEGIN")
        try:
            staged, pending, updates = _stage_changes(db, key, snapshot, complete=complete)
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise
        self._diff = _SQLiteDiff(db, staged, staged - updates, pending)
        return self._diff

    def confirm(self, key: str, changes: Sequence[StateChange]) -> None:
        """Record delivered changes in one transaction; see :meth:`StateStore.confirm`."""
        if not changes:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            db.executemany(
                "INSERT OR REPLACE INTO gainsight_sync_state (key, user_id, value) "
                "VALUES (?, ?, ?)",
                [(key, c.user_id, c.value) for c in changes if c.value is not None],
            )
            db.executemany(
                "DELETE FROM gainsight_sync_state WHERE key = ? AND user_id = ?",
                [(key, c.user_id) for c in changes if c.value is None],
            )
            db.execute("COMMIT")
        except BaseException:
            _rollback(db)
            raise

    @contextlib.contextmanager
    def lease(self, key: str) -> Iterator[Lease]:
        """Hold the lease on a key, so that no other sync of it runs meanwhile.

        The lease is a row of the state file, so it excludes syncs in other threads and
        processes. While held it is renewed from a background thread; a holder that dies
        stops renewing, and its lease lapses within ``lease_timeout`` seconds.

        Args:
            key: The Gainsight trait name.

        Yields:
            The lease; its ``check()`` raises if it was lost to another sync meanwhile.

        Raises:
            ConcurrentSyncError: When another sync holds the lease on ``key``.
        """
        if self.path in ("", ":memory:"):
            # A private database: no other sync can see it.
            yield NoLease()
            return
        lease = SQLiteLease(self._db, self.path, key, self._lease_timeout)
        lease.acquire()
        try:
            yield lease
        finally:
            lease.release()

    def items(self, key: str) -> Iterator[tuple[str, str]]:
        """Yield the confirmed ``(user_id, canonical JSON value)`` pairs of a key, by user id.

        Meant for inspection; do not confirm changes while iterating.

        Args:
            key: The Gainsight trait name.
        """
        yield from self._db.execute(
            "SELECT user_id, value FROM gainsight_sync_state WHERE key = ? ORDER BY user_id",
            (key,),
        )

    def keys(self) -> list[str]:
        """Return the keys that have confirmed state, sorted."""
        rows = self._db.execute("SELECT DISTINCT key FROM gainsight_sync_state ORDER BY key")
        return [key for (key,) in rows]

    def close(self) -> None:
        """Close the database connection; temporary tables go with it. Idempotent."""
        self._diff = None
        self._db.close()

    def __enter__(self) -> SQLiteStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _stage_changes(
    db: sqlite3.Connection, key: str, snapshot: Iterable[tuple[str, str]], *, complete: bool
) -> tuple[int, int, int]:
    """Fill ``temp.gainsight_sync_pending`` with a snapshot's changes, in a transaction.

    Returns:
        The users in the snapshot, the changes, and the changes that carry a value.
    """
    for table in (
        "gainsight_sync_snapshot",
        "gainsight_sync_stage",
        "gainsight_sync_pending",
    ):
        db.execute(f"DROP TABLE IF EXISTS temp.{table}")
    db.execute(
        "CREATE TEMP TABLE gainsight_sync_snapshot (user_id TEXT NOT NULL, value TEXT NOT NULL)"
    )
    db.execute(
        "CREATE TEMP TABLE gainsight_sync_stage "
        "(user_id TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID"
    )
    db.execute(
        "CREATE TEMP TABLE gainsight_sync_pending "
        "(seq INTEGER PRIMARY KEY, user_id TEXT NOT NULL, value TEXT, previous TEXT)"
    )
    # executemany pulls from the iterable as it goes: nothing is materialized. The
    # rows are appended as they come, then sorted once into the keyed table: inserting
    # scattered ids straight into a B-tree is several times slower.
    db.executemany("INSERT INTO gainsight_sync_snapshot (user_id, value) VALUES (?, ?)", snapshot)
    # In rowid order within a user, so that the last value replaces the others.
    db.execute(
        "INSERT OR REPLACE INTO gainsight_sync_stage (user_id, value) "
        "SELECT user_id, value FROM gainsight_sync_snapshot ORDER BY user_id, rowid"
    )
    db.execute("DROP TABLE temp.gainsight_sync_snapshot")
    # Both tables are read in user id order from here on, which keeps their pages hot.
    db.execute(
        "INSERT INTO gainsight_sync_pending (user_id, value, previous) "
        "SELECT s.user_id, s.value, t.value FROM gainsight_sync_stage AS s "
        "LEFT JOIN gainsight_sync_state AS t ON t.key = ? AND t.user_id = s.user_id "
        "WHERE t.value IS NULL OR t.value <> s.value",
        (key,),
    )
    if complete:
        db.execute(
            "INSERT INTO gainsight_sync_pending (user_id, value, previous) "
            "SELECT t.user_id, NULL, t.value FROM gainsight_sync_state AS t "
            "WHERE t.key = ? AND NOT EXISTS "
            "(SELECT 1 FROM gainsight_sync_stage AS s WHERE s.user_id = t.user_id)",
            (key,),
        )
    (staged,) = db.execute("SELECT count(*) FROM gainsight_sync_stage").fetchone()
    pending, updates = db.execute(
        "SELECT count(*), count(value) FROM gainsight_sync_pending"
    ).fetchone()
    # The snapshot has served its purpose; only the changes are kept.
    db.execute("DROP TABLE temp.gainsight_sync_stage")
    return staged, pending, updates


def _create_private(path: str) -> None:
    """Create a missing state file readable and writable by its owner only.

    The file holds user ids. SQLite would create it with the umask's mode (often 0644), and
    creates its -wal and -shm files with the mode of the database file, so creating the
    file first, empty, makes all three private. An existing file keeps the mode its owner
    gave it.
    """
    if path in ("", ":memory:"):
        return
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))


def _rollback(db: sqlite3.Connection) -> None:
    # SQLite may already have rolled back (e.g. after a full disk); the original error is
    # the one worth raising.
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")


class _SQLiteDiff:
    """The changes of one :meth:`SQLiteStore.diff`, held in a temporary table."""

    def __init__(self, db: sqlite3.Connection, staged: int, unchanged: int, pending: int) -> None:
        self._db: sqlite3.Connection | None = db
        self.staged = staged
        self.unchanged = unchanged
        self.pending = pending

    def batches(self, size: int) -> Iterator[Sequence[StateChange]]:
        """Yield the changes in batches; see :meth:`StateDiff.batches`."""
        last = 0
        while self._db is not None:
            # A fresh query per batch (keyset pagination) holds no cursor open while the
            # caller confirms changes on the same connection.
            rows = self._db.execute(
                "SELECT seq, user_id, value, previous FROM gainsight_sync_pending "
                "WHERE seq > ? ORDER BY seq LIMIT ?",
                (last, size),
            ).fetchall()
            if not rows:
                return
            last = rows[-1][0]
            yield [StateChange(user_id, value, previous) for _, user_id, value, previous in rows]

    def close(self) -> None:
        """Drop the temporary table. Idempotent."""
        db, self._db = self._db, None
        if db is not None:
            # A closed store has dropped it already.
            with contextlib.suppress(sqlite3.ProgrammingError):
                db.execute("DROP TABLE IF EXISTS temp.gainsight_sync_pending")
