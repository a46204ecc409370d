"""Snapshots as store rows: each user id checked, each value as canonical JSON text.

A sync streams its snapshot through these generators into the store, so a row is checked and
encoded as it is read and nothing is held in memory. Values are encoded canonically (keys
sorted, sets sorted, one spelling per value) so that equal values compare equal as text in the
store; what is not JSON is converted exactly as the client converts it, by the client's own
:class:`~gainsight_segment.MessageBuilder`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from enum import Enum
from typing import Any, Union
from uuid import UUID

import gainsight_segment as gs

from ._results import ProgressCallback, SyncProgress

Id = Union[str, int, float, UUID]
"""A user id as callers give it: numbers and UUIDs are stringified, as the client does."""

PROGRESS_EVERY = 100_000
"""Snapshot entries read between two ``reading`` progress reports."""

_TRUE = "true"
# Builds the messages that check ids and convert values; never sends anything.
_BUILDER = gs.MessageBuilder()


def user_id(where: str, value: object) -> str:
    """Return a user id as the client would send it.

    Args:
        where: What to name in an error, e.g. ``"members[3]"``.
        value: The id as given.

    Raises:
        InvalidMessageError: When the client would refuse it as a ``userId``.
    """
    if type(value) is str and value and not value.isspace():
        return value
    if value is None:
        raise gs.InvalidMessageError(f"{where}: a user id is required, got None")
    if type(value) is int:
        try:
            return str(value)
        except ValueError:  # too many digits: the builder says so in its own words
            pass
    try:
        message = _BUILDER.identify(value)  # type: ignore[arg-type]
    except gs.InvalidMessageError as error:
        reason = str(error).removeprefix("userId: ")
        raise gs.InvalidMessageError(f"{where}: {reason}") from None
    sent: str = message.payload()["userId"]
    return sent


def member_rows(
    members: Iterable[Id], progress: ProgressCallback | None
) -> Iterator[tuple[str, str]]:
    """Yield ``(user_id, "true")`` for each audience member, reporting progress now and then."""
    index = -1
    for index, member in enumerate(members):
        # Plain non-blank strings are nearly every member: checked inline for speed.
        if type(member) is str and member and not member.isspace():
            yield member, _TRUE
        else:
            yield user_id(f"members[{index}]", member), _TRUE
        if progress is not None and (index + 1) % PROGRESS_EVERY == 0:
            progress(SyncProgress("reading", index + 1))
    if progress is not None:
        progress(SyncProgress("reading", index + 1, index + 1))


def _as_sent(value: Any) -> Any:
    """Convert one value the JSON encoder does not know, as the client converts it."""
    if isinstance(value, (set, frozenset)):
        # Set order changes from one process to the next; the encoding must not.
        return sorted(value, key=_CANONICAL.encode)
    # Containers are opened here, so that the sets they hold are sorted too.
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, Enum):
        return value.value
    # A leaf (date, Decimal, UUID, ...): the builder writes it as it will be sent. A value it
    # refuses raises InvalidMessageError, a ValueError, which ends the encoding.
    return _BUILDER.identify("u", {"value": value}).payload()["traits"]["value"]


# One encoding per value, so that equal values compare equal as text in the store.
_CANONICAL = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    sort_keys=True,
    separators=(",", ":"),
    default=_as_sent,
)


def canonical(where: str, key: str, value: object) -> str:
    """Return a trait value as canonical JSON text.

    Raises:
        InvalidMessageError: When the value is not JSON, naming ``where`` and the field.
    """
    try:
        return _CANONICAL.encode(value)
    except (TypeError, ValueError, OverflowError, RecursionError) as error:
        try:
            _BUILDER.identify("u", {key: value})
        except gs.InvalidMessageError as invalid:
            raise gs.InvalidMessageError(f"{where}: {invalid}") from None
        # Serializable in send order but not sortable, e.g. keys of mixed types.
        raise gs.InvalidMessageError(f"{where}: traits.{key}: {error}") from None


def value_rows(
    key: str,
    values: Iterable[tuple[Id, Any]] | Mapping[Any, Any],
    progress: ProgressCallback | None,
) -> Iterator[tuple[str, str]]:
    """Yield ``(user_id, canonical value)`` for each pair, reporting progress now and then."""
    pairs: Iterable[Any] = values.items() if isinstance(values, Mapping) else values
    index = -1
    for index, pair in enumerate(pairs):
        where = f"values[{index}]"
        if isinstance(pair, (str, bytes)):
            raise gs.InvalidMessageError(f"{where}: expected a (user_id, value) pair, got a string")
        try:
            user, value = pair
        except (TypeError, ValueError):
            raise gs.InvalidMessageError(
                f"{where}: expected a (user_id, value) pair, got {type(pair).__name__}"
            ) from None
        yield user_id(where, user), canonical(where, key, value)
        if progress is not None and (index + 1) % PROGRESS_EVERY == 0:
            progress(SyncProgress("reading", index + 1))
    if progress is not None:
        progress(SyncProgress("reading", index + 1, index + 1))
