"""How far a replay got, shown on standard error."""

from __future__ import annotations

import os
import stat
import time
from typing import IO, Callable

from ._parser import plural

_TTY_REDRAW = 0.1
_BAR_WIDTH = 24


def _format_duration(seconds: float) -> str:
    seconds = int(seconds + 0.5)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


class Progress:
    """Shows how far a replay got, on stderr.

    On a terminal: one line redrawn in place at most ten times a second, with a bar and
    an ETA when the input's size is known. Otherwise: a plain line every ``interval``
    seconds and, if set, every ``every`` lines.

    Args:
        stream: Where to write.
        total_bytes: The input's size, when known.
        interval: Seconds between plain lines.
        every: Lines between plain lines; ``0`` for none.
        enabled: ``False`` shows nothing.
        done: What the first count of ``stats`` is called, e.g. ``"sent"``.
        clock: The monotonic clock.
    """

    def __init__(
        self,
        stream: IO[str],
        total_bytes: int | None,
        *,
        interval: float,
        every: int = 0,
        enabled: bool = True,
        done: str = "sent",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream
        self._done = done
        self._total = total_bytes if total_bytes else None
        self._interval = interval
        self._every = every
        self._enabled = enabled
        self._clock = clock
        self._tty = enabled and isatty(stream)
        self._start = clock()
        self._last = self._start
        self._width = 0

    def update(
        self, lines: int, bytes_read: int, stats: Callable[[], tuple[int, int, int]]
    ) -> None:
        """Show progress if it is time to.

        Args:
            lines: Lines read so far.
            bytes_read: Bytes read so far.
            stats: A zero-argument callable returning ``(done, rejected, failed)``.
        """
        if not self._enabled:
            return
        now = self._clock()
        if self._tty:
            if now - self._last >= _TTY_REDRAW:
                self._last = now
                self._draw(lines, bytes_read, now)
            return
        due = now - self._last >= self._interval or (self._every and lines % self._every == 0)
        if due:
            self._last = now
            done, rejected, failed = stats()
            rate = events_per_second(lines, now - self._start)
            self._stream.write(
                f"replay: {plural(lines, 'line')} read{self._percent(bytes_read)}, "
                f"{done:,} {self._done}, {rejected:,} rejected, {failed:,} failed"
                + ("" if rate is None else f", {rate}")
                + "\n"
            )
            self._stream.flush()

    def finish(self, lines: int, bytes_read: int) -> None:
        """Draw the final state and end the terminal line."""
        if self._tty:
            self._draw(lines, bytes_read, self._clock())
            self._stream.write("\n")
            self._stream.flush()

    def _percent(self, bytes_read: int) -> str:
        if self._total is None:
            return ""
        return f" ({min(100.0, 100.0 * bytes_read / self._total):.1f}%)"

    def _draw(self, lines: int, bytes_read: int, now: float) -> None:
        elapsed = now - self._start
        rate = events_per_second(lines, elapsed)
        parts = []
        if self._total is not None:
            done = min(1.0, bytes_read / self._total)
            filled = int(done * _BAR_WIDTH)
            parts.append(f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {done * 100:5.1f}%")
        parts.append(plural(lines, "line"))
        if rate is not None:
            parts.append(rate)
        if self._total is not None and bytes_read and elapsed > 0:
            left = (self._total - bytes_read) / (bytes_read / elapsed)
            parts.append(f"ETA {_format_duration(max(0.0, left))}")
        text = "  ".join(parts)
        # Spaces wipe what a longer previous line left behind.
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)


def events_per_second(lines: int, elapsed: float) -> str | None:
    """The rate of a run, e.g. ``"1,832 events/s"``; ``None`` in its first second.

    A rate taken over a fraction of a second says nothing (a single line in 2 ms is not "500
    events/s"), so none is given until a second has gone by.
    """
    if elapsed < 1.0:
        return None
    rate = lines / elapsed
    return f"{rate:.1f} events/s" if rate < 10 else f"{rate:,.0f} events/s"


def lines_read(lines: int, elapsed: float) -> str:
    """How many lines a run read in how long, e.g. ``"1 line read in 0.3 s"``."""
    took = "under 0.1 s" if elapsed < 0.05 else f"{elapsed:.1f} s"
    rate = events_per_second(lines, elapsed)
    return f"{plural(lines, 'line')} read in {took}" + ("" if rate is None else f" ({rate})")


def isatty(stream: IO[str]) -> bool:
    """Whether ``stream`` is a terminal; ``False`` for a stream that cannot tell."""
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def input_size(stream: IO[bytes]) -> int | None:
    """The bytes left to read in ``stream`` when it is a regular file, else ``None``."""
    try:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            return None
        return max(0, info.st_size - stream.tell())
    except (OSError, ValueError, AttributeError):
        return None
