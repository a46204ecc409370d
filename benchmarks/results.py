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
    what = f"Events/s: burst at {s['latency'] * 1000:g} ms"
    return [
        Row(
            "burst50_share",
            what,
            num(rate, 0),
            f"{num(ideal, 0)} ideal",
            ratio,
            f"≥ {t['burst50_share']:g}x",
            ratio >= t["burst50_share"],
        ),
        Row(
            "burst50_floor",
            f"{what}, floor",
            num(rate, 0),
            "-",
            None,
            f"≥ {t['burst50_floor']:g}/s",
            rate >= t["burst50_floor"],
        ),
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
            "idle_threads",
            f"Sender threads after {s['seconds']:g} s idle",
            num(threads, 0),
            "-",
            None,
            f"≤ {t['idle_threads']:g}",
            threads <= t["idle_threads"],
        ),
        Row(
            "idle_cpu",
            f"CPU s over {s['seconds']:g} s idle",
            f"{cpu:.2f}",
            "-",
            None,
            f"{t['idle_cpu']:.2f}",
            round(cpu, 2) <= t["idle_cpu"],
        ),
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


ROWS: dict[str, Callable[[Data, dict[str, float]], list[Row]]] = {
    "caller": _caller_rows,
    "throughput": _throughput_rows,
    "burst50": _burst50_rows,
    "ratelimit": _ratelimit_rows,
    "sender": _sender_rows,
    "memory": _memory_rows,
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
    threads = med(values(burst["ours"], "threads_median"))
    most = med(values(burst["ours"], "threads_most"))
    senders = med(map(sdk_cpu, burst["ours"]))
    text = (
        f"{num(ours)} µs against Segment's {num(peer)}: during the burst {num(threads, 0)} "
        f"of our threads ran (at most {num(most, 0)}) and took {num(senders)} µs of CPU per "
        "call, time the caller waits for the GIL"
    )
    one = next((pool for pool in s["fixed"] if pool["workers"] == 1), None)
    if key == "cpu_us_per_call" and one is not None:
        text += (
            f"; with a single fixed sender the same call costs its thread "
            f"{num(med(values(one['ours'], key)))} µs"
        )
    return text + "."


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
        f"at 0 ms both are CPU-bound in one interpreter ({share:.0%} of a core): with "
        f"{worst['workers']} workers ours spends {num(ours, 0)} µs of CPU per message, the bare "
        f"loop {num(raw, 0)} µs."
    )


def _why_throughput_ideal(data: Data) -> str:
    s = data["scenarios"]["throughput"]
    latency = s["latency"]
    worst = min(
        cells_at(s, latency),
        key=lambda c: med(values(c["ours"], "events_per_s")) * latency / c["workers"],
    )
    per_message = med(map(cpu_per_message, worst["ours"]))
    extra = per_message * worst["workers"] / 1000
    return (
        f"each round of {worst['workers']} requests also waits for their processing under one "
        f"GIL, {num(per_message, 0)} µs each: {num(extra)} ms on top of {latency * 1000:g} ms."
    )


def _why_burst50(data: Data) -> str:
    s = data["scenarios"]["burst50"]
    latency = s["latency"]
    in_flight = med(values(s["runs"], "in_flight_settled"))
    per_message = med(map(cpu_per_message, s["runs"]))
    ideal = s["max_workers"] / latency
    return (
        f"the adaptive limit held {num(in_flight, 0)} requests in flight after "
        f"{s['settled_after']:g} s, not {s['max_workers']} ({num(in_flight, 0)} / "
        f"{latency:g} s = {num(in_flight / latency, 0)}/s); at {num(per_message, 0)} µs of CPU "
        f"per message, {num(ideal, 0)}/s would take {per_message * ideal / 1e6:.0%} of a core."
    )


def _why_ratelimit(data: Data) -> str:
    s = data["scenarios"]["ratelimit"]
    parts = []
    for cell in s["cells"]:
        share = med(values(cell["runs"], "share_429_settled"))
        missing = lost(s, cell)
        parts.append(
            f"Retry-After {cell['retry_after']:g} s: {share:.1%} of requests after "
            f"{s['settled_after']:g} s, {num(med(values(cell['runs'], 'rejected')), 0)} 429s "
            f"per run, {missing} lost"
        )
    return "; ".join(parts) + "."


def _why_sender(data: Data) -> str:
    s = data["scenarios"]["sender"]
    ours, previous = med(map(sender_us, s["ours"])), med(map(sender_us, s["baseline_runs"]))
    return (
        f"with the same fixed pool of {s['workers']}, the sender threads spend "
        f"{num(ours - previous)} µs more per message than the previous version "
        f"({num(ours)} against {num(previous)} µs)."
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


WHY: dict[str, tuple[str, Callable[[Data], str]]] = {
    "caller_wall": ("`track()` wall time", _why_caller_wall),
    "burst_wall": ("Wall time in the burst", lambda data: _why_burst(data, "us_per_call")),
    "burst_cpu": ("Caller CPU in the burst", lambda data: _why_burst(data, "cpu_us_per_call")),
    "burst_drop": ("Drops in the burst", _why_drop),
    "throughput_raw": ("Throughput at 0 ms", _why_throughput_raw),
    "throughput_ideal": ("Throughput at 50 ms", _why_throughput_ideal),
    "burst50_share": ("Burst at 50 ms", _why_burst50),
    "burst50_floor": ("Burst at 50 ms, floor", _why_burst50),
    "ratelimit": ("Rate limit", _why_ratelimit),
    "sender": ("Sender CPU", _why_sender),
    "memory": ("Memory", _why_memory),
    "idle_threads": ("Idle threads", _why_idle),
    "idle_cpu": ("Idle CPU", _why_idle),
    "import": ("Import time", _why_import),
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

# What would move a missed target, in the order the verdict names them.
NEXT: dict[str, str] = {
    "caller_wall": "keep sender threads from taking the GIL while the app produces",
    "burst_wall": "fewer sender threads while the app is producing a burst",
    "burst_cpu": "fewer GIL hand-offs between the caller and the sender threads",
    "burst_drop": "a queue bound that holds a burst",
    "sender": "trim the adaptive senders' per-request bookkeeping",
    "burst50_share": "let the adaptive limit grow while latency is the server's, not ours",
    "burst50_floor": "let the adaptive limit grow while latency is the server's, not ours",
    "throughput_raw": "less Python per request on the sender path",
    "throughput_ideal": "less Python per request on the sender path",
    "ratelimit": "probe above a learnt rate limit less often",
    "memory": "hold less than the serialized body per queued message",
    "idle_threads": "let the last sender thread go when idle",
    "idle_cpu": "no timer wake-ups while idle",
    "import": "keep `attrs` off the import path",
}


def _range(ratios: Sequence[float]) -> str:
    low, high = min(ratios), max(ratios)
    return f"{low:.2f}x" if f"{low:.2f}" == f"{high:.2f}" else f"{low:.2f}-{high:.2f}x"


# Comparisons with a competitor, for the verdict: family, what, against whom.
COMPARED = (
    ("burst_cpu", "caller CPU per `track()`", "Segment"),
    ("caller_wall", "wall time per `track()`", "Segment"),
    ("burst_wall", "wall time per `track()` in a long burst", "Segment"),
    ("memory", "memory per queued message", "Segment"),
    ("sender", "sender CPU per message", "previous"),
    ("import", "import time", "requests"),
)
WHO = {"Segment": "Segment's SDK", "previous": "the previous version", "requests": "`requests`"}
# Targets without a competitor, as the verdict names them when missed.
OWN = {
    "throughput_raw": "throughput at 0 ms",
    "throughput_ideal": "throughput at 50 ms",
    "burst50_share": "a 50 ms burst's rate",
    "burst50_floor": "a 50 ms burst's rate",
    "ratelimit": "429s behind a rate limit",
    "idle_threads": "threads when idle",
    "idle_cpu": "CPU when idle",
    "burst_drop": "drops in a burst",
}


def verdict(data: Data, rows: Sequence[Row]) -> list[str]:
    """Three lines: what we beat, what we trade, what is next."""
    by_family: dict[str, list[Row]] = {}
    for row in rows:
        by_family.setdefault(row.family, []).append(row)
    beat: dict[str, list[str]] = {}
    trade: list[str] = []
    for family, label, who in COMPARED:
        ratios = [row.ratio for row in by_family.get(family, []) if row.ratio is not None]
        if not ratios:
            continue
        if max(ratios) < 1:
            beat.setdefault(who, []).append(f"{label} ({_range(ratios)})")
        else:
            trade.append(f"{label} ({_range(ratios)} {WHO[who]})")
    for family, label in OWN.items():
        failed = [row for row in by_family.get(family, []) if row.met is False]
        if failed and label not in " ".join(trade):
            ratios = [row.ratio for row in failed if row.ratio is not None]
            detail = _range(ratios) if ratios else failed[0].ours
            trade.append(f"{label} ({detail}, target {failed[0].target})")
    matched = []
    raw = [row.ratio for row in by_family.get("throughput_raw", []) if row.ratio is not None]
    if raw and min(raw) >= TARGETS["throughput_raw"]:
        matched.append(f"we deliver at {_range(raw)} a bare urllib3 loop's rate")
    kept = [
        label
        for family, label in (("ratelimit", "behind a rate limit"), ("idle_threads", "idle"))
        if family in by_family and all(row.met for row in by_family[family])
    ]
    if kept:
        matched.append(f"meet the targets {join(kept)}")
    first = "**What we beat:** " + (
        "; ".join(f"{WHO[who]} on {join(items)}" for who, items in beat.items())
        if beat
        else "nothing, in this run"
    )
    if matched:
        first += "; " + join(matched)
    second = "**What we trade:** " + (join(trade) if trade else "nothing measured here")
    nexts = list(dict.fromkeys(NEXT[row.family] for row in rows if row.met is False))
    third = "**What is next:** " + (join(nexts[:3]) if nexts else "keep every target met")
    return [first + ".", second + ".", third + "."]


def join(items: Sequence[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def repeats(data: Data, scenario: str) -> int:
    for run in data["runs"]:
        if scenario in run["scenarios"]:
            return int(run["repeats"])
    return 0
