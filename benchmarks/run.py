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
    benchmarks/.venv/bin/python benchmarks/run.py --only sender --baseline 43135d3

Scenarios (``--only`` takes these names, comma-separated):

    caller      Caller cost: microseconds per track() in each SDK's default asynchronous mode,
                small / 2 KB / 20 KB properties, 1 / 2 / 4 / 8 producer threads; ours again
                with fixed pools (``workers=N``); and a 20,000-call burst with default
                settings (queue raised to hold it): wall and caller-thread CPU per call.
    throughput  Delivered events per second to a fast local server, one message per request:
                ours vs a raw urllib3 keep-alive loop with as many connections, at 0 and 50 ms
                of server latency; the server's own ceiling; Segment's batching client shown
                apart (a different API, 100 messages per request: not comparable).
    memory      RSS growth with 100,000 messages queued behind a server that never answers.
    import      ``import gainsight_segment`` vs ``import requests``.
    replay      ``gainsight-segment replay`` of a 100,000-line JSON Lines file.
    sender      Sender CPU per delivered message, ``workers=8``, 0 ms server: the working
                tree against ``--baseline REV`` (default 43135d3, before the adaptive senders).
    burst50     A 20,000-message burst at 50 ms of latency with default (adaptive) senders:
                events/s against ``max_workers / latency``, and requests in flight over time.
    ratelimit   A server that serves 4 requests at once and answers 429 + Retry-After beyond:
                concurrency over time, convergence, share of 429s, lost messages.
    idle        One message, then 20 s of idling: sender threads left and CPU spent.

Every measured run is a fresh subprocess (``benchmarks/workloads.py``); contenders are
interleaved (A B B A ...) so that drift on this shared machine hits both; medians are
reported. The machine table says whether the library's source files changed while the
benchmark ran (a shared checkout); ``--source REV`` measures ``gainsight_segment/`` as
committed at REV instead of the working tree. benchmarks/README.md says what each scenario
measures and how to read the results.
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads.py"
FAST_SERVER = HERE / "fastserver.py"
# Children that import the library run from here, never from the repository root: with
# ``-c`` or ``-m`` the working directory comes first on sys.path, ahead of ``--source``.
CHILD_CWD = tempfile.gettempdir()
SCENARIOS = (
    "caller",
    "throughput",
    "memory",
    "import",
    "replay",
    "sender",
    "burst50",
    "ratelimit",
    "idle",
)
BASELINE = "43135d3"  # the last revision before the adaptive senders
# Targets of the summary table.
CALLER_TARGET = 0.25  # ours / Segment, wall per track(), the fixed-size cases
BURST_CALLER_WALL_TARGET = 1.0  # ours / Segment, the default-settings burst
BURST_CALLER_CPU_TARGET = 0.5
MEMORY_TARGET = 0.45
SENDER_TARGET = 1.15  # ours / baseline
BURST_SHARE_TARGET = 0.9  # of max_workers / latency
BURST_FLOOR = 320.0  # events/s
RATELIMIT_SHARE_TARGET = 0.03  # of requests answered 429 after the first 2 s
# The concurrency reached is also read as its median after this many seconds.
SETTLED_AFTER = 2.0
IDLE_THREADS_TARGET = 1
# When to read the concurrency over time, seconds from the first track().
MARKS = (0.25, 0.5, 1.0, 2.0, 5.0)
RATELIMIT_MARKS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
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
    # Ours again for (small, 1 thread) with a fixed pool of this many sender threads
    # (``workers=N``) instead of the adaptive default: how much of the caller's wall time
    # the sender threads take. 8 was the fixed default before the adaptive senders.
    caller_workers: tuple[int, ...] = (1, 4, 8)
    # A longer burst with default settings (the queue raised to hold it).
    caller_burst_calls: int = 20_000
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
    baseline: str = BASELINE
    sender_messages: int = 4000
    sender_workers: int = 8
    burst_messages: int = 20_000
    burst_latency: float = 0.05
    # Interval of the in-flight samples (client) and of the server's windows (fixed there).
    sample_interval: float = 0.1
    ratelimit_messages: int = 5000
    ratelimit_admit: int = 4
    ratelimit_latency: float = 0.05
    ratelimit_retry_after: tuple[float, ...] = (0.1, 1.0)
    idle_seconds: float = 20.0


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
    caller_burst_calls=500,
    sender_messages=200,
    burst_messages=300,
    ratelimit_messages=100,
    idle_seconds=2.0,
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


def run_workload(
    spec: dict[str, Any], timeout: float = 600.0, pythonpath: str | None = None
) -> dict[str, Any]:
    """Run one workload in a fresh interpreter and return its JSON result.

    ``pythonpath`` goes first on the child's ``PYTHONPATH`` (an exported revision).
    """
    env = None
    if pythonpath is not None:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            part for part in (pythonpath, env.get("PYTHONPATH", "")) if part
        )
    done = subprocess.run(
        [sys.executable, str(WORKLOADS), json.dumps(spec)],
        cwd=CHILD_CWD,
        env=env,
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


Runs = list[dict[str, Any]]


def measure(
    contenders: Sequence[str],
    repeats: int,
    spec_of: Callable[[str], dict[str, Any]],
    label: str,
    *,
    pythonpath: Mapping[str, str] | None = None,
    timeout: float = 600.0,
) -> dict[str, Runs]:
    """Run ``spec_of(contender)`` for every contender, interleaved, ``repeats`` times.

    Returns each contender's results, in order. ``pythonpath`` maps a contender to the
    folder its children import first (an exported revision).
    """
    results: dict[str, Runs] = {contender: [] for contender in contenders}
    paths = pythonpath or {}
    for repeat in range(repeats):
        for contender in _interleaved(contenders, repeat):
            result = run_workload(spec_of(contender), timeout, paths.get(contender))
            results[contender].append(result)
        _log(f"{label}: repeat {repeat + 1}/{repeats} done")
    return results


def _samples(runs: Runs, value: str | Callable[[dict[str, Any]], float]) -> Samples:
    """One value per run: a key of the results, or a function of them."""
    get = value if callable(value) else (lambda run: float(run[value]))
    return Samples([get(run) for run in runs])


def _ratio_row(
    scenario: str,
    metric: str,
    ours: float,
    reference: float,
    who: str,
    limit: float,
    *,
    at_least: bool = False,
    digits: int = 1,
) -> SummaryRow:
    """A summary row whose target is a ratio of ours to a reference (``<=``, or ``>=``)."""
    ratio = ours / reference if reference else float("nan")
    met = ratio >= limit if at_least else ratio <= limit
    return SummaryRow(
        scenario,
        metric,
        _num(ours, digits),
        f"{_num(reference, digits)} ({who})",
        ratio,
        f"{'>=' if at_least else '<='} {limit:g}x",
        met,
    )


# Timelines: rows of ``[seconds, value, ...]`` (client samples, or server windows by start).


# A run still counts at a time if its last row is at most this much earlier (a 100 ms
# sampling interval, and some lateness).
TIMELINE_SLACK = 0.15


def _value_at(rows: Sequence[Sequence[float]], at: float, column: int = 1) -> float:
    """The last row at or before ``at``; NaN if the run had ended by then."""
    if not rows or rows[-1][0] + TIMELINE_SLACK < at:
        return float("nan")
    value = float("nan")
    for row in rows:
        if row[0] > at:
            break
        value = float(row[column])
    return value


def _median_after(rows: Sequence[Sequence[float]], after: float, column: int = 1) -> float:
    values = [float(row[column]) for row in rows if row[0] >= after]
    return statistics.median(values) if values else float("nan")


def _median_cell(values: Sequence[float], digits: int = 1) -> str:
    """The median of the values that are not NaN, or n/a."""
    present = [value for value in values if value == value]
    return _num(statistics.median(present), digits) if present else "n/a"


def _timeline_cells(
    timelines: Sequence[Sequence[Sequence[float]]],
    marks: Sequence[float],
    column: int = 1,
    settled: bool = True,
) -> list[str]:
    """Median over runs of a column at each mark, then (``settled``) its median after
    ``SETTLED_AFTER`` seconds."""
    cells = [_median_cell([_value_at(rows, mark, column) for rows in timelines]) for mark in marks]
    if settled:
        cells.append(
            _median_cell([_median_after(rows, SETTLED_AFTER, column) for rows in timelines])
        )
    return cells


def _timeline_header(first: str, marks: Sequence[float], settled: bool = True) -> list[str]:
    after = [f"median after {SETTLED_AFTER:g} s"] if settled else []
    return [first, *(f"{mark:g} s" for mark in marks), *after]


def _server_windows(result: dict[str, Any]) -> list[list[float]]:
    """The fast server's windows as rows ``[start, mean, peak, admitted, rejected]``."""
    width = float(result["server"]["window"])
    return [[index * width, *window] for index, window in enumerate(result["server"]["windows"])]


def _delivery_spec(
    endpoint: str,
    server_pid: int,
    messages: int,
    options: dict[str, Any],
    *,
    sdk: str = "ours",
    warmup: int = 10,
    sample: float = 0.0,
    server_stats: bool = False,
) -> dict[str, Any]:
    """The ``sdk_throughput`` workload: ``messages`` tracks, timed to the end of flush()."""
    return {
        "workload": "sdk_throughput",
        "sdk": sdk,
        "endpoint": endpoint,
        "server_pid": server_pid,
        "messages": messages,
        "options": options,
        "warmup": warmup,
        "sample": sample,
        "server_stats": server_stats,
    }


@functools.cache
def _client_default(name: str) -> Any:
    """A default of the installed client's constructor (from its signature, in a child)."""
    code = (
        "import inspect, json, gainsight_segment as gs; "
        f"print(json.dumps(inspect.signature(gs.Client).parameters[{name!r}].default))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CHILD_CWD
    )
    return json.loads(done.stdout)


def _queue_for(messages: int) -> int:
    """A ``max_queue_size`` that holds a burst of ``messages``: never below the default."""
    return max(messages + 1000, int(_client_default("max_queue_size")))


def _workers_label(workers: int | None) -> str:
    """How the default ``workers`` reads: a number, or adaptive."""
    if workers is None:
        return f"adaptive, at most `max_workers={_client_default('max_workers')}`"
    return f"{workers} sender threads"


@contextlib.contextmanager
def server(
    kind: str = "fast",
    latency: float = 0.0,
    stall: bool = False,
    admit: int | None = None,
    retry_after: float = 1.0,
) -> Iterator[tuple[str, int]]:
    """Start a local server in its own process; yield its endpoint and pid."""
    if kind == "fast":
        command = [sys.executable, str(FAST_SERVER), "--latency", str(latency)]
        if stall:
            command.append("--stall")
        if admit is not None:
            command += ["--admit", str(admit), "--retry-after", str(retry_after)]
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


def _short_commit(revision: str) -> str:
    """The short id of the commit ``revision`` names (``CalledProcessError`` if none)."""
    return subprocess.run(
        ["git", "-C", str(HERE.parent), "rev-parse", "--short", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def _export_source(revision: str) -> tuple[str, str]:
    """Export ``gainsight_segment/`` as committed at ``revision`` to a temporary folder.

    The folder goes first on the children's ``PYTHONPATH`` (here for every child, with
    ``--source``; for one contender's children, with ``--baseline``), ahead of the editable
    install, so that edits made to the working tree while the benchmark runs (a shared
    checkout) cannot change what is measured. Returns the folder and the short commit id.
    """
    root = str(HERE.parent)
    short = _short_commit(revision)
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
    return folder, short


def _use_source(folder: str) -> None:
    """Make every child import the library from ``folder`` first (``--source``)."""
    os.environ["PYTHONPATH"] = os.pathsep.join(
        part for part in (folder, os.environ.get("PYTHONPATH", "")) if part
    )


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
        burst_rows, burst = _caller_burst(config, endpoint)
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
                f"<= {CALLER_TARGET:g}x",
                ratio <= CALLER_TARGET,
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
        f"calls run; ours with default settings ({_workers_label(_client_default('workers'))}), "
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
        + burst
    )
    report.rows += burst_rows


def _column(run: dict[str, Any], column: int, summary: Callable[[list[float]], float]) -> float:
    """A summary (max, median) of one column of a run's samples; NaN without samples."""
    values = [float(row[column]) for row in run["samples"]]
    return summary(values) if values else float("nan")


def _caller_burst(config: Config, endpoint: str) -> tuple[list[SummaryRow], str]:
    """A long burst, default settings but the queue: wall and caller CPU per call, drops.

    Returns the summary rows and the text for the caller section.
    """
    calls = config.caller_burst_calls
    contenders = ("ours", "peer")
    runs = measure(
        contenders,
        config.repeats,
        lambda sdk: {
            "workload": "caller_cost",
            "sdk": sdk,
            "endpoint": endpoint,
            "calls": calls,
            "threads": 1,
            "payload": 0,
            "warmup": config.caller_warmup,
            "max_queue_size": _queue_for(calls),
            "sample": config.sample_interval,
        },
        "caller burst",
    )
    wall = {sdk: _samples(runs[sdk], "us_per_call") for sdk in contenders}
    cpu = {sdk: _samples(runs[sdk], "cpu_us_per_call") for sdk in contenders}
    drops = {sdk: sum(run["dropped"] for run in runs[sdk]) for sdk in contenders}
    metric = f"{calls:,}-call burst, small, 1 thread, default settings"
    summary = [
        _ratio_row(
            "1. caller cost",
            f"us per track(), {metric}",
            wall["ours"].median,
            wall["peer"].median,
            "Segment",
            BURST_CALLER_WALL_TARGET,
        ),
        _ratio_row(
            "1. caller cost",
            f"caller-thread CPU us per track(), {metric}",
            cpu["ours"].median,
            cpu["peer"].median,
            "Segment",
            BURST_CALLER_CPU_TARGET,
        ),
        SummaryRow(
            "1. caller cost",
            f"messages dropped, {metric}",
            str(drops["ours"]),
            f"{drops['peer']} (Segment)",
            None,
            "0",
            drops["ours"] == 0,
        ),
    ]
    rows = []
    for name, sdk in (("ours", "ours"), ("Segment", "peer")):
        process = _samples(runs[sdk], "process_cpu_us_per_call")
        threads = _samples(runs[sdk], lambda run: _column(run, 1, statistics.median))
        most = _samples(runs[sdk], lambda run: _column(run, 1, max))
        in_flight = _samples(runs[sdk], lambda run: _column(run, 2, statistics.median))
        rows.append(
            [
                name,
                wall[sdk].spread(),
                cpu[sdk].spread(),
                _num(process.median),
                _num(process.median - cpu[sdk].median),
                f"{_num(threads.median, 0)} ({_num(most.median, 0)})",
                _num(in_flight.median, 0) if sdk == "ours" else "-",
                _num(_samples(runs[sdk], "pending_at_end").median, 0),
                str(drops[sdk]),
            ]
        )
    return summary, (
        f"\n\n**A {calls:,}-call burst with default settings** (small properties, one "
        f"producer thread; both SDKs with `max_queue_size={_queue_for(calls):,}` so that nothing "
        "drops, else defaults: ours with adaptive senders). The SDK's background threads "
        f"were counted every {config.sample_interval * 1000:g} ms during the burst (median "
        "and, in brackets, the most). Median (min-max) of "
        f"{config.repeats} runs.\n\n"
        + _table(
            [
                "SDK",
                "wall us/call",
                "caller-thread CPU us/call",
                "process CPU us/call",
                "SDK-thread CPU us/call",
                "SDK threads alive (most)",
                "requests in flight",
                "backlog at end",
                "dropped",
            ],
            rows,
        )
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
    default = _client_default("workers")
    peer = wall[(0, 1, "peer")].median
    calls = config.caller_cases[0][2]
    rows = []
    for workers in [default, *(n for n in config.caller_workers if n != default)]:
        key = (0, 1, "ours" if workers == default else f"ours-{workers}")
        rows.append(
            [
                f"{'adaptive' if workers is None else workers}"
                f"{' (default)' if workers == default else ''}",
                wall[key].spread(),
                f"{wall[key].median / peer:.2f}x",
                _num(cpu[key].median),
                _num(sdk_cpu[key].median),
                _num(calls - backlog[key].median, 0),
            ]
        )
    return (
        "\n\n**The same burst with a fixed pool of sender threads** (ours, small properties, "
        f"one producer thread, {calls:,} calls; `workers=N`: exactly N sender threads, "
        "instead of the adaptive default; else default settings; the ratio is to Segment's "
        "wall time above). Median (min-max) of "
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
                        if who == "ours":
                            spec = _delivery_spec(
                                endpoint,
                                pid,
                                messages,
                                {"workers": workers, "max_queue_size": messages + 1000},
                                warmup=max(workers * 2, 10),
                            )
                        else:
                            spec = {
                                "workload": "raw_throughput",
                                "endpoint": endpoint,
                                "messages": messages,
                                "workers": workers,
                                "server_pid": pid,
                            }
                        result = run_workload(spec)
                        if who == "ours" and result.get("delivered") != messages:
                            delivered_ok = False
                        key = (latency, workers, who)
                        rate.setdefault(key, Samples()).add(result["events_per_s"])
                        server_cpu.setdefault(key, Samples()).add(result["server_cpu"] * 100)
                        client_cpu.setdefault(key, Samples()).add(result["client_cpu"] * 100)
                if latency == 0:
                    result = run_workload(
                        _delivery_spec(endpoint, pid, config.throughput_messages, {}, sdk="peer")
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
        default = " (default)" if workers == _client_default("workers") else ""
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
    with server("fast", stall=True) as (endpoint, _):
        runs = measure(
            contenders,
            config.repeats,
            lambda sdk: {
                "workload": "memory",
                "sdk": sdk,
                "endpoint": endpoint,
                "messages": config.memory_messages,
            },
            "memory",
        )
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
    growth = {sdk: _samples(runs[sdk], lambda run: run["rss_growth_kib"] / 1024) for sdk in runs}
    pending = {sdk: _samples(runs[sdk], "pending") for sdk in runs}
    drops = {sdk: sum(run["dropped"] for run in runs[sdk]) for sdk in runs}
    ours, peer = growth["ours"], growth["peer"]
    per_message = {sdk: growth[sdk].median * 1024 * 1024 / config.memory_messages for sdk in growth}
    row = _ratio_row(
        "3. memory",
        f"RSS growth, MiB, {config.memory_messages:,} queued (none dropped)",
        ours.median,
        peer.median,
        "Segment",
        MEMORY_TARGET,
    )
    # Growth that comes from dropping is no saving: the target holds only if none dropped.
    row.met = bool(row.met) and drops["ours"] == 0
    report.rows.append(row)
    report.sections.append(
        "### 3. Memory (RSS growth with messages queued, lower is better)\n\n"
        f"{config.memory_messages:,} small track messages queued behind a server that accepts "
        "connections and never answers; both clients with `max_queue_size=100_000` (or the number "
        "of messages, if larger), so that neither drops (the table says so). RSS from "
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
    target_rss = MEMORY_TARGET * rss["peer"]
    target_traced = MEMORY_TARGET * peer["traced_bytes_per_message"]
    body = ours.get("body_object", 0)
    parts.append(
        f"Our serialized body is {ours.get('body_len', 0)} bytes of JSON, a `bytes` object of "
        f"{body} bytes; the `messageId` string is {ours.get('message_id_object', 0)} bytes and "
        f"the `Message` named tuple {ours.get('message_tuple', 0)}. The target, "
        f"{MEMORY_TARGET:g}x of Segment, is {_num(target_rss, 0)} bytes per message by RSS "
        f"({_num(rss['peer'], 0)} x {MEMORY_TARGET:g}) and {_num(target_traced, 0)} by "
        f"tracemalloc ({_num(peer['traced_bytes_per_message'], 0)} x {MEMORY_TARGET:g}): "
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


# 6. sender CPU ------------------------------------------------------------------------------


def _sender_us(run: dict[str, Any]) -> float:
    """The SDK's threads' CPU per delivered message: process CPU minus the calling thread's."""
    return _per_delivered_us("process_cpu_s")(run) - _per_delivered_us("caller_cpu_s")(run)


def _per_delivered_us(key: str) -> Callable[[dict[str, Any]], float]:
    """A run's ``key`` (CPU seconds) per delivered message, in microseconds."""
    return lambda run: float(run[key]) / max(1, int(run["delivered"])) * 1e6


def scenario_sender(config: Config, report: Report) -> None:
    messages, workers = config.sender_messages, config.sender_workers
    options = {"workers": workers, "max_queue_size": messages + 1000}
    folder, revision = _export_source(config.baseline)
    try:
        with server() as (endpoint, pid):
            runs = measure(
                ("ours", "baseline"),
                config.repeats,
                lambda _: _delivery_spec(endpoint, pid, messages, options, warmup=workers * 2),
                "sender",
                pythonpath={"baseline": folder},
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    imported = {run["library"] for run in runs["baseline"]}
    if any(not path.startswith(folder) for path in imported):
        raise RuntimeError(f"sender: the baseline children imported {imported}, not {folder}")
    sender = {who: _samples(runs[who], _sender_us) for who in runs}
    process = {who: _samples(runs[who], _per_delivered_us("process_cpu_s")) for who in runs}
    caller = {who: _samples(runs[who], _per_delivered_us("caller_cpu_s")) for who in runs}
    who = f"baseline {revision}"
    metric = f"workers={workers}, 0 ms, {messages:,} messages"
    report.rows.append(
        _ratio_row(
            "6. sender CPU",
            f"sender CPU us per delivered message, {metric}",
            sender["ours"].median,
            sender["baseline"].median,
            who,
            SENDER_TARGET,
        )
    )
    row = _ratio_row(
        "6. sender CPU",
        f"process CPU us per delivered message (building included), {metric} (diagnostic)",
        process["ours"].median,
        process["baseline"].median,
        who,
        SENDER_TARGET,
    )
    report.rows.append(dataclasses.replace(row, target="-", met=None))
    rows = [
        [
            name,
            sender[key].spread(),
            process[key].spread(),
            caller[key].spread(),
            _samples(runs[key], "events_per_s").spread(0),
            f"{min(run['delivered'] for run in runs[key]):,} of {messages:,}",
        ]
        for name, key in (("ours", "ours"), (f"baseline `{revision}`", "baseline"))
    ]
    report.sections.append(
        "### 6. Sender CPU per delivered message (microseconds, lower is better)\n\n"
        f"Ours (the library measured everywhere else) against `{revision}` (`--baseline`, "
        "exported with `git archive` and imported first by its children), interleaved, "
        f"both with a fixed pool (`workers={workers}`) and `max_queue_size` raised to hold "
        f"the burst: {messages:,} small tracks to the fast server at 0 ms, timed from the "
        "first `track()` to the end of `flush()`. **sender CPU** = the process's CPU over "
        "that span minus the calling thread's (what the sender threads spent), per "
        "delivered message; **process CPU** includes the calls' message building. Median "
        f"(min-max) of {config.repeats} runs.\n\n"
        + _table(
            [
                "",
                "sender CPU us/msg",
                "process CPU us/msg",
                "caller-thread CPU us/msg",
                "events/s",
                "delivered (fewest)",
            ],
            rows,
        )
    )


# 7. burst at 50 ms ------------------------------------------------------------------------


def scenario_burst50(config: Config, report: Report) -> None:
    messages, latency = config.burst_messages, config.burst_latency
    options = {"max_queue_size": _queue_for(messages)}
    with server(latency=latency) as (endpoint, pid):
        runs = measure(
            ("ours",),
            config.repeats,
            lambda _: _delivery_spec(
                endpoint, pid, messages, options, warmup=1, sample=config.sample_interval
            ),
            "burst50",
            timeout=3600,
        )["ours"]
    most = _client_default("max_workers")
    ideal = most / latency
    rate = _samples(runs, "events_per_s")
    ms = f"{latency * 1000:g} ms"
    report.rows += [
        _ratio_row(
            "7. burst",
            f"events/s, {messages:,}-message burst, {ms}, default settings",
            rate.median,
            ideal,
            f"max_workers / latency = {most} / {latency:g} s",
            BURST_SHARE_TARGET,
            at_least=True,
            digits=0,
        ),
        SummaryRow(
            "7. burst",
            f"events/s, {messages:,}-message burst, {ms} (floor)",
            _num(rate.median, 0),
            "-",
            None,
            f">= {BURST_FLOOR:g}/s",
            rate.median >= BURST_FLOOR,
        ),
    ]
    timelines = [run["samples"] for run in runs]
    lost = sum(messages - run["delivered"] for run in runs)
    report.sections.append(
        f"### 7. A burst at {ms} of latency (events per second, higher is better)\n\n"
        f"{messages:,} small tracks to the fast server answering after {ms}, our client "
        f"with default settings (adaptive senders, at most `max_workers={most}`) but "
        f"`max_queue_size={options['max_queue_size']:,}` to hold the burst; one warm-up "
        "message first, so the burst starts from a cold concurrency limit. Timed from the "
        "first `track()` to the end of `flush()`; the ideal is `max_workers / latency` = "
        f"{ideal:,.0f}/s. `stats().in_flight` and the sender threads alive were sampled every "
        f"{config.sample_interval * 1000:g} ms from the first `track()`: median over runs at "
        f"each time (n/a: the run had ended), and of each run's median after "
        f"{SETTLED_AFTER:g} s. Median (min-max) of {config.repeats} runs: "
        f"**{rate.spread(0)} events/s** ({rate.median / ideal:.2f}x of ideal), "
        f"{_samples(runs, 'wall_s').spread()} s; messages not delivered over all runs: "
        f"{lost}.\n\n"
        + _table(
            _timeline_header("", MARKS),
            [
                ["requests in flight", *_timeline_cells(timelines, MARKS, 1)],
                ["sender threads alive", *_timeline_cells(timelines, MARKS, 2)],
            ],
        )
    )


# 8. rate limit ------------------------------------------------------------------------------


def _converged_at(windows: Sequence[Sequence[float]], admit: int) -> float:
    """When the admitted concurrency first stays within one of ``admit`` for a second.

    The start of the first run of 1 s of windows whose time-weighted mean of requests
    being served is at least ``admit - 1`` (the server never serves more than ``admit``);
    NaN if none.
    """
    if len(windows) < 2:
        return float("nan")
    need = max(1, round(1.0 / (windows[1][0] - windows[0][0])))
    streak = 0
    for index, window in enumerate(windows):
        streak = streak + 1 if window[1] >= admit - 1 else 0
        if streak == need:
            return float(windows[index - need + 1][0])
    return float("nan")


def _rejected_share(windows: Sequence[Sequence[float]], after: float) -> float:
    """The share of requests answered 429 in the windows that start at ``after`` or later."""
    admitted = sum(window[3] for window in windows if window[0] >= after)
    rejected = sum(window[4] for window in windows if window[0] >= after)
    return rejected / (admitted + rejected) if admitted + rejected else 0.0


def scenario_ratelimit(config: Config, report: Report) -> None:
    admit, latency, messages = (
        config.ratelimit_admit,
        config.ratelimit_latency,
        config.ratelimit_messages,
    )
    settings = {f"{seconds:g}": seconds for seconds in config.ratelimit_retry_after}
    with contextlib.ExitStack() as stack:
        servers = {
            label: stack.enter_context(server(latency=latency, admit=admit, retry_after=seconds))
            for label, seconds in settings.items()
        }
        runs = measure(
            tuple(settings),
            config.repeats,
            lambda label: _delivery_spec(
                *servers[label],
                messages,
                {},
                warmup=1,
                sample=config.sample_interval,
                server_stats=True,
            ),
            "ratelimit",
            timeout=3600,
        )
    ideal = messages * latency / admit
    rows, timeline_rows = [], []
    for label in settings:
        windows = [_server_windows(run) for run in runs[label]]
        share = Samples([_rejected_share(w, SETTLED_AFTER) for w in windows])
        converged = Samples([_converged_at(w, admit) for w in windows])
        lost = sum(messages - run["delivered"] for run in runs[label])
        elapsed = _samples(runs[label], "wall_s")
        report.rows.append(
            SummaryRow(
                "8. rate limit",
                f"Retry-After {label} s: share of requests answered 429 after "
                f"{SETTLED_AFTER:g} s; messages lost",
                f"{share.median:.1%}; {lost} lost",
                f"converged in {_median_cell(converged.values)} s; {_num(elapsed.median)} s "
                f"elapsed (ideal {ideal:g} s)",
                None,
                f"<= {RATELIMIT_SHARE_TARGET:.0%}; 0 lost",
                share.median <= RATELIMIT_SHARE_TARGET and lost == 0,
            )
        )
        rows.append(
            [
                f"{label} s",
                " ".join(f"{value:.1%}" for value in share.values),
                " ".join(_num(value) for value in converged.values),
                str(lost),
                elapsed.spread(),
                _num(_samples(runs[label], "retried").median, 0),
                _num(Samples([sum(x[4] for x in w) for w in windows]).median, 0),
            ]
        )
        clients = [run["samples"] for run in runs[label]]
        timeline_rows += [
            [f"{label} s: served at once (server)", *_timeline_cells(windows, RATELIMIT_MARKS)],
            [f"{label} s: 429s per 100 ms (server)", *_timeline_cells(windows, RATELIMIT_MARKS, 4)],
            [f"{label} s: in flight (client)", *_timeline_cells(clients, RATELIMIT_MARKS)],
        ]
    report.sections.append(
        "### 8. Behind a rate limit (429 with Retry-After)\n\n"
        f"The fast server serves at most {admit} requests at once, each for {latency * 1000:g} "
        "ms, and answers any request beyond them at once with `429` and `Retry-After` (one "
        f"row per value); our client with default settings sends {messages:,} small tracks "
        f"(ideal: {messages:,} x {latency:g} s / {admit} = {ideal:g} s). The server counts, "
        "per 100 ms window from the first `track()`, the time-weighted mean of requests "
        "being served and the 429s. **Converged**: the start of the first second whose "
        f"every window averaged at least {admit - 1} served; **429 share**: 429s / all "
        f"requests after {SETTLED_AFTER:g} s; **lost**: messages sent but not delivered, over "
        f"all runs; elapsed: first `track()` to the end of `flush()`. Per run (in run order) "
        f"or median (min-max) of {config.repeats} runs.\n\n"
        + _table(
            [
                "Retry-After",
                f"429 share after {SETTLED_AFTER:g} s",
                "converged (s)",
                "lost",
                "elapsed (s)",
                "retries",
                "429s",
            ],
            rows,
        )
        + "\n\nConcurrency over time (median over runs at each time; n/a: the run had ended):"
        "\n\n" + _table(_timeline_header("", RATELIMIT_MARKS), timeline_rows)
    )


# 9. idle ------------------------------------------------------------------------------------


def scenario_idle(config: Config, report: Report) -> None:
    seconds = config.idle_seconds
    with server() as (endpoint, _):
        runs = measure(
            ("ours",),
            config.repeats,
            lambda _: {"workload": "idle", "endpoint": endpoint, "seconds": seconds},
            "idle",
            timeout=seconds + 120,
        )["ours"]
    threads, cpu = _samples(runs, "threads_at_end"), _samples(runs, "cpu_s")
    report.rows += [
        SummaryRow(
            "9. idle",
            f"sender threads alive after {seconds:g} s idle",
            _num(threads.median, 0),
            "-",
            None,
            f"<= {IDLE_THREADS_TARGET}",
            threads.median <= IDLE_THREADS_TARGET,
        ),
        SummaryRow(
            "9. idle",
            f"process CPU s over {seconds:g} s idle",
            f"{cpu.median:.2f}",
            "-",
            None,
            "0.00",
            round(cpu.median, 2) == 0,
        ),
    ]
    marks = [mark for mark in (0.0, 1.0, 2.0, 5.0, 10.0, 20.0) if mark <= seconds]
    timelines = [run["timeline"] for run in runs]
    report.sections.append(
        "### 9. Idle\n\n"
        f"Our client, default settings, sends one message to the fast server and flushes; "
        f"then the process sleeps {seconds:g} s, counting the sender threads alive "
        "(`gainsight-segment-sender-N`) once a second from its main thread. Process CPU "
        "(`getrusage`) over the idle span. Per run: threads alive at the end "
        f"{', '.join(_num(v, 0) for v in threads.values)}; CPU seconds "
        f"{', '.join(f'{v:.2f}' for v in cpu.values)}. Sender threads over time (median):"
        "\n\n"
        + _table(
            _timeline_header("", marks, settled=False),
            [["sender threads alive", *_timeline_cells(timelines, marks, settled=False)]],
        )
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
    parser.add_argument(
        "--baseline",
        metavar="REV",
        default=BASELINE,
        help=f"the revision the sender scenario compares against (default: {BASELINE})",
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
    if "sender" in selected:
        try:
            config = dataclasses.replace(config, baseline=_short_commit(args.baseline))
        except (OSError, subprocess.CalledProcessError) as exc:
            parser.exit(2, f"--baseline: cannot resolve {args.baseline} with git: {exc}\n")

    cache = _bytecode_cache()
    exported, revision = None, None
    if args.source:
        try:
            exported, revision = _export_source(args.source)
            _use_source(exported)
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
        "sender": scenario_sender,
        "burst50": scenario_burst50,
        "ratelimit": scenario_ratelimit,
        "idle": scenario_idle,
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
