"""One sync of an audience at a time: the lease a sync holds on its key in the state file."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest

import gainsight_segment as gs
from gainsight_segment.sync import (
    AudienceSync,
    ConcurrentSyncError,
    MemoryStore,
    SQLiteStore,
    SyncProgress,
    TraitSync,
)
from gainsight_segment.sync._lease import SQLiteLease
from gainsight_segment.testing import LocalCollector

from .conftest import ACCESS_KEY, ClientFactory

KEY = "vip_customers"


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite3"


@pytest.fixture
def client(make_client: ClientFactory) -> gs.Client:
    return make_client(sync_mode=True, workers=1)


Sync = Callable[[], "AudienceSync | TraitSync"]


class Paused:
    """Runs a sync in a thread of its own (a SQLite store belongs to the thread that opens
    it) and holds it once it is about to send, until the block ends."""

    def __init__(self, make: Sync, snapshot: Any) -> None:
        self.sending = threading.Event()
        self._resume = threading.Event()
        self.errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, args=(make, snapshot))

    def _progress(self, progress: SyncProgress) -> None:
        if progress.phase == "sending" and progress.done == 0:
            self.sending.set()
            self._resume.wait(30)

    def _run(self, make: Sync, snapshot: Any) -> None:
        try:
            with make() as sync:
                sync.sync(snapshot, progress=self._progress)
        except BaseException as error:
            self.errors.append(error)
            self.sending.set()

    def __enter__(self) -> Paused:
        self._thread.start()
        assert self.sending.wait(30), "the first sync never started sending"
        assert self.errors == []
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._resume.set()
        self._thread.join(30)


@pytest.fixture
def running(client: gs.Client, state: Path) -> Iterator[Paused]:
    """A sync of KEY on the state file, holding its lease, paused before it sends."""
    with Paused(lambda: AudienceSync(client, KEY, state=state), ["u1", "u2"]) as paused:
        yield paused
    assert paused.errors == []


@pytest.mark.usefixtures("running")
def test_a_second_sync_of_the_same_audience_is_refused_while_the_first_runs(
    client: gs.Client, state: Path
) -> None:
    refused = "another sync of 'vip_customers' is running"
    with (
        AudienceSync(client, "VIP customers", state=state) as second,
        pytest.raises(gs.GainsightError, match=refused),
    ):
        second.sync(["u1", "u2", "u3"])


def test_a_refused_sync_sends_nothing(
    client: gs.Client, state: Path, collector: LocalCollector, running: Paused
) -> None:
    with AudienceSync(client, KEY, state=state) as second, pytest.raises(gs.GainsightError):
        second.sync(["u3"])
    assert collector.requests == []


def test_the_refusal_is_a_concurrent_sync_error_naming_the_key_and_the_holder(
    client: gs.Client, state: Path, running: Paused
) -> None:
    with (
        AudienceSync(client, KEY, state=state) as second,
        pytest.raises(ConcurrentSyncError) as refused,
    ):
        second.sync(["u1"])
    assert refused.value.key == KEY
    assert refused.value.holder == f"process {os.getpid()} on {socket.gethostname()}"
    assert refused.value.holder in str(refused.value)


@pytest.mark.usefixtures("running")
def test_a_sync_of_another_audience_on_the_same_file_runs_meanwhile(
    client: gs.Client, state: Path
) -> None:
    with AudienceSync(client, "Churn risk", state=state) as other:
        assert other.sync(["u1"]).added == 1


@pytest.mark.usefixtures("running")
def test_a_trait_sync_of_the_same_key_is_refused_too(client: gs.Client, state: Path) -> None:
    with TraitSync(client, KEY, state=state) as trait, pytest.raises(ConcurrentSyncError):
        trait.sync([("u1", 1)])


@pytest.mark.usefixtures("running")
def test_a_preview_is_not_refused(client: gs.Client, state: Path) -> None:
    with AudienceSync(client, KEY, state=state) as second:
        assert second.preview(["u1", "u2", "u3"]).added == 3


def test_the_lease_is_released_when_a_sync_ends(client: gs.Client, state: Path) -> None:
    with AudienceSync(client, KEY, state=state) as audience:
        audience.sync(["u1"])
    assert leases(state) == []


@pytest.mark.parametrize(
    "error", [KeyboardInterrupt(), gs.InvalidMessageError("members[1]: bad")], ids=repr
)
def test_the_lease_is_released_when_a_sync_fails(
    client: gs.Client, state: Path, error: BaseException
) -> None:
    def members() -> Iterator[str]:
        yield "u1"
        raise error

    with AudienceSync(client, KEY, state=state) as audience:
        with pytest.raises(type(error)):
            audience.sync(members())
        assert audience.sync(["u1"]).added == 1
    assert leases(state) == []


def test_the_lapsed_lease_of_a_crashed_sync_does_not_block_the_next(
    client: gs.Client, state: Path
) -> None:
    SQLiteStore(state).close()
    hold_lease(state, KEY, expires=time.time() - 1)
    with AudienceSync(client, KEY, state=state) as audience:
        assert audience.sync(["u1"]).added == 1


def test_a_lease_renewed_in_time_blocks_and_says_when_it_would_lapse(
    client: gs.Client, state: Path
) -> None:
    SQLiteStore(state).close()
    hold_lease(state, KEY, expires=time.time() + 25)
    with (
        AudienceSync(client, KEY, state=state) as audience,
        pytest.raises(
            ConcurrentSyncError, match=r"\(process 1 on elsewhere\).*lapses within 2[45] s"
        ),
    ):
        audience.sync(["u1"])


HOLDER = """
import sys
import gainsight_segment as gs
from gainsight_segment.sync import AudienceSync

endpoint, state, key = sys.argv[1:4]


def wait_for_the_test(progress):
    if progress.phase == "sending" and progress.done == 0:
        print("holding", flush=True)
        sys.stdin.readline()


client = gs.Client(key, endpoint=endpoint, sync_mode=True, exit_timeout=0)
with AudienceSync(client, "vip_customers", state=state) as audience:
    audience.sync(["u1"], progress=wait_for_the_test)
"""


def test_a_sync_in_another_process_blocks_until_it_ends(
    client: gs.Client, state: Path, collector: LocalCollector
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, collector.endpoint, str(state), ACCESS_KEY],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == "holding\n"
        with AudienceSync(client, KEY, state=state) as audience:
            with pytest.raises(ConcurrentSyncError, match=f"process {holder.pid} on"):
                audience.sync(["u1", "u2"])
            holder.communicate("go\n", timeout=60)
            assert holder.returncode == 0
            assert audience.sync(["u1", "u2"]).added == 1
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.communicate()


# The lease itself ---------------------------------------------------------------------------


def test_a_held_lease_is_renewed_in_the_background(
    state: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    renewed = threading.Event()
    real = SQLiteLease.renew

    def renew(self: SQLiteLease, db: sqlite3.Connection) -> bool:
        result = real(self, db)
        renewed.set()
        return result

    monkeypatch.setattr(SQLiteLease, "renew", renew)
    with SQLiteStore(state, lease_timeout=0.3) as store, store.lease(KEY):
        [(_, first)] = expiries(state)
        assert renewed.wait(10)
        [(_, later)] = expiries(state)
    assert later > first


def test_a_lease_taken_by_another_sync_meanwhile_is_lost(state: Path) -> None:
    with SQLiteStore(state, lease_timeout=0.3) as store, store.lease(KEY) as lease:
        hold_lease(state, KEY, expires=time.time() + 60, owner="thief")
        assert isinstance(lease, SQLiteLease)
        assert lease.lost.wait(10)
        with pytest.raises(ConcurrentSyncError, match="lost to another sync"):
            lease.check()


class LosingStore(MemoryStore):
    """A store whose lease is lost once the first batch is sent."""

    @contextlib.contextmanager
    def lease(self, key: str) -> Iterator[Any]:  # type: ignore[override]
        checks = iter([None])

        class Lease:
            def check(self) -> None:
                if next(checks, "lost") == "lost":
                    raise ConcurrentSyncError("lost", key=key, holder="another sync")

        yield Lease()


def test_a_sync_that_lost_its_lease_stops_before_its_next_batch(client: gs.Client) -> None:
    store = LosingStore()
    audience = AudienceSync(client, KEY, state=store, batch_size=2)
    with pytest.raises(ConcurrentSyncError):
        audience.sync(["u1", "u2", "u3", "u4"])
    assert [user for user, _ in store.items(KEY)] == ["u1", "u2"]


def test_a_store_without_a_lease_still_syncs(client: gs.Client) -> None:
    class Unleased(MemoryStore):
        lease = None  # type: ignore[assignment]

    assert AudienceSync(client, KEY, state=Unleased()).sync(["u1"]).added == 1


def test_a_memory_store_leases_each_key_once(client: gs.Client) -> None:
    store = MemoryStore()
    with store.lease(KEY), store.lease("other"):
        refused = pytest.raises(ConcurrentSyncError, match="this process")
        with refused:
            AudienceSync(client, KEY, state=store).sync(["u1"])
    assert AudienceSync(client, KEY, state=store).sync(["u1"]).added == 1


def test_a_private_sqlite_store_never_refuses(client: gs.Client) -> None:
    with SQLiteStore(":memory:") as store, store.lease(KEY):
        assert AudienceSync(client, KEY, state=store).sync(["u1"]).added == 1


# Reading and writing the lease table, as another process would ------------------------------


def leases(state: Path) -> list[tuple[str, str]]:
    with contextlib.closing(sqlite3.connect(state)) as db:
        return list(db.execute("SELECT key, holder FROM gainsight_sync_lease"))


def expiries(state: Path) -> list[tuple[str, float]]:
    with contextlib.closing(sqlite3.connect(state)) as db:
        return list(db.execute("SELECT key, expires FROM gainsight_sync_lease"))


def hold_lease(state: Path, key: str, *, expires: float, owner: str = "other") -> None:
    with contextlib.closing(sqlite3.connect(state)) as db, db:
        db.execute(
            "INSERT OR REPLACE INTO gainsight_sync_lease (key, owner, holder, expires) "
            "VALUES (?, ?, 'process 1 on elsewhere', ?)",
            (key, owner, expires),
        )
