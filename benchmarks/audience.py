"""Benchmark: the diff sync of a large audience, with and without delivery.

Scenario: an audience of N members was synced before; its state is seeded straight into a
SQLite state file (sending N messages first would only benchmark HTTP). Since then
``--churn`` of the members left and as many new users joined, so the next sync has
``2 * churn * N`` changes to send. The members come from a generator of ids in scattered
order, as rows from a database would; generating them is part of the measured time.

Two runs, each in a fresh process (so each peak RSS is its own) from a copy of the seeded
state:

* ``diff only``: ``AudienceSync.preview``: reads the members, stages them in SQLite and
  computes the changes; sends and records nothing. This is the diff's own speed.
* ``sync``: ``AudienceSync.sync`` with a sync-mode client sending ``--concurrency``
  requests at once to a ``LocalCollector`` running in another process; every change is
  delivered, confirmed and recorded. The sync's progress callback times the diff and the
  delivery apart. Members per second are by wall time; the diff's CPU time (user + system,
this process) is shown too, as it is what a busy machine does not inflate.

Usage::

    python benchmarks/audience.py                   # 1,000,000 members, 1% churn
    python benchmarks/audience.py --members 20000   # a smoke run
"""

from __future__ import annotations

import argparse
import itertools
import json
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gainsight_segment as gs
from gainsight_segment.sync import AudienceSync, SQLiteStore, StateChange, SyncProgress
from gainsight_segment.testing import DEMO_ACCESS_KEY

KEY = "order_completed_last_30_days"
_MIX = 0x9E3779B97F4A7C15  # odd, so i -> i * _MIX mod 2**64 is a bijection

# The collector runs in its own process so that it competes with neither the sync for the
# GIL nor its peak RSS for the messages it keeps.
_COLLECTOR = """
import sys
from gainsight_segment.testing import LocalCollector
with LocalCollector() as collector:
    print(collector.endpoint, flush=True)
    sys.stdin.readline()
    print(len(collector.messages), flush=True)
"""


def user_id(i: int) -> str:
    """A 16-hex-digit id; consecutive ``i`` give scattered ids."""
    return f"{(i * _MIX) & 0xFFFFFFFFFFFFFFFF:016x}"


def current_members(n: int, churn: float) -> Iterator[str]:
    """The previous members ``0..n-1`` less the first ``churn * n``, plus as many new ones."""
    moved = int(n * churn)
    return (user_id(i) for i in itertools.chain(range(moved, n), range(n, n + moved)))


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Kilobytes on Linux, bytes on macOS.
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def seed(path: Path, n: int) -> None:
    with SQLiteStore(path) as store:
        members = (user_id(i) for i in range(n))
        while True:
            batch = [StateChange(u, "true", None) for u in itertools.islice(members, 50_000)]
            if not batch:
                return
            store.confirm(KEY, batch)


def run_diff(state: str, n: int, churn: float) -> dict[str, Any]:
    client = gs.Client(DEMO_ACCESS_KEY, send=False)
    with AudienceSync(client, KEY, state=state) as audience:
        start, cpu = time.perf_counter(), time.process_time()
        result = audience.preview(current_members(n, churn))
        seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    return {"diff": seconds, "diff_cpu": cpu, "changes": result.sent, "rss": peak_rss_mb()}


def run_sync(state: str, n: int, churn: float, endpoint: str, concurrency: int) -> dict[str, Any]:
    marks: dict[str, float] = {}

    def progress(event: SyncProgress) -> None:
        if event.phase == "sending" and event.done == 0:
            marks["diffed"] = time.perf_counter()
            marks["diffed_cpu"] = time.process_time()

    client = gs.Client(
        DEMO_ACCESS_KEY, endpoint=endpoint, sync_mode=True, workers=concurrency, exit_timeout=0
    )
    with client, AudienceSync(client, KEY, state=state) as audience:
        start, cpu = time.perf_counter(), time.process_time()
        result = audience.sync(current_members(n, churn), progress=progress)
        end = time.perf_counter()
    return {
        "diff": marks["diffed"] - start,
        "diff_cpu": marks["diffed_cpu"] - cpu,
        "send": end - marks["diffed"],
        "total": end - start,
        "sent": result.sent,
        "failed": result.failed,
        "rss": peak_rss_mb(),
    }


def in_child(*args: str) -> dict[str, Any]:
    output = subprocess.run(
        [sys.executable, __file__, *args], check=True, capture_output=True, text=True
    ).stdout
    result: dict[str, Any] = json.loads(output)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Benchmark an audience's diff sync.")
    parser.add_argument("--members", type=int, default=1_000_000, help="audience size")
    parser.add_argument("--churn", type=float, default=0.01, help="share of members replaced")
    parser.add_argument("--concurrency", type=int, default=8, help="requests at once")
    parser.add_argument("--run", choices=["diff", "sync"], help=argparse.SUPPRESS)
    parser.add_argument("--state", help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n, churn = args.members, args.churn

    if args.run == "diff":
        print(json.dumps(run_diff(args.state, n, churn)))
        return 0
    if args.run == "sync":
        print(json.dumps(run_sync(args.state, n, churn, args.endpoint, args.concurrency)))
        return 0

    common = ["--members", str(n), "--churn", str(churn), "--concurrency", str(args.concurrency)]
    workdir = Path(tempfile.mkdtemp(prefix="gainsight-audience-bench-"))
    try:
        seeded = workdir / "seeded.sqlite3"
        start = time.perf_counter()
        seed(seeded, n)
        seed_seconds = time.perf_counter() - start

        shutil.copyfile(seeded, workdir / "diff.sqlite3")
        diff = in_child(*common, "--run", "diff", "--state", str(workdir / "diff.sqlite3"))

        shutil.copyfile(seeded, workdir / "sync.sqlite3")
        with subprocess.Popen(
            [sys.executable, "-c", _COLLECTOR],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        ) as collector:
            assert collector.stdin is not None
            assert collector.stdout is not None
            endpoint = collector.stdout.readline().strip()
            sync = in_child(
                *common,
                "--run",
                "sync",
                "--state",
                str(workdir / "sync.sqlite3"),
                "--endpoint",
                endpoint,
            )
            collector.stdin.write("\n")
            collector.stdin.flush()
            received = int(collector.stdout.readline())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    expected = 2 * int(n * churn)
    print(
        f"Audience diff sync: {n:,} members, {churn:.1%} churn ({expected:,} changes); "
        f"state of {n:,} seeded in {seed_seconds:.1f} s. "
        f"Python {sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}.\n"
    )
    header = (
        "run",
        "wall time",
        "diff (CPU)",
        "diff: members/s",
        "delivery",
        "messages",
        "peak RSS",
    )
    rows = [
        (
            "diff only (preview)",
            f"{diff['diff']:.2f} s",
            f"{diff['diff']:.2f} s ({diff['diff_cpu']:.2f} s)",
            f"{n / diff['diff']:,.0f}",
            "-",
            f"0 sent ({diff['changes']:,} found)",
            f"{diff['rss']:.0f} MB",
        ),
        (
            f"sync, {args.concurrency} requests at once",
            f"{sync['total']:.2f} s",
            f"{sync['diff']:.2f} s ({sync['diff_cpu']:.2f} s)",
            f"{n / sync['diff']:,.0f}",
            f"{sync['send']:.2f} s ({sync['sent'] / sync['send']:,.0f} msg/s)",
            f"{sync['sent']:,} sent, {received:,} received",
            f"{sync['rss']:.0f} MB",
        ),
    ]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join("---" for _ in header) + "|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    if diff["changes"] != expected or sync["sent"] != expected or received != expected:
        print(f"error: expected {expected:,} changes", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
