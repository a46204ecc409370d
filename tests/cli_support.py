"""Helpers shared by the command line's tests."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any


def run_cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m gainsight_segment`` in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "gainsight_segment", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def json_blocks(text: str) -> list[dict[str, Any]]:
    """The pretty-printed JSON objects of an output, in order."""
    return [json.loads(block) for block in re.findall(r"^\{\n.*?^\}$", text, re.M | re.S)]


def assert_one_error_line(stderr: str, fragment: str) -> None:
    assert "Traceback" not in stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("gainsight-segment: error: ")
    assert fragment in lines[0]
