"""A replay's progress on standard error: a redrawn bar on a terminal, plain lines elsewhere."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest

from gainsight_segment.cli._progress import Progress, isatty, lines_read


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
    assert terminal.getvalue() == "\r10 lines  5.0 events/s\n"


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
    assert stream.getvalue() == (
        "replay: 50 lines read, 40 sent, 1 rejected, 2 failed, 5.0 events/s\n"
    )


def test_plain_progress_in_its_first_second_shows_no_rate() -> None:
    clock, stream = _Clock(), io.StringIO()
    progress = Progress(stream, None, interval=10.0, every=1, clock=clock)
    clock.now = 0.5
    progress.update(1, 100, lambda: (0, 0, 0))
    assert stream.getvalue() == "replay: 1 line read, 0 sent, 0 rejected, 0 failed\n"


def test_plain_progress_of_a_slow_run_shows_a_fractional_rate() -> None:
    clock, stream = _Clock(), io.StringIO()
    progress = Progress(stream, None, interval=10.0, every=1, clock=clock)
    clock.now = 10.0
    progress.update(1, 100, lambda: (1, 0, 0))
    assert stream.getvalue() == "replay: 1 line read, 1 sent, 0 rejected, 0 failed, 0.1 events/s\n"


def test_terminal_progress_in_its_first_second_shows_no_rate() -> None:
    clock, terminal = _Clock(), _Terminal()
    progress = progress_on(terminal, None, clock)
    clock.now = 0.5
    progress.finish(1, 100)
    assert terminal.getvalue() == "\r1 line\n"


@pytest.mark.parametrize(
    ("lines", "elapsed", "text"),
    [
        (1, 0.0, "1 line read in under 0.1 s"),
        (2, 0.04, "2 lines read in under 0.1 s"),
        (0, 0.3, "0 lines read in 0.3 s"),
        (10, 0.96, "10 lines read in 1.0 s"),
        (1_000, 2.0, "1,000 lines read in 2.0 s (500 events/s)"),
        (24, 2.0, "24 lines read in 2.0 s (12 events/s)"),
        (1, 4.0, "1 line read in 4.0 s (0.2 events/s)"),
    ],
)
def test_a_runs_figures_read_well_whatever_its_size_and_length(
    lines: int, elapsed: float, text: str
) -> None:
    assert lines_read(lines, elapsed) == text
