"""MemoryStore: a state store in dicts, for tests and small audiences."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Sequence

from ._lease import Lease, LocalLeases
from ._store import StateChange, StateDiff

__all__ = ["MemoryStore"]


class MemoryStore:
    """A :class:`StateStore` in dicts: for tests and small audiences.

    The state lasts as long as the object, and a diff holds the whole snapshot in memory;
    use :class:`SQLiteStore` for anything large or anything that must survive a restart.

    Example:
        >>> store = MemoryStore()
        >>> diff = store.diff("vip", [("u1", "true")], complete=True)
        >>> store.confirm("vip", [c for batch in diff.batches(100) for c in batch])
        >>> dict(store.items("vip"))
        {'u1': 'true'}
    """

    def __init__(self) -> None:
        self._state: dict[str, dict[str, str]] = {}
        self._leases = LocalLeases()

    def __repr__(self) -> str:
        return f"<MemoryStore keys={sorted(self._state)!r}>"

    def diff(self, key: str, snapshot: Iterable[tuple[str, str]], *, complete: bool) -> StateDiff:
        """Compute the changes of a snapshot; see :meth:`StateStore.diff`."""
        state = self._state.get(key, {})
        staged = dict(snapshot)
        changes = [
            StateChange(user_id, value, state.get(user_id))
            for user_id, value in staged.items()
            if state.get(user_id) != value
        ]
        unchanged = len(staged) - len(changes)
        if complete:
            changes.extend(
                StateChange(user_id, None, value)
                for user_id, value in state.items()
                if user_id not in staged
            )
        return _MemoryDiff(len(staged), unchanged, changes)

    def lease(self, key: str) -> contextlib.AbstractContextManager[Lease]:
        """Hold the lease on a key within this process; see :meth:`SQLiteStore.lease`.

        Raises:
            ConcurrentSyncError: When another sync of ``key`` holds it.
        """
        return self._leases.lease(key)

    def confirm(self, key: str, changes: Sequence[StateChange]) -> None:
        """Record delivered changes; see :meth:`StateStore.confirm`."""
        state = self._state.setdefault(key, {})
        for change in changes:
            if change.value is None:
                state.pop(change.user_id, None)
            else:
                state[change.user_id] = change.value

    def items(self, key: str) -> Iterator[tuple[str, str]]:
        """Yield the confirmed ``(user_id, canonical JSON value)`` pairs of a key, by user id.

        Args:
            key: The Gainsight trait name.
        """
        yield from sorted(self._state.get(key, {}).items())

    def close(self) -> None:
        """Nothing to release."""


class _MemoryDiff:
    """The changes of one :meth:`MemoryStore.diff`."""

    def __init__(self, staged: int, unchanged: int, changes: list[StateChange]) -> None:
        self.staged = staged
        self.unchanged = unchanged
        self.pending = len(changes)
        self._changes = changes

    def batches(self, size: int) -> Iterator[Sequence[StateChange]]:
        """Yield the changes in batches; see :meth:`StateDiff.batches`."""
        for start in range(0, len(self._changes), size):
            yield self._changes[start : start + size]

    def close(self) -> None:
        """Forget the changes."""
        self._changes = []
