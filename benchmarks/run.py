"""Benchmarks: gainsight-segment against Segment's analytics-python and a raw urllib3 loop.

Setup (from the repository root; the venv path is git-ignored):

    python3 -m venv benchmarks/.venv
    benchmarks/.venv/bin/pip install -e . -r benchmarks/requirements.txt

Run:

    benchmarks/.venv/bin/python benchmarks/run.py                  # everything, 5 repeats
    benchmarks/.venv/bin/python benchmarks/run.py --quick          # smoke run for CI, seconds
    benchmarks/.venv/bin/python benchmarks/run.py --only caller --repeats 9
    benchmarks/.venv/bin/python benchmarks/run.py --output /tmp/perf.md
    benchmarks/.venv/bin/python benchmarks/run.py --source HEAD    # the committed library

Scenarios (``--only`` takes these names, comma-separated):

    caller      Caller cost: microseconds per track() in each SDK's default asynchronous mode,
                small / 2 KB / 20 KB properties, 1 / 2 / 4 / 8 producer threads.
    throughput  Delivered events per second to a fast local server, one message per request:
                ours vs a raw urllib3 keep-alive loop with as many connections, at 0 and 50 ms
                of server latency; the server's own ceiling; Segment's batching client shown
                apart (a different API, 100 messages per request: not comparable).
    memory      RSS growth with 100,000 messages queued behind a server that never answers.
    import      ``import gainsight_segment`` vs ``import requests``.
    replay      ``gainsight-segment replay`` of a 100,000-line JSON Lines file.

Every measured run is a fresh subprocess (``benchmarks/workloads.py``); contenders are
interleaved (A B B A ...) so that drift on this shared machine hits both; medians are
reported. The machine table says whether the library's source files changed while the
benchmark ran (a shared checkout); ``--source REV`` measures ``gainsight_segment/`` as
committed at REV instead of the working tree. See docs/performance.md for what each number
means.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import functools
import hashlib
import importlib.metadata
import importlib.util
import io
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads.py"
FAST_SERVER = HERE / "fastserver.py"
# Children that import the library run from here, never from the repository root: with
# ``-c`` or ``-m`` the working directory comes first on sys.path, ahead of ``--source``.
CHILD_CWD = tempfile.gettempdir()
SCENARIOS = ("caller", "throughput", "memory", "import", "replay")
ACCESS_KEY = "00000000-0000-4000-8000-000000000000"
SETUP = (
    "python3 -m venv benchmarks/.venv\n"
    "benchmarks/.venv/bin/pip install -e . -r benchmarks/requirements.txt"
)
_COLLECTOR_CODE = (
    "import sys, time\n"
    "from gainsight_segment.testing import LocalCollector\n"
    "collector = LocalCollector()\n"
    "collector.start()\n"
    "print(collector.port, flush=True)\n"
    "time.sleep(1e9)\n"
)


@dataclass(frozen=True)
class Config:
    """Sizes of one benchmark run; ``--quick`` shrinks them all."""

    repeats: int = 5
    caller_warmup: int = 100
    # (payload bytes, producer threads, calls): fewer calls for the bigger payloads, so that a
    # run stays near a second; never more than our default max_queue_size (10,000), so that
    # a default client cannot drop.
    caller_cases: tuple[tuple[int, int, int], ...] = (
        (0, 1, 8000),
        (2048, 1, 4000),
        (20480, 1, 1000),
        (0, 2, 8000),
        (0, 4, 8000),
        (0, 8, 8000),
    )
    # Ours again for (small, 1 thread) with these numbers of sender threads instead of the
    # default: how much of the caller's wall time the sender threads take.
    caller_workers: tuple[int, ...] = (1, 4)
    throughput_messages: int = 4000
    throughput_workers: tuple[int, ...] = (4, 8, 16)
    latency: float = 0.05
    latency_rounds: int = 20
    load_processes: int = 2
    load_connections: int = 8
    load_duration: float = 2.0
    # Load processes start together this long after they are launched (imports first).
    load_start_delay: float = 1.5
    memory_messages: int = 100_000
    import_runs: int = 30
    replay_lines: int = 100_000
    # Replay runs min(repeats, replay_repeats) times: each run takes about a minute.
    replay_repeats: int = 2


QUICK = Config(
    repeats=1,
    caller_warmup=5,
    caller_cases=((0, 1, 200), (2048, 1, 200), (20480, 1, 100), (0, 2, 200)),
    caller_workers=(1,),
    throughput_messages=200,
    throughput_workers=(4,),
    latency=0.02,
    latency_rounds=2,
    load_processes=1,
    load_connections=4,
    load_duration=0.3,
    load_start_delay=0.5,
    memory_messages=2000,
    import_runs=2,
    replay_lines=300,
    replay_repeats=1,
)


@dataclass
class Samples:
    """Per-run values of one measurement."""

    values: list[float] = field(default_factory=list)

    def add(self, value: float) -> None:
        self.values.append(value)

    @property
    def median(self) -> float:
        return statistics.median(self.values) if self.values else float("nan")

    def spread(self, digits: int = 1) -> str:
        """``median (min-max)`` for the detail tables."""
        if not self.values:
            return "n/a"
        if len(self.values) == 1:
            return _num(self.values[0], digits)
        low, high = min(self.values), max(self.values)
        return f"{_num(self.median, digits)} ({_num(low, digits)}-{_num(high, digits)})"


@dataclass
class SummaryRow:
    scenario: str
    metric: str
    ours: str
    reference: str
    ratio: float | None
    target: str
    met: bool | None


@dataclass
class Report:
    """What the scenarios found: the summary rows and one markdown section each."""

    rows: list[SummaryRow] = field(default_factory=list)
    sections: list[str] = field(default_factory=list)


def _num(value: float, digits: int = 1) -> str:
    if value != value:  # NaN
        return "n/a"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _log(text: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


def _interleaved(contenders: Sequence[str], repeat: int) -> list[str]:
    """A B on even repeats, B A on odd ones: drift and order effects hit both alike."""
    return list(contenders) if repeat % 2 == 0 else list(reversed(contenders))


def run_workload(spec: dict[str, Any], timeout: float = 600.0) -> dict[str, Any]:
    """Run one workload in a fresh interpreter and return its JSON result."""
    done = subprocess.run(
        [sys.executable, str(WORKLOADS), json.dumps(spec)],
        cwd=CHILD_CWD,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise RuntimeError(
            f"workload {spec['workload']} failed ({done.returncode}): {done.stderr[-2000:]}"
        )
    result: dict[str, Any] = json.loads(lines[-1])
    return result


@functools.cache
def _default_workers() -> int:
    """The installed client's default ``workers`` (from its public signature, in a child)."""
    code = (
        "import inspect, gainsight_segment as gs; "
        "print(inspect.signature(gs.Client).parameters['workers'].default)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CHILD_CWD
    )
    return int(done.stdout)


@contextlib.contextmanager
def server(
    kind: str = "fast", latency: float = 0.0, stall: bool = False
) -> Iterator[tuple[str, int]]:
    """Start a local server in its own process; yield its endpoint and pid."""
    if kind == "fast":
        command = [sys.executable, str(FAST_SERVER), "--latency", str(latency)]
        if stall:
            command.append("--stall")
    else:
        command = [sys.executable, "-c", _COLLECTOR_CODE]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=CHILD_CWD)
    try:
        assert process.stdout is not None
        port = int(process.stdout.readline())
        yield f"http://127.0.0.1:{port}", process.pid
    finally:
        process.terminate()
        try:
            process.wait(5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


# machine facts ------------------------------------------------------------------------------


def machine_facts(source: str | None = None) -> list[tuple[str, str]]:
    """CPU, cores, OS, Python and the versions of everything measured.

    ``source`` names the commit exported by ``--source``; ``None`` means the working tree.
    """
    cpu = "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo", encoding="utf-8") as info:
        for line in info:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    facts = [
        ("CPU", cpu),
        ("cores", f"{os.cpu_count()} logical, {usable} usable"),
        ("OS", f"{platform.system()} {platform.release()}"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("load average at start", " ".join(f"{x:.2f}" for x in os.getloadavg())),
    ]
    facts.append(
        (
            "gainsight-segment source",
            _source_revision()
            if source is None
            else f"{source} (exported with `--source`; working-tree edits not measured)",
        )
    )
    for package in (
        "gainsight-segment",
        "segment-analytics-python",
        "requests",
        "urllib3",
        "attrs",
    ):
        try:
            version = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            version = "not installed"
        facts.append((package, version))
    return facts


def _source_revision() -> str:
    """The commit measured, and whether the library had uncommitted changes."""
    root = HERE.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "gainsight_segment"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown (not a git checkout)"
    return head + (" + uncommitted changes in gainsight_segment/" if dirty else "")


def _export_source(revision: str) -> tuple[str, str]:
    """Export ``gainsight_segment/`` as committed at ``revision`` to a temporary folder.

    The folder goes first on the children's ``PYTHONPATH``, ahead of the editable install,
    so that edits made to the working tree while the benchmark runs (a shared checkout)
    cannot change what is measured. Returns the folder and the short commit id.
    """
    root = str(HERE.parent)
    short = subprocess.run(
        ["git", "-C", root, "rev-parse", "--short", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    archive = subprocess.run(
        ["git", "-C", root, "archive", "--format=tar", short, "gainsight_segment"],
        capture_output=True,
        check=True,
    ).stdout
    folder = tempfile.mkdtemp(prefix="gs-bench-source-")
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(folder, filter="data")
        else:  # Pythons without extraction filters
            tar.extractall(folder)  # our own repository's archive
    os.environ["PYTHONPATH"] = os.pathsep.join(
        part for part in (folder, os.environ.get("PYTHONPATH", "")) if part
    )
    return folder, short


def _library_dir() -> Path:
    """Where the children import ``gainsight_segment`` from."""
    code = "import gainsight_segment, os; print(os.path.dirname(gainsight_segment.__file__))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CHILD_CWD
    )
    return Path(done.stdout.strip())


def _library_fingerprint(folder: Path) -> str:
    """A digest of the library's source files."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(str(path).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


# 1. caller cost -----------------------------------------------------------------------------


def scenario_caller(config: Config, report: Report) -> None:
    contenders = ("ours", "peer")
    wall: dict[tuple[int, int, str], Samples] = {}
    cpu: dict[tuple[int, int, str], Samples] = {}
    process: dict[tuple[int, int, str], Samples] = {}
    backlog: dict[tuple[int, int, str], Samples] = {}
    # Per run: the SDK's own threads' CPU during the burst (process CPU minus the producers'),
    # per call and per message they took off the queue during the burst.
    sdk_cpu: dict[tuple[int, int, str], Samples] = {}
    sdk_cpu_per_sent: dict[tuple[int, int, str], Samples] = {}
    drops: dict[str, int] = dict.fromkeys(contenders, 0)
    with server() as (endpoint, _):
        for repeat in range(config.repeats):
            for payload, threads, calls in config.caller_cases:
                for sdk in _interleaved(contenders, repeat):
                    result = run_workload(
                        {
                            "workload": "caller_cost",
                            "sdk": sdk,
                            "endpoint": endpoint,
                            "calls": calls,
                            "threads": threads,
                            "payload": payload,
                            "warmup": config.caller_warmup,
                        }
                    )
                    key = (payload, threads, sdk)
                    wall.setdefault(key, Samples()).add(result["us_per_call"])
                    cpu.setdefault(key, Samples()).add(result["cpu_us_per_call"])
                    process.setdefault(key, Samples()).add(result["process_cpu_us_per_call"])
                    backlog.setdefault(key, Samples()).add(result["pending_at_end"])
                    background = result["process_cpu_us_per_call"] - result["cpu_us_per_call"]
                    sdk_cpu.setdefault(key, Samples()).add(background)
                    taken = result["calls"] - result["pending_at_end"]
                    if taken > 0:
                        per_sent = background * result["calls"] / taken
                        sdk_cpu_per_sent.setdefault(key, Samples()).add(per_sent)
                    drops[sdk] += result["dropped"]
            for workers in config.caller_workers:
                calls = config.caller_cases[0][2]
                result = run_workload(
                    {
                        "workload": "caller_cost",
                        "sdk": "ours",
                        "endpoint": endpoint,
                        "calls": calls,
                        "threads": 1,
                        "payload": 0,
                        "warmup": config.caller_warmup,
                        "workers": workers,
                    }
                )
                key = (0, 1, f"ours-{workers}")
                wall.setdefault(key, Samples()).add(result["us_per_call"])
                cpu.setdefault(key, Samples()).add(result["cpu_us_per_call"])
                background = result["process_cpu_us_per_call"] - result["cpu_us_per_call"]
                sdk_cpu.setdefault(key, Samples()).add(background)
                backlog.setdefault(key, Samples()).add(result["pending_at_end"])
                drops["ours"] += result["dropped"]
            _log(f"caller: repeat {repeat + 1}/{config.repeats} done")
    rows = []
    where = []
    for payload, threads, calls in config.caller_cases:
        ours, peer = wall[(payload, threads, "ours")], wall[(payload, threads, "peer")]
        ratio = ours.median / peer.median
        ours_cpu, peer_cpu = cpu[(payload, threads, "ours")], cpu[(payload, threads, "peer")]
        cpu_ratio = ours_cpu.median / peer_cpu.median
        label = {0: "small", 2048: "2 KB", 20480: "20 KB"}.get(payload, f"{payload} B")
        rows.append(
            [
                label,
                str(threads),
                f"{calls:,}",
                ours.spread(),
                peer.spread(),
                f"{ratio:.2f}x",
                _num(ours_cpu.median),
                _num(peer_cpu.median),
                f"{cpu_ratio:.2f}x",
                _num(process[(payload, threads, "ours")].median),
                _num(process[(payload, threads, "peer")].median),
                _num(backlog[(payload, threads, "ours")].median, 0),
                _num(backlog[(payload, threads, "peer")].median, 0),
            ]
        )
        for name, sdk in (("ours", "ours"), ("Segment", "peer")):
            key = (payload, threads, sdk)
            own, background = cpu[key].median, sdk_cpu[key].median
            total = wall[key].median
            per_sent = sdk_cpu_per_sent.get(key, Samples()).median
            where.append(
                [
                    label,
                    str(threads),
                    name,
                    _num(total),
                    f"{_num(own)} ({own / total:.0%})",
                    f"{_num(background)} ({background / total:.0%})",
                    _num(calls - backlog[key].median, 0),
                    _num(per_sent),
                ]
            )
        report.rows.append(
            SummaryRow(
                "1. caller cost",
                f"us per track(), {label}, {threads} thread{'s' * (threads > 1)}",
                _num(ours.median),
                f"{_num(peer.median)} (Segment)",
                ratio,
                "<= 0.25x",
                ratio <= 0.25,
            )
        )
        if (payload, threads) == (0, 1):
            report.rows.append(
                SummaryRow(
                    "1. caller cost",
                    "caller-thread CPU us per track(), small, 1 thread (diagnostic)",
                    _num(ours_cpu.median),
                    f"{_num(peer_cpu.median)} (Segment)",
                    cpu_ratio,
                    "-",
                    None,
                )
            )
            ours_bg, peer_bg = sdk_cpu[(0, 1, "ours")], sdk_cpu[(0, 1, "peer")]
            report.rows.append(
                SummaryRow(
                    "1. caller cost",
                    "SDK-thread CPU us per track() during the burst, small, 1 thread (diagnostic)",
                    _num(ours_bg.median),
                    f"{_num(peer_bg.median)} (Segment)",
                    ours_bg.median / peer_bg.median if peer_bg.median > 0 else None,
                    "-",
                    None,
                )
            )
    report.sections.append(
        "### 1. Caller cost (microseconds per `track()`, lower is better)\n\n"
        "Both SDKs in their default asynchronous mode, delivering to the fast server while the "
        f"calls run; ours with default settings ({_default_workers()} sender threads), "
        "Segment's with `max_queue_size=200_000` (else defaults: one consumer thread, batches "
        "of 100) so it cannot drop. Each run (a fresh process): "
        f"{config.caller_warmup} warm-up calls and a flush, then the timed calls split evenly "
        "over the producer threads. **wall** = wall time of the whole burst (all producer "
        "threads) / calls: what the app pays, contention for the GIL with the SDK's background "
        "threads included; **CPU** = the producer threads' own CPU time / calls (steady under "
        "outside load); **process CPU** = the whole process's CPU time during the burst / calls "
        "(the SDK's background threads included); **backlog** = "
        "messages still queued when the burst ended. Median (min-max) of "
        f"{config.repeats} runs.\n\n"
        + _table(
            [
                "payload",
                "threads",
                "calls",
                "ours wall",
                "Segment wall",
                "ratio",
                "ours CPU",
                "Segment CPU",
                "CPU ratio",
                "ours process CPU",
                "Segment process CPU",
                "ours backlog",
                "Segment backlog",
            ],
            rows,
        )
        + f"\n\nDropped messages over all runs: ours {drops['ours']}, Segment {drops['peer']}."
        + "\n\n**Where the wall time of a call goes.** The producer threads' own CPU, and the "
        "CPU the SDK's background threads used during the burst (process CPU minus the "
        "producers'; in CPython they hold the GIL for most of it, so the producers wait), both "
        "per call and as a share of the wall time; the messages the background threads took "
        "off the queue during the burst (calls minus backlog), and their CPU per such message. "
        "Medians.\n\n"
        + _table(
            [
                "payload",
                "threads",
                "SDK",
                "wall us/call",
                "caller-thread CPU us/call (share of wall)",
                "SDK-thread CPU us/call (share of wall)",
                "messages taken during the burst",
                "SDK-thread CPU us per message taken",
            ],
            where,
        )
        + _caller_workers_text(config, wall, cpu, sdk_cpu, backlog)
    )


def _caller_workers_text(
    config: Config,
    wall: dict[tuple[int, int, str], Samples],
    cpu: dict[tuple[int, int, str], Samples],
    sdk_cpu: dict[tuple[int, int, str], Samples],
    backlog: dict[tuple[int, int, str], Samples],
) -> str:
    """Ours, small properties, one producer thread, with fewer sender threads."""
    if not config.caller_workers:
        return ""
    default = _default_workers()
    peer = wall[(0, 1, "peer")].median
    calls = config.caller_cases[0][2]
    rows = []
    for workers in sorted({*config.caller_workers, default}):
        key = (0, 1, "ours" if workers == default else f"ours-{workers}")
        rows.append(
            [
                f"{workers}{' (default)' if workers == default else ''}",
                wall[key].spread(),
                f"{wall[key].median / peer:.2f}x",
                _num(cpu[key].median),
                _num(sdk_cpu[key].median),
                _num(calls - backlog[key].median, 0),
            ]
        )
    return (
        "\n\n**The same burst with fewer sender threads** (ours, small properties, one "
        f"producer thread, {calls:,} calls; `workers=N`, else default settings; the ratio is "
        "to Segment's wall time above). Median (min-max) of "
        f"{config.repeats} runs.\n\n"
        + _table(
            [
                "workers",
                "wall us/call",
                "ratio to Segment",
                "caller-thread CPU us/call",
                "SDK-thread CPU us/call",
                "messages taken during the burst",
            ],
            rows,
        )
    )


# 2. throughput ------------------------------------------------------------------------------


def _server_ceiling(config: Config, kind: str) -> float:
    with server(kind) as (endpoint, _):
        start_at = time.time() + config.load_start_delay
        processes = [
            subprocess.Popen(
                [
                    sys.executable,
                    str(WORKLOADS),
                    json.dumps(
                        {
                            "workload": "load",
                            "endpoint": endpoint,
                            "connections": config.load_connections,
                            "start_at": start_at,
                            "duration": config.load_duration,
                        }
                    ),
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(config.load_processes)
        ]
        total = 0
        for process in processes:
            out, _ = process.communicate(timeout=120)
            total += json.loads(out.strip().splitlines()[-1])["requests"]
        return total / config.load_duration


def scenario_throughput(config: Config, report: Report) -> None:
    ceilings: dict[str, Samples] = {"fast": Samples(), "stdlib": Samples()}
    for repeat in range(config.repeats):
        for kind in _interleaved(("fast", "stdlib"), repeat):
            ceilings[kind].add(_server_ceiling(config, kind))
    _log("throughput: server ceilings done")

    rate: dict[tuple[float, int, str], Samples] = {}
    server_cpu: dict[tuple[float, int, str], Samples] = {}
    client_cpu: dict[tuple[float, int, str], Samples] = {}
    delivered_ok = True
    for latency in (0.0, config.latency):
        with server("fast", latency=latency) as (endpoint, pid):
            for repeat in range(config.repeats):
                for workers in config.throughput_workers:
                    messages = (
                        config.throughput_messages
                        if latency == 0
                        else workers * config.latency_rounds
                    )
                    for who in _interleaved(("ours", "raw"), repeat):
                        spec: dict[str, Any] = {
                            "endpoint": endpoint,
                            "messages": messages,
                            "workers": workers,
                            "server_pid": pid,
                        }
                        if who == "ours":
                            spec.update(workload="sdk_throughput", sdk="ours")
                        else:
                            spec["workload"] = "raw_throughput"
                        result = run_workload(spec)
                        if who == "ours" and result.get("delivered") != messages:
                            delivered_ok = False
                        key = (latency, workers, who)
                        rate.setdefault(key, Samples()).add(result["events_per_s"])
                        server_cpu.setdefault(key, Samples()).add(result["server_cpu"] * 100)
                        client_cpu.setdefault(key, Samples()).add(result["client_cpu"] * 100)
                if latency == 0:
                    result = run_workload(
                        {
                            "workload": "sdk_throughput",
                            "sdk": "peer",
                            "endpoint": endpoint,
                            "messages": config.throughput_messages,
                            "workers": 1,
                            "server_pid": pid,
                        }
                    )
                    key = (0.0, 1, "peer")
                    rate.setdefault(key, Samples()).add(result["events_per_s"])
                    server_cpu.setdefault(key, Samples()).add(result["server_cpu"] * 100)
                    client_cpu.setdefault(key, Samples()).add(result["client_cpu"] * 100)
            _log(f"throughput: latency {latency * 1000:g} ms done")

    fast, stdlib = ceilings["fast"].median, ceilings["stdlib"].median
    rows = []
    for workers in config.throughput_workers:
        ours, raw = rate[(0.0, workers, "ours")], rate[(0.0, workers, "raw")]
        ratio = ours.median / raw.median
        rows.append(
            [
                "0 ms",
                str(workers),
                ours.spread(0),
                raw.spread(0),
                f"{ratio:.2f}x of raw",
                f"{server_cpu[(0.0, workers, 'ours')].median:.0f}%",
                f"{client_cpu[(0.0, workers, 'ours')].median:.0f}%",
                f"{client_cpu[(0.0, workers, 'raw')].median:.0f}%",
            ]
        )
        default = " (default)" if workers == _default_workers() else ""
        report.rows.append(
            SummaryRow(
                "2. throughput",
                f"events/s, 0 ms latency, {workers} workers{default}",
                _num(ours.median, 0),
                f"{_num(raw.median, 0)} (raw urllib3)",
                ratio,
                ">= 0.8x",
                ratio >= 0.8,
            )
        )
    ms = config.latency * 1000
    for workers in config.throughput_workers:
        lat = config.latency
        ours, raw = rate[(lat, workers, "ours")], rate[(lat, workers, "raw")]
        ideal = workers / config.latency
        ratio = ours.median / ideal
        rows.append(
            [
                f"{ms:g} ms",
                str(workers),
                ours.spread(0),
                raw.spread(0),
                f"{ratio:.2f}x of ideal {ideal:,.0f}",
                f"{server_cpu[(lat, workers, 'ours')].median:.0f}%",
                f"{client_cpu[(lat, workers, 'ours')].median:.0f}%",
                f"{client_cpu[(lat, workers, 'raw')].median:.0f}%",
            ]
        )
        report.rows.append(
            SummaryRow(
                "2. throughput",
                f"events/s, {ms:g} ms latency, {workers} workers",
                _num(ours.median, 0),
                f"{ideal:,.0f} (ideal workers/latency)",
                ratio,
                ">= 0.9x",
                ratio >= 0.9,
            )
        )
    peer = rate[(0.0, 1, "peer")]
    report.rows.append(
        SummaryRow(
            "2. throughput",
            "fast server ceiling, req/s (raw sockets)",
            _num(fast, 0),
            f"{_num(stdlib, 0)} (stdlib LocalCollector)",
            None,
            "not the bottleneck",
            None,
        )
    )
    report.sections.append(
        "### 2. Delivery throughput (events per second delivered, higher is better)\n\n"
        "One message per request to `benchmarks/fastserver.py` in its own process. "
        f"0 ms: {config.throughput_messages:,} messages per run; {ms:g} ms: "
        f"{config.latency_rounds} rounds (workers x {config.latency_rounds} messages). Ours: "
        "time from the first `track()` to the end of `flush()` (message building included), "
        "`max_queue_size` raised to hold the burst. Raw: a bare `urllib3.HTTPConnectionPool` "
        "keep-alive loop, as many threads/connections as our workers, the same pre-built body "
        "and headers. Server CPU / client CPU = CPU seconds / wall seconds of the run "
        "(100% = one core). Median (min-max) of "
        f"{config.repeats} runs.\n\n"
        + _table(
            [
                "latency",
                "workers",
                "ours",
                "raw urllib3",
                "ratio",
                "server CPU (ours)",
                "client CPU (ours)",
                "client CPU (raw)",
            ],
            rows,
        )
        + "\n\nServer ceiling (raw-socket load generator, "
        f"{config.load_processes} process(es) x {config.load_connections} keep-alive "
        f"connections, {config.load_duration:g} s): fast server **{_num(fast, 0)} req/s**, "
        f"stdlib `LocalCollector` {_num(stdlib, 0)} req/s. "
        + ("All" if delivered_ok else "NOT all")
        + " messages of our runs were counted delivered.\n\n"
        "Not comparable, shown apart: Segment's `analytics-python` (one consumer thread, "
        "batches of up to 100 messages per `POST /v1/batch`, default settings) delivered "
        f"{peer.spread(0)} events/s to the same server at 0 ms "
        f"(client CPU {client_cpu[(0.0, 1, 'peer')].median:.0f}%)."
    )


# 3. memory ----------------------------------------------------------------------------------


def scenario_memory(config: Config, report: Report) -> None:
    contenders = ("ours", "peer")
    growth: dict[str, Samples] = {sdk: Samples() for sdk in contenders}
    pending: dict[str, Samples] = {sdk: Samples() for sdk in contenders}
    drops = dict.fromkeys(contenders, 0)
    with server("fast", stall=True) as (endpoint, _):
        for repeat in range(config.repeats):
            for sdk in _interleaved(contenders, repeat):
                result = run_workload(
                    {
                        "workload": "memory",
                        "sdk": sdk,
                        "endpoint": endpoint,
                        "messages": config.memory_messages,
                    }
                )
                growth[sdk].add(result["rss_growth_kib"] / 1024)
                pending[sdk].add(result["pending"])
                drops[sdk] += result["dropped"]
            _log(f"memory: repeat {repeat + 1}/{config.repeats} done")
        # Once each: tracemalloc's counts do not vary from run to run.
        breakdown = {
            sdk: run_workload(
                {
                    "workload": "memory_breakdown",
                    "sdk": sdk,
                    "endpoint": endpoint,
                    "messages": config.memory_messages,
                }
            )
            for sdk in contenders
        }
        _log("memory: tracemalloc breakdown done")
    ours, peer = growth["ours"], growth["peer"]
    ratio = ours.median / peer.median if peer.median else float("nan")
    per_message = {sdk: growth[sdk].median * 1024 * 1024 / config.memory_messages for sdk in growth}
    report.rows.append(
        SummaryRow(
            "3. memory",
            f"RSS growth, MiB, {config.memory_messages:,} queued",
            _num(ours.median),
            f"{_num(peer.median)} (Segment)",
            ratio,
            "<= 0.3x",
            ratio <= 0.3,
        )
    )
    report.sections.append(
        "### 3. Memory (RSS growth with messages queued, lower is better)\n\n"
        f"{config.memory_messages:,} small track messages queued behind a server that accepts "
        "connections and never answers; both clients with `max_queue_size=100_000`. RSS from "
        "/proc/self/status, after `gc.collect()`, minus the RSS after the client was created "
        "and its first message queued. Median (min-max) of "
        f"{config.repeats} runs.\n\n"
        + _table(
            ["", "RSS growth (MiB)", "bytes / message", "still queued", "dropped"],
            [
                [
                    name,
                    growth[sdk].spread(),
                    _num(per_message[sdk], 0),
                    _num(pending[sdk].median, 0),
                    str(drops[sdk]),
                ]
                for name, sdk in (("ours", "ours"), ("Segment", "peer"))
            ],
        )
        + "\n\n"
        + _memory_breakdown_text(breakdown, per_message)
    )


def _memory_breakdown_text(breakdown: dict[str, dict[str, Any]], rss: dict[str, float]) -> str:
    """The tracemalloc tables, and the target set against the size of our serialized body."""
    ours, peer = breakdown["ours"], breakdown["peer"]
    parts = [
        "**What a queued message holds** (`tracemalloc`, one run each, Python allocations "
        "still alive after the burst, grouped by the source line that made them, per "
        "message; `<string>` is a named tuple's generated `__new__`). RSS per message differs "
        "from these by the allocator's arenas and free lists."
    ]
    for name, sdk in (("ours", "ours"), ("Segment", "peer")):
        data = breakdown[sdk]
        rows = [
            [
                f"`{site['site']}`",
                f"`{site['code']}`" if site["code"] else "",
                _num(site["bytes"], 0),
                f"{site['blocks']:.2f}",
            ]
            for site in data["sites"]
            if site["bytes"] >= 1
        ]
        rows.append(
            ["**total traced**", "", f"**{_num(data['traced_bytes_per_message'], 0)}**", ""]
        )
        parts.append(
            f"{name}:\n\n" + _table(["site", "code", "bytes / message", "blocks / message"], rows)
        )
    target_rss = 0.3 * rss["peer"]
    target_traced = 0.3 * peer["traced_bytes_per_message"]
    body = ours.get("body_object", 0)
    parts.append(
        f"Our serialized body is {ours.get('body_len', 0)} bytes of JSON, a `bytes` object of "
        f"{body} bytes; the `messageId` string is {ours.get('message_id_object', 0)} bytes and "
        f"the `Message` named tuple {ours.get('message_tuple', 0)}. The target, 0.3x of "
        f"Segment, is {_num(target_rss, 0)} bytes per message by RSS "
        f"({_num(rss['peer'], 0)} x 0.3) and {_num(target_traced, 0)} by tracemalloc "
        f"({_num(peer['traced_bytes_per_message'], 0)} x 0.3): "
        + (
            "**smaller than the serialized body alone**, which the SDK keeps from the call on."
            if body > max(target_rss, target_traced)
            else "larger than the serialized body alone."
        )
    )
    return "\n\n".join(parts)


# 4. import time -----------------------------------------------------------------------------


def _importtime(
    module: str, parents: dict[str, str] | None = None
) -> dict[str, tuple[float, float]]:
    """``-X importtime`` of ``import module``: own and cumulative microseconds by module.

    Fills ``parents`` (when given) with the module that first imported each one: the output
    lists a module after those it imports, indented one level deeper.
    """
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", f"import {module}"],
        cwd=CHILD_CWD,
        capture_output=True,
        text=True,
        check=True,
    )
    times: dict[str, tuple[float, float]] = {}
    waiting: dict[int, list[str]] = {}  # by depth: modules whose importer comes later
    for line in done.stderr.splitlines():
        if not line.startswith("import time:"):
            continue
        parts = line.split(":", 1)[1].split("|")
        if len(parts) != 3 or not parts[0].strip().isdigit():
            continue
        name = parts[2].strip()
        times[name] = (float(parts[0]), float(parts[1]))
        depth = len(parts[2]) - len(parts[2].lstrip())
        for child in waiting.pop(depth + 2, []):  # two spaces per level
            if parents is not None:
                parents[child] = name
        waiting.setdefault(depth, []).append(name)
    if module not in times:
        raise RuntimeError(f"no importtime line for {module}")
    return times


def _import_ms(module: str) -> tuple[float, float]:
    """Wall milliseconds of ``python -c 'import module'``, and of the import statement alone."""
    code = (
        "import time, sys; started = time.perf_counter(); import "
        + module
        + "; sys.stdout.write(str(time.perf_counter() - started))"
    )
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CHILD_CWD
    )
    return (time.perf_counter() - started) * 1000, float(done.stdout) * 1000


def scenario_import(config: Config, report: Report) -> None:
    modules = ("gainsight_segment", "requests")
    wall = {module: Samples() for module in modules}
    alone = {module: Samples() for module in modules}
    cumulative = {module: Samples() for module in modules}
    baseline = Samples()
    # Own import time of the modules ours loads beyond those requests loads.
    extra: dict[str, Samples] = {}
    parents: dict[str, str] = {}  # who imports whom, for `import gainsight_segment`
    requests_modules: set[str] = set()
    for module in modules:  # fill the bytecode cache first (see _bytecode_cache)
        _import_ms(module)
    for run in range(config.import_runs):
        baseline.add(_import_ms("sys")[0])
        for module in _interleaved(modules, run):
            process_ms, import_ms = _import_ms(module)
            wall[module].add(process_ms)
            alone[module].add(import_ms)
            times = _importtime(module, parents if module == "gainsight_segment" else None)
            cumulative[module].add(times[module][1] / 1000)
            if module == "requests":
                requests_modules.update(times)
            else:
                for name, (own, _) in times.items():
                    extra.setdefault(name, Samples()).add(own / 1000)
    beyond = sorted(
        ((name, samples.median) for name, samples in extra.items() if name not in requests_modules),
        key=lambda item: -item[1],
    )
    for metric, samples in (
        ("import statement alone, ms (perf_counter in the child)", alone),
        ("`python -c 'import X'` process wall, ms", wall),
        ("`-X importtime` cumulative, ms", cumulative),
    ):
        ratio = samples["gainsight_segment"].median / samples["requests"].median
        report.rows.append(
            SummaryRow(
                "4. import time",
                metric,
                _num(samples["gainsight_segment"].median),
                f"{_num(samples['requests'].median)} (requests)",
                ratio,
                "<= 1.2x",
                ratio <= 1.2,
            )
        )
    report.sections.append(
        "### 4. Import time (lower is better)\n\n"
        f"Median (min-max) of {config.import_runs} runs each, interleaved, with a warm bytecode "
        "cache. **alone**: `time.perf_counter()` around the import statement, inside the child; "
        "**process**: the whole `python -c 'import X'` (interpreter start-up included: "
        f"`import sys` alone takes {baseline.spread()} ms); **cumulative**: the module's own "
        "line in `-X importtime` (separate runs; the instrumentation adds its own overhead).\n\n"
        + _table(
            ["", "alone (ms)", "process (ms)", "`-X importtime` cumulative (ms)"],
            [
                [
                    f"`import {module}`",
                    alone[module].spread(),
                    wall[module].spread(),
                    cumulative[module].spread(),
                ]
                for module in modules
            ],
        )
        + f"\n\n`import gainsight_segment` loads {len(beyond)} modules that `import requests` "
        f"does not, for {sum(own for _, own in beyond):.1f} ms of their own import time "
        "(`-X importtime`, median per module); the largest:\n\n"
        + _table(
            ["module", "own import time (ms)"],
            [[f"`{name}`", f"{own:.2f}"] for name, own in beyond[:12]],
        )
        + "\n\nThe same modules by what imports them: "
        + "; ".join(
            f"{group} {own:.1f} ms ({count} modules)"
            for group, (own, count) in _import_groups(beyond, parents).items()
        )
        + "."
    )


def _import_groups(
    modules: Sequence[tuple[str, float]], parents: dict[str, str]
) -> dict[str, tuple[float, int]]:
    """Own import time and module count by who brings the module in: attrs or our modules.

    A module counts for ``attrs`` if it or a module that imports it (transitively) belongs to
    ``attr``/``attrs``; the rest count for ``gainsight_segment``, split into our own modules
    and the standard-library modules they import.
    """
    groups: dict[str, tuple[float, int]] = {}
    for name, own in modules:
        chain = [name]
        while chain[-1] in parents and len(chain) < 100:
            chain.append(parents[chain[-1]])
        tops = [module.split(".")[0] for module in chain]
        if any(top in ("attr", "attrs") for top in tops):
            group = "`attrs` and the standard-library modules it imports"
        elif tops[0] == "gainsight_segment":
            group = "our own modules (`gainsight_segment.*`)"
        elif "gainsight_segment" in tops:
            group = "standard-library modules our modules import"
        else:
            group = "other"
        total, count = groups.get(group, (0.0, 0))
        groups[group] = (total + own, count + 1)
    return dict(sorted(groups.items(), key=lambda item: -item[1][0]))


# 5. replay ----------------------------------------------------------------------------------


def _replay_command() -> list[str]:
    script = Path(sys.executable).with_name("gainsight-segment")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "gainsight_segment"]


def _replay_available(command: list[str]) -> bool:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(
            [*command, "replay", "--help"],
            capture_output=True,
            timeout=60,
            check=False,
            cwd=CHILD_CWD,
        )
        return done.returncode == 0
    return False


def _write_replay_file(path: Path, lines: int) -> None:
    properties = {"accountId": "o283h08fh2390f923uofu23", "source": "Invite", "title": "CEO"}
    with path.open("w", encoding="utf-8") as out:
        for number in range(lines):
            message = {
                "type": "track",
                "userId": f"user-{number % 1000}",
                "event": "Account Created",
                "properties": properties,
                "timestamp": "2024-01-01T08:00:00.000Z",
                "messageId": f"replay-{number:08d}",
            }
            out.write(json.dumps(message, separators=(",", ":")) + "\n")


def scenario_replay(config: Config, report: Report) -> None:
    command = _replay_command()
    if not _replay_available(command):
        report.rows.append(SummaryRow("5. replay", "events/s", "n/a", "n/a", None, "-", None))
        report.sections.append(
            "### 5. Replay\n\nn/a: `gainsight-segment replay` is not available in this install."
        )
        return
    runs = min(config.repeats, config.replay_repeats)
    rates = Samples()
    summary = ""
    workdir = Path(tempfile.mkdtemp(prefix="gs-bench-replay-"))
    try:
        source = workdir / "events.jsonl"
        _write_replay_file(source, config.replay_lines)
        with server() as (endpoint, _):
            for run in range(runs):
                started = time.perf_counter()
                done = subprocess.run(
                    [
                        *command,
                        "replay",
                        str(source),
                        "--endpoint",
                        endpoint,
                        "--access-key",
                        ACCESS_KEY,
                        "--quiet",
                    ],
                    capture_output=True,
                    text=True,
                    timeout=1800,
                    check=False,
                    cwd=CHILD_CWD,
                )
                wall = time.perf_counter() - started
                if done.returncode != 0:
                    raise RuntimeError(f"replay failed ({done.returncode}): {done.stderr[-2000:]}")
                summary = done.stdout.strip()
                match = re.search(r"sent: ([\d,]+)", summary)
                sent = int(match.group(1).replace(",", "")) if match else -1
                if sent != config.replay_lines:
                    raise RuntimeError(f"replay sent {sent} of {config.replay_lines}: {summary}")
                rates.add(config.replay_lines / wall)
                _log(f"replay: run {run + 1}/{runs} done")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report.rows.append(
        SummaryRow(
            "5. replay",
            f"events/s, {config.replay_lines:,} lines",
            _num(rates.median, 0),
            "-",
            None,
            "-",
            None,
        )
    )
    report.sections.append(
        "### 5. Replay (events per second, higher is better)\n\n"
        f"`gainsight-segment replay FILE --endpoint URL --access-key KEY --quiet` of a "
        f"{config.replay_lines:,}-line JSON Lines file of track messages against the fast "
        "server (its default 8 workers); wall time of the whole command, start-up included. "
        f"Median (min-max) of {runs} runs: **{rates.spread(0)} events/s**.\n\n"
        "Last summary printed by the command:\n\n```\n" + summary + "\n```"
    )


# main ---------------------------------------------------------------------------------------


def render(facts: list[tuple[str, str]], report: Report, config: Config, elapsed: float) -> str:
    """The whole report as markdown."""
    summary = _table(
        ["scenario", "metric", "ours", "reference", "ratio", "target", "met"],
        [
            [
                row.scenario,
                row.metric,
                row.ours,
                row.reference,
                "-" if row.ratio is None else f"{row.ratio:.2f}x",
                row.target,
                "-" if row.met is None else ("yes" if row.met else "**no**"),
            ]
            for row in report.rows
        ],
    )
    machine = _table(["", ""], [[name, value] for name, value in facts])
    return (
        "## Machine\n\n" + machine + f"\n\n## Summary (medians of {config.repeats} runs; "
        f"total benchmark time {elapsed / 60:.1f} min)\n\n"
        + summary
        + "\n\n"
        + "\n\n".join(report.sections)
        + "\n"
    )


def _bytecode_cache() -> str:
    """Let every child process cache bytecode in a private temporary folder.

    Without it, under ``PYTHONDONTWRITEBYTECODE=1`` (set on some machines) an editable
    install recompiles the library from source at every import while requests loads its
    installed ``.pyc`` files: the import scenario would time the compiler. The folder keeps
    ``__pycache__`` directories out of the source tree.
    """
    cache = tempfile.mkdtemp(prefix="gs-bench-pycache-")
    os.environ["PYTHONPYCACHEPREFIX"] = cache
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    return cache


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark gainsight-segment against Segment's analytics-python.",
        epilog=f"Setup:\n{SETUP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (CI): no verdicts")
    parser.add_argument(
        "--only", metavar="SCENARIO", help=f"comma-separated subset of: {', '.join(SCENARIOS)}"
    )
    parser.add_argument("--repeats", type=int, help="runs per measurement (default: 5)")
    parser.add_argument("--output", metavar="FILE", help="also write the markdown to FILE")
    parser.add_argument(
        "--source",
        metavar="REV",
        help="measure gainsight_segment/ as committed at REV (e.g. HEAD), exported to a "
        "temporary folder, instead of the working tree (which others may edit meanwhile)",
    )
    args = parser.parse_args(argv)

    selected = list(SCENARIOS) if not args.only else [s.strip() for s in args.only.split(",")]
    unknown = [s for s in selected if s not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {SCENARIOS}")
    for module in ("gainsight_segment", "segment.analytics", "urllib3"):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            parser.exit(2, f"{module} is not importable with {sys.executable}. Setup:\n{SETUP}\n")
    config = QUICK if args.quick else Config()
    if args.repeats is not None:
        if args.repeats < 1:
            parser.error("--repeats must be at least 1")
        config = dataclasses.replace(config, repeats=args.repeats)

    cache = _bytecode_cache()
    exported, revision = None, None
    if args.source:
        try:
            exported, revision = _export_source(args.source)
        except (OSError, subprocess.CalledProcessError) as exc:
            parser.exit(2, f"cannot export {args.source} with git: {exc}\n")
    library = _library_dir()
    if exported is not None and Path(exported) not in library.parents:
        parser.exit(2, f"--source: the children import {library}, not the export\n")
    fingerprint = _library_fingerprint(library)
    facts = machine_facts(revision)
    print("## Machine\n\n" + _table(["", ""], [[n, v] for n, v in facts]) + "\n", flush=True)
    started = time.perf_counter()
    report = Report()
    functions = {
        "caller": scenario_caller,
        "throughput": scenario_throughput,
        "memory": scenario_memory,
        "import": scenario_import,
        "replay": scenario_replay,
    }
    for name in selected:
        _log(f"scenario {name} ...")
        functions[name](config, report)
    elapsed = time.perf_counter() - started
    changed = _library_fingerprint(library) != fingerprint
    shutil.rmtree(cache, ignore_errors=True)
    if exported is not None:
        shutil.rmtree(exported, ignore_errors=True)
    facts.append(("load average at end", " ".join(f"{x:.2f}" for x in os.getloadavg())))
    facts.append(
        (
            "library source changed during the run",
            "**yes: the results mix versions; rerun, e.g. with `--source HEAD`**"
            if changed
            else "no",
        )
    )
    if changed:
        _log("WARNING: gainsight_segment's source files changed during the run")
    markdown = render(facts, report, config, elapsed)
    if args.quick:
        markdown = (
            "> `--quick` smoke run: tiny sizes, single runs; the numbers mean nothing.\n\n"
            + markdown
        )
    print("## Summary" + markdown.split("## Summary", 1)[1], flush=True)
    if args.output:
        Path(args.output).write_text(markdown, encoding="utf-8")
        _log(f"wrote {args.output}")
    _log(f"done in {elapsed:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
