#!/usr/bin/env python3
"""Measure the reliability scenarios and render their figures into docs/reliability.md.

The reliability and hardening tests (``tests/test_reliability*.py``,
``tests/test_hardening.py``) record what each scenario measured with ``record_figures``,
appending JSON lines to the file named by ``GAINSIGHT_RELIABILITY_FIGURES``. This script
does the rest, in two steps:

1. **Run** (the default): run those files with pytest, long scenarios included, one test at a
   time and without coverage, with the variable set; collect the figures and the facts of
   the run (date, Python, machine, pytest's counts, duration) into
   ``docs/_data/reliability.json``. A run in which a test fails writes nothing.
2. **Render**: rewrite every generated section of ``docs/reliability.md`` from that JSON.
   A generated section sits between two markers, which the page keeps::

       <!-- figures:begin summary -->
       ...generated, never edited by hand...
       <!-- figures:end summary -->

Usage::

    python scripts/reliability_figures.py              # run the scenarios, write, render
    python scripts/reliability_figures.py --render     # render from the committed JSON
    python scripts/reliability_figures.py --check      # fail if the page is out of date
    python scripts/reliability_figures.py -- -k outage # extra arguments go to pytest (no write)

``tests/test_docs.py`` runs the check, and also fails when a test records a scenario the JSON
does not hold: add a scenario, then run this script and commit the JSON and the page. A
scenario gets its row from ``ROWS`` below; one without a row is still shown, by its name and
raw figures, until it gets one. Scenarios recorded by ``tests/test_reliability_outbox.py``
fill the page's Outbox section.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "reliability.md"
DATA = ROOT / "docs" / "_data" / "reliability.json"
FIGURES_ENV = "GAINSIGHT_RELIABILITY_FIGURES"
TEST_FILES = ("tests/test_reliability*.py", "tests/test_hardening.py")
OUTBOX_FILE = "tests/test_reliability_outbox.py"

_BEGIN = re.compile(r"^<!-- figures:begin (?P<name>[a-z0-9-]+) -->$", re.MULTILINE)
_END = "<!-- figures:end {name} -->"

Figures = dict[str, Any]


# --- running the scenarios --------------------------------------------------------------------


def test_files() -> list[str]:
    """The files whose scenarios the page reports, relative to the repository."""
    found = {path for pattern in TEST_FILES for path in ROOT.glob(pattern)}
    return sorted(str(path.relative_to(ROOT)) for path in found)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _junit_counts(report: Path) -> tuple[dict[str, int], dict[str, float]]:
    """Pytest's counts, and each test's duration by node id, from a JUnit XML report."""
    tree = ElementTree.parse(report)
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "xfailed": 0}
    durations: dict[str, float] = {}
    for case in tree.iter("testcase"):
        path = case.get("classname", "").replace(".", "/")
        durations[f"{path}.py::{case.get('name')}"] = float(case.get("time") or 0)
        skipped = case.find("skipped")
        if case.find("failure") is not None:
            counts["failed"] += 1
        elif case.find("error") is not None:
            counts["errors"] += 1
        elif skipped is not None:
            xfail = skipped.get("type") == "pytest.xfail"
            counts["xfailed" if xfail else "skipped"] += 1
        else:
            counts["passed"] += 1
    return counts, durations


def run(pytest_args: list[str]) -> tuple[dict[str, Any], int]:
    """Run the scenario files; return the data for the JSON, and pytest's exit status."""
    files = test_files()
    with tempfile.TemporaryDirectory() as work:
        figures_path = Path(work) / "figures.jsonl"
        report = Path(work) / "junit.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            *files,
            "-m",
            "long or not long",
            "-n",
            "0",
            "--no-cov",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            *pytest_args,
        ]
        env = {**os.environ, FIGURES_ENV: str(figures_path)}
        print("$", shlex.join(["python", *command[1:]]), flush=True)
        started = time.monotonic()
        status = subprocess.call(command, cwd=ROOT, env=env)
        seconds = time.monotonic() - started
        counts, durations = _junit_counts(report) if report.exists() else ({}, {})
        lines = (
            figures_path.read_text(encoding="utf-8").splitlines() if figures_path.exists() else []
        )
    scenarios = []
    for line in lines:
        record = json.loads(line)
        test = record.pop("test", "")
        record["file"] = test.split("::", 1)[0]
        if test in durations:
            record["test_seconds"] = round(durations[test], 2)
        scenarios.append(record)
    scenarios.sort(key=lambda record: (record["file"], record["scenario"]))
    data = {
        "run": {
            "date": datetime.date.today().isoformat(),
            "python": f"{platform.python_version()} ({platform.python_implementation()})",
            "system": f"{platform.system()} {platform.release()}",
            "machine": platform.machine(),
            "cpu": _cpu_name(),
            "cpus": os.cpu_count(),
            "tests": counts,
            "seconds": round(seconds, 1),
            "files": files,
            "how": "one test at a time (-n 0), long scenarios included, coverage off",
        },
        "scenarios": scenarios,
    }
    return data, status


def load(path: Path = DATA) -> dict[str, Any]:
    """The committed figures."""
    return json.loads(path.read_text(encoding="utf-8"))


def save(data: dict[str, Any], path: Path = DATA) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# --- formatting -------------------------------------------------------------------------------


def n(value: float) -> str:
    """A count with thousands separators."""
    return f"{value:,}"


def s(value: float) -> str:
    """Seconds, as measured."""
    return f"{value:g} s"


def code(text: object) -> str:
    return f"`{text}`"


# --- the rows of the tables -------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One row of a table: the scenarios it covers, what was done, and what was measured.

    Attributes:
        match: A scenario name, or a prefix ending in ``-`` for a family of them.
        title: The row's name.
        done: What the scenario does to the client (may use the figures).
        measured: The figures, in words.
    """

    match: str
    title: str
    done: Callable[[list[Figures]], str]
    measured: Callable[[list[Figures]], str]

    def covers(self, name: str) -> bool:
        if self.match.endswith("-"):
            return name.startswith(self.match)
        return name == self.match


def one(records: list[Figures]) -> Figures:
    return records[0]


def _faults_done(r: list[Figures]) -> str:
    f = one(r)
    planned = f.get("planned", {})
    return (
        f"{n(f['sent'])} tracks through {f['workers']} senders, `timeout={f['timeout']}`; "
        f"the collector answers {planned.get('5xx', 0):.0%} 5xx and "
        f"{planned.get('429', 0):.0%} 429 with `Retry-After` of 0 to 1 s, drops "
        f"{planned.get('dropped', 0):.0%} of connections and holds "
        f"{planned.get('slow', 0):.0%} of answers past the timeout"
    )


def _faults_measured(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{n(f['delivered'])} delivered in {s(f['seconds'])} over {n(f['requests'])} requests; "
        f"{n(f['duplicated'])} duplicates, none beyond the client's own timeouts of that "
        f"message; {n(f['reported'])} reported"
    )


def _permanent_done(r: list[Figures]) -> str:
    statuses = ", ".join(sorted(x["scenario"].split("-", 1)[1] for x in r))
    return f"{r[0]['sent']} tracks per status, every request answered {statuses}"


def _permanent_measured(r: list[Figures]) -> str:
    requests = sum(x["requests"] for x in r)
    reported = sum(x["reported"] for x in r)
    return (
        f"{n(reported)} reported once each with their status, in {n(requests)} requests: "
        "none retried"
    )


def _outage_done(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{n(f['sent'])} tracks as a steady stream, {f['workers']} senders, "
        f"`max_retries={f['max_retries']}`; the collector's port closes mid-stream and opens "
        "again once 100 messages have run out of retries"
    )


def _outage_measured(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"outage of {s(f['outage_seconds'])}; {n(f['delivered'])} delivered "
        f"({n(f['delivered_after_restart'])} after it), {n(f['reported'])} reported, "
        f"{n(f['duplicated'])} twice"
    )


def _deadline_done(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{f['sent']} tracks, {f['workers']} senders, then "
        f"`shutdown(timeout={f['shutdown_timeout']:g})`, against a collector that never "
        "answers and a socket that never reads"
    )


def _deadline_measured(r: list[Figures]) -> str:
    times = " and ".join(s(x["shutdown_seconds"]) for x in r)
    return f"`shutdown()` returned after {times}; all {r[0]['sent']} reported each time"


def _fork_done(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"a parent queues 500 tracks and forks {f['children']} children while its senders "
        "are busy; each child sends 1,000, the parent 500 more"
    )


def _fork_measured(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{n(f['delivered'])} delivered, {n(f['duplicated'])} twice, in {s(f['seconds'])}; "
        "each child's counters start at zero"
    )


def _concurrency_done(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{f['producers']} threads send {n(f['sent'] // f['producers'])} tracks each through a "
        f'{n(f["max_queue_size"])}-message queue, `on_queue_full="block"`, {f["workers"]} '
        "senders"
    )


def _concurrency_measured(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{n(f['delivered'])} delivered once each in {s(f['seconds'])}; "
        f"{n(f['stats_snapshots_checked'])} `stats()` snapshots taken meanwhile, all reconciled"
    )


def _race_done(r: list[Figures]) -> str:
    return f"{one(r)['producers']} threads are sending when `shutdown(timeout=0)` is called"


def _race_measured(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{n(f['sent'])} calls made: {n(f['delivered'])} delivered, {n(f['reported'])} reported, "
        "later calls refused"
    )


def _hostile_done(r: list[Figures]) -> str:
    return (
        f"{n(one(r)['examples'])} generated calls with hostile values in every argument: "
        "NaN, huge and deep data, lone surrogates, cycles, odd ids and types"
    )


def _hostile_measured(r: list[Figures]) -> str:
    f = one(r)
    refused = sum(f["refused"].values())
    return (
        f"{n(f['built_and_delivered'])} built and delivered as strict JSON, {n(refused)} refused "
        f"with `InvalidMessageError`, nothing else raised; largest body {n(f['largest_body'])} "
        "bytes"
    )


def _secrecy_done(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{n(f['sent'])} tracks from {f['clients']} clients, every failure kind, a server "
        "echoing the key, logs at DEBUG"
    )


def _secrecy_measured(r: list[Figures]) -> str:
    f = one(r)
    return (
        f"{n(f['texts_checked'])} texts and {n(f['log_records'])} log records checked: "
        f"{f['key_leaks']} held the key"
    )


def _tls_done(r: list[Figures]) -> str:
    return (
        "an HTTPS server whose certificate a test CA signed, with default verification, the "
        "CA bundle, another CA, a wrong host name"
    )


def _tls_measured(r: list[Figures]) -> str:
    by_name = {x["scenario"]: x for x in r}
    refused = [x for name, x in by_name.items() if name != "tls"]
    received = sum(x.get("requests_received", 0) for x in refused)
    delivered = by_name.get("tls", {}).get("delivered", 0)
    return (
        f"{delivered} delivered with the CA bundle; the {len(refused)} others reported as "
        f"`tls`, with {received} requests reaching the server"
    )


RELIABILITY_ROWS = [
    Row("faults", "Faults", _faults_done, _faults_measured),
    Row("permanent-", "Permanent failures", _permanent_done, _permanent_measured),
    Row("outage", "Outage", _outage_done, _outage_measured),
    Row("deadline-", "Deadlines", _deadline_done, _deadline_measured),
    Row("fork", "Fork", _fork_done, _fork_measured),
    Row("concurrency", "Concurrency", _concurrency_done, _concurrency_measured),
    Row("shutdown-race", "Shutdown race", _race_done, _race_measured),
    Row("hostile-input", "Hostile input", _hostile_done, _hostile_measured),
    Row("key-secrecy", "Key secrecy", _secrecy_done, _secrecy_measured),
    Row("tls", "TLS", _tls_done, _tls_measured),
    Row("tls-", "TLS", _tls_done, _tls_measured),
]


def _row(match: str, title: str, done: str, measured: str) -> Row:
    """A row of one scenario: fixed words, filled with its figures by ``str.format``."""
    return Row(
        match,
        title,
        lambda r: done.format(**one(r)),
        lambda r: measured.format(**one(r)),
    )


HARDENING_ROWS = [
    _row(
        "two-flushes",
        "Two flushes",
        "two threads flush at once while answers take 1 s; one gives up after "
        "{timed_flush_timeout:g} s",
        "the timed one returned `False` after {timed_flush_seconds:g} s, the other `True` "
        "after {untimed_flush_seconds:g} s with all {delivered} delivered",
    ),
    _row(
        "with-block-exit",
        "Leaving a `with` block",
        "the block ends while another thread's `flush(timeout={timed_flush_timeout:g})` runs",
        "that flush gave up alone; the block ended after {block_exit_seconds:g} s, the "
        "message delivered",
    ),
    _row(
        "flush-from-on-error",
        "`flush()` in `on_error`",
        "a full queue calls `on_error` on the caller's thread, and it calls `flush()`",
        "the call returned in {call_seconds:g} s",
    ),
    _row(
        "shutdown-from-on-error",
        "`shutdown()` in `on_error`",
        "`on_error` calls `shutdown()` while `shutdown(timeout={shutdown_timeout:g})` runs, "
        "the server silent",
        "{shutdown_seconds:g} s; all {reported} messages reported",
    ),
    _row(
        "shutdown-from-sender-callback",
        "`shutdown()` in `on_success`",
        "a sender's `on_success` calls `shutdown()` while another thread shuts down",
        "{shutdown_seconds:g} s; all {delivered} delivered",
    ),
    _row(
        "exit-with-flushing-on-error",
        "Exit, `on_error` flushing",
        "the interpreter exits with {sent} tracks queued to a silent server, "
        "`exit_timeout={exit_timeout:g}`, and `on_error` calls `flush()`",
        "the process ended after {process_seconds:g} s, start-up included, status {exit_status}",
    ),
    _row(
        "shutdown-wakes-blocked-caller",
        "A caller blocked on a full queue",
        "a call waits for room (`block_timeout={block_timeout:g}`) when `shutdown()` begins",
        "it returned {woken_after_shutdown_began_seconds:g} s later, `DROPPED` with kind "
        "`shutdown`",
    ),
    _row(
        "fork-during-shutdown",
        "Fork during `shutdown()`",
        "a process forks while another thread is inside `shutdown()`; the child shuts down "
        "with `timeout={child_shutdown_timeout:g}`",
        "the child was done after {child_seconds:g} s, status {child_exit_status}",
    ),
    _row(
        "sync-mode-after-fork",
        "`sync_mode` after a fork",
        "parent and child send {calls_per_process} calls each at once through the same "
        "`sync_mode` client",
        "{crossed_answers} answers reached the wrong process",
    ),
    _row(
        "gzip-bomb",
        "Gzip bomb",
        "a 400 answer of {compressed_kb:,} KB of gzip that inflates to {inflated_mb} MB",
        "reported in {call_seconds:g} s; peak memory grew {rss_growth_mb:g} MB; "
        "{body_excerpt_chars} characters kept",
    ),
    _row(
        "huge-body",
        "Huge answer",
        "a 400 answer with a body of {body_mb} MB",
        "reported in {call_seconds:g} s; peak memory grew {rss_growth_mb:g} MB; "
        "{body_excerpt_chars} characters kept",
    ),
    _row(
        "trickling-server",
        "Trickling server",
        "the answer comes one byte every {byte_every_seconds:g} s; `timeout={timeout:g}`",
        "the attempt ended after {attempt_seconds:g} s as a `{error_kind}`",
    ),
    _row(
        "proxy-refusal",
        "Proxy refusal",
        "an `http://` endpoint with a proxy on another host",
        "refused by `Client(...)` with `ConfigurationError`; the key not in its text",
    ),
]


_ENDED = (
    "{calls_returned:,} calls returned, {waiting_at_kill:,} still in the file and "
    "{claimed_at_kill} claimed at the signal; a new client delivered them all ({delivered:,} "
    "with calls cut off after their write) in {drain_seconds:g} s, {duplicated} twice"
)
_UNUSABLE = (
    "{written_to_the_file:,} written to the file, {kept_in_memory:,} kept in memory; "
    "{raised} exceptions; {delivered:,} delivered, {reported} reported"
)
_OUTAGE = (
    "{waiting_at_recovery:,} messages in the file at recovery, warm-up included; all "
    "{delivered:,} delivered "
    "{recovery_seconds:g} s later, {duplicated} twice; memory grew {rss_growth_mb:g} MB"
)

# The outbox scenarios (tests/test_reliability_outbox.py): a scenario without a row here is
# shown by its name and raw figures.
OUTBOX_ROWS = [
    _row(
        "outbox-kill-9",
        "`kill -9`",
        "a process is killed in the middle of a burst of calls",
        _ENDED,
    ),
    _row(
        "outbox-sigterm",
        "SIGTERM",
        "a process is stopped with SIGTERM (no handler) in the middle of a burst of calls",
        _ENDED,
    ),
    _row(
        "outbox-four-writers-one-relay",
        "Four writers, one relay",
        "{writers} processes write {calls:,} calls to one file with `workers=0`; "
        "`gainsight-segment relay` drains it",
        "{caller_microseconds_per_call:g} µs per call in each writer; all {delivered:,} "
        "delivered in {seconds_to_deliver_all:g} s, {duplicated} twice",
    ),
    _row(
        "outbox-outage-refusing",
        "Outage, refused",
        "{events:,} calls at {rate} while the collector answers 503",
        _OUTAGE,
    ),
    _row(
        "outbox-outage-stalled",
        "Outage, stalled",
        "{events:,} calls at {rate} while the collector holds every answer",
        _OUTAGE,
    ),
    _row(
        "outbox-disk-full",
        "Disk full",
        "{calls:,} calls once the file may grow only 64 KB more (`RLIMIT_FSIZE`)",
        _UNUSABLE,
    ),
    _row(
        "outbox-read-only",
        "Read-only directory",
        "{calls:,} calls with the outbox in a directory the process cannot write",
        _UNUSABLE,
    ),
    _row(
        "outbox-corrupt",
        "Corrupt file",
        "{calls:,} calls with a file of garbage where the outbox should be",
        _UNUSABLE,
    ),
]


def lost(records: list[Figures]) -> str:
    values = [x["lost"] for x in records if "lost" in x]
    return n(sum(values)) if values else "—"


def _generic(name: str) -> Row:
    def measured(r: list[Figures]) -> str:
        shown = {k: v for k, v in one(r).items() if k not in ("scenario", "file", "lost")}
        return "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in shown.items())

    return Row(name, name.replace("-", " ").capitalize(), lambda r: "", measured)


def table_rows(records: list[Figures], rows: list[Row]) -> list[tuple[Row, list[Figures]]]:
    """Group the records by row, in the rows' order; a record without a row gets its own."""
    grouped: dict[str, tuple[Row, list[Figures]]] = {}
    for record in records:
        name = record["scenario"]
        row = next((row for row in rows if row.covers(name)), None) or _generic(name)
        key = row.title or name
        grouped.setdefault(key, (row, []))[1].append(record)
    order = {row.title: index for index, row in enumerate(rows)}
    return sorted(grouped.values(), key=lambda item: order.get(item[0].title, len(order)))


def table(records: list[Figures], rows: list[Row]) -> str:
    lines = [
        "| Scenario | What is done to the client | Measured | Lost |",
        "| --- | --- | --- | ---: |",
    ]
    for row, covered in table_rows(records, rows):
        cells = [row.title, row.done(covered), row.measured(covered), lost(covered)]
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(lines)


# --- the sections of the page -----------------------------------------------------------------


def by_file(data: dict[str, Any], *, outbox: bool) -> list[Figures]:
    return [
        x
        for x in data["scenarios"]
        if (x["file"] == OUTBOX_FILE) == outbox and x["file"] != "tests/test_hardening.py"
    ]


def hardening(data: dict[str, Any]) -> list[Figures]:
    return [x for x in data["scenarios"] if x["file"] == "tests/test_hardening.py"]


def render_verdict(data: dict[str, Any]) -> str:
    scenarios = data["scenarios"]
    accepted = sum(x.get("sent", 0) for x in scenarios)
    total_lost = sum(x.get("lost", 0) for x in scenarios)
    leaks = sum(x.get("key_leaks", 0) for x in scenarios)
    texts = sum(x.get("texts_checked", 0) for x in scenarios)
    passed = data["run"]["tests"].get("passed", 0)
    lost_words = "none was lost" if total_lost == 0 else f"**{n(total_lost)} were lost**"
    leak_words = "none showed it" if leaks == 0 else f"**{n(leaks)} showed it**"
    return "\n".join(
        [
            '!!! success "Verdict"',
            "",
            f"    - **Nothing lost.** Across {n(len(scenarios))} measured scenarios and "
            f"{n(accepted)} calls, every message a call accepted was delivered or reported "
            f"to `on_error`: {lost_words}. Duplicates came only from requests whose answer "
            "the client had stopped waiting for.",
            "    - **Deadlines hold.** `flush()`, `shutdown()` and the exit flush kept their "
            "deadlines, a callback that flushes or shuts down returned at once, and no server "
            "held an attempt past its `timeout` or made an answer grow in memory.",
            f"    - **The key stays secret.** Of {n(texts)} texts the app could see, "
            f"{leak_words}; plain HTTP to a remote host or proxy, redirects and unverified "
            f"TLS never carried it. ({n(passed)} tests passed in the run.)",
        ]
    )


def render_summary(data: dict[str, Any]) -> str:
    return table(by_file(data, outbox=False), RELIABILITY_ROWS)


def render_hardening(data: dict[str, Any]) -> str:
    return table(hardening(data), HARDENING_ROWS)


def render_run(data: dict[str, Any]) -> str:
    run_ = data["run"]
    tests = run_["tests"]
    others = ", ".join(
        f"{tests[k]} {k}" for k in ("skipped", "xfailed", "failed", "errors") if tests.get(k)
    )
    minutes, seconds = divmod(round(run_["seconds"]), 60)
    files = ", ".join(code(f) for f in run_["files"])
    return (
        f"The figures on this page come from one run on {run_['date']}, with Python "
        f"{run_['python']} on {run_['system']} ({run_['machine']}, {run_['cpus']} CPUs: "
        f"{run_['cpu']}): {n(tests.get('passed', 0))} tests passed"
        + (f" ({others})" if others else "")
        + f" in {minutes} min {seconds} s, {run_['how']}. The files: {files}."
    )


def render_faults(data: dict[str, Any]) -> str:
    found = [x for x in data["scenarios"] if x["scenario"] == "faults"]
    if not found:
        return "*Not measured in this run.*"
    f = found[0]
    injected = f["injected"]
    gaps = f["retry_after_min_gap"]
    rows = [
        ("requests the collector saw", n(f["requests"])),
        (
            "injected 5xx / 429 / dropped / held",
            " / ".join(f"{injected[k]:.1%}" for k in ("5xx", "429", "dropped", "slow")),
        ),
        ("messages delivered", n(f["delivered"])),
        (
            "duplicated copies",
            f"{n(f['duplicated'])}, of which {n(f['duplicated_from_held_answers'])} answers "
            "held past the timeout",
        ),
        ("client timeouts", n(f["client_timeouts"])),
        ("reported / lost", f"{n(f['reported'])} / {n(f['lost'])}"),
        (
            "retries",
            f"{n(f['retried'])} (at most {f['max_attempts_per_message']} attempts for one message)",
        ),
        (
            "shortest wait after `Retry-After: " + " / ".join(gaps) + "`",
            " / ".join(f"{v:g}" for v in gaps.values()) + " s",
        ),
        ("time to deliver them all", s(f["seconds"])),
    ]
    lines = ["| Figure | Value |", "| --- | ---: |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def render_outbox(data: dict[str, Any]) -> str:
    records = by_file(data, outbox=True)
    if not records:
        return ""
    return "\n".join(
        [
            "## Outbox",
            "",
            "With `Client(outbox=...)`, messages are written to an SQLite file before the call "
            "returns and deleted only once delivered; these scenarios end the process in "
            f"every way and count what the file still delivers (`{OUTBOX_FILE}`).",
            "",
            table(records, OUTBOX_ROWS),
        ]
    )


SECTIONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "verdict": render_verdict,
    "summary": render_summary,
    "hardening": render_hardening,
    "run": render_run,
    "faults": render_faults,
    "outbox": render_outbox,
}


def render(page: str, data: dict[str, Any]) -> str:
    """The page with every generated section rewritten from ``data``."""
    out: list[str] = []
    position = 0
    for begin in _BEGIN.finditer(page):
        name = begin["name"]
        if name not in SECTIONS:
            raise SystemExit(f"{PAGE.name}: no section named {name!r} can be generated")
        end = page.find(_END.format(name=name), begin.end())
        if end < 0:
            raise SystemExit(f"{PAGE.name}: {begin.group()} has no end marker")
        body = SECTIONS[name](data).strip()
        out += [page[position : begin.end()], "\n"]
        if body:
            out += [body, "\n"]
        position = end
    out.append(page[position:])
    return "".join(out)


def sections(page: str) -> dict[str, str]:
    """The generated sections of a page, by name (for the tests)."""
    found = {}
    for begin in _BEGIN.finditer(page):
        end = page.find(_END.format(name=begin["name"]), begin.end())
        found[begin["name"]] = page[begin.end() : end].strip()
    return found


# --- recorded names, for the tests ------------------------------------------------------------

_RECORDED = re.compile(r"record_figures\(\s*(?P<f>f?)(?P<q>[\"'])(?P<name>[^\"']+)(?P=q)")


def recorded_names(files: Iterable[Path]) -> list[tuple[str, re.Pattern[str]]]:
    """Each scenario name passed to ``record_figures`` in the files, as a pattern.

    The fixed parts of an f-string must match; each ``{...}`` stands for any text.
    """
    found = []
    for path in files:
        for match in _RECORDED.finditer(path.read_text(encoding="utf-8")):
            name = match["name"]
            if match["f"]:
                parts = re.split(r"\{[^}]*\}", name)
                pattern = ".+".join(re.escape(part) for part in parts)
            else:
                pattern = re.escape(name)
            found.append((name, re.compile(pattern)))
    return found


# --- the command ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--render", action="store_true", help="render from the committed JSON")
    mode.add_argument("--check", action="store_true", help="fail if the page is out of date")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest (no write)")
    args = parser.parse_args(argv)
    if args.check:
        page = PAGE.read_text(encoding="utf-8")
        if render(page, load()) != page:
            print(
                f"{PAGE.relative_to(ROOT)} differs from what {DATA.relative_to(ROOT)} renders "
                "to: run `python scripts/reliability_figures.py --render`",
                file=sys.stderr,
            )
            return 1
        print(f"{PAGE.relative_to(ROOT)} is what {DATA.relative_to(ROOT)} renders to")
        return 0
    if not args.render:
        data, status = run(args.pytest_args)
        if status != 0:
            print(f"pytest exited with status {status}: nothing written", file=sys.stderr)
            return status
        if args.pytest_args:
            print(json.dumps(data, indent=2))
            print("a partial run (pytest arguments given): nothing written", file=sys.stderr)
            return 0
        save(data)
        print(f"wrote {DATA.relative_to(ROOT)}: {len(data['scenarios'])} scenarios")
    # Read only now: the page may have been edited while the scenarios ran.
    page = PAGE.read_text(encoding="utf-8")
    PAGE.write_text(render(page, load()), encoding="utf-8")
    print(f"rendered {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
