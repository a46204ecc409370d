"""The performance page and its charts are what the committed benchmark data renders to.

``benchmarks/run.py --publish`` measures, writes the data (``docs/_data/performance.json``)
and renders from it ``docs/performance.md`` and ``docs/assets/performance/*.svg``. These
tests render the committed data again, without measuring anything, and compare: a hand edit
of the page or a chart, or a change to the rendering code without re-rendering, fails here.
To re-render after changing the rendering code::

    python benchmarks/run.py --render docs/_data/performance.json --publish
"""

from __future__ import annotations

import importlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
DATA = ROOT / "docs" / "_data" / "performance.json"
PAGE = ROOT / "docs" / "performance.md"
CHARTS = ROOT / "docs" / "assets" / "performance"
RERENDER = "python benchmarks/run.py --render docs/_data/performance.json --publish"
# The rendering modules, imported from benchmarks/ for the duration of these tests.
RENDERING = ("page", "results", "sections", "figures", "charts")


@pytest.fixture(scope="module")
def page() -> Iterator[ModuleType]:
    clashing = [name for name in RENDERING if name in sys.modules]
    assert not clashing, f"modules of these names are already imported: {clashing}"
    sys.path.insert(0, str(BENCHMARKS))
    try:
        yield importlib.import_module("page")
    finally:
        sys.path.remove(str(BENCHMARKS))
        for name in RENDERING:
            sys.modules.pop(name, None)


@pytest.fixture(scope="module")
def data() -> Any:
    return json.loads(DATA.read_text(encoding="utf-8"))


def test_the_page_is_what_the_data_renders_to(page: ModuleType, data: Any) -> None:
    rendered = page.render_page(data)
    assert PAGE.read_text(encoding="utf-8") == rendered, (
        f"{PAGE.relative_to(ROOT)} differs from what the data renders to: re-render it with "
        f"`{RERENDER}` (never edit it by hand)"
    )


def test_each_chart_is_what_the_data_renders_to(page: ModuleType, data: Any) -> None:
    rendered = page.render_charts(data)
    committed = {path.name: path.read_text(encoding="utf-8") for path in CHARTS.glob("*.svg")}
    assert sorted(committed) == sorted(rendered), f"re-render the charts: `{RERENDER}`"
    stale = [name for name, svg in rendered.items() if committed[name] != svg]
    assert stale == [], f"charts that differ from the data: {stale}; re-render: `{RERENDER}`"


def test_the_page_shows_every_chart(page: ModuleType, data: Any) -> None:
    text = PAGE.read_text(encoding="utf-8")
    shown = set(re.findall(r"\]\(assets/performance/([\w-]+\.svg)\)", text))
    assert shown == set(page.render_charts(data))


def test_the_data_is_a_full_run_of_every_scenario(data: Any) -> None:
    assert not any(run["quick"] for run in data["runs"]), "a --quick run was published"
    assert list(data["scenarios"]) == [
        "caller",
        "throughput",
        "burst50",
        "ratelimit",
        "sender",
        "memory",
        "outbox",
        "idle",
        "import",
        "replay",
    ]


def test_the_page_names_no_private_module_and_no_test() -> None:
    text = PAGE.read_text(encoding="utf-8")
    private = re.findall(r"gainsight_segment[./]_\w+|\b_\w+\.py\b|\btest_\w+", text)
    assert private == []
