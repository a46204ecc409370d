"""Every Python example in the documentation runs, against a local collector.

The convention, for anyone writing docs/*.md or README.md:

- Every fenced block whose info string starts with ``python`` is an example. It must run on its
  own, as a script (``__name__ == "__main__"``), in a fresh namespace: import what it uses.
- A block that cannot run here, typically because it needs a web framework that is not
  installed, is preceded on the line just before its fence by an HTML comment giving the
  reason, which readers of the rendered page do not see::

      <!-- no-test: needs Django -->
      ```python title="views.py"

  Such a block is only compiled, so its syntax is still checked. A marker without a reason, or
  one that does not sit right before a Python block, fails the suite.
- Examples create clients the way readers do, ``gs.Client("35a84f9e-...")`` or ``gs.Client()``
  with the key in ``GAINSIGHT_ACCESS_KEY`` (set here to that example key). While a block runs,
  ``gainsight_segment.Client`` is a subclass that sends to a ``LocalCollector`` on loopback
  whatever the real client would send to a non-loopback endpoint, the default one included; an
  example that starts its own collector and passes its endpoint keeps it, and so does one that
  creates its client while ``requests`` is mocked (``responses``, ``requests-mock``), since the
  mock answers. Connections to any address other than loopback are refused outright, so no
  example can reach the internet.
- After each block, the clients it left open are shut down, and every request the collectors
  received must have been accepted.
"""

from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import runpy
import signal
import socket
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attrs
import pytest

import gainsight_segment
from gainsight_segment._http import _is_patched, _sending_methods
from gainsight_segment._settings import (
    ACCESS_KEY_ENV,
    DEFAULT_ENDPOINT,
    AccessKey,
    _is_loopback,
    normalize_endpoint,
)
from gainsight_segment.testing import LocalCollector

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
EXAMPLE_KEY = "35a84f9e-7084-47a1-b8a5-593444e9e862"
BLOCK_TIMEOUT = 60
# What fits the content column of the site at 1280 px (scripts/check_docs_layout.py checks the
# rendered pages in a browser).
MAX_COLUMNS = 80

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^\n`]*)$")
_NO_TEST = re.compile(r"^[ \t]*<!--[ \t]*no-test:(?P<reason>.*?)-->[ \t]*$")

# Forking while the collector's threads run is what the multiprocessing recipe is about;
# Python 3.12+ warns about it in general terms.
pytestmark = pytest.mark.filterwarnings(
    "ignore:This process .* is multi-threaded:DeprecationWarning"
)


@attrs.frozen
class Block:
    """One fenced code block of a page."""

    path: Path
    line: int  # of the opening fence, 1-based
    info: str
    code: str
    no_test: str | None  # the reason given by a no-test marker, or None

    @property
    def is_python(self) -> bool:
        return self.info.split(maxsplit=1)[0:1] == ["python"] if self.info else False

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def parse_blocks(path: Path) -> list[Block]:
    """Return the fenced code blocks of a Markdown file, with their no-test markers."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks = []
    index = 0
    while index < len(lines):
        match = _FENCE.match(lines[index])
        if not match:
            index += 1
            continue
        indent, fence = match["indent"], match["fence"]
        closing = re.compile(rf"^{re.escape(indent)}{fence[0]}{{{len(fence)},}}[ \t]*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        body = [line.removeprefix(indent) for line in lines[index + 1 : end]]
        marker = _NO_TEST.match(lines[index - 1]) if index > 0 else None
        blocks.append(
            Block(
                path=path,
                line=index + 1,
                info=match["info"].strip(),
                code=textwrap.dedent("\n".join(body)) + "\n",
                no_test=marker["reason"].strip() if marker else None,
            )
        )
        index = end + 1
    return blocks


BLOCKS = [block for path in DOC_FILES for block in parse_blocks(path)]
PYTHON_BLOCKS = [block for block in BLOCKS if block.is_python]
RUNNABLE = [block for block in PYTHON_BLOCKS if block.no_test is None]
SKIPPED = [block for block in PYTHON_BLOCKS if block.no_test is not None]


def test_the_docs_have_examples() -> None:
    pages = {block.path.name for block in RUNNABLE}
    assert {"README.md", "index.md", "configuration.md", "wire-format.md"} <= pages


@pytest.mark.parametrize("block", SKIPPED, ids=[block.id for block in SKIPPED])
def test_a_block_that_is_not_run_says_why_and_compiles(block: Block) -> None:
    assert block.no_test, f"{block.id}: a no-test marker needs a reason"
    compile(block.code, block.id, "exec")


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=[block.id for block in PYTHON_BLOCKS])
def test_an_example_fits_the_column(block: Block) -> None:
    long = [
        f"line {block.line + number}: {len(line)} columns"
        for number, line in enumerate(block.code.splitlines(), 1)
        if len(line) > MAX_COLUMNS
    ]
    assert long == [], f"{block.id}: wrap at {MAX_COLUMNS} columns"


@pytest.mark.parametrize("path", DOC_FILES, ids=[path.name for path in DOC_FILES])
def test_every_no_test_marker_sits_right_before_a_python_block(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").splitlines()
    fences = {block.line for block in parse_blocks(path) if block.is_python}
    for number, line in enumerate(lines, 1):
        if "<!--" in line and "no-test" in line:
            assert _NO_TEST.match(line), f"{path.name}:{number}: malformed no-test marker"
            assert number + 1 in fences, f"{path.name}:{number}: no Python block follows"


# Running the examples -----------------------------------------------------------------------


class _Collectors:
    """One loopback collector per access key, started on first use."""

    def __init__(self) -> None:
        self.by_key: dict[str, LocalCollector] = {}

    def endpoint_for(self, key: str) -> str:
        if key not in self.by_key:
            collector = LocalCollector(key)
            collector.start()
            self.by_key[key] = collector
        return self.by_key[key].endpoint

    def rejected(self) -> list[tuple[int | None, str]]:
        return [
            (request.status, request.path)
            for collector in self.by_key.values()
            for request in collector.requests
            if request.status is None or not 200 <= request.status < 300
        ]

    def clear(self) -> None:
        for collector in self.by_key.values():
            collector.clear()

    def stop(self) -> None:
        for collector in self.by_key.values():
            collector.stop()


@pytest.fixture(scope="module")
def collectors() -> Iterator[_Collectors]:
    found = _Collectors()
    yield found
    found.stop()


def _refuse_remote(connect: Any) -> Any:
    def guarded(sock: socket.socket, address: Any) -> Any:
        if sock.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(address[0]):
            raise ConnectionRefusedError(f"docs examples must not connect to {address[0]}")
        return connect(sock, address)

    return guarded


@pytest.fixture
def docs_client(
    collectors: _Collectors, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[list[gainsight_segment.Client]]:
    """Aim every client an example creates at a local collector; yield the clients made."""
    created: list[gainsight_segment.Client] = []
    real_client = gainsight_segment.Client

    class DocsClient(real_client):  # type: ignore[misc, valid-type]
        def __init__(
            self, access_key: str | None = None, *, endpoint: str = DEFAULT_ENDPOINT, **options: Any
        ) -> None:
            # Validate as the real client does first, so that examples of bad settings raise.
            key = AccessKey.parse(access_key)
            url = normalize_endpoint(endpoint)
            mocked = _is_patched(_sending_methods())  # the mock answers; the socket guard stays
            if not _is_loopback(urlsplit(url).hostname or "") and not mocked:
                url = collectors.endpoint_for(key.secret)
            super().__init__(access_key, endpoint=url, **options)
            created.append(self)

    monkeypatch.setattr(gainsight_segment, "Client", DocsClient)
    monkeypatch.setenv(ACCESS_KEY_ENV, EXAMPLE_KEY)
    monkeypatch.setattr(socket.socket, "connect", _refuse_remote(socket.socket.connect))
    monkeypatch.setattr(socket.socket, "connect_ex", _refuse_remote(socket.socket.connect_ex))
    monkeypatch.chdir(tmp_path)
    collectors.clear()
    sigterm = signal.getsignal(signal.SIGTERM)  # an example may call flush_on_sigterm()
    yield created
    for client in created:
        client.shutdown(timeout=10)
    signal.signal(signal.SIGTERM, sigterm)


def _timeout(signum: int, frame: object) -> None:
    raise TimeoutError(f"a docs example ran for more than {BLOCK_TIMEOUT} s")


@pytest.mark.parametrize("block", RUNNABLE, ids=[block.id for block in RUNNABLE])
def test_example_runs(
    block: Block,
    docs_client: list[gainsight_segment.Client],
    collectors: _Collectors,
    tmp_path: Path,
) -> None:
    script = tmp_path / f"{block.path.stem.replace('-', '_')}_line_{block.line}.py"
    # Leading blank lines put the code at its line in the page, for readable tracebacks.
    script.write_text("\n" * block.line + block.code, encoding="utf-8")
    alarm = hasattr(signal, "SIGALRM")  # a hung example fails instead of hanging the suite
    if alarm:
        previous = signal.signal(signal.SIGALRM, _timeout)
        signal.alarm(BLOCK_TIMEOUT)
    try:
        runpy.run_path(str(script), run_name="__main__")
    finally:
        if alarm:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, previous)
    for client in docs_client:
        client.shutdown(timeout=10)
    assert collectors.rejected() == [], f"{block.id}: the collector refused requests"


# Pages that must not drift from the code ------------------------------------------------------


def _table_under(path: Path, heading: str) -> list[list[str]]:
    """The rows (cells stripped, header and rule left out) of the first table under a heading."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = lines.index(heading)
    rows: list[list[str]] = []
    for line in lines[start + 1 :]:
        if line.startswith("#"):
            break
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split(" | ")])
        elif rows:
            break
    return rows[2:]


def _documented_default(cell: str) -> Any:
    code = re.match(r"`([^`]+)`", cell)
    assert code, f"the default {cell!r} starts with no `code`"
    return ast.literal_eval(code.group(1))


def test_the_configuration_table_lists_every_setting_with_its_default() -> None:
    rows = _table_under(ROOT / "docs" / "configuration.md", "## All settings")
    fields = attrs.fields(gainsight_segment.Settings)
    client_defaults = inspect.signature(gainsight_segment.Client).parameters
    assert [row[0] for row in rows] == [f"`{field.name}`" for field in fields]
    for row, field in zip(rows, fields):
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        # The Settings default, or the Client's (proxies=None makes an empty mapping).
        expected = {repr(default), repr(client_defaults[field.name].default)}
        assert repr(_documented_default(row[1])) in expected, (field.name, row[1])


def _figures_script() -> Any:
    name = "reliability_figures"
    if str(ROOT / "scripts") not in sys.path:
        sys.path.insert(0, str(ROOT / "scripts"))  # for the rows it imports, as when run
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(name, module)  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


FIGURES = _figures_script()
RERENDER = "run `python scripts/reliability_figures.py --render` (or rerun the scenarios)"


def test_the_reliability_figures_are_what_the_committed_json_renders_to() -> None:
    page = (ROOT / "docs" / "reliability.md").read_text(encoding="utf-8")
    rendered = FIGURES.render(page, FIGURES.load())
    generated = FIGURES.sections(page)
    assert {"verdict", "summary", "hardening", "run", "faults", "outbox"} <= set(generated)
    for name, text in FIGURES.sections(rendered).items():
        assert generated[name] == text, f"the {name!r} section was edited by hand: {RERENDER}"
    assert rendered == page, RERENDER


def test_every_scenario_the_tests_record_has_figures() -> None:
    recorded = FIGURES.recorded_names(sorted((ROOT / "tests").glob("test_*.py")))
    assert len(recorded) >= 20, "the scenarios' names are no longer found"
    names = [record["scenario"] for record in FIGURES.load()["scenarios"]]
    missing = [name for name, pattern in recorded if not any(pattern.fullmatch(n) for n in names)]
    assert missing == [], f"no figures for {missing}: run `python scripts/reliability_figures.py`"
