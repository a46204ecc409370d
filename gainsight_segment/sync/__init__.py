"""Audiences and computed traits from your own database, kept in step in Gainsight.

:class:`AudienceSync` sends an ``identify`` with ``{key: true}`` to each user who joined an
audience and ``{key: false}`` to each one who left since the last sync, as Segment's Gainsight
destination received Engage audiences; :class:`TraitSync` does the same for traits with any
JSON value. What Gainsight was last confirmed to hold is kept in a :class:`StateStore` (a
:class:`SQLiteStore` file by default), so an interrupted sync is simply run again.

Example:
    >>> import gainsight_segment as gs
    >>> from gainsight_segment.sync import AudienceSync
    >>> client = gs.Client("35a84f9e-7084-47a1-b8a5-593444e9e862", sync_mode=True)
    >>> with AudienceSync(client, "VIP customers", state=":memory:") as vip:
    ...     vip.preview(["u1", "u2"]).added
    2
"""

from __future__ import annotations

from ._audience import AudienceSync, TraitSync
from ._key import audience_key
from ._lease import ConcurrentSyncError
from ._memory import MemoryStore
from ._results import SyncProgress, SyncResult
from ._store import SQLiteStore, StateChange, StateDiff, StateStore

__all__ = [
    "AudienceSync",
    "ConcurrentSyncError",
    "MemoryStore",
    "SQLiteStore",
    "StateChange",
    "StateDiff",
    "StateStore",
    "SyncProgress",
    "SyncResult",
    "TraitSync",
    "audience_key",
]
