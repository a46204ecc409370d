"""``python -m gainsight_segment``: the module runs the command line, in-process."""

from __future__ import annotations

import importlib
import runpy
import sys

import pytest

import gainsight_segment as gs
from gainsight_segment.cli import main

MAIN = "gainsight_segment.__main__"


@pytest.fixture(autouse=True)
def _fresh_main_module(monkeypatch: pytest.MonkeyPatch) -> None:
    # runpy warns (an error here) when the module it runs was imported before.
    monkeypatch.delitem(sys.modules, MAIN, raising=False)


def run_as_main(monkeypatch: pytest.MonkeyPatch, *args: str) -> object:
    """Run the package as ``python -m`` would; return the exit status it raised."""
    monkeypatch.setattr(sys, "argv", ["gainsight-segment", *args])
    with pytest.raises(SystemExit) as exit_info:
        runpy.run_module("gainsight_segment", run_name="__main__", alter_sys=True)
    return exit_info.value.code


def test_running_the_package_prints_the_version_and_exits_0(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_as_main(monkeypatch, "--version") == 0
    assert capsys.readouterr().out == f"gainsight-segment {gs.__version__}\n"


def test_running_the_package_exits_with_the_status_of_main(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_as_main(monkeypatch, "frobnicate") == 2
    assert capsys.readouterr().err.startswith("gainsight-segment: error: argument COMMAND")


def test_importing_the_module_does_not_run_the_command_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "argv", ["gainsight-segment", "--version"])
    module = importlib.import_module(MAIN)
    assert module.main is main
    assert capsys.readouterr() == ("", "")
