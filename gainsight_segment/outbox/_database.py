"""Opening an outbox file: private, in WAL mode, with its tables; a corrupt one moved aside."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator

from gainsight_segment._errors import GainsightError
from gainsight_segment.delivery._callbacks import logger

from ._os import create_private

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 10_000
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
CREATE INDEX IF NOT EXISTS outbox_created ON outbox (created);
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
CREATE TABLE IF NOT EXISTS spools (
    name TEXT PRIMARY KEY,
    offset INTEGER NOT NULL,
    records INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS owners (
    owner TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    started TEXT NOT NULL,
    seen REAL NOT NULL
);
"""


class OutboxError(GainsightError):
    """The outbox file cannot be used: unreadable, unwritable, full or corrupt."""


def open_pair(path: str, *, fsync: bool) -> tuple[sqlite3.Connection, sqlite3.Connection]:
    """Two connections to the file (a writer's and a reader's), each commit synced if
    ``fsync``; a corrupt file is moved aside and a new one made.

    Raises:
        OutboxError: When the file cannot be created, opened or understood.
    """
    try:
        return connect(path, fsync=fsync), connect(path, fsync=fsync)
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError):
            raise OutboxError(f"outbox {path}: {exc}") from None
        moved = _move_aside(path)
        try:
            return connect(path, fsync=fsync), connect(path, fsync=fsync)
        except sqlite3.Error as again:
            raise OutboxError(f"outbox {path}: {again}") from None
        finally:
            logger.error(
                "outbox %s could not be read (%s): moved aside to %s, and a new one started",
                path,
                exc,
                moved,
            )
    except OSError as exc:
        raise OutboxError(f"outbox {path}: {exc.strerror or exc}") from None


def connect(path: str, *, fsync: bool) -> sqlite3.Connection:
    """One connection, with the file made private, in WAL mode, and its tables created.

    Raises:
        OutboxError: When a newer version wrote the file.
        sqlite3.Error: When SQLite cannot open or read it.
    """
    private = create_private(path)
    db = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    try:
        if not private:
            # SQLite made it: private before anything is written to it.
            os.chmod(path, 0o600)
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise OutboxError(
                f"outbox {path}: written by a newer gainsight-segment (schema "
                f"{version}); upgrade to use it"
            )
        if version == 0:
            # Before the file has tables: a commit of one message writes one page to the
            # WAL, and a small page keeps that (and the disk a backlog takes) small.
            db.execute(f"PRAGMA page_size={PAGE_SIZE}")
        enable_wal(db)
        db.execute(f"PRAGMA synchronous={'FULL' if fsync else 'NORMAL'}")
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


def _move_aside(path: str) -> str:
    # The spool directory stays: what it holds is moved into the new file.
    moved = f"{path}.corrupt-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}"
    os.replace(path, moved)
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(path + suffix, moved + suffix)
    return moved


@contextlib.contextmanager
def transaction(db: sqlite3.Connection, *, immediate: bool = False) -> Iterator[None]:
    """A transaction, rolled back if the block raises."""
    db.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
    try:
        yield
    except BaseException:
        with contextlib.suppress(sqlite3.Error):
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def enable_wal(db: sqlite3.Connection) -> None:
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
