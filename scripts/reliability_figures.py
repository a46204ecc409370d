#!/usr/bin/env python3
"""Measure the reliability scenarios and render their figures into docs/reliability.md.

The reliability and hardening tests (``tests/test_reliability*.py``,
``tests/test_hardening.py``) record what each scenario measured with ``record_figures``,
appending JSON lines to the file named by ``GAINSIGHT_RELIABILITY_FIGURES``. This script
does the rest, in two steps:

1. **Run** (the default): run those files with pytest, long scenarios included, one test at a
   time and without coverage, with the variable set; collect the figures and the facts of
   the run (date, Python, machine, pytest's counts, duration) into
   ``docs/_data/reliability.json``. A run in which a test fails writes nothing.
2. **Render**: rewrite every generated section of ``docs/reliability.md`` from that JSON.
   A generated section sits between two markers, which the page keeps::

       <!-- figures:begin summary -->
       ...generated, never edited by hand...
       <!-- figures:end summary -->

Usage::

    python scripts/reliability_figures.py              # run the scenarios, write, render
    python scripts/reliability_figures.py --render     # render from the committed JSON
    python scripts/reliability_figures.py --check      # fail if the page is out of date
    python scripts/reliability_figures.py -- -k outage # extra arguments go to pytest (no write)

``tests/test_docs.py`` runs the check, and also fails when a test records a scenario the JSON
does not hold: add a scenario, then run this script and commit the JSON and the page. A
scenario gets its row from ``scripts/reliability_rows.py``; one without a row is still
shown, by its name and raw figures, until it gets one. Scenarios recorded by
``tests/test_reliability_outbox.py`` fill the page's Outbox section.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import shlex
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from reliability_rows import (
    HARDENING_ROWS,
    OUTBOX_ROWS,
    RELIABILITY_ROWS,
    Figures,
    code,
    n,
    s,
    table,
)

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "docs" / "reliability.md"
DATA = ROOT / "docs" / "_data" / "reliability.json"
FIGURES_ENV = "GAINSIGHT_RELIABILITY_FIGURES"
TEST_FILES = ("tests/test_reliability*.py", "tests/test_hardening.py")
OUTBOX_FILE = "tests/test_reliability_outbox.py"

_BEGIN = re.compile(r"^<!-- figures:begin (?P<name>[a-z0-9-]+) -->$", re.MULTILINE)
_END = "<!-- figures:end {name} -->"


# --- running the scenarios --------------------------------------------------------------------


def test_files() -> list[str]:
    """The files whose scenarios the page reports, relative to the repository."""
    found = {path for pattern in TEST_FILES for path in ROOT.glob(pattern)}
    return sorted(str(path.relative_to(ROOT)) for path in found)


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return " ".join(line.split(":", 1)[1].split())
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _junit_counts(report: Path) -> tuple[dict[str, int], dict[str, float]]:
    """Pytest's counts, and each test's duration by node id, from a JUnit XML report."""
    tree = ElementTree.parse(report)
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0, "xfailed": 0}
    durations: dict[str, float] = {}
    for case in tree.iter("testcase"):
        path = case.get("classname", "").replace(".", "/")
        durations[f"{path}.py::{case.get('name')}"] = float(case.get("time") or 0)
        skipped = case.find("skipped")
        if case.find("failure") is not None:
            counts["failed"] += 1
        elif case.find("error") is not None:
            counts["errors"] += 1
        elif skipped is not None:
            xfail = skipped.get("type") == "pytest.xfail"
            counts["xfailed" if xfail else "skipped"] += 1
        else:
            counts["passed"] += 1
    return counts, durations


def run(pytest_args: list[str]) -> tuple[dict[str, Any], int]:
    """Run the scenario files; return the data for the JSON, and pytest's exit status."""
    files = test_files()
    with tempfile.TemporaryDirectory() as work:
        figures_path = Path(work) / "figures.jsonl"
        report = Path(work) / "junit.xml"
        command = [
            sys.executable,
            "-m",
            "pytest",
            *files,
            "-m",
            "long or not long",
            "-n",
            "0",
            "--no-cov",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            *pytest_args,
        ]
        env = {**os.environ, FIGURES_ENV: str(figures_path)}
        print("$", shlex.join(["python", *command[1:]]), flush=True)
        started = time.monotonic()
        status = subprocess.call(command, cwd=ROOT, env=env)
        seconds = time.monotonic() - started
        counts, durations = _junit_counts(report) if report.exists() else ({}, {})
        lines = (
            figures_path.read_text(encoding="utf-8").splitlines() if figures_path.exists() else []
        )
    scenarios = []
    for line in lines:
        record = json.loads(line)
        test = record.pop("test", "")
        record["file"] = test.split("::", 1)[0]
        if test in durations:
            record["test_seconds"] = round(durations[test], 2)
        scenarios.append(record)
    scenarios.sort(key=lambda record: (record["file"], record["scenario"]))
    data = {
        "run": {
            "date": datetime.date.today().isoformat(),
            "python": f"{platform.python_version()} ({platform.python_implementation()})",
            "system": f"{platform.system()} {platform.release()}",
            "machine": platform.machine(),
            "cpu": _cpu_name(),
            "cpus": os.cpu_count(),
            "tests": counts,
            "seconds": round(seconds, 1),
            "files": files,
            "how": "one test at a time (-n 0), long scenarios included, coverage off",
        },
        "scenarios": scenarios,
    }
    return data, status


def load(path: Path = DATA) -> dict[str, Any]:
    """The committed figures."""
    return json.loads(path.read_text(encoding="utf-8"))


def save(data: dict[str, Any], path: Path = DATA) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# --- the sections of the page -----------------------------------------------------------------


def by_file(data: dict[str, Any], *, outbox: bool) -> list[Figures]:
    return [
        x
        for x in data["scenarios"]
        if (x["file"] == OUTBOX_FILE) == outbox and x["file"] != "tests/test_hardening.py"
    ]


def hardening(data: dict[str, Any]) -> list[Figures]:
    return [x for x in data["scenarios"] if x["file"] == "tests/test_hardening.py"]


def render_verdict(data: dict[str, Any]) -> str:
    scenarios = data["scenarios"]
    accepted = sum(x.get("sent", 0) for x in scenarios)
    total_lost = sum(x.get("lost", 0) for x in scenarios)
    leaks = sum(x.get("key_leaks", 0) for x in scenarios)
    texts = sum(x.get("texts_checked", 0) for x in scenarios)
    passed = data["run"]["tests"].get("passed", 0)
    lost_words = "none was lost" if total_lost == 0 else f"**{n(total_lost)} were lost**"
    leak_words = "none showed it" if leaks == 0 else f"**{n(leaks)} showed it**"
    return "\n".join(
        [
            '!!! success "Verdict"',
            "",
            f"    - **Nothing lost.** Across {n(len(scenarios))} measured scenarios and "
            f"{n(accepted)} calls, every message a call accepted was delivered or reported "
            f"to `on_error`: {lost_words}. Duplicates came only from requests whose answer "
            "the client had stopped waiting for.",
            "    - **Deadlines hold.** `flush()`, `shutdown()` and the exit flush kept their "
            "deadlines, a callback that flushes or shuts down returned at once, and no server "
            "held an attempt past its `timeout` or made an answer grow in memory.",
            f"    - **The key stays secret.** Of {n(texts)} texts the app could see, "
            f"{leak_words}; plain HTTP to a remote host or proxy, redirects and unverified "
            f"TLS never carried it. ({n(passed)} tests passed in the run.)",
        ]
    )


def render_summary(data: dict[str, Any]) -> str:
    return table(by_file(data, outbox=False), RELIABILITY_ROWS)


def render_hardening(data: dict[str, Any]) -> str:
    return table(hardening(data), HARDENING_ROWS)


def render_run(data: dict[str, Any]) -> str:
    run_ = data["run"]
    tests = run_["tests"]
    others = ", ".join(
        f"{tests[k]} {k}" for k in ("skipped", "xfailed", "failed", "errors") if tests.get(k)
    )
    minutes, seconds = divmod(round(run_["seconds"]), 60)
    files = ", ".join(code(f) for f in run_["files"])
    return (
        f"The figures on this page come from one run on {run_['date']}, with Python "
        f"{run_['python']} on {run_['system']} ({run_['machine']}, {run_['cpus']} CPUs: "
        f"{run_['cpu']}): {n(tests.get('passed', 0))} tests passed"
        + (f" ({others})" if others else "")
        + f" in {minutes} min {seconds} s, {run_['how']}. The files: {files}."
    )


def render_faults(data: dict[str, Any]) -> str:
    found = [x for x in data["scenarios"] if x["scenario"] == "faults"]
    if not found:
        return "*Not measured in this run.*"
    f = found[0]
    injected = f["injected"]
    gaps = f["retry_after_min_gap"]
    rows = [
        ("requests the collector saw", n(f["requests"])),
        (
            "injected 5xx / 429 / dropped / held",
            " / ".join(f"{injected[k]:.1%}" for k in ("5xx", "429", "dropped", "slow")),
        ),
        ("messages delivered", n(f["delivered"])),
        (
            "duplicated copies",
            f"{n(f['duplicated'])}, of which {n(f['duplicated_from_held_answers'])} answers "
            "held past the timeout",
        ),
        ("client timeouts", n(f["client_timeouts"])),
        ("reported / lost", f"{n(f['reported'])} / {n(f['lost'])}"),
        (
            "retries",
            f"{n(f['retried'])} (at most {f['max_attempts_per_message']} attempts for one message)",
        ),
        (
            "shortest wait after `Retry-After: " + " / ".join(gaps) + "`",
            " / ".join(f"{v:g}" for v in gaps.values()) + " s",
        ),
        ("time to deliver them all", s(f["seconds"])),
    ]
    lines = ["| Figure | Value |", "| --- | ---: |"]
    lines += [f"| {name} | {value} |" for name, value in rows]
    return "\n".join(lines)


def render_outbox(data: dict[str, Any]) -> str:
    records = by_file(data, outbox=True)
    if not records:
        return ""
    return "\n".join(
        [
            "## Outbox",
            "",
            "With `Client(outbox=...)`, messages are written to an SQLite file before the call "
            "returns and deleted only once delivered; these scenarios end the process in "
            f"every way and count what the file still delivers (`{OUTBOX_FILE}`).",
            "",
            table(records, OUTBOX_ROWS),
        ]
    )


SECTIONS: dict[str, Callable[[dict[str, Any]], str]] = {
    "verdict": render_verdict,
    "summary": render_summary,
    "hardening": render_hardening,
    "run": render_run,
    "faults": render_faults,
    "outbox": render_outbox,
}


def render(page: str, data: dict[str, Any]) -> str:
    """The page with every generated section rewritten from ``data``."""
    out: list[str] = []
    position = 0
    for begin in _BEGIN.finditer(page):
        name = begin["name"]
        if name not in SECTIONS:
            raise SystemExit(f"{PAGE.name}: no section named {name!r} can be generated")
        end = page.find(_END.format(name=name), begin.end())
        if end < 0:
            raise SystemExit(f"{PAGE.name}: {begin.group()} has no end marker")
        body = SECTIONS[name](data).strip()
        out += [page[position : begin.end()], "\n"]
        if body:
            out += [body, "\n"]
        position = end
    out.append(page[position:])
    return "".join(out)


def sections(page: str) -> dict[str, str]:
    """The generated sections of a page, by name (for the tests)."""
    found = {}
    for begin in _BEGIN.finditer(page):
        end = page.find(_END.format(name=begin["name"]), begin.end())
        found[begin["name"]] = page[begin.end() : end].strip()
    return found


# --- recorded names, for the tests ------------------------------------------------------------

_RECORDED = re.compile(r"record_figures\(\s*(?P<f>f?)(?P<q>[\"'])(?P<name>[^\"']+)(?P=q)")


def recorded_names(files: Iterable[Path]) -> list[tuple[str, re.Pattern[str]]]:
    """Each scenario name passed to ``record_figures`` in the files, as a pattern.

    The fixed parts of an f-string must match; each ``{...}`` stands for any text.
    """
    found = []
    for path in files:
        for match in _RECORDED.finditer(path.read_text(encoding="utf-8")):
            name = match["name"]
            if match["f"]:
                parts = re.split(r"\{[^}]*\}", name)
                pattern = ".+".join(re.escape(part) for part in parts)
            else:
                pattern = re.escape(name)
            found.append((name, re.compile(pattern)))
    return found


# --- the command ------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--render", action="store_true", help="render from the committed JSON")
    mode.add_argument("--check", action="store_true", help="fail if the page is out of date")
    parser.add_argument("pytest_args", nargs="*", help="after --: passed to pytest (no write)")
    args = parser.parse_args(argv)
    if args.check:
        page = PAGE.read_text(encoding="utf-8")
        if render(page, load()) != page:
            print(
                f"{PAGE.relative_to(ROOT)} differs from what {DATA.relative_to(ROOT)} renders "
                "to: run `python scripts/reliability_figures.py --render`",
                file=sys.stderr,
            )
            return 1
        print(f"{PAGE.relative_to(ROOT)} is what {DATA.relative_to(ROOT)} renders to")
        return 0
    if not args.render:
        data, status = run(args.pytest_args)
        if status != 0:
            print(f"pytest exited with status {status}: nothing written", file=sys.stderr)
            return status
        if args.pytest_args:
            print(json.dumps(data, indent=2))
            print("a partial run (pytest arguments given): nothing written", file=sys.stderr)
            return 0
        save(data)
        print(f"wrote {DATA.relative_to(ROOT)}: {len(data['scenarios'])} scenarios")
    # Read only now: the page may have been edited while the scenarios ran.
    page = PAGE.read_text(encoding="utf-8")
    PAGE.write_text(render(page, load()), encoding="utf-8")
    print(f"rendered {PAGE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
