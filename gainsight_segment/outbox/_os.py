"""What the outbox asks of the operating system: a private file, and whether a process lives."""

from __future__ import annotations

import os
import socket
import uuid


def process_started(pid: int) -> str:
    """A marker of when process ``pid`` started, to tell it from a later one with its id.

    Linux's start time in clock ticks since boot; empty where the platform does not say.
    """
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return ""


def process_alive(pid: int, started: str) -> bool:
    """Whether process ``pid`` (which started at ``started``) still runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user's
    return not started or process_started(pid) in ("", started)


def create_private(path: str) -> bool:
    """Create the file readable by its owner only, unless it exists; ``False`` if it cannot.

    It holds user ids and event data; SQLite gives its -wal and -shm files the same mode.
    The file itself is never opened and closed here: closing any descriptor of a file
    drops every POSIX lock the process holds on it, those of its SQLite connections
    included, and another process would then take the file for unused and delete its
    write-ahead log, with what was written to it. A new file is made under another name
    and linked into place, which also never replaces one made meanwhile.
    """
    if os.path.exists(path):
        return True
    fresh = f"{path}.{uuid.uuid4().hex[:12]}.new"
    fd = os.open(fresh, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    os.close(fd)
    try:
        os.link(fresh, path)
    except FileExistsError:
        pass  # made meanwhile, by another process or thread
    except OSError:
        return False  # no hard links on this file system
    finally:
        os.unlink(fresh)
    return True


def sync(path: str) -> None:
    """Put what the file (or directory) ``path`` holds on the disk.

    A descriptor of its own, opened and closed here: only for a file nobody holds POSIX
    locks on (see :func:`create_private`).

    Raises:
        OSError: When it cannot be opened or synced.
    """
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def host_identity() -> str:
    """Where process ids mean the same thing: this host and its process namespace.

    Two containers of one Kubernetes pod share a host name but, unless the pod shares its
    process namespace, not their process ids: a process id seen from the other one says
    nothing about whether the process lives, so their claims are judged by lease instead.
    """
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return f"{socket.gethostname()}/{namespace}" if namespace else socket.gethostname()
