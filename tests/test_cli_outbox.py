"""gainsight-segment outbox: what an outbox file holds; its dead letters exported or retried."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path

import pytest

import gainsight_segment as gs
from gainsight_segment.cli import main
from gainsight_segment.outbox import Outbox
from gainsight_segment.testing import Faults, LocalCollector

from .cli_support import assert_one_error_line
from .conftest import ACCESS_KEY


@pytest.fixture
def path(tmp_path: Path) -> Path:
    return tmp_path / "events.db"


def write(path: Path, count: int, event: str = "Clicked") -> list[str]:
    """Messages a write-only app leaves in the file; their ids."""
    with gs.Client(ACCESS_KEY, outbox=str(path), workers=0, exit_timeout=0) as client:
        return [client.track("u", event, {"n": n}).message_id for n in range(count)]


def refused(path: Path, count: int, status: int = 400) -> list[str]:
    """Messages the endpoint refused for good: dead letters of the file; their ids."""
    with LocalCollector(ACCESS_KEY, faults=Faults(statuses=(status,) * count)) as collector:
        client = gs.Client(
            ACCESS_KEY, outbox=str(path), endpoint=collector.endpoint, exit_timeout=0
        )
        ids = [client.track("u", "Refused", {"n": n}).message_id for n in range(count)]
        assert client.flush(timeout=20)
        client.shutdown()
    return ids


def test_an_empty_file_is_described(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write(path, 0)
    assert main(["outbox", str(path)]) == 0
    assert capsys.readouterr().out == (
        f"{path}\n  waiting:      0 (0 claimed by a sender)\n  oldest:       -\n  dead letters: 0\n"
    )


def test_waiting_messages_and_dead_letters_are_described(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = refused(path, 2)
    write(path, 3)
    assert main(["outbox", str(path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [str(path), "  waiting:      3 (0 claimed by a sender)"]
    assert re.fullmatch(r"  oldest:       \d+\.\d s ago", lines[2])
    assert lines[3:5] == ["  dead letters: 2", "most recent dead letters (2 of 2):"]
    when = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"
    for first, second, message_id in zip(lines[5::2], lines[6::2], dead):
        assert re.fullmatch(rf"  #\d+ {when} http_status 400: HTTP 400: not retried", first)
        assert second == f'      track "Refused", messageId {message_id}'
    assert len(lines) == 5 + 2 * len(dead)


@pytest.mark.parametrize(("show", "shown"), [("0", 0), ("1", 1), ("5", 3)])
def test_show_says_how_many_of_the_most_recent_dead_letters(
    path: Path, capsys: pytest.CaptureFixture[str], show: str, shown: int
) -> None:
    dead = refused(path, 3)
    assert main(["outbox", str(path), "--show", show]) == 0
    out = capsys.readouterr().out
    listed = re.findall(r"messageId (\S+)", out)
    assert listed == dead[len(dead) - shown :]


def test_json_prints_one_object(path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dead = refused(path, 1, status=413)
    write(path, 2)
    assert main(["outbox", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert {k: document[k] for k in ("path", "waiting", "claimed", "dead_letters")} == {
        "path": str(path),
        "waiting": 2,
        "claimed": 0,
        "dead_letters": 1,
    }
    assert document["oldest_age"] >= 0
    (letter,) = document["recent_dead_letters"]
    assert (letter["kind"], letter["status"], letter["attempts"]) == ("http_status", 413, 1)
    assert letter["message"]["messageId"] == dead[0]
    assert letter["reason"] == "HTTP 413: not retried"


def test_retry_moves_the_dead_letters_back_to_wait(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refused(path, 2)
    assert main(["outbox", str(path), "--retry"]) == 0
    last = capsys.readouterr().out.splitlines()[-1]
    assert last == "moved 2 dead letters back, to be sent again"
    with Outbox(path) as outbox:
        summary = outbox.summary()
    assert (summary.waiting, summary.dead_letters) == (2, 0)


def test_retried_dead_letters_are_delivered_by_the_next_relay(
    path: Path, collector: LocalCollector
) -> None:
    dead = refused(path, 2)
    assert main(["outbox", str(path), "--retry"]) == 0
    args = ["relay", str(path), "--once", "--endpoint", collector.endpoint]
    assert main([*args, "--access-key", ACCESS_KEY]) == 0
    assert sorted(m["messageId"] for m in collector.messages) == sorted(dead)


def test_export_writes_a_private_json_lines_file_replay_can_send(
    path: Path, tmp_path: Path, collector: LocalCollector, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = refused(path, 3)
    exported = tmp_path / "dead.jsonl"
    assert main(["outbox", str(path), "--export", str(exported)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"exported 3 dead letters to {exported}"
    assert stat.S_IMODE(os.stat(exported).st_mode) == 0o600
    lines = [json.loads(line) for line in exported.read_text(encoding="utf-8").splitlines()]
    assert [line["messageId"] for line in lines] == dead
    replay = ["replay", str(exported), "--endpoint", collector.endpoint, "--quiet"]
    assert main([*replay, "--access-key", ACCESS_KEY]) == 0
    assert sorted(m["messageId"] for m in collector.messages) == sorted(dead)
    with Outbox(path) as outbox:
        assert outbox.summary().dead_letters == 3  # exported, not removed


def test_export_to_stdout_keeps_the_report_on_stderr(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = refused(path, 2)
    assert main(["outbox", str(path), "--export", "-"]) == 0
    captured = capsys.readouterr()
    assert [json.loads(line)["messageId"] for line in captured.out.splitlines()] == dead
    assert captured.err.startswith(f"{path}\n")
    assert "exported 2 dead letters to standard output" in captured.err


def test_export_and_retry_together_export_first(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dead = refused(path, 2)
    exported = tmp_path / "dead.jsonl"
    assert main(["outbox", str(path), "--export", str(exported), "--retry", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert (document["exported"], document["retried"]) == (2, 2)
    assert len(exported.read_text(encoding="utf-8").splitlines()) == len(dead)
    with Outbox(path) as outbox:
        assert (outbox.summary().waiting, outbox.summary().dead_letters) == (2, 0)


@pytest.mark.parametrize(
    ("where", "fragment"),
    [
        pytest.param("missing.db", "missing.db: No such file or directory", id="missing"),
        pytest.param(".", "is a directory", id="directory"),
    ],
)
def test_a_path_that_is_not_an_outbox_is_a_one_line_error(
    tmp_path: Path, where: str, fragment: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["outbox", str(tmp_path / where)]) == 2
    assert_one_error_line(capsys.readouterr().err, fragment)
    assert not (tmp_path / "missing.db").exists()  # looking never creates one


def test_an_export_file_that_cannot_be_written_is_a_one_line_error(
    path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    refused(path, 1)
    target = tmp_path / "no" / "dead.jsonl"
    assert main(["outbox", str(path), "--export", str(target)]) == 2
    assert_one_error_line(capsys.readouterr().err, "No such file or directory")


def test_a_corrupt_file_is_moved_aside_and_said_so(
    path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path.write_bytes(b"definitely not SQLite" * 100)
    assert main(["outbox", str(path)]) == 0
    captured = capsys.readouterr()
    assert "could not be read (file is not a database): moved aside to" in captured.err
    assert "  waiting:      0 (0 claimed by a sender)" in captured.out
    assert len(list(path.parent.glob("events.db.corrupt-*"))) == 1
