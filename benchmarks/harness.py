"""What every scenario measures with: sizes, fresh processes, interleaving, servers, facts.

``scenarios.py`` uses it to measure, ``run.py`` to set a run up. Nothing here renders.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.metadata
import io
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
WORKLOADS = HERE / "workloads.py"
FAST_SERVER = HERE / "fastserver.py"
# Children that import the library run from here, never from the repository root: with
# ``-c`` or ``-m`` the working directory comes first on sys.path, ahead of ``--source``.
CHILD_CWD = tempfile.gettempdir()
BASELINE = "43135d3"  # the last revision before the adaptive senders
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
# Timelines are kept as medians over runs on this grid (seconds), from the first track().
GRID = 0.1
# A run still counts at a time if its last row is at most this much earlier (a 100 ms
# sampling interval, and some lateness).
TIMELINE_SLACK = 0.15


@dataclass(frozen=True)
class Config:
    """Sizes of one benchmark run; ``--quick`` shrinks them all."""

    repeats: int = 5
    caller_warmup: int = 100
    # (payload bytes, producer threads, calls): fewer calls for the bigger payloads, so that a
    # run stays near a second; never more than the default max_queue_size, so that a default
    # client cannot drop.
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
    # The outbox scenario's burst; with fsync each call waits for the disk, so fewer.
    outbox_calls: int = 20_000
    outbox_fsync_calls: int = 1000


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
    outbox_calls=300,
    outbox_fsync_calls=30,
)


def log(text: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {text}\n")
    sys.stderr.flush()


def interleaved(contenders: Sequence[str], repeat: int) -> list[str]:
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
        for contender in interleaved(contenders, repeat):
            result = run_workload(spec_of(contender), timeout, paths.get(contender))
            results[contender].append(result)
        log(f"{label}: repeat {repeat + 1}/{repeats} done")
    return results


# Data: what the scenarios keep of their runs ----------------------------------------------


def tidy(value: Any) -> Any:
    """JSON-ready data: floats to 4 significant digits (6 past 10,000), NaN to None."""
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        if value == 0:
            return 0.0
        digits = 6 if abs(value) >= 10_000 else 4
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {key: tidy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [tidy(item) for item in value]
    return value


def slim(run: dict[str, Any], *drop: str) -> dict[str, Any]:
    """A run's result without its bulky or machine-specific fields."""
    gone = {"samples", "server", "timeline", "library", *drop}
    return {key: value for key, value in run.items() if key not in gone}


def value_at(rows: Sequence[Sequence[float]], at: float, column: int = 1) -> float:
    """The last row at or before ``at``; NaN if the run had ended by then."""
    if not rows or rows[-1][0] + TIMELINE_SLACK < at:
        return float("nan")
    value = float("nan")
    for row in rows:
        if row[0] > at + 1e-9:
            break
        value = float(row[column])
    return value


def median_after(rows: Sequence[Sequence[float]], after: float, column: int = 1) -> float:
    values = [float(row[column]) for row in rows if row[0] >= after]
    return statistics.median(values) if values else float("nan")


def median_timeline(
    timelines: Sequence[Sequence[Sequence[float]]],
    columns: Sequence[int],
    summaries: Sequence[str] | None = None,
) -> list[list[float]]:
    """Rows ``[t, value, ...]`` on the ``GRID``: per column, the median (or ``"mean"``)
    over the runs still running at ``t`` of each run's last row at or before ``t``."""
    ends = [rows[-1][0] for rows in timelines if rows]
    if not ends:
        return []
    kinds = list(summaries or ["median"] * len(columns))
    out = []
    for step in range(int(max(ends) / GRID + 1e-9) + 1):
        at = round(step * GRID, 3)
        row = [at]
        for column, kind in zip(columns, kinds):
            values = [value_at(rows, at, column) for rows in timelines]
            present = [value for value in values if value == value]
            if not present:
                row.append(float("nan"))
            elif kind == "mean":
                row.append(statistics.fmean(present))
            else:
                row.append(statistics.median(present))
        out.append(row)
    return out


def server_windows(result: dict[str, Any]) -> list[list[float]]:
    """The fast server's windows as rows ``[start, mean, peak, admitted, rejected]``."""
    width = float(result["server"]["window"])
    return [[index * width, *window] for index, window in enumerate(result["server"]["windows"])]


# The installed client, servers ---------------------------------------------------------------


@functools.cache
def client_default(name: str) -> Any:
    """A default of the installed client's constructor (from its signature, in a child)."""
    code = (
        "import inspect, json, gainsight_segment as gs; "
        f"print(json.dumps(inspect.signature(gs.Client).parameters[{name!r}].default))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CHILD_CWD
    )
    return json.loads(done.stdout)


def queue_for(messages: int) -> int:
    """A ``max_queue_size`` that holds a burst of ``messages``: never below the default."""
    return max(messages + 1000, int(client_default("max_queue_size")))


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


def delivery_spec(
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


# Machine facts, revisions ----------------------------------------------------------------------


def machine_facts(source: str | None = None) -> dict[str, str]:
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
    facts = {
        "CPU": cpu,
        "cores": f"{os.cpu_count()} logical, {usable} usable",
        "OS": f"{platform.system()} {platform.release()}",
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "gainsight-segment source": _source_revision()
        if source is None
        else f"{source} (exported with `--source`)",
    }
    for package in ("gainsight-segment", "segment-analytics-python", "requests", "urllib3"):
        try:
            facts[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            facts[package] = "not installed"
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
    return head + (" + uncommitted changes" if dirty else "")


def short_commit(revision: str) -> str:
    """The short id of the commit ``revision`` names (``CalledProcessError`` if none)."""
    return subprocess.run(
        ["git", "-C", str(HERE.parent), "rev-parse", "--short", f"{revision}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def export_source(revision: str) -> tuple[str, str]:
    """Export ``gainsight_segment/`` as committed at ``revision`` to a temporary folder.

    The folder goes first on the children's ``PYTHONPATH`` (here for every child, with
    ``--source``; for one contender's children, with ``--baseline``), ahead of the editable
    install, so that edits made to the working tree while the benchmark runs (a shared
    checkout) cannot change what is measured. Returns the folder and the short commit id.
    """
    root = str(HERE.parent)
    short = short_commit(revision)
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


def use_source(folder: str) -> None:
    """Make every child import the library from ``folder`` first (``--source``)."""
    os.environ["PYTHONPATH"] = os.pathsep.join(
        part for part in (folder, os.environ.get("PYTHONPATH", "")) if part
    )


def library_dir() -> Path:
    """Where the children import ``gainsight_segment`` from."""
    code = "import gainsight_segment, os; print(os.path.dirname(gainsight_segment.__file__))"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=CHILD_CWD
    )
    return Path(done.stdout.strip())


def library_fingerprint(folder: Path) -> str:
    """A digest of the library's source files."""
    digest = hashlib.sha256()
    for path in sorted(folder.rglob("*.py")):
        digest.update(str(path).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def bytecode_cache() -> str:
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
