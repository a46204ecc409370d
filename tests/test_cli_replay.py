"""gainsight-segment replay: streaming a JSON Lines file of Segment messages to Gainsight."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import attrs
import pytest

from gainsight_segment.cli import _replay, main
from gainsight_segment.cli._messages import MAX_LINE_BYTES
from gainsight_segment.testing import Faults, LocalCollector

from .conftest import ACCESS_KEY

LINES = 2_500
WHITELIST = "Account Created"
SKIPPED_EVERY = 500  # every 500th line is a track the whitelist skips
FAILURES = 3  # the collector answers the first requests with 400, which is never retried
# Lines that are not valid messages, with the start of their reason.
BAD_LINES = {
    17: ("{not json", "not valid JSON"),
    200: (json.dumps({"type": "page", "userId": "1", "name": "Home"}), "type: 'page'"),
    1201: (
        json.dumps({"type": "track", "userId": "1", "event": WHITELIST, "timestamp": "then"}),
        "timestamp: not an ISO-8601 date-time",
    ),
    1702: (json.dumps({"type": "identify", "traits": {}}), "userId: a userId or an anonymousId"),
    2203: ('{"type": "track", "userId": "1", "event": "x", "properties": {"p": NaN}}', "not valid"),
    2498: ("[1, 2]", "not a JSON object"),
}


def segment_message(number: int) -> dict[str, Any]:
    """The Segment message of line ``number`` of a generated export."""
    kind = ("identify", "track", "group")[number % 3]
    message: dict[str, Any] = {
        "type": kind,
        "userId": f"u{number}",
        "messageId": f"m-{number:05d}",
        "timestamp": "2021-03-10T17:07:07.339Z",
        "context": {"ip": "203.0.113.7"},
        "integrations": {},
        "receivedAt": "2021-03-10T17:07:08.001Z",
    }
    if kind == "identify":
        message["traits"] = {"accountId": "o283h08fh2390f923uofu23", "n": number}
    elif kind == "track":
        message["event"] = "Page Scrolled" if number % SKIPPED_EVERY == 0 else WHITELIST
        message["properties"] = {"accountId": "o283h08fh2390f923uofu23", "n": number}
    else:
        message["groupId"] = "555"
        message["traits"] = {"name": "Twitter"}
    return message


def export_line(number: int) -> str:
    if number in BAD_LINES:
        return BAD_LINES[number][0]
    return json.dumps(segment_message(number))


def write_export(path: Path, lines: int) -> Path:
    with path.open("w", encoding="utf-8") as file:
        for number in range(1, lines + 1):
            file.write(export_line(number) + "\n")
    return path


def good_lines(count: int) -> str:
    """``count`` valid identify lines."""
    return "".join(
        json.dumps({"type": "identify", "userId": f"u{n}", "messageId": f"g-{n}"}) + "\n"
        for n in range(1, count + 1)
    )


@attrs.frozen
class Run:
    status: int
    out: str
    err: str


def replay(*args: str) -> Run:
    """Run ``main(["replay", ...])``, capturing its output."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["replay", *args])
    return Run(status, out.getvalue(), err.getvalue())


def summary(run: Run) -> dict[str, int]:
    """The counters of a replay summary, by name."""
    counts = {
        name: int(value.replace(",", ""))
        for name, value in re.findall(r"^  ([a-z ]+): ([\d,]+)$", run.out, re.M)
    }
    read = re.search(r": ([\d,]+) lines? read", run.out)
    assert read, run.out
    counts["read"] = int(read[1].replace(",", ""))
    return counts


def key_and(endpoint: str) -> list[str]:
    return ["--access-key", ACCESS_KEY, "--endpoint", endpoint]


def read_rejects(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# One replay of a 2,500-line export, shared by the tests that look at its parts -------------


@attrs.frozen
class BigReplay:
    run: Run
    export: Path
    rejects: list[dict[str, Any]]
    received: list[dict[str, Any]]


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> BigReplay:
    export = write_export(tmp_path_factory.mktemp("replay") / "export.jsonl", LINES)
    with LocalCollector(ACCESS_KEY, faults=Faults(statuses=[400] * FAILURES)) as collector:
        run = replay(
            str(export),
            "--access-key",
            ACCESS_KEY,
            "--endpoint",
            collector.endpoint,
            "--track-whitelist",
            WHITELIST,
            "--workers",
            "8",
            "--quiet",
        )
        received = collector.messages
    rejects = read_rejects(export.with_name("export.jsonl.rejects.jsonl"))
    return BigReplay(run, export, rejects, received)


SKIPPED = sum(
    1 for n in range(1, LINES + 1) if n not in BAD_LINES and n % 3 == 1 and n % SKIPPED_EVERY == 0
)


@pytest.mark.parametrize(
    ("counter", "expected"),
    [
        ("read", LINES),
        ("sent", LINES - len(BAD_LINES) - SKIPPED - FAILURES),
        ("skipped by whitelist", SKIPPED),
        ("rejected", len(BAD_LINES)),
        ("failed", FAILURES),
    ],
)
def test_summary_counts_every_line(big: BigReplay, counter: str, expected: int) -> None:
    assert summary(big.run)[counter] == expected


def test_the_whitelist_skips_some_tracks(big: BigReplay) -> None:
    assert SKIPPED > 0
    assert all(m.get("event") != "Page Scrolled" for m in big.received)


def test_exit_status_is_1_when_lines_were_rejected_or_failed(big: BigReplay) -> None:
    assert big.run.status == 1


def test_summary_names_the_rejects_file(big: BigReplay) -> None:
    assert f"rejects written to {big.export}.rejects.jsonl" in big.run.out


def test_invalid_lines_are_rejected_with_line_number_and_reason(big: BigReplay) -> None:
    invalid = sorted(
        (record["line"], record["reason"])
        for record in big.rejects
        if not record["reason"].startswith("not delivered")
    )
    assert [line for line, _ in invalid] == sorted(BAD_LINES)
    for line, reason in invalid:
        assert reason.startswith(BAD_LINES[line][1]), (line, reason)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        pytest.param(17, "{not json", id="bad-json-as-text"),
        pytest.param(200, json.loads(BAD_LINES[200][0]), id="unsupported-type-as-object"),
    ],
)
def test_a_rejected_line_keeps_its_original_message(
    big: BigReplay, line: int, message: Any
) -> None:
    [record] = [record for record in big.rejects if record["line"] == line]
    assert record["message"] == message


def test_failed_deliveries_are_rejected_with_their_line_and_message(big: BigReplay) -> None:
    failed = [r for r in big.rejects if r["reason"].startswith("not delivered")]
    assert len(failed) == FAILURES
    for record in failed:
        assert "HTTP 400" in record["reason"]
        assert record["message"]["messageId"] == f"m-{record['line']:05d}"


def test_the_collector_got_every_sent_message_once(big: BigReplay) -> None:
    failed = {r["message"]["messageId"] for r in big.rejects if r["line"] not in BAD_LINES}
    expected = {
        f"m-{n:05d}"
        for n in range(1, LINES + 1)
        if n not in BAD_LINES and not (n % 3 == 1 and n % SKIPPED_EVERY == 0)
    } - failed
    ids = [m["messageId"] for m in big.received]
    assert len(ids) == len(set(ids))
    assert set(ids) == expected


def test_fields_are_forwarded_from_the_export(big: BigReplay) -> None:
    # A track line far from the start, where the scripted failures are.
    [message] = [m for m in big.received if m["messageId"] == "m-01999"]
    original = segment_message(1999)
    assert message["timestamp"] == original["timestamp"]
    assert message["properties"] == original["properties"]
    assert message["context"]["ip"] == original["context"]["ip"]
    assert "receivedAt" not in message


# Small replays --------------------------------------------------------------------------


@pytest.fixture
def endpoint(collector: LocalCollector) -> str:
    return collector.endpoint


def test_a_clean_replay_exits_0_with_an_empty_rejects_file(
    tmp_path: Path, endpoint: str, collector: LocalCollector
) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(20), encoding="utf-8")
    run = replay(str(export), *key_and(endpoint), "--quiet")
    assert run.status == 0
    assert summary(run)["sent"] == 20
    assert len(collector.messages) == 20
    assert (tmp_path / "in.jsonl.rejects.jsonl").read_text(encoding="utf-8") == ""


def test_rejects_path_can_be_chosen(tmp_path: Path, endpoint: str) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text("oops\n", encoding="utf-8")
    rejects = tmp_path / "elsewhere.jsonl"
    replay(str(export), *key_and(endpoint), "--rejects", str(rejects))
    assert [r["line"] for r in read_rejects(rejects)] == [1]


def test_reads_stdin_and_rejects_to_rejects_jsonl(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch, collector: LocalCollector
) -> None:
    monkeypatch.chdir(tmp_path)
    data = good_lines(5) + "not json\n"
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data.encode())))
    run = replay("-", *key_and(endpoint), "--quiet")
    assert (run.status, summary(run)["sent"], len(collector.messages)) == (1, 5, 5)
    assert [r["line"] for r in read_rejects(tmp_path / "rejects.jsonl")] == [6]


def test_reads_stdin_in_a_subprocess(
    tmp_path: Path, endpoint: str, collector: LocalCollector
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "gainsight_segment", "replay", "-", "--quiet", *key_and(endpoint)],
        input=good_lines(3),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert len(collector.messages) == 3
    assert (tmp_path / "rejects.jsonl").exists()


@pytest.mark.parametrize(
    ("lines", "warning"),
    [(10, "10 messages still undelivered"), (1, "1 message still undelivered")],
)
def test_what_is_left_at_the_flush_deadline_is_reported_and_rejected(
    tmp_path: Path, endpoint: str, collector: LocalCollector, lines: int, warning: str
) -> None:
    collector.faults = Faults(stall=True)
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(lines), encoding="utf-8")
    run = replay(str(export), *key_and(endpoint), "--quiet", "--flush-timeout", "0.2")
    assert run.status == 1
    assert f"{warning} after the 0.2 s flush deadline" in run.err
    assert summary(run)["failed"] == lines
    rejects = read_rejects(tmp_path / "in.jsonl.rejects.jsonl")
    assert sorted(r["line"] for r in rejects) == list(range(1, lines + 1))
    assert all(r["reason"].startswith("not delivered: shutdown deadline") for r in rejects)


def test_a_one_line_replay_says_line_and_shows_no_rate_for_a_sub_second_run(
    tmp_path: Path, endpoint: str
) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(1), encoding="utf-8")
    run = replay(str(export), *key_and(endpoint), "--quiet")
    headline = run.out.splitlines()[0]
    assert re.fullmatch(rf"replayed {re.escape(str(export))}: 1 line read in [\w .]+ s", headline)
    assert "events/s" not in run.out


def test_dry_run_validates_but_sends_nothing(
    tmp_path: Path, endpoint: str, collector: LocalCollector
) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(4) + "[]\n", encoding="utf-8")
    run = replay(str(export), *key_and(endpoint), "--dry-run")
    counts = summary(run)
    assert (counts["validated"], counts["rejected"]) == (4, 1)
    assert collector.requests == []
    assert run.status == 1


def test_blank_lines_are_skipped_but_keep_line_numbers(tmp_path: Path, endpoint: str) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(1) + "\n   \n" + "oops\n", encoding="utf-8")
    run = replay(str(export), *key_and(endpoint), "--quiet")
    assert summary(run)["read"] == 2
    assert [r["line"] for r in read_rejects(tmp_path / "in.jsonl.rejects.jsonl")] == [4]


def test_a_byte_order_mark_is_ignored(tmp_path: Path, endpoint: str) -> None:
    export = tmp_path / "in.jsonl"
    export.write_bytes(b"\xef\xbb\xbf" + good_lines(2).encode())
    run = replay(str(export), *key_and(endpoint), "--quiet")
    assert (run.status, summary(run)["sent"]) == (0, 2)


@pytest.mark.parametrize(
    "length",
    [
        pytest.param(MAX_LINE_BYTES + 10, id="just-over"),
        pytest.param(3 * MAX_LINE_BYTES, id="over-several-reads"),
    ],
)
def test_a_line_over_the_limit_is_rejected_and_the_next_line_still_sent(
    tmp_path: Path, endpoint: str, collector: LocalCollector, length: int
) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text("x" * length + "\n" + good_lines(1), encoding="utf-8")
    replay(str(export), *key_and(endpoint), "--quiet")
    [record] = read_rejects(tmp_path / "in.jsonl.rejects.jsonl")
    assert record["line"] == 1
    assert "over the" in record["reason"]
    assert [m["messageId"] for m in collector.messages] == ["g-1"]


def test_a_line_that_is_not_utf8_is_rejected(tmp_path: Path, endpoint: str) -> None:
    export = tmp_path / "in.jsonl"
    export.write_bytes(b'{"type": "identify", "userId": "\xff"}\n')
    replay(str(export), *key_and(endpoint), "--quiet")
    [record] = read_rejects(tmp_path / "in.jsonl.rejects.jsonl")
    assert record["reason"] == "not valid UTF-8 (byte 32)"


def test_whitelist_flag_is_repeatable(
    tmp_path: Path, endpoint: str, collector: LocalCollector
) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(
        "".join(
            json.dumps({"type": "track", "userId": "1", "event": event}) + "\n"
            for event in ("A", "B", "C")
        ),
        encoding="utf-8",
    )
    flags = ["--track-whitelist", "A", "--track-whitelist", "C"]
    run = replay(str(export), *key_and(endpoint), *flags)
    assert sorted(m["event"] for m in collector.messages) == ["A", "C"]
    assert summary(run)["skipped by whitelist"] == 1


def test_progress_lines_when_stderr_is_not_a_terminal(tmp_path: Path, endpoint: str) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(30), encoding="utf-8")
    run = replay(str(export), *key_and(endpoint), "--progress-every", "10")
    lines = run.err.splitlines()
    counts = [re.findall(r"^replay: ([\d,]+) lines read \(", line) for line in lines]
    assert counts == [["10"], ["20"], ["30"]]
    assert "\r" not in run.err


def test_dry_run_progress_counts_validated_lines(tmp_path: Path, endpoint: str) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(4), encoding="utf-8")
    run = replay(str(export), *key_and(endpoint), "--dry-run", "--progress-every", "2")
    assert [line.split(", ")[1] for line in run.err.splitlines()] == ["2 validated", "4 validated"]


def interrupt_at_line(
    monkeypatch: pytest.MonkeyPatch, line: int, *, after_handing_it_over: bool = False
) -> None:
    """Make Ctrl-C land while the replay handles ``line``: before the line reaches the
    client, or just after."""
    real = _replay._Replay._send_line

    def send_line(self: Any, number: int, *args: Any) -> int:
        if number != line:
            return real(self, number, *args)
        if after_handing_it_over:
            real(self, number, *args)
        raise KeyboardInterrupt

    monkeypatch.setattr(_replay._Replay, "_send_line", send_line)


def accounted(run: Run) -> int:
    """Lines of a summary that are sent, skipped, rejected, failed or not attempted."""
    counts = summary(run)
    names = ("sent", "skipped by whitelist", "rejected", "failed", "not attempted")
    return sum(counts.get(name, 0) for name in names)


def test_ctrl_c_stops_reading_prints_the_summary_and_exits_130(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    interrupt_at_line(monkeypatch, 3)
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(5), encoding="utf-8")
    run = replay(str(export), *key_and(endpoint), "--quiet")
    assert run.status == 130
    assert run.out.startswith(f"interrupted {export}: 3 lines read")


@pytest.mark.parametrize("after_handing_it_over", [False, True], ids=["before", "after"])
def test_ctrl_c_leaves_every_line_read_accounted_for(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch, after_handing_it_over: bool
) -> None:
    interrupt_at_line(monkeypatch, 3, after_handing_it_over=after_handing_it_over)
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(5), encoding="utf-8")
    run = replay(str(export), *key_and(endpoint), "--quiet")
    assert summary(run)["read"] == accounted(run) == 3


def test_a_line_interrupted_before_it_was_sent_is_written_to_the_rejects(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    interrupt_at_line(monkeypatch, 3)
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(5), encoding="utf-8")
    run = replay(str(export), *key_and(endpoint), "--quiet")
    assert summary(run)["not attempted"] == 1
    [record] = read_rejects(tmp_path / "in.jsonl.rejects.jsonl")
    assert record == {
        "line": 3,
        "reason": "not attempted: interrupted before it was sent",
        "message": {"type": "identify", "userId": "u3", "messageId": "g-3"},
    }


def test_a_line_interrupted_after_it_was_handed_over_is_not_reported_twice(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch, collector: LocalCollector
) -> None:
    interrupt_at_line(monkeypatch, 3, after_handing_it_over=True)
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(5), encoding="utf-8")
    run = replay(str(export), *key_and(endpoint), "--quiet")
    rejects = read_rejects(tmp_path / "in.jsonl.rejects.jsonl")
    assert summary(run)["not attempted"] == 0
    assert len(collector.messages) + len(rejects) == 3


def test_an_interrupted_line_that_is_not_json_is_rejected_as_its_text(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    interrupt_at_line(monkeypatch, 2)
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(1) + "oops\n", encoding="utf-8")
    replay(str(export), *key_and(endpoint), "--quiet")
    [record] = read_rejects(tmp_path / "in.jsonl.rejects.jsonl")
    assert (record["line"], record["message"]) == (2, "oops")


def test_ctrl_c_while_waiting_for_delivery_leaves_no_line_unattempted(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def interrupted(self: Any) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(_replay._Replay, "_settle", interrupted)
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(3), encoding="utf-8")
    run = replay(str(export), *key_and(endpoint), "--quiet")
    assert run.status == 130
    assert summary(run)["not attempted"] == 0
    assert summary(run)["read"] == accounted(run) == 3


def test_ctrl_c_against_a_stalled_endpoint_rejects_every_line_read(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch, collector: LocalCollector
) -> None:
    collector.faults = Faults(stall=True)
    interrupt_at_line(monkeypatch, 4)
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(6), encoding="utf-8")
    run = replay(str(export), *key_and(endpoint), "--quiet")
    counts = summary(run)
    assert (counts["read"], counts["sent"], counts["failed"]) == (4, 0, 3)
    assert counts["not attempted"] == 1
    rejects = read_rejects(tmp_path / "in.jsonl.rejects.jsonl")
    assert sorted(record["line"] for record in rejects) == [1, 2, 3, 4]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_when_stderr_is_a_terminal(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(30), encoding="utf-8")
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        main(["replay", str(export), "--access-key", ACCESS_KEY, "--endpoint", endpoint])
    drawn = terminal.getvalue()
    assert drawn.startswith("\r[")
    assert re.search(r"\[#{24}\] 100\.0%\s+30 lines\s+([\d,.]+ events/s\s+)?ETA 0:00\s*\n$", drawn)
    assert "replay:" not in drawn


def test_quiet_shows_no_progress(tmp_path: Path, endpoint: str) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(5), encoding="utf-8")
    run = replay(
        str(export),
        "--access-key",
        ACCESS_KEY,
        "--endpoint",
        endpoint,
        "--quiet",
        "--progress-every",
        "1",
    )
    assert run.err == ""


def test_an_unwritable_rejects_file_stops_before_sending(
    tmp_path: Path, endpoint: str, collector: LocalCollector
) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(2), encoding="utf-8")
    rejects = tmp_path / "missing-dir" / "rejects.jsonl"
    run = replay(str(export), *key_and(endpoint), "--rejects", str(rejects))
    assert run.status == 2
    assert run.err.startswith("gainsight-segment: error: ")
    assert "No such file or directory" in run.err
    assert collector.requests == []


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--workers", "0"], "argument --workers: must be a whole number >= 1, got '0'"),
        (
            ["--progress-interval", "0"],
            "argument --progress-interval: must be a number of seconds > 0, got '0'",
        ),
        (["--progress-every", "-1"], "argument --progress-every: must be a whole number >= 0"),
        (["--progress-every", "x"], "argument --progress-every: must be a whole number >= 0"),
        (["--workers", "x"], "argument --workers: must be a whole number >= 1, got 'x'"),
        (["--flush-timeout", "nan"], "argument --flush-timeout: must be a number of seconds > 0"),
        (["--flush-timeout", "x"], "argument --flush-timeout: must be a number of seconds > 0"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path: Path, args: list[str], fragment: str) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(1), encoding="utf-8")
    run = replay(str(export), "--access-key", ACCESS_KEY, *args)
    assert run.status == 2
    assert run.err.startswith(f"gainsight-segment: error: {fragment}")
    assert run.err.endswith("(see 'gainsight-segment replay --help')\n")


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        pytest.param({"userId": "1"}, "type: missing; expected identify", id="no-type"),
        pytest.param({"type": 3, "userId": "1"}, "type: missing; expected identify", id="type-int"),
        pytest.param(
            {"type": "identify", "userId": "1", "timestamp": 1615396027},
            "timestamp: must be an ISO-8601 string, got int",
            id="timestamp-int",
        ),
    ],
)
def test_a_message_that_cannot_be_submitted_is_rejected_with_its_reason(
    tmp_path: Path, message: dict[str, Any], reason: str
) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(json.dumps(message) + "\n", encoding="utf-8")
    run = replay(str(export), "--access-key", ACCESS_KEY, "--dry-run")
    [record] = read_rejects(tmp_path / "in.jsonl.rejects.jsonl")
    assert (run.status, record["line"], record["message"]) == (1, 1, message)
    assert record["reason"].startswith(reason)


def test_lines_sharing_a_message_id_are_each_rejected_with_their_own_line(
    tmp_path: Path, endpoint: str, collector: LocalCollector
) -> None:
    collector.faults = Faults(statuses=[400, 400])
    line = json.dumps({"type": "identify", "userId": "1", "messageId": "same"}) + "\n"
    export = tmp_path / "in.jsonl"
    export.write_text(line * 2, encoding="utf-8")
    replay(str(export), *key_and(endpoint), "--quiet")
    rejects = read_rejects(tmp_path / "in.jsonl.rejects.jsonl")
    assert sorted(record["line"] for record in rejects) == [1, 2]


def same_path(export: Path) -> Path:
    return export


def relative_path(export: Path) -> Path:
    return export.parent / "." / export.name


def symlink(export: Path) -> Path:
    link = export.with_name("link.jsonl")
    link.symlink_to(export)
    return link


def hard_link(export: Path) -> Path:
    link = export.with_name("hard.jsonl")
    os.link(export, link)
    return link


@pytest.mark.parametrize("rejects_for", [same_path, relative_path, symlink, hard_link])
def test_a_rejects_path_that_is_the_input_file_is_refused_and_the_input_kept(
    tmp_path: Path, collector: LocalCollector, rejects_for: Callable[[Path], Path]
) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(2), encoding="utf-8")
    rejects = rejects_for(export)
    run = replay(str(export), *key_and(collector.endpoint), "--rejects", str(rejects))
    assert (run.status, run.err) == (
        2,
        f"gainsight-segment: error: --rejects {rejects}: is the input file; choose another path\n",
    )
    assert export.read_text(encoding="utf-8") == good_lines(2)
    assert collector.requests == []


def test_a_rejects_path_that_is_the_file_on_standard_input_is_refused_and_the_input_kept(
    tmp_path: Path, collector: LocalCollector, monkeypatch: pytest.MonkeyPatch
) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(2), encoding="utf-8")
    with export.open("rb") as stdin:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(stdin))
        run = replay("-", *key_and(collector.endpoint), "--rejects", str(export))
    assert (run.status, run.err) == (
        2,
        f"gainsight-segment: error: --rejects {export}: is the input file; choose another path\n",
    )
    assert export.read_text(encoding="utf-8") == good_lines(2)
    assert collector.requests == []


def test_a_rejects_device_shared_with_the_input_is_allowed(tmp_path: Path) -> None:
    # Reading /dev/null and discarding the rejects into it destroys nothing.
    run = replay(os.devnull, "--access-key", ACCESS_KEY, "--dry-run", "--rejects", os.devnull)
    assert run.status == 0


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file modes")
def test_a_new_rejects_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text("oops\n", encoding="utf-8")
    previous = os.umask(0o022)
    try:
        replay(str(export), "--access-key", ACCESS_KEY, "--dry-run")
    finally:
        os.umask(previous)
    rejects = tmp_path / "in.jsonl.rejects.jsonl"
    assert stat.S_IMODE(rejects.stat().st_mode) == 0o600


needs_dev_full = pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")


@needs_dev_full
def test_a_full_disk_for_the_rejects_stops_the_replay_with_status_2(
    tmp_path: Path, endpoint: str, collector: LocalCollector
) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text("oops\n" + good_lines(3), encoding="utf-8")
    run = replay(str(export), *key_and(endpoint), "--quiet", "--rejects", "/dev/full")
    assert run.status == 2
    assert run.err.startswith("gainsight-segment: error: ")
    assert collector.requests == []


@needs_dev_full
def test_a_full_disk_for_the_rejects_names_the_rejects_file(tmp_path: Path) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text("oops\n", encoding="utf-8")
    run = replay(str(export), "--access-key", ACCESS_KEY, "--dry-run", "--rejects", "/dev/full")
    assert run.err.startswith("gainsight-segment: error: cannot write /dev/full: ")


def test_progress_from_a_pipe_shows_no_percentage(
    tmp_path: Path, endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    read_end, write_end = os.pipe()
    with os.fdopen(write_end, "wb") as writer:
        writer.write(good_lines(2).encode())
    with os.fdopen(read_end, "rb") as reader:
        monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(reader))
        run = replay("-", *key_and(endpoint), "--progress-every", "1")
    assert re.match(r"replay: 1 line read, \d+ sent, ", run.err.splitlines()[0])


@pytest.mark.parametrize("message_id", ["never-added", None, 42])
def test_in_flight_knows_no_line_for_an_id_it_was_not_given(message_id: object) -> None:
    in_flight = _replay._InFlight()
    in_flight.add("added", 7)
    assert in_flight.pop(message_id) is None


# The engine, without the command line -----------------------------------------------------


def test_the_engine_replays_from_typed_options(
    tmp_path: Path, endpoint: str, collector: LocalCollector
) -> None:
    export = tmp_path / "in.jsonl"
    export.write_text(good_lines(3), encoding="utf-8")
    options = _replay.ReplayOptions(
        file=str(export), access_key=ACCESS_KEY, endpoint=endpoint, quiet=True
    )
    assert _replay.replay(options, io.StringIO(), io.StringIO()) == 0
    assert len(collector.messages) == 3


def test_the_engine_reads_the_standard_input_it_is_given(
    tmp_path: Path, endpoint: str, collector: LocalCollector
) -> None:
    options = _replay.ReplayOptions(
        file="-",
        rejects=str(tmp_path / "rejects.jsonl"),
        access_key=ACCESS_KEY,
        endpoint=endpoint,
        quiet=True,
    )
    stdin = io.BytesIO(good_lines(2).encode())
    assert _replay.replay(options, io.StringIO(), io.StringIO(), stdin) == 0
    assert len(collector.messages) == 2


@pytest.mark.parametrize(
    ("file", "rejects", "expected"),
    [
        ("export.jsonl", None, "export.jsonl.rejects.jsonl"),
        ("-", None, "rejects.jsonl"),
        ("export.jsonl", "mine.jsonl", "mine.jsonl"),
    ],
)
def test_rejects_path_defaults_beside_the_input(
    file: str, rejects: str | None, expected: str
) -> None:
    assert _replay.ReplayOptions(file=file, rejects=rejects).rejects_path == expected
