"""The page's charts: which figure each scenario's data draws (``charts.py`` draws them)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import charts
from charts import COLORS, Bars, Figure, Lines, Series
from results import (
    TARGETS,
    Data,
    cells_at,
    med,
    num,
    payload_label,
    per_delivered,
    repeats,
    rss_per_message,
    sender_us,
    values,
)

# charts -----------------------------------------------------------------------------------

OURS = Series("ours", COLORS["ours"])
SEGMENT = Series("Segment", COLORS["segment"])


def _caller_chart(data: Data) -> Figure:
    s = data["scenarios"]["caller"]
    series = [
        Series("ours: wall", COLORS["ours"]),
        Series("ours: call CPU", COLORS["ours-light"]),
        Series("Segment: wall", COLORS["segment"]),
        Series("Segment: call CPU", COLORS["segment-light"]),
    ]

    def group(
        label: str, ours: Sequence[Data], peer: Sequence[Data]
    ) -> tuple[str, list[float | None]]:
        return (
            label,
            [
                med(values(ours, "us_per_call")),
                med(values(ours, "cpu_us_per_call")),
                med(values(peer, "us_per_call")),
                med(values(peer, "cpu_us_per_call")),
            ],
        )

    small = [c for c in s["cases"] if c["payload"] == 0]
    big = [c for c in s["cases"] if c["payload"] != 0 or c["threads"] == 1]
    burst = s["burst"]
    return Figure(
        "Caller cost: µs per track(), lower is better",
        f"Medians of {repeats(data, 'caller')} runs; wall includes waiting for the GIL "
        "while the SDK's threads send",
        [
            Bars(
                "Small properties, by producer threads",
                series,
                [
                    group(f"{c['threads']} thread{'s' * (c['threads'] > 1)}", c["ours"], c["peer"])
                    for c in small
                ]
                + [group(f"{burst['calls']:,}-call burst", burst["ours"], burst["peer"])],
                unit=" µs per call",
            ),
            Bars(
                "Bigger properties, one thread",
                series,
                [group(payload_label(c["payload"]), c["ours"], c["peer"]) for c in big],
                unit=" µs per call",
            ),
        ],
        series,
    )


def _throughput_chart(data: Data) -> Figure:
    s = data["scenarios"]["throughput"]
    latency = s["latency"]
    raw = Series("raw urllib3 loop", COLORS["raw"])
    ideal = Series("ideal: workers / latency", COLORS["ideal"])
    return Figure(
        "Delivery throughput: events/s, higher is better",
        f"One message per request; fixed pools of N workers; medians of "
        f"{repeats(data, 'throughput')} runs",
        [
            Bars(
                "Server answers at once (0 ms)",
                [OURS, raw],
                [
                    (
                        f"{c['workers']} workers",
                        [
                            med(values(c["ours"], "events_per_s")),
                            med(values(c["raw"], "events_per_s")),
                        ],
                    )
                    for c in cells_at(s, 0.0)
                ],
                unit=" events/s",
                digits=0,
            ),
            Bars(
                f"Server answers after {latency * 1000:g} ms",
                [OURS, raw, ideal],
                [
                    (
                        f"{c['workers']} workers",
                        [
                            med(values(c["ours"], "events_per_s")),
                            med(values(c["raw"], "events_per_s")),
                            c["workers"] / latency,
                        ],
                    )
                    for c in cells_at(s, latency)
                ],
                unit=" events/s",
                digits=0,
            ),
        ],
        [OURS, raw, ideal],
    )


def _points(
    timeline: Sequence[Sequence[float | None]], column: int
) -> list[tuple[float, float | None]]:
    return [
        (float(row[0] or 0), None if row[column] is None else float(row[column]))
        for row in timeline
    ]


# The burst's chart shows its first seconds apart: the adaptive limit's climb.
RAMP = 2.0


def _burst50_chart(data: Data) -> Figure:
    s = data["scenarios"]["burst50"]
    in_flight = Series("requests in flight", COLORS["ours"])
    threads = Series("sender threads alive", COLORS["alt"], dash=True)
    rate = med(values(s["runs"], "events_per_s"))
    return Figure(
        f"A {s['messages']:,}-message burst at {s['latency'] * 1000:g} ms: concurrency over time",
        f"Default settings; medians over {repeats(data, 'burst50')} runs, sampled every "
        f"{s['sample_interval'] * 1000:g} ms; {num(rate, 0)} events/s",
        [
            Lines(
                f"The first {RAMP:g} s",
                [in_flight, threads],
                [_points(s["timeline"], 1), _points(s["timeline"], 2)],
                refs=[(float(s["max_workers"]), f"max_workers = {s['max_workers']}")],
                height=130,
                x_max=RAMP,
            ),
            Lines(
                "The whole burst",
                [in_flight, threads],
                [_points(s["timeline"], 1), _points(s["timeline"], 2)],
                refs=[(float(s["max_workers"]), f"max_workers = {s['max_workers']}")],
                height=130,
            ),
        ],
        [in_flight, threads],
    )


def _ratelimit_chart(data: Data) -> Figure:
    s = data["scenarios"]["ratelimit"]
    colors = [COLORS["ours"], COLORS["segment"], COLORS["raw"], COLORS["baseline"]]
    series = [
        Series(f"Retry-After {cell['retry_after']:g} s", colors[index % len(colors)])
        for index, cell in enumerate(s["cells"])
    ]
    window = f"{s['window'] * 1000:g} ms"
    return Figure(
        f"Behind a rate limit of {s['admit']} requests at once",
        f"Default settings, {s['messages']:,} messages; server's view per {window} window, "
        f"over {repeats(data, 'ratelimit')} runs",
        [
            Lines(
                "Requests served at once (median over runs)",
                series,
                [_points(cell["timeline"], 1) for cell in s["cells"]],
                refs=[(float(s["admit"]), f"limit = {s['admit']}")],
                height=170,
            ),
            Lines(
                f"429 answers per {window} (mean over runs)",
                series,
                [_points(cell["timeline"], 2) for cell in s["cells"]],
                height=130,
            ),
        ],
        series,
    )


def _memory_chart(data: Data) -> Figure:
    s = data["scenarios"]["memory"]
    breakdown = s["breakdown"]
    target = TARGETS["memory"] * rss_per_message(s, "peer")
    body = Series("ours: serialized body alone", COLORS["ideal"])
    return Figure(
        "Memory per queued message, bytes, lower is better",
        f"{s['messages']:,} messages queued behind a server that never answers; "
        f"medians of {repeats(data, 'memory')} runs",
        [
            Bars(
                "Bytes per message",
                [OURS, SEGMENT, body],
                [
                    ("RSS growth", [rss_per_message(s, "ours"), rss_per_message(s, "peer"), None]),
                    (
                        "Python objects",
                        [
                            breakdown["ours"]["traced_bytes_per_message"],
                            breakdown["peer"]["traced_bytes_per_message"],
                            float(breakdown["ours"].get("body_object", 0)),
                        ],
                    ),
                ],
                unit=" bytes per message",
                digits=0,
                refs=[(target, f"target: {TARGETS['memory']:g}x Segment's RSS")],
            )
        ],
        [OURS, SEGMENT, body],
    )


def _sender_chart(data: Data) -> Figure:
    s = data["scenarios"]["sender"]
    now = Series("this version", COLORS["ours"])
    before = Series(f"previous version ({s['baseline']})", COLORS["baseline"])
    previous = med(map(sender_us, s["baseline_runs"]))
    return Figure(
        "Sender CPU per delivered message, µs, lower is better",
        f"workers={s['workers']}, {s['messages']:,} messages, server answers at once; "
        f"medians of {repeats(data, 'sender')} runs",
        [
            Bars(
                "CPU per delivered message",
                [now, before],
                [
                    ("sender threads", [med(map(sender_us, s["ours"])), previous]),
                    (
                        "whole process",
                        [
                            med(map(per_delivered("process_cpu_s"), s["ours"])),
                            med(map(per_delivered("process_cpu_s"), s["baseline_runs"])),
                        ],
                    ),
                ],
                unit=" µs per message",
                refs=[(TARGETS["sender"] * previous, f"target: {TARGETS['sender']:g}x previous")],
            )
        ],
        [now, before],
    )


CHARTS: dict[str, tuple[str, str, Callable[[Data], Figure]]] = {
    # scenario: (file, alt text, figure)
    "caller": ("caller.svg", "Caller cost per track(), ours against Segment", _caller_chart),
    "throughput": (
        "throughput.svg",
        "Throughput by workers and latency: ours, a raw urllib3 loop, the ideal",
        _throughput_chart,
    ),
    "burst50": ("burst50.svg", "Requests in flight over time in a burst at 50 ms", _burst50_chart),
    "ratelimit": (
        "ratelimit.svg",
        "Requests served at once and 429s over time behind a rate limit",
        _ratelimit_chart,
    ),
    "memory": ("memory.svg", "Memory per queued message, ours against Segment", _memory_chart),
    "sender": (
        "sender.svg",
        "Sender CPU per message, this version against the previous",
        _sender_chart,
    ),
}


def render_charts(data: Data) -> dict[str, str]:
    """File name -> SVG, for every chart the data has a scenario for."""
    return {
        file: charts.render(figure(data))
        for name, (file, _, figure) in CHARTS.items()
        if name in data["scenarios"]
    }
