"""Spool files: where a call puts its message, one write of its own, before it returns.

A call must not return before its message would survive the process, and an SQLite
commit costs more than the rest of the call. So each writing process appends every
message to a spool file of its own, beside the outbox file (in ``PATH.spool/``): one
write, which the OS keeps even when the process is killed the next instant.
Senders, in the process or in a relay, move what the spool files hold into the outbox
in batches, in the transaction in which they claim messages to send; how far each file
was moved is kept in the outbox in that same transaction, so nothing is moved twice.

A spool file has one writer, which holds an ``flock`` on it while it may write. A file
nobody holds is *sealed*: its writer moved on to a new file, closed its client, or died.
Once a sealed file has been moved to its end it is deleted. Locks, unlike process ids,
mean the same thing in every container that shares the directory on one host.

A record is its body's length (4 bytes), the time it was written (8), a CRC-32 of the
two and the body (4), then the body. A record cut short (a write the disk refused half
of, or a power loss) fails its check: a sealed file's reading ends there, with a warning.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
import struct
import zlib

from gainsight_segment.delivery._callbacks import logger

from ._os import sync

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows has no flock: calls commit to SQLite
    fcntl = None  # type: ignore[assignment]

SUFFIX = ".spool"
# In the names of files written with fsync: the moves of such a file are synced before it
# is deleted.
FSYNC = ".fsync"
# A writer moves on to a new file past this size, so that moved files can be deleted.
SEGMENT_BYTES = 4 << 20
# The most one reading of a file reads at once.
CHUNK_BYTES = 256 << 10
# No message comes near this; a length beyond it is a torn or foreign record.
MAX_BODY = 64 << 20

_HEAD = struct.Struct("<Id")
_CRC = struct.Struct("<I")
HEADER_BYTES = _HEAD.size + _CRC.size

Record = tuple[bytes, float]


def supported() -> bool:
    """Whether this platform can lock spool files (not on Windows)."""
    return fcntl is not None


def directory_of(path: str) -> str:
    """The spool directory of the outbox file ``path``."""
    return path + SUFFIX


def encode(body: bytes, created: float) -> bytes:
    """One record: length, time, check, body."""
    head = _HEAD.pack(len(body), created)
    return b"".join((head, _CRC.pack(zlib.crc32(body, zlib.crc32(head))), body))


def decode(data: bytes, start: int) -> tuple[Record | None, int]:
    """The record at ``start`` and where the next begins; ``None`` if none is whole there."""
    body_at = start + HEADER_BYTES
    if len(data) < body_at:
        return None, start
    length, created = _HEAD.unpack_from(data, start)
    end = body_at + length
    if length > MAX_BODY or len(data) < end:
        return None, start
    (check,) = _CRC.unpack_from(data, start + _HEAD.size)
    body = data[body_at:end]
    if zlib.crc32(body, zlib.crc32(data[start : start + _HEAD.size])) != check:
        return None, start
    return (body, created), end


class Spool:
    """One process's spool: the file it appends to, and what it wrote to each of its files.

    Not thread-safe: the store calls it under its write lock. The file is made on the
    first message.

    Args:
        directory: The spool directory; made (mode 0700) when missing.
        owner: The writer's name, unique to this store.
        fsync: Sync each record to the disk before returning.
    """

    def __init__(self, directory: str, owner: str, *, fsync: bool) -> None:
        self.directory = directory
        self._owner = owner
        self._fsync = fsync
        self._fd: int | None = None
        self._name = ""
        self._size = 0
        self._records = 0
        self._count = 0
        # Earlier files of this spool not yet known to be moved: name -> (bytes, records).
        self._earlier: dict[str, tuple[int, int]] = {}

    def append(self, body: bytes, created: float) -> None:
        """Write one message.

        Raises:
            OSError: When the file cannot be made or written (full disk...); a record
                the disk took only part of is cut off again. With fsync, also when the
                sync fails: the record stays (a sender may have moved it already) and the
                next message starts a new file.
        """
        record = encode(body, created)
        fd = self._fd if self._fd is not None else self._open()
        try:
            done = os.pwrite(fd, record, self._size)
            if done != len(record):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            self._cut_back(fd)
            raise
        self._size += done
        self._records += 1
        if self._fsync:
            try:
                os.fdatasync(fd)
            except OSError:
                self._seal()
                raise
        if self._size >= SEGMENT_BYTES:
            self._seal()

    def _open(self) -> int:
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        self._count += 1
        synced = FSYNC if self._fsync else ""
        name = f"{self._owner}-{self._count:06d}{synced}{SUFFIX}"
        path = os.path.join(self.directory, name)
        # Locked before it gets its name: a reader never sees it unheld while it may grow.
        fd = os.open(f"{path}.new", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            os.rename(f"{path}.new", path)
            if self._fsync:
                # The name on the disk too: synced records in a file a power cut unnames
                # would be lost with it.
                sync(self.directory)
        except OSError:
            os.close(fd)  # named, it is sealed and empty: readers delete it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(f"{path}.new")
            raise
        if self._records:
            self._earlier[self._name] = (self._size, self._records)
        self._fd, self._name, self._size, self._records = fd, name, 0, 0
        return fd

    def _cut_back(self, fd: int) -> None:
        # Readers stop at a bad record until the file is sealed; whatever follows it
        # would never be read. So the file goes back to its last whole record, or, if
        # even that fails, is sealed here, and the next message starts a new one.
        try:
            os.ftruncate(fd, self._size)
        except OSError:
            self._seal()

    def _seal(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # releases the lock
        self._fd = None

    def _files(self) -> dict[str, tuple[int, int]]:
        files = dict(self._earlier)
        if self._records:
            files[self._name] = (self._size, self._records)
        return files

    def marks(self) -> dict[str, int]:
        """How many bytes this spool has written to each of its files not yet moved."""
        return {name: size for name, (size, _) in self._files().items()}

    def names(self) -> list[str]:
        """The names of this spool's files not yet known to be moved."""
        return list(self._files())

    def unmoved(self, moved: dict[str, int]) -> int:
        """Records written but not moved, given how many of each file were (``moved``).

        Earlier files moved to their end are forgotten.
        """
        left = 0
        for name, (_, count) in self._files().items():
            waiting = count - moved.get(name, 0)
            if waiting <= 0:
                self._earlier.pop(name, None)
            left += max(0, waiting)
        return left

    def close(self) -> None:
        """Seal the current file: readers move the rest and delete it."""
        self._seal()


def gone(path: str) -> bool:
    """Whether the file was deleted (not merely unreadable for now)."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return False


class Reader:
    """A store's reading of a spool directory, with the files it holds open.

    Not thread-safe: the store calls it under its lock.

    Args:
        directory: The spool directory (it may not exist).
    """

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._open: dict[str, int] = {}
        self._sealed: set[str] = set()
        self._unreadable: set[str] = set()
        # How far this reader knows each file was moved.
        self.known: dict[str, int] = {}

    def names(self) -> list[str]:
        """Spool files in the directory, oldest of each writer first.

        Files this reader held that are gone (deleted by another reader) are let go.
        """
        try:
            found = sorted(name for name in os.listdir(self.directory) if name.endswith(SUFFIX))
        except FileNotFoundError:
            found = []
        for name in (self._open.keys() | self.known.keys()) - set(found):
            self.drop(name)
        return found

    def grown(self) -> bool:
        """Whether a file holds more than this reader knows was moved, is new, or is
        sealed and still to be deleted."""
        for name in self.names():
            if name in self._sealed or name not in self.known:
                return True
            try:
                if os.stat(self.path(name)).st_size > self.known[name]:
                    return True
            except FileNotFoundError:
                continue
        return False

    def path(self, name: str) -> str:
        """The full path of the file ``name``."""
        return os.path.join(self.directory, name)

    def seal(self, name: str) -> bool:
        """Whether the file is sealed: its writer is gone. Held by this reader from then."""
        if name in self._sealed:
            return True
        fd = self._fd(name)
        if fd is None:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        self._sealed.add(name)
        return True

    def read(self, name: str, offset: int, limit: int) -> tuple[list[Record], int]:
        """Up to ``limit`` whole records from ``offset``, and where they end.

        One read of at most ``CHUNK_BYTES`` (or of the first record, if longer), so that
        a backlog never passes through memory at once. None are found at the end of the
        file, and at a record cut short or still being written.
        """
        fd = self._fd(name)
        if fd is None:
            return [], offset
        size = os.fstat(fd).st_size
        data = os.pread(fd, min(max(0, size - offset), _chunk()), offset)
        if len(data) >= HEADER_BYTES:
            longest = HEADER_BYTES + min(_HEAD.unpack_from(data)[0], MAX_BODY)
            if len(data) < longest <= size - offset:
                data = os.pread(fd, longest, offset)
        records: list[Record] = []
        start = 0
        while len(records) < limit:
            record, start = decode(data, start)
            if record is None:
                break
            records.append(record)
        return records, offset + start

    def backlog(self, moved: dict[str, int], names: list[str]) -> tuple[int, float | None]:
        """Records not yet moved in the files ``names``, and the time the oldest was written.

        Counted by their lengths alone, chunk by chunk: a figure, not a check.
        """
        count, oldest = 0, None
        for name in names:
            found, first = self._count(name, moved.get(name, 0))
            count += found
            if first is not None:
                oldest = first if oldest is None else min(oldest, first)
        return count, oldest

    def _count(self, name: str, offset: int) -> tuple[int, float | None]:
        fd = self._fd(name)
        if fd is None:
            return 0, None
        size = os.fstat(fd).st_size
        count, first, at = 0, None, offset
        while at + HEADER_BYTES <= size:
            data = os.pread(fd, min(size - at, _chunk()), at)
            step = 0
            while step + HEADER_BYTES <= len(data):
                length, created = _HEAD.unpack_from(data, step)
                if not 0 < length <= MAX_BODY or at + step + HEADER_BYTES + length > size:
                    return count, first
                first = created if first is None else first
                count += 1
                step += HEADER_BYTES + length
            if step == 0:
                break
            at += step
        return count, first

    def left_after(self, name: str, offset: int) -> int:
        """How many bytes the file holds past ``offset``."""
        fd = self._fd(name)
        return 0 if fd is None else max(0, os.fstat(fd).st_size - offset)

    def delete(self, name: str) -> None:
        """Delete a sealed file moved to its end (its lock is this reader's)."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path(name))
        self.drop(name)

    def drop(self, name: str) -> None:
        """Close the file (if open) and forget it."""
        fd = self._open.pop(name, None)
        if fd is not None:
            os.close(fd)
        self._sealed.discard(name)
        self.known.pop(name, None)

    def _fd(self, name: str) -> int | None:
        fd = self._open.get(name)
        if fd is None:
            try:
                fd = os.open(self.path(name), os.O_RDONLY)
            except FileNotFoundError:
                return None
            except OSError as exc:
                # Another user's, say: left for a process that can read it, said once.
                if name not in self._unreadable:
                    self._unreadable.add(name)
                    logger.warning(
                        "spool file %s cannot be read (%s): its messages are left for a "
                        "process that can (run every process on the outbox as one user)",
                        self.path(name),
                        exc.strerror or exc,
                    )
                return None
            self._open[name] = fd
        return fd

    def close(self) -> None:
        """Close every file (locks held on sealed ones go with them)."""
        for name in list(self._open):
            self.drop(name)


def _chunk() -> int:
    return max(CHUNK_BYTES, HEADER_BYTES)  # a header at least, whatever it is set to


def move(
    db: sqlite3.Connection, reader: Reader, names: list[str], limit: int
) -> tuple[int, list[str]]:
    """Move up to ``limit`` records from the spool files ``names`` into the outbox table.

    Called in a write transaction, which also records how far each file was moved.
    Returns how many were moved, and the sealed files moved to their end: the caller
    deletes them once the transaction is committed (before, a rollback would lose them).
    """
    known = dict(db.execute("SELECT name, offset FROM spools").fetchall())
    count, finished = 0, []
    for name in names:
        if count >= limit:
            break
        if gone(reader.path(name)):
            # Deleted since it was listed: moved to its end, its offset maybe forgotten.
            # (A file's offset is forgotten only once it is gone, in a transaction of its
            # own: while this one lasts, a file seen here keeps its offset.)
            reader.drop(name)
            continue
        sealed = reader.seal(name)  # first: once sealed, nothing more is written
        end = known.get(name, 0)
        moved = 0
        while count + moved < limit:
            records, end = reader.read(name, end, limit - count - moved)
            if not records:
                break
            db.executemany("INSERT INTO outbox (body, created) VALUES (?, ?)", records)
            moved += len(records)
        if moved:
            db.execute(
                "INSERT INTO spools (name, offset, records) VALUES (?, ?, ?) ON CONFLICT(name) "
                "DO UPDATE SET offset = excluded.offset, records = records + excluded.records",
                (name, end, moved),
            )
            count += moved
        reader.known[name] = end
        if sealed and count < limit:
            left = reader.left_after(name, end)
            if left:
                logger.warning(
                    "spool file %s ends with a record cut short (a write the disk refused "
                    "or a power loss): %d bytes dropped",
                    reader.path(name),
                    left,
                )
            finished.append(name)
    for name in known.keys() - set(names):
        if gone(reader.path(name)):  # deleted: its name is never used again
            db.execute("DELETE FROM spools WHERE name = ?", (name,))
    return count, finished
