"""Benchmarks: gainsight-segment against Segment's analytics-python and a raw urllib3 loop.

Measures, keeps the results as data, and renders from that data the performance page
(``docs/performance.md``) and its charts (``docs/assets/performance/*.svg``).

Setup (from the repository root; the venv path is git-ignored):

    python3 -m venv benchmarks/.venv
    benchmarks/.venv/bin/pip install -e . -r benchmarks/requirements.txt

Run:

    benchmarks/.venv/bin/python benchmarks/run.py --publish        # everything; the page
    benchmarks/.venv/bin/python benchmarks/run.py --quick          # smoke run for CI
    benchmarks/.venv/bin/python benchmarks/run.py --only caller --repeats 9
    benchmarks/.venv/bin/python benchmarks/run.py --only sender --publish   # one scenario
    benchmarks/.venv/bin/python benchmarks/run.py --output-json /tmp/perf.json
    benchmarks/.venv/bin/python benchmarks/run.py --render docs/_data/performance.json \\
        --publish                                                  # re-render, no measuring

Without ``--publish`` (or ``--output``, ``--output-json``, ``--charts``) nothing is
written: a run prints the machine, the summary table and the targets missed. ``--publish``
writes the data (``docs/_data/performance.json``), the page and the charts; with
``--only``, the scenarios measured replace theirs in the data already published and the
others are kept. ``--render FILE`` renders from data measured before. A ``--quick`` run
never publishes unless asked (and then says so on the page).

Scenarios (``--only`` takes these names, comma-separated):

    caller      Caller cost: wall and caller-thread CPU per track() in each SDK's default
                asynchronous mode, small / 2 KB / 20 KB properties, 1 / 2 / 4 / 8 producer
                threads; ours again with fixed pools (``workers=N``); and a 20,000-call
                burst with default settings (queue raised to hold it).
    throughput  Delivered events per second, one message per request, fixed pools of ours
                against a raw urllib3 keep-alive loop, at 0 and 50 ms of server latency.
    burst50     A 20,000-message burst at 50 ms of latency with default (adaptive) senders:
                events/s against ``max_workers / latency``, and requests in flight over time.
    ratelimit   A server that serves 4 requests at once and answers 429 + Retry-After beyond:
                concurrency over time, convergence, share of 429s, lost messages.
    sender      Sender CPU per delivered message, ``workers=8``, 0 ms server: ours against
                ``--baseline REV`` (default 43135d3, before the adaptive senders).
    memory      RSS growth with 100,000 messages queued behind a server that never answers.
    idle        One message, then 20 s of idling: sender threads left and CPU spent.
    import      ``import gainsight_segment`` vs ``import requests``.
    replay      ``gainsight-segment replay`` of a 100,000-line JSON Lines file.

Every measured run is a fresh subprocess (``benchmarks/workloads.py``); contenders are
interleaved (A B B A ...) so that drift on a shared machine hits both; the page shows
medians. ``--source REV`` measures ``gainsight_segment/`` as committed at REV instead of
the working tree. benchmarks/README.md says what each scenario measures, how to read the
results and how to profile.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import harness
import scenarios

ROOT = harness.HERE.parent
DATA = ROOT / "docs" / "_data" / "performance.json"
PAGE = ROOT / "docs" / "performance.md"
CHARTS = ROOT / "docs" / "assets" / "performance"
SCHEMA = 1


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _measure_options(args: argparse.Namespace) -> list[str]:
    """The options that decide what is measured, as the page's command shows them."""
    options = []
    if args.quick:
        options.append("--quick")
    if args.only:
        options += ["--only", args.only]
    if args.repeats is not None:
        options += ["--repeats", str(args.repeats)]
    if args.source:
        options += ["--source", args.source]
    if args.baseline != harness.BASELINE:
        options += ["--baseline", args.baseline]
    return options


def measure_all(args: argparse.Namespace, selected: Sequence[str], config: harness.Config) -> dict:
    """Run the scenarios; return the data of this run."""
    import page

    cache = harness.bytecode_cache()
    exported, revision = None, None
    if args.source:
        exported, revision = harness.export_source(args.source)
        harness.use_source(exported)
    try:
        library = harness.library_dir()
        if exported is not None and Path(exported) not in library.parents:
            raise SystemExit(f"--source: the children import {library}, not the export")
        fingerprint = harness.library_fingerprint(library)
        facts = harness.machine_facts(revision)
        print("## Machine\n\n" + page.facts_table(facts) + "\n", flush=True)
        started_at, started = _now(), time.perf_counter()
        results: dict[str, Any] = {}
        minutes: dict[str, float] = {}
        for name in selected:
            harness.log(f"scenario {name} ...")
            began = time.perf_counter()
            results[name] = harness.tidy(scenarios.SCENARIOS[name](config))
            minutes[name] = round((time.perf_counter() - began) / 60, 1)
        elapsed = time.perf_counter() - started
        changed = harness.library_fingerprint(library) != fingerprint
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        if exported is not None:
            shutil.rmtree(exported, ignore_errors=True)
    if changed:
        harness.log("WARNING: gainsight_segment's source files changed during the run")
    facts["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    run = {
        "options": _measure_options(args),
        "quick": args.quick,
        "repeats": config.repeats,
        "started": started_at,
        "ended": _now(),
        "minutes": round(elapsed / 60, 1),
        "scenario_minutes": minutes,
        "scenarios": list(selected),
        "machine": facts,
        "source_changed": changed,
    }
    return {"schema": SCHEMA, "runs": [run], "scenarios": results}


def merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """``new``'s scenarios replace ``old``'s; runs left with no scenario are dropped."""
    measured = set(new["scenarios"])
    runs = []
    for run in old.get("runs", []):
        kept = [name for name in run["scenarios"] if name not in measured]
        if kept:
            runs.append({**run, "scenarios": kept})
    scenario_data = {**old.get("scenarios", {}), **new["scenarios"]}
    order = [name for name in scenarios.SCENARIOS if name in scenario_data]
    return {
        **new,
        "runs": [*runs, *new["runs"]],
        "scenarios": {name: scenario_data[name] for name in order},
    }


def to_json(value: Any, indent: str = "") -> str:
    """JSON with one key per line, but a list of plain values (a timeline's row) on one."""
    inner = indent + " "
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(key)}: {to_json(item, inner)}" for key, item in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + indent + "}"
    if isinstance(value, list) and any(isinstance(item, (dict, list)) for item in value):
        items = [inner + to_json(item, inner) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + indent + "]"
    return json.dumps(value, ensure_ascii=False)


def write_json(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(to_json(data) + "\n", encoding="utf-8")
    harness.log(f"wrote {path}")


def publish(data: dict[str, Any], page_path: Path | None, charts_dir: Path | None) -> None:
    """Write the page and the charts the data renders to."""
    import page

    if page_path is not None:
        page_path.parent.mkdir(parents=True, exist_ok=True)
        page_path.write_text(page.render_page(data), encoding="utf-8")
        harness.log(f"wrote {page_path}")
    if charts_dir is not None:
        charts_dir.mkdir(parents=True, exist_ok=True)
        drawn = page.render_charts(data)
        for stale in charts_dir.glob("*.svg"):
            if stale.name not in drawn:
                stale.unlink()
        for name, svg in drawn.items():
            (charts_dir / name).write_text(svg, encoding="utf-8")
        harness.log(f"wrote {len(drawn)} charts to {charts_dir}")


def _check_environment(parser: argparse.ArgumentParser) -> None:
    for module in ("gainsight_segment", "segment.analytics", "urllib3"):
        if importlib.util.find_spec(module.split(".")[0]) is None:
            parser.exit(
                2, f"{module} is not importable with {sys.executable}. Setup:\n{harness.SETUP}\n"
            )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Benchmark gainsight-segment against Segment's analytics-python.",
        epilog=f"Setup:\n{harness.SETUP}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="tiny smoke run (CI): no verdicts")
    names = ", ".join(scenarios.SCENARIOS)
    parser.add_argument("--only", metavar="SCENARIO", help=f"comma-separated subset of: {names}")
    parser.add_argument("--repeats", type=int, help="runs per measurement (default: 5)")
    parser.add_argument(
        "--source",
        metavar="REV",
        help="measure gainsight_segment/ as committed at REV (e.g. HEAD), exported to a "
        "temporary folder, instead of the working tree",
    )
    parser.add_argument(
        "--baseline",
        metavar="REV",
        default=harness.BASELINE,
        help=f"the revision the sender scenario compares against (default: {harness.BASELINE})",
    )
    parser.add_argument(
        "--publish",
        action="store_true",
        help=f"write the data, the page and the charts: {DATA.relative_to(ROOT)}, "
        f"{PAGE.relative_to(ROOT)}, {CHARTS.relative_to(ROOT)}/",
    )
    parser.add_argument("--output-json", metavar="FILE", help="write the data to FILE")
    parser.add_argument("--output", metavar="FILE", help="write the page's markdown to FILE")
    parser.add_argument("--charts", metavar="DIR", help="write the charts (SVG) to DIR")
    parser.add_argument(
        "--render", metavar="FILE", help="measure nothing: render from the data in FILE"
    )
    args = parser.parse_args(argv)

    if args.render:
        data = json.loads(Path(args.render).read_text(encoding="utf-8"))
    else:
        selected = list(scenarios.SCENARIOS)
        if args.only:
            selected = [name.strip() for name in args.only.split(",")]
        unknown = [name for name in selected if name not in scenarios.SCENARIOS]
        if unknown:
            parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {names}")
        _check_environment(parser)
        config = harness.QUICK if args.quick else harness.Config()
        if args.repeats is not None:
            if args.repeats < 1:
                parser.error("--repeats must be at least 1")
            config = dataclasses.replace(config, repeats=args.repeats)
        if "sender" in selected:
            try:
                baseline = harness.short_commit(args.baseline)
            except (OSError, subprocess.CalledProcessError) as exc:
                parser.exit(2, f"--baseline: cannot resolve {args.baseline} with git: {exc}\n")
            config = dataclasses.replace(config, baseline=baseline)
        try:
            data = measure_all(args, selected, config)
        except subprocess.CalledProcessError as exc:
            parser.exit(2, f"cannot export {args.source} with git: {exc}\n")
        if args.publish and args.only and DATA.exists():
            data = merge(json.loads(DATA.read_text(encoding="utf-8")), data)

    # The data first: whatever happens while rendering, the measurements are kept.
    if args.output_json:
        write_json(Path(args.output_json), data)
    if args.publish:
        write_json(DATA, data)
    import page

    print(page.render_console(data), flush=True)
    if args.publish:
        publish(data, PAGE, CHARTS)
    publish(
        data,
        Path(args.output) if args.output else None,
        Path(args.charts) if args.charts else None,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
