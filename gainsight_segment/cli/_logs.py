"""The library's warnings, shown on standard error by the commands that run for a while."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import IO


@contextlib.contextmanager
def warnings_to(stream: IO[str]) -> Iterator[None]:
    """Show the library's warnings and errors on ``stream`` within the block.

    Each is one line, ``gainsight-segment: warning: ...``, like the commands' own.
    """
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(_Formatter())
    logger = logging.getLogger("gainsight_segment")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


class _Formatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        text = f"gainsight-segment: {record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info:
            text += "\n" + self.formatException(record.exc_info)
        return text
