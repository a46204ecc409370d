"""Helpers shared by the outbox's tests: scripts, files and unusable places."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from gainsight_segment.outbox import _spool

BODY = b'{"type":"track","userId":"u","event":"Clicked","messageId":"m-%d"}'


def body(n: int) -> bytes:
    """A small message body, numbered ``n``."""
    return BODY.replace(b"%d", str(n).encode())


def file_bytes(path: Path) -> bytes:
    """The bytes of an outbox file, of its -wal and -shm companions and of its spool files."""
    names = [str(path), f"{path}-wal", f"{path}-shm", *spool_files(path)]
    return b"".join(Path(name).read_bytes() for name in names if os.path.exists(name))


def spool_files(path: Path) -> list[str]:
    """The spool files of an outbox file."""
    reader = _spool.Reader(_spool.directory_of(str(path)))
    return [reader.path(name) for name in reader.names()]


def messages_in(path: Path) -> list[dict[str, Any]]:
    """The messages an outbox holds, in its table and in its spool files (not yet moved)."""
    db = sqlite3.connect(path)
    try:
        bodies = [body for (body,) in db.execute("SELECT body FROM outbox ORDER BY id")]
        moved = dict(db.execute("SELECT name, offset FROM spools").fetchall())
    finally:
        db.close()
    reader = _spool.Reader(_spool.directory_of(str(path)))
    try:
        for name in reader.names():
            found, offset = reader.read(name, moved.get(name, 0), 10**9)
            while found:
                bodies += [body for body, _ in found]
                found, offset = reader.read(name, offset, 10**9)
    finally:
        reader.close()
    return [json.loads(body) for body in bodies]


def script(source: str) -> list[str]:
    """The command line that runs ``source`` (dedented) with this Python."""
    return [sys.executable, "-c", textwrap.dedent(source)]


def run_script(source: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*script(source), *args], capture_output=True, text=True, timeout=timeout, check=False
    )


def _is_root() -> bool:
    return getattr(os, "geteuid", lambda: 1)() == 0


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory nobody may create files in, not even root."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    if _is_root():
        # Root ignores permission bits; an immutable directory holds even for root.
        try:
            made = subprocess.run(["chattr", "+i", str(directory)], capture_output=True).returncode
        except OSError:
            made = 1
        if made != 0:
            pytest.skip("running as root where a directory cannot be made immutable")
        yield directory
        subprocess.run(["chattr", "-i", str(directory)], check=True)
        return
    directory.chmod(0o555)
    yield directory
    directory.chmod(0o755)
