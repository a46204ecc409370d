"""Helpers shared by the outbox's tests: scripts, files and unusable places."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest


def file_bytes(path: Path) -> bytes:
    """The bytes of an outbox file and of its -wal and -shm companions."""
    found = b""
    for name in (str(path), f"{path}-wal", f"{path}-shm"):
        if os.path.exists(name):
            found += Path(name).read_bytes()
    return found


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
