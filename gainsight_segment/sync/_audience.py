"""AudienceSync and TraitSync: audiences and computed traits kept in step in Gainsight.

Segment's Gainsight destination received computed traits and audiences as ``identify``
calls: one per user who joined or left an audience, with the audience's snake_cased key as
the trait (``{"order_completed_last_30_days": true}``); the first sync sent every member,
later ones only the users whose membership changed. :class:`AudienceSync` gives the same
behaviour to audiences computed without Segment Engage, and :class:`TraitSync` to traits
with arbitrary JSON values.

What Gainsight was last confirmed to hold is kept in a :class:`StateStore` (a SQLite file by
default). A change is recorded there only once its delivery succeeded, so an interrupted or
partly failed sync is simply run again: it sends exactly what was not confirmed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any, TypeVar

import gainsight_segment as gs

from ._results import ProgressCallback, SyncResult
from ._rows import Id, member_rows, value_rows
from ._store import StateChange, StateStore
from ._syncer import StateSpec, Syncer

__all__ = ["DEFAULT_BATCH_SIZE", "AudienceSync", "TraitSync"]

DEFAULT_BATCH_SIZE = 1000
"""Changes sent between two commits of the state."""


def _membership(change: StateChange) -> bool:
    return change.value is not None


def _trait_value(change: StateChange) -> Any:
    return None if change.value is None else json.loads(change.value)


_Front = TypeVar("_Front", bound="_SyncFront")


class _SyncFront:
    """What AudienceSync and TraitSync share: their key, store and closing."""

    _syncer: Syncer

    @property
    def key(self) -> str:
        """The trait name sent to Gainsight: the snake_case key of the name given."""
        return self._syncer.key

    @property
    def store(self) -> StateStore:
        """The state store."""
        return self._syncer.store

    def close(self) -> None:
        """Close the state store if this object opened it (``state`` given as a path)."""
        self._syncer.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.key!r} store={self.store!r}>"

    def __enter__(self: _Front) -> _Front:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class AudienceSync(_SyncFront):
    """Keeps an audience's membership in Gainsight in step with your own computation.

    Each :meth:`sync` takes the audience's current members and sends one ``identify`` per
    change: ``{key: true}`` to each user who joined, ``{key: false}`` to each user who left,
    nothing to the others. The first sync sends every member.

    Delivery is confirmed through the client's receipts, so the client must be created with
    ``sync_mode=True``; up to ``concurrency`` changes are sent at once, from worker threads.
    A change is recorded in the state only once Gainsight accepted it, a batch at a time: a
    sync interrupted by a crash, a ``KeyboardInterrupt`` or an outage is simply run again,
    and sends what was not confirmed. Delivery is at least once: a change delivered just
    before a crash, but not yet recorded, is sent again, which Gainsight takes as the same
    trait value.

    Example:
        >>> import gainsight_segment as gs
        >>> client = gs.Client("35a84f9e-7084-47a1-b8a5-593444e9e862", sync_mode=True)
        >>> audience = AudienceSync(client, "VIP customers", state=":memory:")
        >>> audience.key
        'vip_customers'
        >>> audience.preview(["u1", "u2"])
        SyncResult(added=2, removed=0, unchanged=0, failed=0, changed=0, error=None)

    Args:
        client: A client created with ``sync_mode=True``.
        audience: The audience's name or key; see :func:`audience_key`.
        state: Where the confirmed membership is kept: the path of a SQLite file (created
            if missing; several audiences may share one) or any :class:`StateStore`. A path
            is opened here and closed by :meth:`close`; a store is left to its owner.
        concurrency: Changes sent at once; by default the client's ``workers``, which is
            also the most it can be.
        batch_size: Changes sent between two commits of the state.

    Raises:
        ConfigurationError: For an audience name that makes no key, a bad ``concurrency``
            or ``batch_size``, or a state file that cannot be opened.
    """

    def __init__(
        self,
        client: gs.Client,
        audience: str,
        *,
        state: StateSpec,
        concurrency: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self._syncer = Syncer(
            "AudienceSync",
            client,
            audience,
            state=state,
            concurrency=concurrency,
            batch_size=batch_size,
            wire_value=_membership,
        )

    def sync(
        self, members: Iterable[Id], *, progress: ProgressCallback | None = None
    ) -> SyncResult:
        """Send the membership changes since the last sync, and record the delivered ones.

        Args:
            members: Every current member's user id (strings; numbers and UUIDs are
                stringified), in any order, duplicates allowed. Consumed once and never held
                in memory, so it can be a generator over millions of rows.
            progress: Called now and then from the calling thread with a
                :class:`SyncProgress`.

        Returns:
            The counts of the sync. Failed changes are reported there (and to the client's
            ``on_error``), not raised; the next sync sends them again.

        Raises:
            ConfigurationError: When the client is not a sending ``sync_mode=True`` client;
                nothing is read or sent.
            InvalidMessageError: When a member is not a valid user id (``None``, empty,
                wrong type); raised before anything is sent.
        """
        return self._syncer.run(member_rows(members, progress), complete=True, progress=progress)

    def preview(self, members: Iterable[Id]) -> SyncResult:
        """Count what :meth:`sync` would send, without sending or recording anything.

        Works with any client, dry-run ones included.

        Args:
            members: As for :meth:`sync`.

        Returns:
            The counts a fully successful sync would report.

        Raises:
            InvalidMessageError: When a member is not a valid user id.
        """
        return self._syncer.preview(member_rows(members, None), complete=True)


class TraitSync(_SyncFront):
    """Keeps a computed trait with arbitrary JSON values in step in Gainsight.

    Like :class:`AudienceSync`, but each user has a value (a number, string, list,
    object, ...) rather than membership: :meth:`sync` sends ``{key: value}`` to users whose
    value is new or differs from the last confirmed one, and nothing to the others. Values
    are compared by a canonical JSON encoding (keys sorted; dates, decimals, UUIDs and sets
    converted as the client converts them), so ``{"a": 1, "b": 2}`` equals
    ``{"b": 2, "a": 1}`` but ``1`` and ``1.0`` differ.

    Example:
        >>> import gainsight_segment as gs
        >>> client = gs.Client("35a84f9e-7084-47a1-b8a5-593444e9e862", sync_mode=True)
        >>> ltv = TraitSync(client, "Lifetime Value", state=":memory:")
        >>> ltv.key
        'lifetime_value'
        >>> ltv.preview([("u1", 120.5), ("u2", 80)])
        SyncResult(added=2, removed=0, unchanged=0, failed=0, changed=0, error=None)

    Args:
        client: A client created with ``sync_mode=True``.
        trait: The trait's name or key; see :func:`audience_key`.
        state: As for :class:`AudienceSync`.
        concurrency: As for :class:`AudienceSync`.
        batch_size: As for :class:`AudienceSync`.

    Raises:
        ConfigurationError: As for :class:`AudienceSync`.
    """

    def __init__(
        self,
        client: gs.Client,
        trait: str,
        *,
        state: StateSpec,
        concurrency: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self._syncer = Syncer(
            "TraitSync",
            client,
            trait,
            state=state,
            concurrency=concurrency,
            batch_size=batch_size,
            wire_value=_trait_value,
        )

    def sync(
        self,
        values: Iterable[tuple[Id, Any]] | Mapping[Any, Any],
        *,
        partial: bool = False,
        progress: ProgressCallback | None = None,
    ) -> SyncResult:
        """Send the values that changed since the last sync, and record the delivered ones.

        Args:
            values: ``(user_id, value)`` pairs, or a mapping of user id to value. Consumed
                once and never held in memory. When a user appears twice, the last value
                wins.
            partial: ``False`` (the default): ``values`` lists every user who has the trait,
                and users missing from it since the last sync are sent ``null``.
                ``True``: ``values`` lists only some users (say, today's updates) and the
                others are left as they are.
            progress: Called now and then from the calling thread with a
                :class:`SyncProgress`.

        Returns:
            The counts of the sync; failed changes are sent again by the next one.

        Raises:
            ConfigurationError: When the client is not a sending ``sync_mode=True`` client.
            InvalidMessageError: When a pair is malformed, a user id invalid or a value not
                JSON (NaN, unknown type); raised before anything is sent.
        """
        rows = value_rows(self.key, values, progress)
        return self._syncer.run(rows, complete=not partial, progress=progress)

    def preview(
        self, values: Iterable[tuple[Id, Any]] | Mapping[Any, Any], *, partial: bool = False
    ) -> SyncResult:
        """Count what :meth:`sync` would send, without sending or recording anything.

        Args:
            values: As for :meth:`sync`.
            partial: As for :meth:`sync`.

        Returns:
            The counts a fully successful sync would report.

        Raises:
            InvalidMessageError: As for :meth:`sync`.
        """
        return self._syncer.preview(value_rows(self.key, values, None), complete=not partial)
