"""The command line as a whole: its errors, help, version, entry points and interruptions."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import gainsight_segment as gs
from gainsight_segment.cli import main

from .cli_support import assert_one_error_line, run_cli
from .conftest import ACCESS_KEY

# errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(
            ["send", "identify", "--user-id", "1", "--access-key", "short"],
            "36 characters",
            id="bad-key",
        ),
        pytest.param(
            ["send", "identify", "--user-id", "1"],
            "no access key: pass --access-key or --access-key-file, or set GAINSIGHT_ACCESS_KEY",
            id="no-key",
        ),
        pytest.param(
            ["send", "identify", "--user-id", "1", "--access-key", ACCESS_KEY, "--traits", "{bad"],
            "--traits: not valid JSON",
            id="bad-json",
        ),
        pytest.param(
            ["send", "identify", "--user-id", "1", "--access-key", ACCESS_KEY, "--traits", "[1]"],
            "--traits: must be a JSON object, got list",
            id="json-not-object",
        ),
        pytest.param(
            ["send", "identify", "--user-id", "1", "--access-key", ACCESS_KEY, "--timestamp", "x"],
            "--timestamp: not an ISO-8601 date-time",
            id="bad-timestamp",
        ),
        pytest.param(
            ["send", "identify", "--access-key", ACCESS_KEY],
            "userId: a userId or an anonymousId is required",
            id="invalid-message",
        ),
        pytest.param(
            ["send", "identify", "--user-id", "1", "--access-key", ACCESS_KEY, "--endpoint", "x"],
            "endpoint:",
            id="bad-endpoint",
        ),
        pytest.param(
            ["send", "track", "--user-id", "1", "--access-key", ACCESS_KEY],
            "the following arguments are required: --event",
            id="missing-flag",
        ),
        pytest.param(["frobnicate"], "invalid choice: 'frobnicate'", id="unknown-command"),
        pytest.param([], "the following arguments are required: COMMAND", id="no-command"),
        pytest.param(
            ["replay", "/nonexistent/file.jsonl", "--access-key", ACCESS_KEY],
            "/nonexistent/file.jsonl: No such file or directory",
            id="missing-file",
        ),
        pytest.param(
            ["collector", "--host", "example.com"], "only binds loopback", id="collector-host"
        ),
    ],
)
def test_errors_are_one_line_with_exit_status_2(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    fragment: str,
) -> None:
    monkeypatch.delenv("GAINSIGHT_ACCESS_KEY", raising=False)
    assert main(args) == 2
    assert_one_error_line(capsys.readouterr().err, fragment)


KEY = ["--access-key", ACCESS_KEY]


@pytest.mark.parametrize(
    ("args", "error"),
    [
        pytest.param(
            ["send", "identify", "--user-id", "1", "--access-key", "short"],
            "--access-key: must be 36 characters long, got 5 characters",
            id="send-key",
        ),
        pytest.param(
            ["send", "identify", "--user-id", "1", *KEY, "--endpoint", "x"],
            "--endpoint: has no scheme; write it as 'https://x' "
            "(https://, or http:// for a loopback host)",
            id="send-endpoint",
        ),
        pytest.param(
            ["send", "identify", "--user-id", "1", *KEY, "--timeout", "100000"],
            "--timeout: must be at most 86400 seconds, got 100000.0",
            id="send-timeout",
        ),
        pytest.param(
            ["replay", os.devnull, *KEY, "--workers", "300"],
            "--workers: must be at most 256, got 300",
            id="replay-workers",
        ),
        pytest.param(
            ["audience", "sync", "vip", "--members", "-", "--access-key", "short"],
            "--access-key: must be 36 characters long, got 5 characters",
            id="audience-key",
        ),
        pytest.param(
            ["collector", "--access-key", "short"],
            "--access-key: must be 36 characters long, got 5 characters",
            id="collector-key",
        ),
        pytest.param(
            ["collector", "--failure-rate", "2"],
            "--failure-rate: must be a probability between 0 and 1, got 2.0",
            id="collector-failure-rate",
        ),
        pytest.param(
            ["collector", "--drop-rate", "-0.5"],
            "--drop-rate: must be a probability between 0 and 1, got -0.5",
            id="collector-drop-rate",
        ),
        pytest.param(
            ["collector", "--latency", "-1"],
            "--latency: must be a finite number of seconds >= 0, got -1.0",
            id="collector-latency",
        ),
        pytest.param(
            ["collector", "--port", "70000"],
            "--port: must be an integer from 0 to 65535, got 70000",
            id="collector-port",
        ),
    ],
)
def test_errors_name_the_flag_not_the_python_name(
    capsys: pytest.CaptureFixture[str], args: list[str], error: str
) -> None:
    assert main(args) == 2
    assert capsys.readouterr().err == f"gainsight-segment: error: {error}\n"


# --access-key-file ----------------------------------------------------------------------------


def command_with_key(command: str, *key: str) -> list[str]:
    """A dry run of ``command`` that needs nothing but its access key."""
    if command == "send":
        return ["send", "identify", "--user-id", "1", "--dry-run", *key]
    if command == "replay":
        return ["replay", os.devnull, "--rejects", os.devnull, "--dry-run", *key]
    return [
        "audience",
        "sync",
        "vip",
        "--members",
        os.devnull,
        "--state",
        ":memory:",
        "--dry-run",
        *key,
    ]


KEY_COMMANDS = ["send", "replay", "audience"]


@pytest.mark.parametrize("command", KEY_COMMANDS)
def test_the_access_key_can_be_read_from_a_file(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("GAINSIGHT_ACCESS_KEY", raising=False)
    key_file = tmp_path / "key"
    key_file.write_text(f"  {ACCESS_KEY}\n", encoding="utf-8")
    assert main(command_with_key(command, "--access-key-file", str(key_file))) == 0


@pytest.mark.parametrize("command", [*KEY_COMMANDS, "collector"])
def test_the_access_key_and_its_file_are_mutually_exclusive(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = ["--access-key", ACCESS_KEY, "--access-key-file", str(tmp_path / "key")]
    args = ["collector", *key] if command == "collector" else command_with_key(command, *key)
    assert main(args) == 2
    assert_one_error_line(
        capsys.readouterr().err,
        "argument --access-key-file: not allowed with argument --access-key",
    )


@pytest.mark.parametrize("command", [*KEY_COMMANDS, "collector"])
def test_an_unreadable_access_key_file_is_a_one_line_error_naming_it(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing"
    key = ["--access-key-file", str(missing)]
    args = ["collector", *key] if command == "collector" else command_with_key(command, *key)
    assert main(args) == 2
    assert capsys.readouterr().err == (
        f"gainsight-segment: error: --access-key-file {missing}: cannot read it: "
        "No such file or directory\n"
    )


def test_a_bad_key_in_the_file_is_named_by_the_file_and_never_echoed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = "35a84f9e-7084-47a1-b8a5-593444e9e86"
    key_file = tmp_path / "key"
    key_file.write_text(bad + "\n", encoding="utf-8")
    assert main(command_with_key("send", "--access-key-file", str(key_file))) == 2
    captured = capsys.readouterr()
    assert captured.err == (
        f"gainsight-segment: error: --access-key-file {key_file}: "
        "must be 36 characters long, got 35 characters\n"
    )
    assert bad not in captured.out + captured.err


def test_a_bad_key_is_never_echoed(capsys: pytest.CaptureFixture[str]) -> None:
    bad = "35a84f9e-7084-47a1-b8a5-593444e9e86"
    main(["send", "identify", "--user-id", "1", "--access-key", bad])
    captured = capsys.readouterr()
    assert bad not in captured.out + captured.err


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        pytest.param(
            ["send", "identify", "--user-id", "1", "--access-key", "short"],
            "36 characters",
            id="bad-key",
        ),
        pytest.param(
            [
                "send",
                "track",
                "--user-id",
                "1",
                "--event",
                "x",
                "--access-key",
                ACCESS_KEY,
                "--properties",
                "{",
            ],
            "--properties: not valid JSON",
            id="bad-json",
        ),
        pytest.param(
            ["replay", "/nonexistent.jsonl", "--access-key", ACCESS_KEY],
            "No such file",
            id="missing-file",
        ),
    ],
)
def test_errors_in_a_subprocess_have_no_traceback(args: list[str], fragment: str) -> None:
    result = run_cli(*args)
    assert result.returncode == 2
    assert_one_error_line(result.stderr, fragment)


def test_help_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    assert "replay" in capsys.readouterr().out


def test_version_prints_the_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"gainsight-segment {gs.__version__}"


def test_python_dash_m_runs_the_cli() -> None:
    result = run_cli("--version")
    assert (result.returncode, result.stdout.strip()) == (0, f"gainsight-segment {gs.__version__}")


def test_console_script_runs_the_cli() -> None:
    script = Path(sys.executable).with_name("gainsight-segment")
    if not script.exists():
        pytest.skip("the package is not installed with its console script")
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout.strip()) == (0, f"gainsight-segment {gs.__version__}")


# interruptions and broken pipes -----------------------------------------------------------


def test_ctrl_c_exits_130_without_a_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> gs.Receipt:
        raise KeyboardInterrupt

    monkeypatch.setattr(gs.Client, "identify", interrupted)
    assert main(["send", "identify", "--user-id", "1", "--access-key", ACCESS_KEY]) == 130
    assert capsys.readouterr().err == "\n"


class _BrokenPipe(io.StringIO):
    """A stdout whose reader went away; its descriptor is a real file, to see what lands."""

    def __init__(self, fd: int | None) -> None:
        super().__init__()
        self._fd = fd

    def write(self, text: str) -> int:
        raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        if self._fd is None:
            raise io.UnsupportedOperation("fileno")
        return self._fd


DRY_RUN_SEND = ["send", "identify", "--user-id", "1", "--access-key", ACCESS_KEY, "--dry-run"]


def test_a_broken_pipe_exits_1_without_a_word(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "stdout", _BrokenPipe(None))
    assert main(DRY_RUN_SEND) == 1
    assert capsys.readouterr().err == ""


def test_a_broken_pipe_points_stdout_at_devnull_so_the_exit_flush_cannot_fail(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    target = tmp_path / "stdout"
    with target.open("wb") as file:
        monkeypatch.setattr(sys, "stdout", _BrokenPipe(file.fileno()))
        main(DRY_RUN_SEND)
        os.write(file.fileno(), b"written after the pipe broke")
    assert target.read_bytes() == b""


def test_an_access_key_file_that_is_not_text_is_a_one_line_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key_file = tmp_path / "key"
    key_file.write_bytes(b"\xff\xfe")
    assert main(command_with_key("send", "--access-key-file", str(key_file))) == 2
    assert capsys.readouterr().err == (
        f"gainsight-segment: error: --access-key-file {key_file}: cannot read it: not UTF-8 text\n"
    )
