"""Reading the benchmark's data: medians, derived figures, the targets and their verdicts.

The summary table's rows, the one-line explanation of each target missed, and the page's
three-line verdict. Pure functions of the data (see ``page.py``).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from charts import fmt

Data = dict[str, Any]


# Targets of the summary table; a run records them with its results.
TARGETS: dict[str, float] = {
    "caller_wall": 0.25,  # ours / Segment, wall per track(), the fixed-size cases
    "burst_wall": 1.0,  # ours / Segment, the default-settings burst
    "burst_cpu": 0.5,
    "throughput_raw": 0.8,  # of a raw urllib3 loop, 0 ms
    "throughput_ideal": 0.9,  # of workers / latency, 50 ms
    "burst50_share": 0.9,  # of max_workers / latency
    "burst50_floor": 320.0,  # events/s
    "ratelimit_share": 0.03,  # of requests answered 429 after the first 2 s
    "sender": 1.15,  # ours / the previous version
    "memory": 0.45,  # ours / Segment
    "idle_threads": 1,
    "idle_cpu": 0.0,  # seconds, to two decimals
    "import": 1.2,  # ours / requests
    "outbox_senders": 1.0,  # ours with an outbox and in-process senders / Segment, wall
    "outbox_write_only": 0.5,  # ours writing the outbox only (a relay drains it) / Segment
}

# numbers ----------------------------------------------------------------------------------


def med(values: Iterable[float | None]) -> float:
    present = [float(value) for value in values if value is not None]
    return statistics.median(present) if present else float("nan")


def spread(values: Sequence[float | None], digits: int = 1) -> str:
    """``median (min-max)``, or the value alone for one run."""
    present = [float(value) for value in values if value is not None]
    if not present:
        return "n/a"
    if len(present) == 1:
        return fmt(present[0], digits)
    low, high = min(present), max(present)
    return f"{fmt(statistics.median(present), digits)} ({fmt(low, digits)}-{fmt(high, digits)})"


def num(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else fmt(value, digits)


def ratio_of(ours: float, reference: float) -> float:
    return ours / reference if reference else float("nan")


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def details(title: str, body: str) -> str:
    """A collapsed block (pymdownx.details): secondary tables stay out of the way."""
    indented = "\n".join(f"    {line}" if line else "" for line in body.splitlines())
    return f'??? note "{title}"\n\n{indented}'


def values(runs: Sequence[Data], key: str | Callable[[Data], float]) -> list[float]:
    get = key if callable(key) else (lambda run: run[key])
    return [get(run) for run in runs]


def sdk_cpu(run: Data) -> float:
    """The SDK's own threads' CPU per call: process CPU minus the callers'."""
    return float(run["process_cpu_us_per_call"]) - float(run["cpu_us_per_call"])


def cpu_per_message(run: Data) -> float:
    """A delivery run's client CPU per message, microseconds."""
    return float(run["client_cpu"]) / float(run["events_per_s"]) * 1e6


def sender_us(run: Data) -> float:
    """Sender threads' CPU per delivered message: process CPU minus the calling thread's."""
    return (run["process_cpu_s"] - run["caller_cpu_s"]) / max(1, run["delivered"]) * 1e6


def per_delivered(key: str) -> Callable[[Data], float]:
    return lambda run: run[key] / max(1, run["delivered"]) * 1e6


# summary rows -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the summary table; ``family`` groups rows one explanation covers."""

    family: str
    scenario: str
    ours: str
    reference: str
    ratio: float | None
    target: str
    met: bool | None
    versus: str = ""  # who the reference is, when it is a competitor


def payload_label(payload: int) -> str:
    return {0: "small", 2048: "2 KB", 20480: "20 KB"}.get(payload, f"{payload} B")


def case_label(case: Data) -> str:
    threads = case["threads"]
    return f"{payload_label(case['payload'])}, {threads} thread{'s' * (threads > 1)}"


def _caller_rows(s: Data, t: dict[str, float]) -> list[Row]:
    rows = []
    for case in s["cases"]:
        ours, peer = (med(values(case[sdk], "us_per_call")) for sdk in ("ours", "peer"))
        ratio = ratio_of(ours, peer)
        rows.append(
            Row(
                "caller_wall",
                f"Call wall µs: {case_label(case)}",
                num(ours),
                f"{num(peer)} Segment",
                ratio,
                f"≤ {t['caller_wall']:g}x",
                ratio <= t["caller_wall"],
                "Segment",
            )
        )
    burst = s["burst"]
    calls = f"{burst['calls']:,}-call burst"
    for family, key, what in (
        ("burst_wall", "us_per_call", "wall"),
        ("burst_cpu", "cpu_us_per_call", "CPU"),
    ):
        ours, peer = (med(values(burst[sdk], key)) for sdk in ("ours", "peer"))
        ratio = ratio_of(ours, peer)
        rows.append(
            Row(
                family,
                f"Call {what} µs: {calls}",
                num(ours),
                f"{num(peer)} Segment",
                ratio,
                f"≤ {t[family]:g}x",
                ratio <= t[family],
                "Segment",
            )
        )
    dropped = {sdk: sum(values(burst[sdk], "dropped")) for sdk in ("ours", "peer")}
    rows.append(
        Row(
            "burst_drop",
            f"Dropped: {calls}",
            str(dropped["ours"]),
            f"{dropped['peer']} Segment",
            None,
            "0",
            dropped["ours"] == 0,
        )
    )
    return rows


def cells_at(s: Data, latency: float) -> list[Data]:
    return [cell for cell in s["cells"] if cell["latency"] == latency]


def _throughput_rows(s: Data, t: dict[str, float]) -> list[Row]:
    rows = []
    for cell in cells_at(s, 0.0):
        ours, raw = (med(values(cell[who], "events_per_s")) for who in ("ours", "raw"))
        ratio = ratio_of(ours, raw)
        rows.append(
            Row(
                "throughput_raw",
                f"Events/s: 0 ms, {cell['workers']} workers",
                num(ours, 0),
                f"{num(raw, 0)} raw urllib3",
                ratio,
                f"≥ {t['throughput_raw']:g}x",
                ratio >= t["throughput_raw"],
                "raw",
            )
        )
    latency = s["latency"]
    for cell in cells_at(s, latency):
        ours = med(values(cell["ours"], "events_per_s"))
        ideal = cell["workers"] / latency
        ratio = ratio_of(ours, ideal)
        rows.append(
            Row(
                "throughput_ideal",
                f"Events/s: {latency * 1000:g} ms, {cell['workers']} workers",
                num(ours, 0),
                f"{num(ideal, 0)} ideal",
                ratio,
                f"≥ {t['throughput_ideal']:g}x",
                ratio >= t["throughput_ideal"],
            )
        )
    return rows


def _burst50_rows(s: Data, t: dict[str, float]) -> list[Row]:
    rate = med(values(s["runs"], "events_per_s"))
    ideal = s["max_workers"] / s["latency"]
    ratio = ratio_of(rate, ideal)
    return [
        Row(
            "burst50",
            f"Events/s: burst at {s['latency'] * 1000:g} ms",
            num(rate, 0),
            f"{num(ideal, 0)} ideal",
            ratio,
            f"≥ {t['burst50_share']:g}x; ≥ {t['burst50_floor']:g}/s",
            ratio >= t["burst50_share"] and rate >= t["burst50_floor"],
        )
    ]


def lost(s: Data, cell: Data) -> int:
    return int(sum(s["messages"] - run["delivered"] for run in cell["runs"]))


def _ratelimit_rows(s: Data, t: dict[str, float]) -> list[Row]:
    rows = []
    for cell in s["cells"]:
        share = med(values(cell["runs"], "share_429_settled"))
        missing = lost(s, cell)
        rows.append(
            Row(
                "ratelimit",
                f"429 share; lost: Retry-After {cell['retry_after']:g} s",
                f"{share:.1%}; {missing}",
                "-",
                None,
                f"≤ {t['ratelimit_share']:.0%}; 0",
                share <= t["ratelimit_share"] and missing == 0,
            )
        )
    return rows


def _sender_rows(s: Data, t: dict[str, float]) -> list[Row]:
    ours, previous = med(map(sender_us, s["ours"])), med(map(sender_us, s["baseline_runs"]))
    ratio = ratio_of(ours, previous)
    return [
        Row(
            "sender",
            f"Sender CPU µs/msg: {s['workers']} workers",
            num(ours),
            f"{num(previous)} previous",
            ratio,
            f"≤ {t['sender']:g}x",
            ratio <= t["sender"],
            "previous version",
        )
    ]


def rss_per_message(s: Data, sdk: str) -> float:
    return med(run["rss_growth_kib"] * 1024 / s["messages"] for run in s[sdk])


def _memory_rows(s: Data, t: dict[str, float]) -> list[Row]:
    ours, peer = rss_per_message(s, "ours"), rss_per_message(s, "peer")
    ratio = ratio_of(ours, peer)
    dropped = sum(values(s["ours"], "dropped"))
    return [
        Row(
            "memory",
            "Bytes per queued message",
            num(ours, 0),
            f"{num(peer, 0)} Segment",
            ratio,
            f"≤ {t['memory']:g}x; 0 dropped",
            ratio <= t["memory"] and dropped == 0,
            "Segment",
        )
    ]


def _idle_rows(s: Data, t: dict[str, float]) -> list[Row]:
    threads = med(values(s["runs"], "threads_at_end"))
    cpu = med(values(s["runs"], "cpu_s"))
    return [
        Row(
            "idle",
            f"Idle {s['seconds']:g} s: threads; CPU s",
            f"{num(threads, 0)}; {cpu:.2f}",
            "-",
            None,
            f"≤ {t['idle_threads']:g}; {t['idle_cpu']:.2f}",
            threads <= t["idle_threads"] and round(cpu, 2) <= t["idle_cpu"],
        )
    ]


def _import_rows(s: Data, t: dict[str, float]) -> list[Row]:
    ours, requests = med(s["gainsight_segment"]["alone"]), med(s["requests"]["alone"])
    ratio = ratio_of(ours, requests)
    return [
        Row(
            "import",
            "Import time, ms",
            num(ours),
            f"{num(requests)} requests",
            ratio,
            f"≤ {t['import']:g}x",
            ratio <= t["import"],
            "requests",
        )
    ]


# The outbox scenario's contenders of ours, as the summary and the section name them.
OUTBOX_MODES = {
    "senders": "in-process senders",
    "write-only": "write-only, a relay draining",
    "fsync": "in-process senders, fsync",
}


def _outbox_rows(s: Data, t: dict[str, float]) -> list[Row]:
    peer = med(values(s["peer"], "us_per_call"))
    rows = []
    for mode, family in (
        ("senders", "outbox_senders"),
        ("write-only", "outbox_write_only"),
        ("fsync", "outbox_fsync"),
    ):
        ours = med(values(s[mode], "us_per_call"))
        ratio = ratio_of(ours, peer)
        target = t.get(family)
        rows.append(
            Row(
                family,
                f"Outbox call wall µs: {OUTBOX_MODES[mode]}",
                num(ours),
                f"{num(peer)} Segment",
                ratio,
                "-" if target is None else f"≤ {target:g}x",
                None if target is None else ratio <= target,
                "Segment",
            )
        )
    return rows


ROWS: dict[str, Callable[[Data, dict[str, float]], list[Row]]] = {
    "caller": _caller_rows,
    "throughput": _throughput_rows,
    "burst50": _burst50_rows,
    "ratelimit": _ratelimit_rows,
    "sender": _sender_rows,
    "memory": _memory_rows,
    "outbox": _outbox_rows,
    "idle": _idle_rows,
    "import": _import_rows,
}


def summary_rows(data: Data) -> list[Row]:
    rows: list[Row] = []
    for name, scenario in data["scenarios"].items():
        if name in ROWS:
            rows += ROWS[name](scenario, TARGETS)
    return rows


def summary_table(rows: Sequence[Row]) -> str:
    return table(
        ["scenario", "ours", "reference", "ratio", "target", "met"],
        [
            [
                row.scenario,
                row.ours,
                row.reference,
                "-" if row.ratio is None else f"{row.ratio:.2f}x",
                row.target,
                "-" if row.met is None else ("yes" if row.met else "**no**"),
            ]
            for row in rows
        ],
    )


# why a target was missed: one line each, with the number that explains it ----------------


def small_case(s: Data) -> Data:
    return next(c for c in s["cases"] if (c["payload"], c["threads"]) == (0, 1))


def _why_caller_wall(data: Data) -> str:
    s, t = data["scenarios"]["caller"], TARGETS
    case = small_case(s)
    wall, peer_wall = (med(values(case[sdk], "us_per_call")) for sdk in ("ours", "peer"))
    cpu, peer_cpu = (med(values(case[sdk], "cpu_us_per_call")) for sdk in ("ours", "peer"))
    senders = med(map(sdk_cpu, case["ours"]))
    budget = t["caller_wall"] * peer_wall
    if cpu > budget:
        return (
            f"{t['caller_wall']:g}x of Segment's {num(peer_wall)} µs leaves {num(budget)} µs, "
            f"less than our call's own CPU ({num(cpu)} µs, against Segment's {num(peer_cpu)}); "
            f"the rest of our {num(wall)} µs is sender threads holding the GIL "
            f"({num(senders)} µs per call, small properties, one thread)."
        )
    return (
        f"our call's own CPU ({num(cpu)} µs) fits the {num(budget)} µs budget, its wall time "
        f"({num(wall)} µs) does not: while the app produces, our sender threads hold the GIL "
        f"for {num(senders)} µs per call, each sending one message per request (small "
        "properties, one thread)."
    )


def _why_burst(data: Data, key: str) -> str:
    s = data["scenarios"]["caller"]
    burst = s["burst"]
    ours, peer = (med(values(burst[sdk], key)) for sdk in ("ours", "peer"))
    one = next((pool for pool in s["fixed"] if pool["workers"] == 1), None)
    if key == "cpu_us_per_call":
        text = (
            f"{TARGETS['burst_cpu']:g}x of Segment's {num(peer)} µs is "
            f"{num(TARGETS['burst_cpu'] * peer)} µs; ours is {num(ours)}"
        )
        if one is not None:
            text += (
                f", and {num(med(values(one['ours'], key)))} µs with a single sender thread: "
                "it is the call's own work (validating and serializing the message in the "
                "caller's thread), not contention"
            )
        return text + "."
    threads = med(values(burst["ours"], "threads_median"))
    senders = med(map(sdk_cpu, burst["ours"]))
    return (
        f"{num(ours)} µs against Segment's {num(peer)}: during the burst {num(threads, 0)} of "
        f"our threads ran and took {num(senders)} µs of CPU per call, time the caller waits "
        "for the GIL."
    )


def _why_throughput_raw(data: Data) -> str:
    s = data["scenarios"]["throughput"]
    worst = min(
        cells_at(s, 0.0),
        key=lambda c: (
            med(values(c["ours"], "events_per_s")) / med(values(c["raw"], "events_per_s"))
        ),
    )
    ours = med(map(cpu_per_message, worst["ours"]))
    raw = med(map(cpu_per_message, worst["raw"]))
    share = med(values(worst["ours"], "client_cpu"))
    return (
        f"at 0 ms both are CPU-bound in one interpreter ({share:.0%} of a core), so the ratio "
        f"is one of CPU per message: with {worst['workers']} workers ours spends "
        f"{num(ours, 0)} µs, the bare loop {num(raw, 0)} (see Sender CPU)."
    )


def _why_throughput_ideal(data: Data) -> str:
    s = data["scenarios"]["throughput"]
    latency = s["latency"]
    missed_cells = [
        c
        for c in cells_at(s, latency)
        if med(values(c["ours"], "events_per_s")) * latency / c["workers"]
        < TARGETS["throughput_ideal"]
    ] or cells_at(s, latency)
    raw = [med(values(c["raw"], "events_per_s")) * latency / c["workers"] for c in missed_cells]
    workers = "/".join(str(c["workers"]) for c in missed_cells)
    per_message = med(cpu_per_message(run) for c in missed_cells for run in c["ours"])
    return (
        f"the bare urllib3 loop with the same {workers} workers reaches only {_range(raw)} of "
        f"the ideal on this machine too: each round of requests also waits for their "
        f"processing under one GIL ({num(per_message, 0)} µs of CPU per message for ours)."
    )


def _why_burst50(data: Data) -> str:
    s = data["scenarios"]["burst50"]
    latency = s["latency"]
    in_flight = med(values(s["runs"], "in_flight_settled"))
    per_message = med(map(cpu_per_message, s["runs"]))
    ideal = s["max_workers"] / latency
    cost = (
        f"at {num(per_message, 0)} µs of CPU per message, {num(ideal, 0)}/s would take "
        f"{per_message * ideal / 1e6:.0%} of a core"
    )
    if in_flight != in_flight:  # NaN: every run ended before the limit settled
        return f"the burst ended within {s['settled_after']:g} s, before the limit settled; {cost}."
    return (
        f"the adaptive limit held {num(in_flight, 0)} requests in flight after "
        f"{s['settled_after']:g} s, not {s['max_workers']} ({num(in_flight, 0)} / "
        f"{latency:g} s = {num(in_flight / latency, 0)}/s); {cost}."
    )


def _why_ratelimit(data: Data) -> str:
    s = data["scenarios"]["ratelimit"]
    parts = []
    for cell in s["cells"]:
        share = med(values(cell["runs"], "share_429_settled"))
        failed = int(sum(run.get("failed", 0) for run in cell["runs"]))
        missing = lost(s, cell)
        label = f"with Retry-After {cell['retry_after']:g} s"
        if missing:
            total = s["messages"] * len(cell["runs"])
            parts.append(
                f"{label}, {missing} of {total:,} messages ({len(cell['runs'])} runs) "
                + (
                    "drew a 429 on every attempt (1 + `max_retries=3`) and was reported failed"
                    if failed == missing
                    else "were not delivered"
                )
                + f"; 429s stayed at {share:.1%} of requests after {s['settled_after']:g} s"
            )
        elif share > TARGETS["ratelimit_share"]:
            parts.append(f"{label}, {share:.1%} of requests after {s['settled_after']:g} s")
    return "; ".join(parts) + "."


def _why_sender(data: Data) -> str:
    s = data["scenarios"]["sender"]
    ours, previous = med(map(sender_us, s["ours"])), med(map(sender_us, s["baseline_runs"]))
    paired = [
        sender_us(now) / sender_us(before) for now, before in zip(s["ours"], s["baseline_runs"])
    ]
    return (
        f"with the same fixed pool of {s['workers']}, each message costs the sender threads "
        f"{num(ours - previous)} µs more ({num(ours)} against {num(previous)}; "
        f"{_range(paired)} run by run): the deadline that now bounds each whole attempt "
        "wraps every socket read and write, and each request goes through the adaptive "
        "limit's bookkeeping."
    )


def _why_memory(data: Data) -> str:
    s, t = data["scenarios"]["memory"], TARGETS
    target = t["memory"] * rss_per_message(s, "peer")
    body = s["breakdown"]["ours"].get("body_object", 0)
    if body > target:
        return (
            f"the target is {num(target, 0)} bytes per message, less than the serialized "
            f"body alone ({body} bytes), which the SDK keeps from the call on."
        )
    return (
        f"we keep {num(rss_per_message(s, 'ours'), 0)} bytes per message, the target is "
        f"{num(target, 0)}; the serialized body is {body}."
    )


def _why_idle(data: Data) -> str:
    s = data["scenarios"]["idle"]
    return (
        f"{num(med(values(s['runs'], 'threads_at_end')), 0)} sender threads and "
        f"{med(values(s['runs'], 'cpu_s')):.2f} s of CPU after {s['seconds']:g} s idle."
    )


def _why_import(data: Data) -> str:
    s, t = data["scenarios"]["import"], TARGETS
    requests = med(s["requests"]["alone"])
    budget = (t["import"] - 1) * requests
    attrs, count = s["groups"].get("attrs", [0.0, 0])
    added = s["added"]
    return (
        f"the {t['import']:g}x budget over `import requests` ({num(requests)} ms) is "
        f"{num(budget)} ms; ours adds {added['modules']} modules for {num(added['ms'])} ms, "
        f"of which `attrs` and the standard-library modules it imports take {num(attrs)} ms "
        f"({count} modules)."
    )


def _why_drop(data: Data) -> str:
    burst = data["scenarios"]["caller"]["burst"]
    dropped = sum(values(burst["ours"], "dropped"))
    return f"{dropped} messages dropped with `max_queue_size={burst['max_queue_size']:,}`."


def _why_outbox(data: Data, mode: str) -> str:
    s = data["scenarios"]["outbox"]
    ours, peer = med(values(s[mode], "us_per_call")), med(values(s["peer"], "us_per_call"))
    cpu = med(values(s[mode], "cpu_us_per_call"))
    family = "outbox_senders" if mode == "senders" else "outbox_write_only"
    text = (
        f"{num(ours)} µs against a budget of {num(TARGETS[family] * peer)} "
        f"({TARGETS[family]:g}x Segment's {num(peer)}); the call's own CPU is {num(cpu)} µs: "
        "the message built and serialized, as without an outbox, and one write to the "
        "process's spool file"
    )
    if mode == "senders":
        return (
            f"{text}. The senders, delivering about as fast as the app writes, take "
            f"{num(med(map(sdk_cpu, s[mode])))} µs of CPU per call: time the caller waits "
            "for the GIL."
        )
    return f"{text}."


WHY: dict[str, tuple[str, Callable[[Data], str]]] = {
    "caller_wall": ("`track()` wall time", _why_caller_wall),
    "burst_wall": ("Wall time in the burst", lambda data: _why_burst(data, "us_per_call")),
    "burst_cpu": ("Caller CPU in the burst", lambda data: _why_burst(data, "cpu_us_per_call")),
    "burst_drop": ("Drops in the burst", _why_drop),
    "throughput_raw": ("Throughput at 0 ms", _why_throughput_raw),
    "throughput_ideal": ("Throughput at 50 ms", _why_throughput_ideal),
    "burst50": ("Burst at 50 ms", _why_burst50),
    "ratelimit": ("Rate limit", _why_ratelimit),
    "sender": ("Sender CPU", _why_sender),
    "memory": ("Memory", _why_memory),
    "idle": ("Idle", _why_idle),
    "import": ("Import time", _why_import),
    "outbox_senders": (
        "Outbox with in-process senders",
        lambda data: _why_outbox(data, "senders"),
    ),
    "outbox_write_only": ("Write-only outbox", lambda data: _why_outbox(data, "write-only")),
}


def missed(data: Data, rows: Sequence[Row]) -> str:
    """One line per family of missed targets: which rows, and why."""
    families: dict[str, list[Row]] = {}
    for row in rows:
        if row.met is False:
            families.setdefault(row.family, []).append(row)
    if not families:
        return "Every target was met."
    lines = []
    for family, failed in families.items():
        name, why = WHY[family]
        total = sum(1 for row in rows if row.family == family)
        which = "" if total == 1 else f" ({len(failed)} of {total} rows)"
        lines.append(f"- **{name}**{which}: {why(data)}")
    return "Targets not met, and why:\n\n" + "\n".join(lines)


# the verdict ------------------------------------------------------------------------------


def _range(ratios: Sequence[float]) -> str:
    low, high = min(ratios), max(ratios)
    return f"{low:.2f}x" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f}x"


def _ratios(rows: Sequence[Row]) -> list[float]:
    return [row.ratio for row in rows if row.ratio is not None]


def _beat(data: Data, by: dict[str, list[Row]]) -> str:
    """What we do better than Segment's SDK, and the targets of our own we meet."""
    versus = []
    wall = _ratios(by.get("caller_wall", []) + by.get("burst_wall", []))
    cpu = _ratios(by.get("burst_cpu", []))
    if wall and cpu and max(wall + cpu) < 1:
        versus.append(f"the caller's cost per `track()` (wall {_range(wall)}, CPU {_range(cpu)})")
    memory = _ratios(by.get("memory", []))
    if memory and max(memory) < 1:
        versus.append(f"memory per queued message ({_range(memory)})")
    own = []
    if by.get("throughput_raw") and all(row.met for row in by["throughput_raw"]):
        raw = _range(_ratios(by["throughput_raw"]))
        own.append(f"throughput keeps up with a bare urllib3 loop ({raw})")
    if by.get("burst50") and all(row.met for row in by["burst50"]):
        own.append(f"a burst at 50 ms reaches {_range(_ratios(by['burst50']))} of the ideal rate")
    if by.get("ratelimit") and all(row.met for row in by["ratelimit"]):
        own.append("behind a rate limit nothing is lost")
    if by.get("idle") and all(row.met for row in by["idle"]):
        idle = data["scenarios"]["idle"]
        threads = med(values(idle["runs"], "threads_at_end"))
        kept = "no sender thread" if threads == 0 else f"{num(threads, 0)} sender thread"
        kept += "s" if threads > 1 else ""
        own.append(f"an idle client keeps {kept} and spends no CPU")
    text = f"Segment's SDK on {join(versus)}" if versus else "nothing of Segment's SDK"
    return "**What we beat:** " + text + ("; " + join(own) if own else "") + "."


def _trade(data: Data, by: dict[str, list[Row]]) -> str:
    """What we pay, and for what."""
    items = []
    sender = _ratios(by.get("sender", []))
    if sender and max(sender) > 1:
        text = (
            f"sender CPU ({_range(sender)} the previous version's) for a deadline on each "
            "whole attempt and adaptive concurrency"
        )
        raw = _ratios(by.get("throughput_raw", []))
        if raw and min(raw) < 1:
            text += f", which holds throughput at 0 ms to {_range(raw)} a bare urllib3 loop's"
        items.append(text)
    imports = _ratios(by.get("import", []))
    if imports and max(imports) > 1:
        items.append(f"import time ({_range(imports)} `requests`'s) for `attrs`-validated settings")
    wall = _ratios(by.get("caller_wall", []) + by.get("burst_wall", []))
    if wall and max(wall) > 1:
        items.append(
            f"wall time per call while senders run (up to {max(wall):.2f}x Segment's), "
            "for one request per message, as Gainsight takes them"
        )
    return "**What we trade:** " + ("; ".join(items) if items else "nothing measured here") + "."


def _next_ratelimit(data: Data) -> str:
    s = data["scenarios"]["ratelimit"]
    missing = sum(lost(s, cell) for cell in s["cells"])
    total = s["messages"] * sum(len(cell["runs"]) for cell in s["cells"])
    if missing:
        return (
            f"losing no message to a rate limit ({missing} in {total:,} failed after its retries)"
        )
    return "fewer 429s behind a rate limit"


def _next_sender(data: Data) -> str:
    s = data["scenarios"]["sender"]
    ours, previous = med(map(sender_us, s["ours"])), med(map(sender_us, s["baseline_runs"]))
    return f"cheaper per-request delivery code (+{num(ours - previous, 0)} µs per message)"


def _next_import(data: Data) -> str:
    s = data["scenarios"]["import"]
    attrs = s["groups"].get("attrs", [0.0, 0])[0]
    return f"keeping `attrs` off the import path ({num(attrs)} ms)"


def _next_burst_cpu(data: Data) -> str:
    burst = data["scenarios"]["caller"]["burst"]
    return f"a cheaper call ({num(med(values(burst['ours'], 'cpu_us_per_call')))} µs of CPU)"


# What would move a missed target, most pressing first.
NEXT: dict[str, Callable[[Data], str]] = {
    "ratelimit": _next_ratelimit,
    "burst_drop": lambda data: "a queue bound that holds a burst",
    "sender": _next_sender,
    "throughput_raw": _next_sender,
    "import": _next_import,
    "burst_cpu": _next_burst_cpu,
    "caller_wall": lambda data: "keeping sender threads off the GIL while the app produces",
    "burst_wall": lambda data: "fewer sender threads while the app produces a burst",
    "memory": lambda data: "less held per queued message than its serialized body",
    "burst50": lambda data: "a faster climb of the adaptive limit",
    "throughput_ideal": lambda data: "less CPU per request",
    "idle": lambda data: "no thread and no wake-up while idle",
    "outbox_write_only": lambda data: "less work on the caller's thread besides the write",
    "outbox_senders": lambda data: "outbox senders that hold back while the app writes",
}


def verdict(data: Data, rows: Sequence[Row]) -> list[str]:
    """Three lines: what we beat, what we trade, what is next."""
    by: dict[str, list[Row]] = {}
    for row in rows:
        by.setdefault(row.family, []).append(row)
    missed_families = {row.family for row in rows if row.met is False}
    steps = list(dict.fromkeys(NEXT[family](data) for family in NEXT if family in missed_families))
    third = "**What is next:** " + (join(steps[:3]) if steps else "keeping every target met")
    return [_beat(data, by), _trade(data, by), third + "."]


def join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def repeats(data: Data, scenario: str) -> int:
    for run in data["runs"]:
        if scenario in run["scenarios"]:
            return int(run["repeats"])
    return 0
