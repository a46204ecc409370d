"""What a sync reports: its result, and its progress while it runs."""

from __future__ import annotations

from typing import Callable, Literal

import attrs

import gainsight_segment as gs

__all__ = ["ProgressCallback", "SyncProgress", "SyncResult"]


@attrs.frozen
class SyncResult:
    """What one sync did (or, from ``preview``, would do).

    ``added + removed + changed`` changes were delivered and recorded; ``failed`` were
    not, and the next sync sends them again.

    Attributes:
        added: Users sent a value for the first time: audience members who joined.
        removed: Users who left: sent ``false`` (audience) or ``null`` (trait).
        unchanged: Users whose confirmed value is already current: nothing was sent.
        failed: Changes not delivered (or not built); the state keeps them pending.
        changed: Trait syncs only: users whose existing value was replaced.
        error: The first delivery error, when ``failed`` is not zero.
    """

    added: int = 0
    removed: int = 0
    unchanged: int = 0
    failed: int = 0
    changed: int = 0
    error: gs.GainsightError | None = attrs.field(default=None, eq=False)

    @property
    def sent(self) -> int:
        """Changes delivered: ``added + removed + changed``."""
        return self.added + self.removed + self.changed

    @property
    def ok(self) -> bool:
        """Whether every change was delivered."""
        return self.failed == 0


@attrs.frozen
class SyncProgress:
    """Where a running sync is, as passed to its ``progress`` callback.

    Attributes:
        phase: ``"reading"`` the snapshot (``total`` is ``None`` until it is all read),
            or ``"sending"`` the changes (``total`` is how many there are).
        done: Snapshot entries read, or changes settled (delivered or failed).
        total: The number ``done`` is heading to, when known.
    """

    phase: Literal["reading", "sending"]
    done: int
    total: int | None = None


ProgressCallback = Callable[[SyncProgress], object]
