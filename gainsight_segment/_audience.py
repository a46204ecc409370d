"""Audiences and computed traits from your own database, kept in step in Gainsight.

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

import argparse
import csv
import json
import os
import re
import sqlite3
import sys
import time
import unicodedata
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from types import TracebackType
from typing import IO, Any, Callable, Literal, NoReturn, Optional, TypeVar, Union

import attrs

from ._audience_store import SQLiteStore, StateChange, StatePath, StateStore
from ._client import Client
from ._errors import ConfigurationError, DeliveryError, GainsightError, InvalidMessageError
from ._message import Id, _id, _to_json, serialize
from ._receipt import Outcome

__all__ = [
    "AudienceSync",
    "SyncProgress",
    "SyncResult",
    "TraitSync",
    "audience_key",
    "audience_main",
]

DEFAULT_BATCH_SIZE = 1000
"""Changes sent between two commits of the state."""
DEFAULT_STATE_FILE = "gainsight-sync-state.sqlite3"
"""The state file the command line uses when ``--state`` is not given."""

_PROGRESS_EVERY = 100_000
_TRUE = "true"

# Latin letters that NFKD does not decompose into a base letter and an accent (lower case:
# they are folded after lower-casing, so that "Æ" is one word break, not "A" + "E").
_FOLD = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "œ": "oe",
        "ø": "o",
        "đ": "d",
        "ð": "d",
        "ł": "l",
        "þ": "th",
        "\u0131": "i",  # dotless i
    }
)
_NON_WORD = re.compile(r"[^a-z0-9]+")


def _break_camel_case(text: str) -> str:
    # The track whitelist's word breaks (see _whitelist.py), for letters of any script: a
    # capital after a lower-case letter or a digit ("orderCompleted"), and the last capital
    # of an acronym before lower case ("VIPCustomers" -> "VIP_Customers"). Digits join the
    # word they touch.
    out = []
    for index, char in enumerate(text):
        if index and char.isupper():
            before = text[index - 1]
            after = text[index + 1 : index + 2]
            if before.islower() or before.isdigit() or (before.isupper() and after.islower()):
                out.append("_")
        out.append(char)
    return "".join(out)


def audience_key(name: str) -> str:
    """Return the Gainsight trait name of an audience or computed trait: its snake_case key.

    The rules, in order:

    1. Accents are stripped (Unicode NFKD, combining marks dropped), and the Latin letters
       that have no decomposition are spelled out (``ß`` -> ``ss``, ``æ`` -> ``ae``,
       ``ø`` -> ``o``, ``ł`` -> ``l``, ...).
    2. camelCase boundaries become word breaks (``orderCompleted`` -> ``order Completed``,
       ``VIPCustomers`` -> ``VIP Customers``). Digits stay with the word they touch:
       ``last30Days`` -> ``last30 Days``.
    3. Everything is lower-cased, and every run of other characters (spaces, punctuation,
       symbols such as ``>=`` or ``%``, letters of non-Latin scripts) becomes one ``_``;
       leading and trailing ``_`` are dropped. Symbols carry no meaning in the key, so
       ``"NPS >= 9"`` and ``"NPS <= 9"`` collide: name such audiences in words.
    4. A leading digit is kept, as Segment kept it (``"30 Day Actives"`` -> ``30_day_actives``).

    A name that is already a key (lower-case ASCII letters and digits in words joined by
    single ``_``) is returned unchanged, so ``audience_key`` is idempotent.

    Examples:
        >>> audience_key("Order Completed Last 30 Days")
        'order_completed_last_30_days'
        >>> audience_key("VIP customers")
        'vip_customers'
        >>> audience_key("NPS >= 9")
        'nps_9'
        >>> audience_key("orderCompletedLast30Days")
        'order_completed_last30_days'
        >>> audience_key("Clientes élite")
        'clientes_elite'
        >>> audience_key("30 Day Actives")
        '30_day_actives'
        >>> audience_key("order_completed_last_30days")
        'order_completed_last_30days'

    Args:
        name: The audience's or trait's name, as people write it, or its key.

    Returns:
        The key.

    Raises:
        ConfigurationError: When ``name`` is not a string or leaves nothing once
            normalized (``""``, ``"!!!"``, ``"顧客"``).
    """
    if not isinstance(name, str):
        raise ConfigurationError(f"audience: must be a string, got {type(name).__name__}")
    text = unicodedata.normalize("NFKD", name)
    text = "".join(char for char in text if not unicodedata.combining(char))
    text = _break_camel_case(text).lower().translate(_FOLD)
    key = _NON_WORD.sub("_", text).strip("_")
    if not key:
        raise ConfigurationError(
            f"audience: {name!r} has no ASCII letters or digits to make a key from"
        )
    return key


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
    error: GainsightError | None = attrs.field(default=None, eq=False)

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
StateSpec = Union[StatePath, StateStore]
_Outcome = Optional[GainsightError]


def _user_id(where: str, value: object) -> str:
    if value is None:
        raise InvalidMessageError(f"{where}: a user id is required, got None")
    user_id = _id(where, value)
    assert user_id is not None
    return user_id


def _member_rows(
    members: Iterable[Id], progress: ProgressCallback | None
) -> Iterator[tuple[str, str]]:
    index = -1
    for index, member in enumerate(members):
        # Plain non-blank strings are nearly every member: checked inline for speed.
        if type(member) is str and member and not member.isspace():
            yield member, _TRUE
        else:
            yield _user_id(f"members[{index}]", member), _TRUE
        if progress is not None and (index + 1) % _PROGRESS_EVERY == 0:
            progress(SyncProgress("reading", index + 1))
    if progress is not None:
        progress(SyncProgress("reading", index + 1, index + 1))


def _canonical_default(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        # Set order changes from one process to the next; the encoding must not.
        return sorted(value, key=_CANONICAL.encode)
    return _to_json(value)


# One encoding per value, so that equal values compare equal as text in the store.
_CANONICAL = json.JSONEncoder(
    ensure_ascii=False,
    allow_nan=False,
    sort_keys=True,
    separators=(",", ":"),
    default=_canonical_default,
)


def _canonical(where: str, key: str, value: object) -> str:
    try:
        return _CANONICAL.encode(value)
    except (TypeError, ValueError, OverflowError, RecursionError) as error:
        try:
            serialize({"traits": {key: value}})
        except InvalidMessageError as invalid:
            raise InvalidMessageError(f"{where}: {invalid}") from None
        # Serializable in send order but not sortable, e.g. keys of mixed types.
        raise InvalidMessageError(f"{where}: traits.{key}: {error}") from None


def _value_rows(
    key: str,
    values: Iterable[tuple[Id, Any]] | Mapping[Any, Any],
    progress: ProgressCallback | None,
) -> Iterator[tuple[str, str]]:
    pairs: Iterable[Any] = values.items() if isinstance(values, Mapping) else values
    index = -1
    for index, pair in enumerate(pairs):
        where = f"values[{index}]"
        if isinstance(pair, (str, bytes)):
            raise InvalidMessageError(f"{where}: expected a (user_id, value) pair, got a string")
        try:
            user, value = pair
        except (TypeError, ValueError):
            raise InvalidMessageError(
                f"{where}: expected a (user_id, value) pair, got {type(pair).__name__}"
            ) from None
        yield _user_id(where, user), _canonical(where, key, value)
        if progress is not None and (index + 1) % _PROGRESS_EVERY == 0:
            progress(SyncProgress("reading", index + 1))
    if progress is not None:
        progress(SyncProgress("reading", index + 1, index + 1))


@attrs.define
class _Tally:
    added: int = 0
    removed: int = 0
    changed: int = 0
    failed: int = 0
    error: GainsightError | None = None

    @property
    def settled(self) -> int:
        return self.added + self.removed + self.changed + self.failed

    def count(self, change: StateChange) -> None:
        if change.value is None:
            self.removed += 1
        elif change.previous is None:
            self.added += 1
        else:
            self.changed += 1

    def fail(self, error: GainsightError) -> None:
        self.failed += 1
        if self.error is None:
            self.error = error

    def result(self, unchanged: int) -> SyncResult:
        return SyncResult(
            added=self.added,
            removed=self.removed,
            unchanged=unchanged,
            failed=self.failed,
            changed=self.changed,
            error=self.error,
        )


class _Syncer:
    """What audience and trait syncs share: the store, delivery and confirmation.

    Args:
        owner: The public class's name, for error messages.
        client: The client changes are sent with.
        name: The audience's or trait's name or key.
        state: A state file path or a store.
        concurrency: Changes sent at once; ``None`` for the client's workers.
        batch_size: Changes sent between two commits of the state.
        wire_value: The trait value to send for a change.
    """

    def __init__(
        self,
        owner: str,
        client: Client,
        name: str,
        *,
        state: StateSpec,
        concurrency: int | None,
        batch_size: int,
        wire_value: Callable[[StateChange], Any],
    ) -> None:
        self.owner = owner
        self.key = audience_key(name)
        self.client = client
        self.wire_value = wire_value
        workers = client.settings.senders
        if concurrency is None:
            concurrency = workers
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigurationError(f"concurrency: must be an integer >= 1, got {concurrency!r}")
        if concurrency > workers:
            # The client's connection pool holds `workers` connections; more threads would
            # open and discard a connection per request.
            raise ConfigurationError(
                f"concurrency: {concurrency} is more than the client's workers ({workers}), "
                f"which size its connection pool; create the client with workers={concurrency}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ConfigurationError(f"batch_size: must be an integer >= 1, got {batch_size!r}")
        self.concurrency = concurrency
        self.batch_size = batch_size
        self.owns_store = isinstance(state, (str, os.PathLike))
        self.store: StateStore = (
            SQLiteStore(state) if isinstance(state, (str, os.PathLike)) else state
        )

    def close(self) -> None:
        if self.owns_store:
            self.store.close()

    def check_client(self) -> None:
        settings = self.client.settings
        if not settings.send:
            raise ConfigurationError(
                f"{self.owner}: the client is a dry run (send=False), so nothing could be "
                f"confirmed; use preview() to see the changes without sending"
            )
        if not settings.sync_mode:
            raise ConfigurationError(
                f"{self.owner}: needs a client created with sync_mode=True; a change is "
                f"recorded only once Gainsight accepted it, and an asynchronous client's "
                f"receipt (QUEUED) does not say whether it did"
            )

    def run(
        self, rows: Iterable[tuple[str, str]], *, complete: bool, progress: ProgressCallback | None
    ) -> SyncResult:
        self.check_client()
        diff = self.store.diff(self.key, rows, complete=complete)
        try:
            tally = _Tally()
            if progress is not None:
                progress(SyncProgress("sending", 0, diff.pending))
            executor = None
            if self.concurrency > 1 and diff.pending > 1:
                executor = ThreadPoolExecutor(
                    max_workers=self.concurrency, thread_name_prefix="gainsight-segment-sync"
                )
            try:
                for batch in diff.batches(self.batch_size):
                    self._send_batch(batch, executor, tally)
                    if progress is not None:
                        progress(SyncProgress("sending", tally.settled, diff.pending))
            finally:
                if executor is not None:
                    # An interrupted sync must not keep sending what it will not record.
                    executor.shutdown(wait=True, cancel_futures=True)
            return tally.result(diff.unchanged)
        finally:
            diff.close()

    def _send_batch(
        self, batch: Sequence[StateChange], executor: ThreadPoolExecutor | None, tally: _Tally
    ) -> None:
        outcomes: Iterator[_Outcome]
        if executor is None:
            outcomes = map(self._deliver, batch)
        else:
            outcomes = executor.map(self._deliver, batch)
        confirmed: list[StateChange] = []
        try:
            for change, error in zip(batch, outcomes):
                if error is None:
                    confirmed.append(change)
                    tally.count(change)
                else:
                    tally.fail(error)
        finally:
            # Even when interrupted, what was delivered is recorded, so it is not sent again.
            self.store.confirm(self.key, confirmed)

    def _deliver(self, change: StateChange) -> _Outcome:
        try:
            receipt = self.client.identify(change.user_id, {self.key: self.wire_value(change)})
        except InvalidMessageError as error:
            return error
        if receipt.outcome is Outcome.SENT:
            return None
        if receipt.error is not None:
            return receipt.error
        # Anything but SENT is not a confirmation, whatever the client was configured as.
        return DeliveryError(
            f"delivery not confirmed (outcome {receipt.outcome.value})",
            message_id=receipt.message_id,
        )

    def preview(self, rows: Iterable[tuple[str, str]], *, complete: bool) -> SyncResult:
        diff = self.store.diff(self.key, rows, complete=complete)
        try:
            tally = _Tally()
            for batch in diff.batches(self.batch_size):
                for change in batch:
                    tally.count(change)
            return tally.result(diff.unchanged)
        finally:
            diff.close()


def _membership(change: StateChange) -> bool:
    return change.value is not None


def _trait_value(change: StateChange) -> Any:
    return None if change.value is None else json.loads(change.value)


_Front = TypeVar("_Front", bound="_SyncFront")


class _SyncFront:
    """What AudienceSync and TraitSync share: their key, store and closing."""

    _syncer: _Syncer

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
        client: Client,
        audience: str,
        *,
        state: StateSpec,
        concurrency: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self._syncer = _Syncer(
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
        return self._syncer.run(_member_rows(members, progress), complete=True, progress=progress)

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
        return self._syncer.preview(_member_rows(members, None), complete=True)


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
        client: Client,
        trait: str,
        *,
        state: StateSpec,
        concurrency: int | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        self._syncer = _Syncer(
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
        rows = _value_rows(self.key, values, progress)
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
        return self._syncer.preview(_value_rows(self.key, values, None), complete=not partial)


# --- command line -------------------------------------------------------------------------


_PROG = "gainsight-segment"
_EXIT_OK, _EXIT_FAILED, _EXIT_USAGE, _EXIT_INTERRUPTED = 0, 1, 2, 130


def _error(message: str) -> None:
    # The same one-line form as the rest of the gainsight-segment command line.
    print(f"{_PROG}: error: {message}", file=sys.stderr, flush=True)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line."""

    def error(self, message: str) -> NoReturn:
        _error(f"{message} (see '{self.prog} --help')")
        raise SystemExit(_EXIT_USAGE)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=f"{_PROG} audience",
        description="Sync audiences computed in your own database to Gainsight.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    sync = commands.add_parser(
        "sync",
        help="send the membership changes of an audience since its last sync",
        description=(
            "Send an identify {KEY: true} to each member who joined the audience and "
            "{KEY: false} to each one who left since the last sync (every member the first "
            "time). Changes are recorded in the state file only once delivered: run the "
            "same command again after a failure to send what is missing."
        ),
    )
    sync.add_argument("name", metavar="NAME", help="the audience's name or key")
    sync.add_argument(
        "--members",
        metavar="FILE",
        required=True,
        help="the current members: one user id per line, or a CSV file with --column; "
        "'-' reads standard input",
    )
    sync.add_argument(
        "--column", metavar="COL", help="read FILE as CSV with a header; user ids are in COL"
    )
    sync.add_argument(
        "--state",
        metavar="PATH",
        default=DEFAULT_STATE_FILE,
        help=f"the SQLite state file (default: ./{DEFAULT_STATE_FILE})",
    )
    sync.add_argument(
        "--access-key",
        metavar="KEY",
        help="the Gainsight access key (default: $GAINSIGHT_ACCESS_KEY)",
    )
    sync.add_argument("--endpoint", metavar="URL", help="the Gainsight event endpoint's base URL")
    sync.add_argument(
        "--concurrency",
        metavar="N",
        type=_positive_int,
        default=4,
        help="requests at once (default: 4)",
    )
    sync.add_argument(
        "--dry-run", action="store_true", help="count the changes; send and record nothing"
    )
    sync.add_argument("--quiet", action="store_true", help="no progress on standard error")
    return parser


def _open_members(path: str) -> IO[str]:
    if path == "-":
        return sys.stdin
    # utf-8-sig: spreadsheet exports often start with a byte-order mark.
    return open(path, encoding="utf-8-sig", newline="")


def _read_lines(stream: IO[str]) -> Iterator[str]:
    for line in stream:
        user_id = line.strip()
        if user_id:
            yield user_id


def _read_column(stream: IO[str], column: str) -> Iterator[str]:
    reader = csv.reader(stream)
    header = next(reader, None)
    if header is None:
        raise _CliError("the members file is empty: expected a CSV header")
    names = [name.strip() for name in header]
    if column not in names:
        raise _CliError(
            f"no column {column!r} in the members file; its columns: {', '.join(names)}"
        )
    index = names.index(column)

    def ids() -> Iterator[str]:
        for row in reader:
            if index < len(row):
                user_id = row[index].strip()
                if user_id:
                    yield user_id

    return ids()


class _CliError(Exception):
    """A problem the command line reports in one line."""


class _Printer:
    """Progress on standard error, at most about once a second."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream
        self._last = 0.0

    def __call__(self, progress: SyncProgress) -> None:
        now = time.monotonic()
        final = progress.total is not None and progress.done == progress.total
        if not final and progress.done and now - self._last < 1.0:
            return
        self._last = now
        if progress.phase == "reading":
            text = f"read {progress.done:,} members" + ("" if final else "...")
        else:
            text = f"sent {progress.done:,} of {progress.total or 0:,} changes"
        print(text, file=self._stream, flush=True)


def _summary(key: str, result: SyncResult, dry_run: bool) -> str:
    if dry_run:
        return (
            f"audience {key}: would add {result.added:,}, remove {result.removed:,}; "
            f"{result.unchanged:,} unchanged (dry run: nothing sent)"
        )
    return (
        f"audience {key}: {result.added:,} added, {result.removed:,} removed, "
        f"{result.unchanged:,} unchanged, {result.failed:,} failed"
    )


def _sync_command(args: argparse.Namespace) -> int:
    options: dict[str, Any] = {"sync_mode": True, "exit_timeout": 0}
    if args.endpoint is not None:
        options["endpoint"] = args.endpoint
    options["workers"] = args.concurrency
    if args.dry_run:
        options["send"] = False
    with Client(args.access_key, **options) as client:
        try:
            stream = _open_members(args.members)
        except OSError as error:
            raise _CliError(f"cannot read the members file: {error}") from None
        try:
            members = (
                _read_lines(stream) if args.column is None else _read_column(stream, args.column)
            )
            with AudienceSync(client, args.name, state=args.state) as audience:
                if args.dry_run:
                    result = audience.preview(members)
                else:
                    printer = None if args.quiet else _Printer(sys.stderr)
                    result = audience.sync(members, progress=printer)
        finally:
            if stream is not sys.stdin:
                stream.close()
    print(_summary(audience.key, result, args.dry_run), flush=True)
    if not result.ok:
        _error(
            f"{result.failed:,} changes not delivered (first: {result.error}); "
            "run the same sync again to send them"
        )
        return _EXIT_FAILED
    return _EXIT_OK


def audience_main(argv: Sequence[str]) -> int:
    """Run ``gainsight-segment audience ...``: the audience command line.

    ``sync NAME --members FILE [--column COL] [--state PATH] [--access-key KEY]
    [--endpoint URL] [--concurrency N] [--dry-run] [--quiet]`` sends the membership changes
    of audience ``NAME`` since its last sync. Progress goes to standard error, a one-line
    summary to standard output; errors are one line on standard error, without traceback.

    Args:
        argv: The arguments after ``audience``.

    Returns:
        The exit status: 0 when every change was delivered, 1 when some were not (run the
        same command again to send them), 2 for a usage or configuration error, 130 when
        interrupted.
    """
    parser = _parser()
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exit:
        # --help, or a usage error argparse has already reported.
        return exit.code if isinstance(exit.code, int) else _EXIT_USAGE
    try:
        return _sync_command(args)
    except KeyboardInterrupt:
        _error(
            "interrupted: the changes delivered so far are recorded; "
            "run the same sync again to send the rest"
        )
        return _EXIT_INTERRUPTED
    except (_CliError, GainsightError) as error:
        _error(str(error))
        return _EXIT_USAGE
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        _error(f"reading the members file: {error}")
        return _EXIT_USAGE
    except sqlite3.Error as error:
        _error(f"state file {args.state!r}: {error}")
        return _EXIT_USAGE
