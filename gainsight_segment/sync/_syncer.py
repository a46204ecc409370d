"""What audience and trait syncs share: the store, delivery and confirmation.

A sync asks the store for the changes between a snapshot and the confirmed state, sends each
change as an ``identify``, and confirms the delivered ones a batch at a time. Nothing but a
confirmation changes the state, so an interrupted sync is simply run again.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from typing import Any, Callable, Optional, Union

import attrs

import gainsight_segment as gs

from ._key import audience_key
from ._lease import Lease, NoLease
from ._results import ProgressCallback, SyncProgress, SyncResult
from ._store import SQLiteStore, StateChange, StateDiff, StatePath, StateStore

StateSpec = Union[StatePath, StateStore]
_Outcome = Optional[gs.GainsightError]


@attrs.define
class _Tally:
    added: int = 0
    removed: int = 0
    changed: int = 0
    failed: int = 0
    error: gs.GainsightError | None = None

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

    def fail(self, error: gs.GainsightError) -> None:
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


class Syncer:
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
        client: gs.Client,
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
            raise gs.ConfigurationError(
                f"concurrency: must be an integer >= 1, got {concurrency!r}"
            )
        if concurrency > workers:
            # The client's connection pool holds `workers` connections; more threads would
            # open and discard a connection per request.
            raise gs.ConfigurationError(
                f"concurrency: {concurrency} is more than the client's workers ({workers}), "
                f"which size its connection pool; create the client with workers={concurrency}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise gs.ConfigurationError(f"batch_size: must be an integer >= 1, got {batch_size!r}")
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
            raise gs.ConfigurationError(
                f"{self.owner}: the client is a dry run (send=False), so nothing could be "
                f"confirmed; use preview() to see the changes without sending"
            )
        if not settings.sync_mode:
            raise gs.ConfigurationError(
                f"{self.owner}: needs a client created with sync_mode=True; a change is "
                f"recorded only once Gainsight accepted it, and an asynchronous client's "
                f"receipt (QUEUED) does not say whether it did"
            )

    def run(
        self, rows: Iterable[tuple[str, str]], *, complete: bool, progress: ProgressCallback | None
    ) -> SyncResult:
        self.check_client()
        # Held from before the diff to the last confirmation: a second sync of the key would
        # diff against the same state and send every change again.
        with self._lease() as lease:
            diff = self.store.diff(self.key, rows, complete=complete)
            try:
                return self._send(diff, lease, progress)
            finally:
                diff.close()

    def _lease(self) -> AbstractContextManager[Lease]:
        # Optional in the StateStore protocol: a store of the user's may have none.
        lease = getattr(self.store, "lease", None)
        return nullcontext(NoLease()) if lease is None else lease(self.key)

    def _send(self, diff: StateDiff, lease: Lease, progress: ProgressCallback | None) -> SyncResult:
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
                lease.check()
                self._send_batch(batch, executor, tally)
                if progress is not None:
                    progress(SyncProgress("sending", tally.settled, diff.pending))
        finally:
            if executor is not None:
                # An interrupted sync must not keep sending what it will not record.
                executor.shutdown(wait=True, cancel_futures=True)
        return tally.result(diff.unchanged)

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
        except gs.InvalidMessageError as error:
            return error
        if receipt.outcome is gs.Outcome.SENT:
            return None
        if receipt.error is not None:
            return receipt.error
        # Anything but SENT is not a confirmation, whatever the client was configured as.
        return gs.DeliveryError(
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
