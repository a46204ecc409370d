"""One section per scenario: its method in a paragraph, then its tables."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from results import (
    OUTBOX_MODES,
    TARGETS,
    Data,
    case_label,
    cpu_per_message,
    details,
    lost,
    med,
    num,
    per_delivered,
    ratio_of,
    repeats,
    rss_per_message,
    sdk_cpu,
    sender_us,
    small_case,
    spread,
    table,
    values,
)

# sections ---------------------------------------------------------------------------------


def _ratio(ours: Sequence[Data], peer: Sequence[Data], key: str) -> str:
    return f"{ratio_of(med(values(ours, key)), med(values(peer, key))):.2f}x"


def _caller_section(data: Data) -> str:
    s = data["scenarios"]["caller"]
    count = repeats(data, "caller")
    cases = s["cases"]
    wall_rows, cpu_rows = [], []
    for case in cases:
        ours, peer = case["ours"], case["peer"]
        wall_rows.append(
            [
                case_label(case),
                f"{case['calls']:,}",
                spread(values(ours, "us_per_call")),
                spread(values(peer, "us_per_call")),
                _ratio(ours, peer, "us_per_call"),
            ]
        )
        cpu_rows.append(
            [
                case_label(case),
                num(med(values(ours, "cpu_us_per_call"))),
                num(med(values(peer, "cpu_us_per_call"))),
                num(med(map(sdk_cpu, ours))),
                num(med(map(sdk_cpu, peer))),
            ]
        )
    peer_small = med(values(small_case(s)["peer"], "us_per_call"))
    pools = []
    for pool in s["fixed"]:
        runs = pool["ours"]
        wall = med(values(runs, "us_per_call"))
        pools.append(
            [
                str(pool["workers"]),
                spread(values(runs, "us_per_call")),
                f"{ratio_of(wall, peer_small):.2f}x",
                num(med(values(runs, "cpu_us_per_call"))),
                num(med(map(sdk_cpu, runs))),
                num(pool["calls"] - med(values(runs, "pending_at_end")), 0),
            ]
        )
    burst = s["burst"]
    burst_rows = [
        ["wall, µs per call"]
        + [spread(values(burst[sdk], "us_per_call")) for sdk in ("ours", "peer")],
        ["caller CPU, µs per call"]
        + [spread(values(burst[sdk], "cpu_us_per_call")) for sdk in ("ours", "peer")],
        ["SDK threads' CPU, µs per call"]
        + [num(med(map(sdk_cpu, burst[sdk]))) for sdk in ("ours", "peer")],
        ["SDK threads alive: median (most)"]
        + [
            f"{num(med(values(burst[sdk], 'threads_median')), 0)} "
            f"({num(med(values(burst[sdk], 'threads_most')), 0)})"
            for sdk in ("ours", "peer")
        ],
        ["still queued at the end"]
        + [num(med(values(burst[sdk], "pending_at_end")), 0) for sdk in ("ours", "peer")],
        ["dropped (all runs)"]
        + [str(sum(values(burst[sdk], "dropped"))) for sdk in ("ours", "peer")],
    ]
    default = (
        f"adaptive senders, at most `max_workers={s['max_workers']}`"
        if s["default_workers"] is None
        else f"`workers={s['default_workers']}`"
    )
    return "\n\n".join(
        [
            "## Caller cost",
            "What a `track()` call costs the application, in each SDK's default asynchronous "
            "mode, while its background threads deliver to a local server that answers at "
            f"once. Ours with default settings ({default}); Segment's with "
            f"`max_queue_size={s['peer_max_queue_size']:,}` so that it cannot drop (else "
            "defaults: one consumer thread, batches of 100). Each run is a fresh process: "
            f"{s['warmup']} warm-up calls and a flush, then the timed calls, split over the "
            "producer threads. **Wall** is the burst's wall time per call, what the app "
            "pays, waits for the GIL included; **CPU** is the producer threads' own CPU per "
            f"call. Median (min-max) of {count} runs; µs per call.",
            table(["case", "calls", "ours: wall", "Segment: wall", "ratio"], wall_rows),
            details(
                "Where the wall time goes: the call's CPU and the SDK threads' CPU",
                "The call's own CPU, and the CPU the SDK's background threads used meanwhile "
                "(process CPU minus the callers'), which the callers wait for under the GIL. "
                "Medians, µs per call.\n\n"
                + table(
                    ["case", "ours: call", "Segment: call", "ours: SDK", "Segment: SDK"],
                    cpu_rows,
                ),
            ),
            details(
                "The same call with a fixed pool of sender threads",
                "The small, one-thread case again, with exactly N sender threads "
                "(`workers=N`) instead of the adaptive default; the ratio is to Segment's "
                f"wall time above; messages sent during the burst. Median (min-max) of {count} "
                "runs, µs per call.\n\n"
                + table(
                    ["workers", "wall", "ratio", "call CPU", "senders' CPU", "sent"],
                    pools,
                ),
            ),
            f"**A {burst['calls']:,}-call burst with default settings** (small properties, "
            f"one producer thread; both SDKs with `max_queue_size={burst['max_queue_size']:,}`, "
            "so that nothing drops). The SDK's threads were counted every "
            f"{s['sample_interval'] * 1000:g} ms. Median (min-max) of {count} runs.",
            table(["", "ours", "Segment"], burst_rows),
        ]
    )


def _throughput_section(data: Data) -> str:
    s = data["scenarios"]["throughput"]
    count = repeats(data, "throughput")
    latency = s["latency"]
    rows, cpu_rows = [], []
    for cell in s["cells"]:
        ours = values(cell["ours"], "events_per_s")
        raw = values(cell["raw"], "events_per_s")
        if cell["latency"] == 0:
            reference = f"{ratio_of(med(ours), med(raw)):.2f}x raw"
        else:
            ideal = cell["workers"] / cell["latency"]
            reference = f"{ratio_of(med(ours), ideal):.2f}x ideal {num(ideal, 0)}"
        rows.append(
            [
                f"{cell['latency'] * 1000:g} ms",
                str(cell["workers"]),
                spread(ours, 0),
                spread(raw, 0),
                reference,
            ]
        )
        cpu_rows.append(
            [
                f"{cell['latency'] * 1000:g} ms",
                str(cell["workers"]),
                f"{med(values(cell['ours'], 'client_cpu')):.0%}",
                f"{med(values(cell['raw'], 'client_cpu')):.0%}",
                num(med(map(cpu_per_message, cell["ours"])), 0),
                num(med(map(cpu_per_message, cell["raw"])), 0),
            ]
        )
    ceilings = s["ceilings"]
    load = s["load"]
    peer = s["peer"]
    peer_text = (
        f" Segment's SDK, shown apart because it batches up to 100 messages per request to "
        f"an API Gainsight does not offer, delivered {spread(values(peer, 'events_per_s'), 0)} "
        "events/s to the same server at 0 ms."
        if peer
        else ""
    )
    return "\n\n".join(
        [
            "## Delivery throughput",
            "Events per second delivered, one message per request, to a local server in its "
            f"own process that answers after 0 or {latency * 1000:g} ms. Ours with a fixed "
            "pool (`workers=N`), timed from the first `track()` to the end of `flush()`, "
            f"building included ({s['messages']:,} messages at 0 ms; N x {s['rounds']} at "
            f"{latency * 1000:g} ms); against a bare `urllib3` keep-alive loop with as many "
            "threads and connections, sending the same pre-built body and headers, and the "
            f"ideal N / latency. Median (min-max) of {count} runs.",
            table(["latency", "workers", "ours", "raw urllib3", "ours of"], rows),
            f"The server is not the bottleneck: a raw-socket load generator "
            f"({load['processes']} x {load['connections']} connections) got "
            f"{num(med(ceilings['fast']), 0)} requests/s from it (the library's own test "
            f"collector: {num(med(ceilings['stdlib']), 0)}).{peer_text}",
            details(
                "CPU: client share of a core, and µs per message",
                table(
                    ["latency", "workers", "ours", "raw", "ours µs", "raw µs"],
                    cpu_rows,
                ),
            ),
        ]
    )


MARKS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)


def _at(timeline: Sequence[Sequence[float | None]], at: float, column: int, digits: int = 1) -> str:
    """A median timeline's value at ``at`` (its last row at or before), or n/a."""
    value: float | None = None
    if not timeline or timeline[-1][0] is None or float(timeline[-1][0]) + 0.15 < at:
        return "n/a"
    for row in timeline:
        if float(row[0] or 0) > at + 1e-9:
            break
        value = row[column]
    return "n/a" if value is None else num(float(value), digits)


def _burst50_section(data: Data) -> str:
    s = data["scenarios"]["burst50"]
    count = repeats(data, "burst50")
    latency = s["latency"]
    ideal = s["max_workers"] / latency
    runs = s["runs"]
    rate = med(values(runs, "events_per_s"))
    missing = sum(s["messages"] - run["delivered"] for run in runs)
    end = max((row[0] for row in s["timeline"]), default=0.0)
    marks = [mark for mark in MARKS if mark <= end + 0.15]
    return "\n\n".join(
        [
            f"## A burst at {latency * 1000:g} ms",
            f"{s['messages']:,} small tracks to a server that answers after "
            f"{latency * 1000:g} ms, our client with default settings (adaptive senders, at "
            f"most `max_workers={s['max_workers']}`) but `max_queue_size="
            f"{s['max_queue_size']:,}` to hold the burst; one warm-up message first, so the "
            "burst starts from a cold concurrency limit. Timed from the first `track()` to the "
            f"end of `flush()`; the ideal is `max_workers / latency` = {num(ideal, 0)}/s. "
            f"`stats().in_flight` and the sender threads alive were sampled every "
            f"{s['sample_interval'] * 1000:g} ms. Median (min-max) of {count} runs.",
            table(
                ["", "value"],
                [
                    ["events/s", f"{spread(values(runs, 'events_per_s'), 0)}"],
                    ["of the ideal", f"{ratio_of(rate, ideal):.2f}x"],
                    ["elapsed, s", spread(values(runs, "wall_s"))],
                    [
                        f"in flight after {s['settled_after']:g} s",
                        spread(values(runs, "in_flight_settled"), 0),
                    ],
                    [
                        f"sender threads after {s['settled_after']:g} s",
                        spread(values(runs, "threads_settled"), 0),
                    ],
                    ["lost (all runs)", str(missing)],
                ],
            ),
            details(
                "Requests in flight and sender threads over time (medians over runs)",
                table(
                    ["seconds", "in flight", "sender threads"],
                    [
                        [
                            f"{mark:g}",
                            _at(s["timeline"], mark, 1, 0),
                            _at(s["timeline"], mark, 2, 0),
                        ]
                        for mark in marks
                    ],
                ),
            ),
        ]
    )


def _ratelimit_section(data: Data) -> str:
    s = data["scenarios"]["ratelimit"]
    count = repeats(data, "ratelimit")
    admit, latency, messages = s["admit"], s["latency"], s["messages"]
    ideal = messages * latency / admit
    cells = s["cells"]
    header = [""] + [f"Retry-After {cell['retry_after']:g} s" for cell in cells]

    def line(label: str, value: Callable[[Data], str]) -> list[str]:
        return [label] + [value(cell) for cell in cells]

    rows = [
        line(
            f"429 share after {s['settled_after']:g} s",
            lambda c: spread([v * 100 for v in values(c["runs"], "share_429_settled")]) + " %",
        ),
        line("429s per run", lambda c: spread(values(c["runs"], "rejected"), 0)),
        line(
            f"served at once after {s['settled_after']:g} s",
            lambda c: spread(values(c["runs"], "served_settled")),
        ),
        line("converged after, s", lambda c: spread(values(c["runs"], "converged_s"))),
        line(f"elapsed, s (ideal {ideal:g})", lambda c: spread(values(c["runs"], "wall_s"))),
        line("retries per run", lambda c: spread(values(c["runs"], "retried"), 0)),
        line("lost (all runs)", lambda c: str(lost(s, c))),
    ]
    end = max((row[0] for cell in cells for row in cell["timeline"]), default=0.0)
    marks = [mark for mark in MARKS if mark <= end + 0.15]
    over_time = table(
        ["seconds"]
        + [f"{c['retry_after']:g} s: {what}" for c in cells for what in ("served", "429s")],
        [
            [f"{mark:g}"] + [_at(c["timeline"], mark, column) for c in cells for column in (1, 2)]
            for mark in marks
        ],
    )
    return "\n\n".join(
        [
            "## Behind a rate limit",
            f"A server that serves at most {admit} requests at once, each for "
            f"{latency * 1000:g} ms, and answers any request beyond them at once with `429` "
            "and `Retry-After` (one column per value). Our client with default settings sends "
            f"{messages:,} small tracks (ideal: {messages:,} x {latency:g} s / {admit} = "
            f"{ideal:g} s). The server counts, per {s['window'] * 1000:g} ms window, the "
            "requests being served (time-weighted mean) and the 429s. **Converged**: the start "
            f"of the first second whose every window averaged at least {admit - 1} served; "
            f"**lost**: messages not delivered. Median (min-max) of {count} runs.",
            table(header, rows),
            details(
                f"Served at once (median) and 429s per {s['window'] * 1000:g} ms (mean) over time",
                over_time,
            ),
        ]
    )


def _sender_section(data: Data) -> str:
    s = data["scenarios"]["sender"]
    count = repeats(data, "sender")
    ours, previous = s["ours"], s["baseline_runs"]

    def line(label: str, get: Callable[[Data], float], digits: int = 1) -> list[str]:
        now, before = med(map(get, ours)), med(map(get, previous))
        return [
            label,
            spread(list(map(get, ours)), digits),
            spread(list(map(get, previous)), digits),
            f"{ratio_of(now, before):.2f}x",
        ]

    return "\n\n".join(
        [
            "## Sender CPU against the previous version",
            "The same workload with this version and the previous one (commit "
            f"`{s['baseline']}`, before the adaptive senders), interleaved, both with a fixed "
            f"pool (`workers={s['workers']}`): {s['messages']:,} small tracks to a server that "
            "answers at once, timed from the first `track()` to the end of `flush()`. "
            "**Sender CPU** is the process's CPU over that span minus the calling thread's, "
            f"per delivered message. Median (min-max) of {count} runs.",
            table(
                ["", "this version", f"previous ({s['baseline']})", "ratio"],
                [
                    line("sender CPU, µs per message", sender_us),
                    line("process CPU, µs per message", per_delivered("process_cpu_s")),
                    line("caller CPU, µs per message", per_delivered("caller_cpu_s")),
                    line("events/s", lambda run: run["events_per_s"], 0),
                ],
            ),
        ]
    )


def _memory_section(data: Data) -> str:
    s = data["scenarios"]["memory"]
    count = repeats(data, "memory")
    sdks = ("ours", "peer")
    breakdown = s["breakdown"]
    target = TARGETS["memory"] * rss_per_message(s, "peer")
    ours = breakdown["ours"]
    rows = [
        ["RSS growth, MiB"]
        + [spread([run["rss_growth_kib"] / 1024 for run in s[sdk]]) for sdk in sdks],
        ["bytes per message (RSS)"] + [num(rss_per_message(s, sdk), 0) for sdk in sdks],
        ["bytes per message (Python objects)"]
        + [num(breakdown[sdk]["traced_bytes_per_message"], 0) for sdk in sdks],
        ["still queued"] + [num(med(values(s[sdk], "pending")), 0) for sdk in sdks],
        ["dropped (all runs)"] + [str(sum(values(s[sdk], "dropped"))) for sdk in sdks],
    ]
    return "\n\n".join(
        [
            "## Memory",
            f"{s['messages']:,} small tracks queued behind a server that accepts connections "
            f"and never answers; both SDKs with `max_queue_size={s['max_queue_size']:,}`, so "
            "that neither drops. RSS after `gc.collect()`, minus the RSS once the client "
            "existed and its first message was queued; then, once per SDK, the Python "
            f"objects still alive per message (`tracemalloc`). Median (min-max) of {count} "
            "runs.",
            table(["", "ours", "Segment"], rows),
            f"Ours keeps each message serialized from the call on, so that later changes to "
            f"the caller's dicts cannot change what is sent: a {ours.get('body_len', 0)}-byte "
            f"JSON body, a {ours.get('body_object', 0)}-byte `bytes` object. Segment keeps "
            f"a tree of dicts. The target, {TARGETS['memory']:g}x Segment's, is "
            f"{num(target, 0)} bytes per message.",
        ]
    )


def _outbox_section(data: Data) -> str:
    s = data["scenarios"]["outbox"]
    count = repeats(data, "outbox")
    peer_wall = med(values(s["peer"], "us_per_call"))
    rows = []
    for contender, label in (("peer", "Segment, in memory"), *OUTBOX_MODES.items()):
        runs = s[contender]
        wall = med(values(runs, "us_per_call"))
        rows.append(
            [
                label if contender == "peer" else f"ours: {label}",
                f"{int(runs[0]['calls']):,}",
                spread(values(runs, "us_per_call")),
                f"{ratio_of(wall, peer_wall):.2f}x",
                num(med(values(runs, "cpu_us_per_call"))),
                num(med(map(sdk_cpu, runs))),
            ]
        )
    return "\n\n".join(
        [
            "## Outbox",
            "The caller's cost when every call first writes its message to a [durable "
            "outbox](outbox.md) (appended to the process's spool file, which senders move "
            "into the outbox file): a burst of small tracks from one thread, after "
            f"{s['warmup']} warm-up calls, each run with a new outbox file on the machine's "
            "disk. Ours delivers from the file with its default senders, or only writes it "
            "(`workers=0`) while `gainsight-segment relay` drains it in another process, or "
            "writes it with `outbox_fsync=True` (fewer calls: each waits for the disk); "
            "Segment's SDK queues in memory, as it always does. Segment's wall time is the "
            f"reference of the ratio. Median (min-max) of {count} runs, interleaved.",
            table(
                [
                    "",
                    "calls",
                    "wall, µs per call",
                    "ratio",
                    "caller CPU, µs",
                    "other threads' CPU, µs",
                ],
                rows,
            ),
        ]
    )


def _idle_section(data: Data) -> str:
    s = data["scenarios"]["idle"]
    count = repeats(data, "idle")
    runs = s["runs"]
    timeline = s["timeline"]
    seconds = s["seconds"]
    marks = [m for m in (0.0, 1.0, 2.0, 5.0, 10.0, 20.0) if m <= seconds]
    over_time = ", ".join(f"{_at(timeline, mark, 1, 0)} at {mark:g} s" for mark in marks)
    return "\n\n".join(
        [
            "## Idle",
            "Our client, default settings, sends one message and flushes; then the process "
            f"sleeps {seconds:g} s, counting the sender threads alive once a second from its "
            f"main thread, and its CPU time over the span. {count} runs.",
            table(
                ["", "per run"],
                [
                    [
                        f"sender threads alive after {seconds:g} s",
                        ", ".join(num(v, 0) for v in values(runs, "threads_at_end")),
                    ],
                    [
                        f"CPU seconds over {seconds:g} s",
                        ", ".join(f"{v:.2f}" for v in values(runs, "cpu_s")),
                    ],
                ],
            ),
            f"Sender threads alive over time (median): {over_time}.",
        ]
    )


GROUPS = {
    "attrs": "`attrs` and the standard-library modules it imports",
    "ours": "the library's own modules",
    "stdlib": "standard-library modules the library imports",
    "other": "other modules",
}


def _import_section(data: Data) -> str:
    s = data["scenarios"]["import"]
    modules = ("gainsight_segment", "requests")
    groups = sorted(s["groups"].items(), key=lambda item: -item[1][0])
    return "\n\n".join(
        [
            "## Import time",
            "`import gainsight_segment` against `import requests` (which it imports), "
            f"{s['runs']} runs each, interleaved, warm bytecode cache. **Statement**: "
            "`time.perf_counter()` around the import statement in the child (the summary's "
            "figure); **process**: the whole `python -c 'import X'` (`import sys` alone: "
            f"{spread(s['sys_process'])} ms); **`-X importtime`**: the module's cumulative "
            "time (separate runs). Median (min-max), ms.",
            table(
                ["", "statement", "process", "`-X importtime`"],
                [
                    [
                        f"`{module}`",
                        spread(s[module]["alone"]),
                        spread(s[module]["process"]),
                        spread(s[module]["cumulative"]),
                    ]
                    for module in modules
                ],
            ),
            f"Ours loads {s['added']['modules']} modules that `import requests` does not, for "
            f"{num(s['added']['ms'])} ms of their own import time: "
            + "; ".join(
                f"{GROUPS.get(name, name)}, {num(ms)} ms ({count} modules)"
                for name, (ms, count) in groups
            )
            + ".",
        ]
    )


def _replay_section(data: Data) -> str:
    s = data["scenarios"]["replay"]
    if not s["available"]:
        return "## Replay\n\n`gainsight-segment replay` was not available in this install."
    return "\n\n".join(
        [
            "## Replay",
            "`gainsight-segment replay FILE --endpoint URL --access-key KEY --quiet` of a "
            f"{s['lines']:,}-line JSON Lines file of tracks, to a server that answers at "
            "once, with the command's defaults; wall time of the whole command, start-up "
            "included.",
            table(
                ["lines", "runs", "events/s"],
                [[f"{s['lines']:,}", str(len(s["rates"])), spread(s["rates"], 0)]],
            ),
        ]
    )


SECTIONS: dict[str, Callable[[Data], str]] = {
    "caller": _caller_section,
    "throughput": _throughput_section,
    "burst50": _burst50_section,
    "ratelimit": _ratelimit_section,
    "sender": _sender_section,
    "memory": _memory_section,
    "outbox": _outbox_section,
    "idle": _idle_section,
    "import": _import_section,
    "replay": _replay_section,
}
