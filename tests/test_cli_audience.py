"""gainsight-segment audience sync: members from a file, progress, summary and errors."""

from __future__ import annotations

import contextlib
import io
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from gainsight_segment.cli import _audience, main
from gainsight_segment.sync import AudienceSync, SQLiteStore, SyncProgress, SyncResult
from gainsight_segment.testing import Faults, LocalCollector

from .conftest import ACCESS_KEY

KEY = "vip_customers"


def received(collector: LocalCollector) -> dict[str, Any]:
    """The audience value each user was sent, by user id."""
    sent: dict[str, Any] = {}
    for message in collector.messages:
        ((_, value),) = message["traits"].items()
        sent[message["userId"]] = value
    return sent


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite3"


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, collector: LocalCollector) -> list[str]:
    monkeypatch.setenv("GAINSIGHT_ACCESS_KEY", ACCESS_KEY)
    return ["--endpoint", collector.endpoint, "--quiet"]


def test_cli_syncs_one_id_per_line(
    tmp_path: Path,
    state: Path,
    cli_env: list[str],
    collector: LocalCollector,
    capsys: pytest.CaptureFixture[str],
) -> None:
    members = tmp_path / "members.txt"
    members.write_text("u1\n\n u2 \nu1\n")
    status = main(
        [
            "audience",
            "sync",
            "VIP customers",
            "--members",
            str(members),
            "--state",
            str(state),
            *cli_env,
        ]
    )
    assert status == 0
    assert received(collector) == {"u1": True, "u2": True}
    assert capsys.readouterr().out == (
        "audience vip_customers: 2 added, 0 removed, 0 unchanged, 0 failed\n"
    )


def test_cli_reads_a_csv_column(
    tmp_path: Path, state: Path, cli_env: list[str], collector: LocalCollector
) -> None:
    members = tmp_path / "members.csv"
    members.write_text("\ufeffemail,user_id\na@x.io,u1\nb@x.io,u2\n", encoding="utf-8")
    argv = ["sync", KEY, "--members", str(members), "--column", "user_id", "--state", str(state)]
    assert main(["audience", *argv, *cli_env]) == 0
    assert received(collector) == {"u1": True, "u2": True}


def test_cli_missing_csv_column_is_a_one_line_error(
    tmp_path: Path, state: Path, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    members = tmp_path / "members.csv"
    members.write_text("email,id\na@x.io,u1\n")
    argv = ["sync", KEY, "--members", str(members), "--column", "user_id", "--state", str(state)]
    assert main(["audience", *argv, *cli_env]) == 2
    assert capsys.readouterr().err == (
        "gainsight-segment: error: no column 'user_id' in the members file; "
        "its columns: email, id\n"
    )


def test_cli_missing_members_file_is_a_one_line_error(
    tmp_path: Path, state: Path, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["sync", KEY, "--members", str(tmp_path / "nope.txt"), "--state", str(state)]
    assert main(["audience", *argv, *cli_env]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gainsight-segment: error: cannot read the members file:")
    assert err.count("\n") == 1


def test_cli_without_access_key_is_a_one_line_error(
    tmp_path: Path, state: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("GAINSIGHT_ACCESS_KEY", raising=False)
    members = tmp_path / "members.txt"
    members.write_text("u1\n")
    assert main(["audience", "sync", KEY, "--members", str(members), "--state", str(state)]) == 2
    assert capsys.readouterr().err.startswith("gainsight-segment: error: no access key")


def test_cli_exits_1_when_changes_failed(
    tmp_path: Path,
    state: Path,
    cli_env: list[str],
    collector: LocalCollector,
    capsys: pytest.CaptureFixture[str],
) -> None:
    collector.faults = Faults(statuses=(400,))
    members = tmp_path / "members.txt"
    members.write_text("u1\n")
    argv = ["sync", KEY, "--members", str(members), "--state", str(state), "--concurrency", "1"]
    assert main(["audience", *argv, *cli_env]) == 1
    captured = capsys.readouterr()
    assert captured.out.endswith("1 failed\n")
    assert "HTTP 400" in captured.err


def test_cli_dry_run_sends_and_records_nothing(
    tmp_path: Path,
    state: Path,
    cli_env: list[str],
    collector: LocalCollector,
    capsys: pytest.CaptureFixture[str],
) -> None:
    members = tmp_path / "members.txt"
    members.write_text("u1\nu2\n")
    argv = ["sync", KEY, "--members", str(members), "--state", str(state), "--dry-run"]
    assert main(["audience", *argv, *cli_env]) == 0
    assert collector.requests == []
    assert "would add 2" in capsys.readouterr().out
    with SQLiteStore(state) as store:
        assert list(store.items(KEY)) == []


def test_cli_prints_progress_to_stderr(
    tmp_path: Path,
    state: Path,
    collector: LocalCollector,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GAINSIGHT_ACCESS_KEY", ACCESS_KEY)
    members = tmp_path / "members.txt"
    members.write_text("u1\nu2\n")
    argv = ["sync", KEY, "--members", str(members), "--state", str(state)]
    assert main(["audience", *argv, "--endpoint", collector.endpoint]) == 0
    assert capsys.readouterr().err == "read 2 members\nsent 0 of 2 changes\nsent 2 of 2 changes\n"


def test_cli_usage_error_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audience", "sync", KEY]) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        "gainsight-segment: error: the following arguments are required: --members"
    )
    assert err.count("\n") == 1


@pytest.mark.parametrize("value", ["0", "-3", "four"])
def test_cli_concurrency_that_is_not_a_positive_number_is_a_usage_error(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["audience", "sync", KEY, "--members", "-", "--concurrency", value]) == 2
    assert capsys.readouterr().err == (
        f"gainsight-segment: error: argument --concurrency: must be a whole number >= 1, "
        f"got '{value}' (see 'gainsight-segment audience sync --help')\n"
    )


def test_cli_reads_members_from_stdin_and_leaves_it_open(
    state: Path, cli_env: list[str], collector: LocalCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    stdin = io.StringIO("u1\nu2\n")
    monkeypatch.setattr(sys, "stdin", stdin)
    assert main(["audience", "sync", KEY, "--members", "-", "--state", str(state), *cli_env]) == 0
    assert received(collector) == {"u1": True, "u2": True}
    assert not stdin.closed


def test_cli_csv_rows_without_an_id_in_the_column_are_skipped(
    tmp_path: Path, state: Path, cli_env: list[str], collector: LocalCollector
) -> None:
    members = tmp_path / "members.csv"
    members.write_text("email,user_id\na@x.io,u1\nb@x.io\nc@x.io,  \nd@x.io,u4\n")
    argv = ["sync", KEY, "--members", str(members), "--column", "user_id", "--state", str(state)]
    assert main(["audience", *argv, *cli_env]) == 0
    assert received(collector) == {"u1": True, "u4": True}


@pytest.mark.parametrize(
    ("content", "error"),
    [
        pytest.param(b"", "the members file is empty: expected a CSV header", id="empty-csv"),
        pytest.param(
            b"user_id\nu1\n\xff\n",
            "reading the members file: 'utf-8' codec can't decode byte 0xff",
            id="not-utf8",
        ),
        pytest.param(
            b"user_id\n" + b"x" * 200_000 + b"\n",
            "reading the members file: field larger than field limit",
            id="huge-field",
        ),
    ],
)
def test_cli_unreadable_members_are_a_one_line_error(
    tmp_path: Path,
    state: Path,
    cli_env: list[str],
    collector: LocalCollector,
    capsys: pytest.CaptureFixture[str],
    content: bytes,
    error: str,
) -> None:
    members = tmp_path / "members.csv"
    members.write_bytes(content)
    argv = ["sync", KEY, "--members", str(members), "--column", "user_id", "--state", str(state)]
    assert main(["audience", *argv, *cli_env]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gainsight-segment: error: {error}")
    assert err.count("\n") == 1
    assert collector.requests == []


def test_cli_state_file_of_another_shape_is_a_one_line_error(
    tmp_path: Path, state: Path, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with sqlite3.connect(state) as db:
        db.execute("CREATE TABLE gainsight_sync_state (id INTEGER)")
    members = tmp_path / "members.txt"
    members.write_text("u1\n")
    argv = ["sync", KEY, "--members", str(members), "--state", str(state)]
    assert main(["audience", *argv, *cli_env]) == 2
    assert capsys.readouterr().err.startswith(
        f"gainsight-segment: error: state file {str(state)!r}: no such column"
    )


def test_cli_ctrl_c_exits_130_and_says_to_run_it_again(
    tmp_path: Path,
    state: Path,
    cli_env: list[str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def interrupted(*args: Any, **kwargs: Any) -> SyncResult:
        raise KeyboardInterrupt

    monkeypatch.setattr(AudienceSync, "sync", interrupted)
    members = tmp_path / "members.txt"
    members.write_text("u1\n")
    argv = ["sync", KEY, "--members", str(members), "--state", str(state)]
    assert main(["audience", *argv, *cli_env]) == 130
    assert capsys.readouterr().err == (
        "gainsight-segment: error: interrupted: the changes delivered so far are recorded; "
        "run the same sync again to send the rest\n"
    )


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def monotonic(self) -> float:
        return self.now


def test_cli_progress_is_printed_at_most_once_a_second_but_always_at_the_end(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock, stream = _Clock(), io.StringIO()
    monkeypatch.setattr(_audience, "time", clock)
    printer = _audience._Printer(stream)
    for now, progress in [
        (10.0, SyncProgress("reading", 100_000)),
        (10.5, SyncProgress("reading", 200_000)),
        (11.2, SyncProgress("reading", 300_000)),
        (11.3, SyncProgress("reading", 300_001, 300_001)),
        (11.4, SyncProgress("sending", 5, 9)),
        (11.5, SyncProgress("sending", 9, 9)),
    ]:
        clock.now = now
        printer(progress)
    assert stream.getvalue().splitlines() == [
        "read 100,000 members...",
        "read 300,000 members...",
        "read 300,001 members",
        "sent 9 of 9 changes",
    ]


def test_cli_refuses_to_sync_an_audience_another_sync_is_sending(
    tmp_path: Path, state: Path, cli_env: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    SQLiteStore(state).close()
    with contextlib.closing(sqlite3.connect(state)) as db, db:
        db.execute(
            "INSERT INTO gainsight_sync_lease VALUES (?, 'other', 'process 1 on elsewhere', ?)",
            (KEY, time.time() + 30),
        )
    members = tmp_path / "members.txt"
    members.write_text("u1\n")
    argv = ["audience", "sync", KEY, "--members", str(members), "--state", str(state)]
    assert main([*argv, *cli_env]) == 2
    assert capsys.readouterr().err.startswith(
        "gainsight-segment: error: another sync of 'vip_customers' is running "
        "(process 1 on elsewhere)"
    )
