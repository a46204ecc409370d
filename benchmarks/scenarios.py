"""The scenarios: each measures, in fresh processes, and returns its results as plain data.

A scenario returns a JSON-able dict: its sizes, every run's result (``runs``, in run order)
and, for what is sampled over time, the median over runs on a 100 ms grid. ``page.py``
turns that data into the page and ``charts.py`` into the charts; nothing here renders.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness import (
    ACCESS_KEY,
    CHILD_CWD,
    WORKLOADS,
    Config,
    client_default,
    delivery_spec,
    export_source,
    interleaved,
    log,
    measure,
    median_after,
    median_timeline,
    queue_for,
    run_workload,
    server,
    server_windows,
    slim,
)

# The concurrency reached is also read as its median after this many seconds.
SETTLED_AFTER = 2.0


# caller cost ------------------------------------------------------------------------------


def _caller_spec(config: Config, endpoint: str, **spec: Any) -> dict[str, Any]:
    return {
        "workload": "caller_cost",
        "endpoint": endpoint,
        "warmup": config.caller_warmup,
        "threads": 1,
        "payload": 0,
        **spec,
    }


def _column(run: dict[str, Any], column: int, summary: Any) -> float:
    """A summary (max, median) of one column of a run's samples; NaN without samples."""
    values = [float(row[column]) for row in run["samples"]]
    return float(summary(values)) if values else float("nan")


def caller(config: Config) -> dict[str, Any]:
    """Wall and CPU per ``track()``, both SDKs; fixed pools of ours; a long burst."""
    cases = [
        {"payload": payload, "threads": threads, "calls": calls, "ours": [], "peer": []}
        for payload, threads, calls in config.caller_cases
    ]
    small_calls = config.caller_cases[0][2]
    fixed = [{"workers": n, "calls": small_calls, "ours": []} for n in config.caller_workers]
    with server() as (endpoint, _):
        for repeat in range(config.repeats):
            for case in cases:
                for sdk in interleaved(("ours", "peer"), repeat):
                    spec = _caller_spec(
                        config,
                        endpoint,
                        sdk=sdk,
                        calls=case["calls"],
                        threads=case["threads"],
                        payload=case["payload"],
                    )
                    case[sdk].append(slim(run_workload(spec)))
            for pool in fixed:
                spec = _caller_spec(
                    config, endpoint, sdk="ours", calls=small_calls, workers=pool["workers"]
                )
                pool["ours"].append(slim(run_workload(spec)))
            log(f"caller: repeat {repeat + 1}/{config.repeats} done")
        calls = config.caller_burst_calls
        runs = measure(
            ("ours", "peer"),
            config.repeats,
            lambda sdk: _caller_spec(
                config,
                endpoint,
                sdk=sdk,
                calls=calls,
                max_queue_size=queue_for(calls),
                sample=config.sample_interval,
            ),
            "caller burst",
        )
    burst: dict[str, Any] = {"calls": calls, "max_queue_size": queue_for(calls)}
    for sdk, sdk_runs in runs.items():
        burst[sdk] = [
            {
                **slim(run),
                "threads_median": _column(run, 1, statistics.median),
                "threads_most": _column(run, 1, max),
                "in_flight_median": _column(run, 2, statistics.median),
            }
            for run in sdk_runs
        ]
    return {
        "warmup": config.caller_warmup,
        "default_workers": client_default("workers"),
        "max_workers": client_default("max_workers"),
        "peer_max_queue_size": 200_000,
        "cases": cases,
        "fixed": fixed,
        "burst": burst,
        "sample_interval": config.sample_interval,
    }


# outbox -----------------------------------------------------------------------------------

# How each contender of the outbox scenario runs: (sdk, outbox mode).
OUTBOX_CONTENDERS = {
    "peer": ("peer", ""),
    "senders": ("ours", "senders"),
    "write-only": ("ours", "write-only"),
    "fsync": ("ours", "fsync"),
}


def outbox(config: Config) -> dict[str, Any]:
    """Wall and CPU per ``track()`` with an outbox, against Segment's in-memory queue.

    Ours writes each call to the outbox and delivers it with in-process senders, or only
    writes it while a relay drains the file, or writes it with ``fsync``; Segment's SDK
    queues it in memory. The fsync case makes fewer calls: each waits for the disk.
    """

    def spec(contender: str) -> dict[str, Any]:
        sdk, mode = OUTBOX_CONTENDERS[contender]
        calls = config.outbox_fsync_calls if mode == "fsync" else config.outbox_calls
        return _caller_spec(
            config,
            endpoint,
            sdk=sdk,
            calls=calls,
            max_queue_size=queue_for(calls),
            **({"outbox": mode} if mode else {}),
        )

    with server() as (endpoint, _):
        runs = measure(tuple(OUTBOX_CONTENDERS), config.repeats, spec, "outbox")
    return {
        "calls": config.outbox_calls,
        "fsync_calls": config.outbox_fsync_calls,
        "warmup": config.caller_warmup,
        **{contender: [slim(run) for run in runs[contender]] for contender in runs},
    }


# throughput -------------------------------------------------------------------------------


def _server_ceiling(config: Config, kind: str) -> float:
    with server(kind) as (endpoint, _):
        start_at = time.time() + config.load_start_delay
        spec = {
            "workload": "load",
            "endpoint": endpoint,
            "connections": config.load_connections,
            "start_at": start_at,
            "duration": config.load_duration,
        }
        processes = [
            subprocess.Popen(
                [sys.executable, str(WORKLOADS), json.dumps(spec)],
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


def throughput(config: Config) -> dict[str, Any]:
    """Events/s delivered by fixed pools of ours and by a raw urllib3 loop, 0 and 50 ms."""
    ceilings: dict[str, list[float]] = {"fast": [], "stdlib": []}
    for repeat in range(config.repeats):
        for kind in interleaved(("fast", "stdlib"), repeat):
            ceilings[kind].append(_server_ceiling(config, kind))
    log("throughput: server ceilings done")
    cells = []
    peer = []
    for latency in (0.0, config.latency):
        row = [
            {"latency": latency, "workers": workers, "ours": [], "raw": []}
            for workers in config.throughput_workers
        ]
        with server("fast", latency=latency) as (endpoint, pid):
            for repeat in range(config.repeats):
                for cell in row:
                    workers = cell["workers"]
                    messages = (
                        config.throughput_messages
                        if latency == 0
                        else workers * config.latency_rounds
                    )
                    cell["messages"] = messages
                    for who in interleaved(("ours", "raw"), repeat):
                        if who == "ours":
                            spec = delivery_spec(
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
                        cell[who].append(slim(run_workload(spec)))
                if latency == 0:
                    spec = delivery_spec(endpoint, pid, config.throughput_messages, {}, sdk="peer")
                    peer.append(slim(run_workload(spec)))
        cells += row
        log(f"throughput: latency {latency * 1000:g} ms done")
    return {
        "messages": config.throughput_messages,
        "latency": config.latency,
        "rounds": config.latency_rounds,
        "load": {
            "processes": config.load_processes,
            "connections": config.load_connections,
            "duration": config.load_duration,
        },
        "ceilings": ceilings,
        "cells": cells,
        "peer": peer,
    }


# memory -----------------------------------------------------------------------------------


def memory(config: Config) -> dict[str, Any]:
    """RSS growth with messages queued behind a server that never answers; tracemalloc."""
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
        log("memory: tracemalloc breakdown done")
    return {
        "messages": config.memory_messages,
        "max_queue_size": max(config.memory_messages, 100_000),
        "ours": [slim(run, "baseline_kib", "maxrss_kib") for run in runs["ours"]],
        "peer": [slim(run, "baseline_kib", "maxrss_kib") for run in runs["peer"]],
        "breakdown": breakdown,
    }


# import time ------------------------------------------------------------------------------


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


def _import_group(name: str, parents: dict[str, str]) -> str:
    """Who brings a module in: ``attrs`` (itself or what it imports), ``ours``, ``stdlib``
    (what our own modules import) or ``other``."""
    chain = [name]
    while chain[-1] in parents and len(chain) < 100:
        chain.append(parents[chain[-1]])
    tops = [module.split(".")[0] for module in chain]
    if any(top in ("attr", "attrs") for top in tops):
        return "attrs"
    if tops[0] == "gainsight_segment":
        return "ours"
    if "gainsight_segment" in tops:
        return "stdlib"
    return "other"


def import_time(config: Config) -> dict[str, Any]:
    """``import gainsight_segment`` against ``import requests``, and what ours adds."""
    modules = ("gainsight_segment", "requests")
    data: dict[str, Any] = {
        "runs": config.import_runs,
        **{module: {"alone": [], "process": [], "cumulative": []} for module in modules},
        "sys_process": [],
    }
    extra: dict[str, list[float]] = {}  # own ms of every module ours loads, per run
    parents: dict[str, str] = {}
    requests_modules: set[str] = set()
    for module in modules:  # fill the bytecode cache first (see harness.bytecode_cache)
        _import_ms(module)
    for run in range(config.import_runs):
        data["sys_process"].append(_import_ms("sys")[0])
        for module in interleaved(modules, run):
            process_ms, alone_ms = _import_ms(module)
            data[module]["process"].append(process_ms)
            data[module]["alone"].append(alone_ms)
            times = _importtime(module, parents if module == "gainsight_segment" else None)
            data[module]["cumulative"].append(times[module][1] / 1000)
            if module == "requests":
                requests_modules.update(times)
            else:
                for name, (own, _) in times.items():
                    extra.setdefault(name, []).append(own / 1000)
    beyond = sorted(
        (
            (name, statistics.median(values))
            for name, values in extra.items()
            if name not in requests_modules
        ),
        key=lambda item: -item[1],
    )
    groups: dict[str, list[float]] = {}
    for name, own in beyond:
        total, count = groups.get(_import_group(name, parents), [0.0, 0])
        groups[_import_group(name, parents)] = [total + own, count + 1]
    data["added"] = {"modules": len(beyond), "ms": sum(own for _, own in beyond)}
    data["groups"] = groups
    return data


# replay -----------------------------------------------------------------------------------


def _replay_command() -> list[str]:
    # The module, not the console script: a script left by an older install can point at
    # modules that are gone, and the module honours an exported --source.
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


def replay(config: Config) -> dict[str, Any]:
    """``gainsight-segment replay`` of a JSON Lines file: events/s of the whole command."""
    command = _replay_command()
    data: dict[str, Any] = {"lines": config.replay_lines, "rates": []}
    if not _replay_available(command):
        return {**data, "available": False}
    workdir = Path(tempfile.mkdtemp(prefix="gs-bench-replay-"))
    try:
        source = workdir / "events.jsonl"
        _write_replay_file(source, config.replay_lines)
        runs = min(config.repeats, config.replay_repeats)
        with server() as (endpoint, _):
            for run in range(runs):
                started = time.perf_counter()
                done = subprocess.run(
                    [
                        *command,
                        *("replay", str(source), "--endpoint", endpoint),
                        *("--access-key", ACCESS_KEY, "--quiet"),
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
                match = re.search(r"sent: ([\d,]+)", done.stdout)
                sent = int(match.group(1).replace(",", "")) if match else -1
                if sent != config.replay_lines:
                    raise RuntimeError(f"replay sent {sent} of {config.replay_lines}")
                data["rates"].append(config.replay_lines / wall)
                log(f"replay: run {run + 1}/{runs} done")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return {**data, "available": True}


# sender CPU -------------------------------------------------------------------------------


def sender(config: Config) -> dict[str, Any]:
    """CPU per delivered message, fixed pool, 0 ms: ours against ``--baseline``."""
    messages, workers = config.sender_messages, config.sender_workers
    options = {"workers": workers, "max_queue_size": messages + 1000}
    folder, revision = export_source(config.baseline)
    try:
        with server() as (endpoint, pid):
            runs = measure(
                ("ours", "baseline"),
                config.repeats,
                lambda _: delivery_spec(endpoint, pid, messages, options, warmup=workers * 2),
                "sender",
                pythonpath={"baseline": folder},
            )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    imported = {run["library"] for run in runs["baseline"]}
    if any(not path.startswith(folder) for path in imported):
        raise RuntimeError(f"sender: the baseline children imported {imported}, not {folder}")
    return {
        "messages": messages,
        "workers": workers,
        "baseline": revision,
        "ours": [slim(run) for run in runs["ours"]],
        "baseline_runs": [slim(run) for run in runs["baseline"]],
    }


# burst at 50 ms ---------------------------------------------------------------------------


def burst50(config: Config) -> dict[str, Any]:
    """A burst at 50 ms of latency, default (adaptive) senders: rate and concurrency."""
    messages, latency = config.burst_messages, config.burst_latency
    options = {"max_queue_size": queue_for(messages)}
    with server(latency=latency) as (endpoint, pid):
        runs = measure(
            ("ours",),
            config.repeats,
            lambda _: delivery_spec(
                endpoint, pid, messages, options, warmup=1, sample=config.sample_interval
            ),
            "burst50",
            timeout=3600,
        )["ours"]
    timelines = [run["samples"] for run in runs]
    return {
        "messages": messages,
        "latency": latency,
        "max_workers": client_default("max_workers"),
        "max_queue_size": options["max_queue_size"],
        "sample_interval": config.sample_interval,
        "settled_after": SETTLED_AFTER,
        "runs": [
            {
                **slim(run),
                "in_flight_settled": median_after(run["samples"], SETTLED_AFTER, 1),
                "threads_settled": median_after(run["samples"], SETTLED_AFTER, 2),
            }
            for run in runs
        ],
        # [t, requests in flight, sender threads alive]: medians over runs
        "timeline": median_timeline(timelines, (1, 2)),
    }


# rate limit -------------------------------------------------------------------------------


def converged_at(windows: Sequence[Sequence[float]], admit: int) -> float:
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


def rejected_share(windows: Sequence[Sequence[float]], after: float) -> float:
    """The share of requests answered 429 in the windows that start at ``after`` or later."""
    admitted = sum(window[3] for window in windows if window[0] >= after)
    rejected = sum(window[4] for window in windows if window[0] >= after)
    return rejected / (admitted + rejected) if admitted + rejected else 0.0


def ratelimit(config: Config) -> dict[str, Any]:
    """Default settings against a server that serves K at once and answers 429 beyond."""
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
            lambda label: delivery_spec(
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
    cells = []
    for label, seconds in settings.items():
        windows = [server_windows(run) for run in runs[label]]
        clients = [run["samples"] for run in runs[label]]
        served = median_timeline(windows, (1, 4), ("median", "mean"))
        in_flight = {row[0]: row[1] for row in median_timeline(clients, (1,))}
        cells.append(
            {
                "retry_after": seconds,
                "runs": [
                    {
                        **slim(run),
                        "converged_s": converged_at(w, admit),
                        "share_429_settled": rejected_share(w, SETTLED_AFTER),
                        "rejected": sum(window[4] for window in w),
                        "served_settled": median_after(w, SETTLED_AFTER, 1),
                    }
                    for run, w in zip(runs[label], windows)
                ],
                # [t, served at once (median), 429s per window (mean), in flight (median)]
                "timeline": [[*row, in_flight.get(row[0], float("nan"))] for row in served],
            }
        )
    return {
        "messages": messages,
        "admit": admit,
        "latency": latency,
        "window": config.sample_interval,
        "settled_after": SETTLED_AFTER,
        "cells": cells,
    }


# idle -------------------------------------------------------------------------------------


def _idle_timeline(timelines: Sequence[Sequence[Sequence[float]]]) -> list[list[float]]:
    """Sender threads alive at each of the idle span's ticks: ``[t, median over runs]``."""
    ticks = min((len(rows) for rows in timelines), default=0)
    return [
        [
            statistics.median(rows[tick][0] for rows in timelines),
            statistics.median(rows[tick][1] for rows in timelines),
        ]
        for tick in range(ticks)
    ]


def idle(config: Config) -> dict[str, Any]:
    """One message, then idling: sender threads left and CPU spent."""
    seconds = config.idle_seconds
    with server() as (endpoint, _):
        runs = measure(
            ("ours",),
            config.repeats,
            lambda _: {"workload": "idle", "endpoint": endpoint, "seconds": seconds},
            "idle",
            timeout=seconds + 120,
        )["ours"]
    return {
        "seconds": seconds,
        "runs": [slim(run) for run in runs],
        "timeline": _idle_timeline([run["timeline"] for run in runs]),
    }


SCENARIOS = {
    "caller": caller,
    "throughput": throughput,
    "burst50": burst50,
    "ratelimit": ratelimit,
    "sender": sender,
    "memory": memory,
    "outbox": outbox,
    "idle": idle,
    "import": import_time,
    "replay": replay,
}
