"""A replay's progress on standard error: a redrawn bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from gainsight_segment.cli._progress import Progress, isatty


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def progress_on(stream: Any, total: int | None, clock: _Clock) -> Progress:
    return Progress(stream, total, interval=10.0, clock=clock)


def test_terminal_progress_is_redrawn_at_most_ten_times_a_second() -> None:
    clock, terminal = _Clock(), _Terminal()
    progress = progress_on(terminal, 1000, clock)
    for line, now in enumerate([0.05, 0.12, 0.18, 0.25, 0.3], 1):
        clock.now = now
        progress.update(line, line * 100, lambda: (0, 0, 0))
    assert re.findall(r"(\d+) lines", terminal.getvalue()) == ["2", "4"]


def test_terminal_progress_of_unknown_size_has_no_bar_and_no_eta() -> None:
    clock, terminal = _Clock(), _Terminal()
    progress = progress_on(terminal, None, clock)
    clock.now = 2.0
    progress.finish(10, 1000)
    assert terminal.getvalue() == "\r10 lines  5 events/s\n"


def test_terminal_progress_wipes_what_a_longer_line_left() -> None:
    clock, terminal = _Clock(), _Terminal()
    progress = progress_on(terminal, None, clock)
    clock.now = 1.0
    progress.update(1000, 1, lambda: (0, 0, 0))
    clock.now = 100.0
    progress.finish(1000, 1)
    assert terminal.getvalue().split("\r")[1:] == [
        "1,000 lines  1,000 events/s",
        f"{'1,000 lines  10 events/s':<27}\n",
    ]


class _NoIsatty:
    def __init__(self) -> None:
        self.text = io.StringIO()
        self.write = self.text.write
        self.flush = self.text.flush


def _closed() -> io.StringIO:
    stream = io.StringIO()
    stream.close()
    return stream


@pytest.mark.parametrize(
    "stream",
    [pytest.param(_NoIsatty(), id="no-isatty"), pytest.param(_closed(), id="closed")],
)
def test_a_stream_that_cannot_say_it_is_a_terminal_is_not_one(stream: Any) -> None:
    assert not isatty(stream)


def test_plain_progress_of_unknown_size_shows_no_percentage() -> None:
    clock, stream = _Clock(), io.StringIO()
    progress = progress_on(stream, None, clock)
    clock.now = 10.0
    progress.update(50, 5000, lambda: (40, 1, 2))
    assert stream.getvalue() == "replay: 50 lines read, 40 sent, 1 rejected, 2 failed, 5 events/s\n"
