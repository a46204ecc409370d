"""How far a replay got, shown on standard error."""

from __future__ import annotations

import os
import stat
import time
from typing import IO, Callable

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
            self._stream.write(
                f"replay: {lines:,} lines read{self._percent(bytes_read)}, {done:,} {self._done}, "
                f"{rejected:,} rejected, {failed:,} failed, "
                f"{self._rate(lines, now):,.0f} events/s\n"
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

    def _rate(self, lines: int, now: float) -> float:
        elapsed = now - self._start
        return lines / elapsed if elapsed > 0 else 0.0

    def _draw(self, lines: int, bytes_read: int, now: float) -> None:
        rate = self._rate(lines, now)
        parts = []
        if self._total is not None:
            done = min(1.0, bytes_read / self._total)
            filled = int(done * _BAR_WIDTH)
            parts.append(f"[{'#' * filled}{'.' * (_BAR_WIDTH - filled)}] {done * 100:5.1f}%")
        parts.append(f"{lines:,} lines")
        parts.append(f"{rate:,.0f} events/s")
        elapsed = now - self._start
        if self._total is not None and bytes_read and elapsed > 0:
            left = (self._total - bytes_read) / (bytes_read / elapsed)
            parts.append(f"ETA {_format_duration(max(0.0, left))}")
        text = "  ".join(parts)
        # Spaces wipe what a longer previous line left behind.
        self._stream.write("\r" + text.ljust(self._width))
        self._stream.flush()
        self._width = len(text)


def isatty(stream: IO[str]) -> bool:
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
