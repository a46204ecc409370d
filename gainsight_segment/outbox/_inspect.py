"""Looking at an outbox file, and mending it: what waits, and the dead letters."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from types import TracebackType
from typing import IO, Any

import attrs

from ._store import Store


@attrs.frozen
class OutboxSummary:
    """What an outbox file holds.

    Attributes:
        waiting: Messages waiting to be delivered (claimed ones included).
        claimed: Of those, messages a sender holds now (being sent, or about to be).
        oldest_age: Seconds since the oldest waiting message was written; ``None`` when
            none waits.
        dead_letters: Messages the endpoint refused for good.
    """

    waiting: int
    claimed: int
    oldest_age: float | None
    dead_letters: int


@attrs.frozen
class DeadLetter:
    """A message the endpoint refused for good, and why.

    Attributes:
        id: Its number in the file.
        message: The message, as it was sent (without ``sentAt``).
        kind: Why, in a word (a :class:`~gainsight_segment.DeliveryError` kind).
        status: The HTTP status of the refusal, if any.
        reason: What the client said about it.
        attempts: How many times it was taken for sending.
        failed: When it was given up, in seconds since the epoch.
    """

    id: int
    message: dict[str, Any]
    kind: str
    status: int | None
    reason: str
    attempts: int
    failed: float


class Outbox:
    """An outbox file, opened to look at it or mend it (clients write to it themselves).

    Example:
        >>> import tempfile, os
        >>> from gainsight_segment.outbox import Outbox
        >>> with Outbox(os.path.join(tempfile.mkdtemp(), "events.db")) as outbox:
        ...     outbox.summary().waiting
        0

    Args:
        path: The file; created (empty, mode 0600) when missing.

    Raises:
        OutboxError: When the file cannot be opened or read.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._store = Store(self.path, register=False)

    def __repr__(self) -> str:
        return f"Outbox({self.path!r})"

    def __enter__(self) -> Outbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def summary(self) -> OutboxSummary:
        """Count what the file holds."""
        waiting, oldest, dead, unclaimed = self._store.figures()
        return OutboxSummary(waiting, waiting - unclaimed, oldest, dead)

    def dead_letters(self) -> Iterator[DeadLetter]:
        """The dead letters, oldest first."""
        for row in self._store.dead_rows():
            identifier, body, kind, status, reason, attempts, failed = row
            yield DeadLetter(identifier, _decoded(body), kind, status, reason, attempts, failed)

    def retry_dead_letters(self) -> int:
        """Put every dead letter back in the outbox, to be sent again; how many.

        Fix what made the endpoint refuse them first (the access key, say).
        """
        return self._store.revive()

    def export_dead_letters(self, stream: IO[str]) -> int:
        """Write the dead letters as JSON Lines, one message each; how many.

        The file can be sent again with ``gainsight-segment replay``.
        """
        count = 0
        for letter in self.dead_letters():
            stream.write(json.dumps(letter.message, ensure_ascii=False) + "\n")
            count += 1
        return count

    def close(self) -> None:
        """Close the file."""
        self._store.close()


def _decoded(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except ValueError:
        return {"undecodable": body.decode("utf-8", "replace")}
    return value if isinstance(value, dict) else {"value": value}
