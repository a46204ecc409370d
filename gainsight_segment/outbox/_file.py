"""A client's hold on its outbox file: writes the file may refuse, and its last figures.

A full disk refuses the deletion of a delivered message as readily as a new one. What
was settled is then written later, and meanwhile not waited for; what the file said
last is kept for ``stats()`` once it is closed.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

from gainsight_segment._settings import Settings
from gainsight_segment.delivery._callbacks import logger

from ._database import OutboxError
from ._store import Store

Write = Callable[[Store], object]
Figures = tuple[int, "float | None", int, int]


def open_store(settings: Settings) -> Store | None:
    """Open the client's outbox; ``None``, loudly, when it cannot be used."""
    assert settings.outbox is not None
    try:
        return Store(settings.outbox, fsync=settings.outbox_fsync)
    except OutboxError as error:
        logger.error("%s; messages are kept in memory only, as without an outbox", error)
        return None


class OutboxFile:
    """The store of a client (``None`` when the file cannot be used), and what it owes it.

    Args:
        store: The open store, or ``None``.
        warn: Told of each problem with the file.
    """

    def __init__(self, store: Store | None, warn: Callable[[object], None]) -> None:
        self.store = store
        self._warn = warn
        self._lock = threading.Lock()
        # Rows settled (delivered or dead) whose outcome the file refused: row -> write.
        self._unsaved: dict[int, Write] = {}
        # The figures and the time when the file was closed.
        self._last: tuple[Figures, float] | None = None

    @property
    def usable(self) -> bool:
        """Whether there is an open store."""
        return self.store is not None and self._last is None

    def call(self, write: Write) -> bool:
        """Write to the file; ``False`` (and a warning) if it refuses or there is none."""
        if self.store is None:
            return False
        try:
            write(self.store)
        except OutboxError as error:
            self._warn(error)
            return False
        return True

    def settle(self, row: int, write: Write) -> None:
        """Delete a settled row (or make it a dead letter); later, if the file refuses.

        Left in the file, the row would be sent again once its claim ran out, and a
        ``flush()`` would wait for it until then.
        """
        if self.store is not None and not self.call(write):
            with self._lock:
                self._unsaved[row] = write

    def save_settled(self, store: Store) -> None:
        """Write the outcomes the file refused before.

        Raises:
            OutboxError: When it still refuses.
        """
        with self._lock:
            unsaved = list(self._unsaved.items())
        for row, write in unsaved:
            write(store)
            with self._lock:
                del self._unsaved[row]

    def settled_rows(self) -> list[int]:
        """Rows that are settled although the file still holds them."""
        with self._lock:
            return list(self._unsaved)

    def figures(self) -> Figures:
        """Messages in the file, the oldest's age, dead letters, and messages nobody holds."""
        store = self.store
        if store is not None and self._last is None:
            try:
                return store.figures()
            except OutboxError as error:
                if self._last is None:  # rather than closed meanwhile
                    self._warn(error)
        if self._last is None:
            return 0, None, 0, 0
        (depth, oldest, dead, waiting), when = self._last
        aged = None if oldest is None else oldest + time.monotonic() - when
        return depth, aged, dead, waiting

    def close(self) -> int:
        """Close the file, keeping its figures; how many messages it holds."""
        if self.store is None:
            return 0
        figures = self.figures()
        self._last = (figures, time.monotonic())
        self.store.close()
        return figures[0]
