"""Audience and computed-trait syncs: diffs, confirmation, resumption, progress."""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys
import textwrap
import tracemalloc
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable
from uuid import UUID

import pytest

import gainsight_segment as gs
from gainsight_segment.sync import (
    AudienceSync,
    MemoryStore,
    SQLiteStore,
    StateChange,
    StateStore,
    SyncProgress,
    SyncResult,
    TraitSync,
    _rows,
)
from gainsight_segment.testing import Faults, LocalCollector

from .conftest import ACCESS_KEY, ClientFactory

ROOT = Path(__file__).resolve().parents[1]


class Color(Enum):
    RED = "red"


class Sizes(Enum):
    SMALL = frozenset({"xs", "s"})


KEY = "vip_customers"


def received(collector: LocalCollector) -> dict[str, Any]:
    """The audience or trait value each user was sent, by user id."""
    sent: dict[str, Any] = {}
    for message in collector.messages:
        assert message["type"] == "identify"
        ((_, value),) = message["traits"].items()
        assert message["userId"] not in sent, "a user was sent two changes in one sync"
        sent[message["userId"]] = value
    return sent


def users(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{i}" for i in range(count)]


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state.sqlite3"


@pytest.fixture
def client(make_client: ClientFactory) -> gs.Client:
    """A sync-mode client aimed at the collector; one request at a time, so faults scripted
    by order hit known changes."""
    return make_client(sync_mode=True, workers=1)


@pytest.fixture
def audience(client: gs.Client, state: Path) -> Iterator[AudienceSync]:
    with AudienceSync(client, "VIP customers", state=state) as sync:
        yield sync


# --- audience syncs -----------------------------------------------------------------------


def test_first_sync_sends_true_to_every_member(
    audience: AudienceSync, collector: LocalCollector
) -> None:
    audience.sync(["u1", "u2", "u3"])
    assert received(collector) == {"u1": True, "u2": True, "u3": True}


def test_first_sync_counts_every_member_as_added(audience: AudienceSync) -> None:
    assert audience.sync(["u1", "u2", "u3"]) == SyncResult(added=3)


def test_sync_sends_the_audience_key_as_an_identify_trait(
    audience: AudienceSync, collector: LocalCollector
) -> None:
    audience.sync(["u1"])
    (message,) = collector.messages
    assert (message["type"], message["userId"], message["traits"]) == (
        "identify",
        "u1",
        {"vip_customers": True},
    )


@pytest.mark.parametrize(
    "make_store",
    [pytest.param(SQLiteStore, id="sqlite"), pytest.param(lambda _: MemoryStore(), id="memory")],
)
def test_later_sync_sends_only_joins_and_leaves(
    client: gs.Client,
    collector: LocalCollector,
    state: Path,
    make_store: Callable[[Path], StateStore],
) -> None:
    audience = AudienceSync(client, KEY, state=make_store(state))
    audience.sync(["u1", "u2", "u3"])
    collector.clear()
    result = audience.sync(["u2", "u3", "u4"])
    assert received(collector) == {"u1": False, "u4": True}
    assert result == SyncResult(added=1, removed=1, unchanged=2)


def test_same_sync_twice_sends_nothing_the_second_time(
    audience: AudienceSync, collector: LocalCollector
) -> None:
    audience.sync(["u1", "u2"])
    collector.clear()
    result = audience.sync(["u2", "u1"])
    assert collector.requests == []
    assert result == SyncResult(unchanged=2)


def test_duplicate_members_are_sent_once(audience: AudienceSync, collector: LocalCollector) -> None:
    result = audience.sync(["u1", "u1", "u2", "u1"])
    assert len(collector.messages) == 2
    assert result.added == 2


@pytest.mark.parametrize(
    ("member", "sent"),
    [
        pytest.param(7, "7", id="int"),
        pytest.param(2.5, "2.5", id="float"),
        pytest.param(UUID(int=1), "00000000-0000-0000-0000-000000000001", id="uuid"),
        pytest.param(" u1", " u1", id="string-with-leading-space"),
    ],
)
def test_member_ids_are_sent_as_the_client_sends_user_ids(
    audience: AudienceSync, collector: LocalCollector, member: Any, sent: str
) -> None:
    audience.sync([member])
    assert received(collector) == {sent: True}


@pytest.mark.parametrize(
    ("member", "error"),
    [
        pytest.param(None, r"members\[0\]: a user id is required, got None", id="none"),
        pytest.param("", r"members\[0\]: must not be empty", id="empty"),
        pytest.param("  ", r"members\[0\]: must not be empty", id="blank"),
        pytest.param(True, r"members\[0\]: must be a string, number or UUID, got bool", id="bool"),
        pytest.param(math.nan, r"members\[0\]: must be a finite number", id="nan"),
        pytest.param(
            10**5000,
            r"members\[0\]: integer has too many digits",
            id="huge-int",
            marks=pytest.mark.skipif(
                not hasattr(sys, "get_int_max_str_digits"), reason="no digit limit before 3.11"
            ),
        ),
    ],
)
def test_a_member_the_client_would_refuse_as_a_user_id_is_refused_naming_it(
    audience: AudienceSync, member: Any, error: str
) -> None:
    with pytest.raises(gs.InvalidMessageError, match=f"^{error}$"):
        audience.sync([member])


def test_empty_audience_removes_every_member(
    audience: AudienceSync, collector: LocalCollector
) -> None:
    audience.sync(["u1", "u2"])
    collector.clear()
    assert audience.sync([]) == SyncResult(removed=2)
    assert received(collector) == {"u1": False, "u2": False}


def test_audiences_sharing_a_state_file_are_independent(
    client: gs.Client, collector: LocalCollector, state: Path
) -> None:
    with AudienceSync(client, "VIP", state=state) as vip:
        vip.sync(["u1"])
    with AudienceSync(client, "Churn risk", state=state) as churn:
        churn.sync(["u1"])
    assert [m["traits"] for m in collector.messages] == [{"vip": True}, {"churn_risk": True}]


def test_sync_delivers_all_changes_with_concurrent_requests(
    make_client: ClientFactory, collector: LocalCollector, state: Path
) -> None:
    client = make_client(sync_mode=True, workers=4)
    with AudienceSync(client, KEY, state=state, batch_size=7) as audience:
        result = audience.sync(users("u", 50))
    assert result == SyncResult(added=50)
    assert received(collector) == dict.fromkeys(users("u", 50), True)


# --- failures and resumption ---------------------------------------------------------------


def test_failed_changes_are_counted_and_not_recorded(
    audience: AudienceSync, collector: LocalCollector
) -> None:
    collector.faults = Faults(statuses=(400, 400))
    result = audience.sync(users("u", 5))
    assert (result.added, result.failed) == (3, 2)
    assert isinstance(result.error, gs.DeliveryError)
    assert result.error.status == 400
    assert audience.preview(users("u", 5)) == SyncResult(added=2, unchanged=3)


def test_resumed_sync_sends_exactly_the_unconfirmed_changes(
    audience: AudienceSync, collector: LocalCollector
) -> None:
    audience.sync(users("old", 10))
    collector.clear()
    # Five of old0..old9 leave and five new users join: ten changes, four of them refused.
    members = users("old", 5) + users("new", 5)
    collector.faults = Faults(statuses=(400, 201, 400, 200, 400, 200, 200, 400))
    first = audience.sync(members)
    delivered = received(collector)
    expected = {**{f"old{i}": False for i in range(5, 10)}, **{f"new{i}": True for i in range(5)}}
    collector.clear()
    resumed = audience.sync(members)
    assert first.failed == 4
    assert received(collector) == {u: v for u, v in expected.items() if u not in delivered}
    assert resumed.failed == 0


def test_sync_interrupted_midway_resumes_where_it_stopped(
    make_client: ClientFactory, collector: LocalCollector, state: Path
) -> None:
    class Interrupted(Exception):
        pass

    def stop_after_first_batch(progress: SyncProgress) -> None:
        if progress.phase == "sending" and progress.done >= 4:
            raise Interrupted

    client = make_client(sync_mode=True, workers=1)
    with AudienceSync(client, KEY, state=state, batch_size=4) as audience:
        with pytest.raises(Interrupted):
            audience.sync(users("u", 10), progress=stop_after_first_batch)
        first = set(received(collector))
        collector.clear()
        audience.sync(users("u", 10))
    assert len(first) == 4
    assert set(received(collector)) == set(users("u", 10)) - first


def test_interrupted_sync_in_a_new_process_sends_only_the_rest(
    client: gs.Client, collector: LocalCollector, state: Path
) -> None:
    # The first change fails its attempt and its three retries; the others get through.
    collector.faults = Faults(statuses=(503,) * 4)
    with AudienceSync(client, KEY, state=state) as audience:
        audience.sync(users("u", 6))
    delivered = set(received(collector))
    collector.clear()
    script = textwrap.dedent(
        """
        import json, sys
        import gainsight_segment as gs
        from gainsight_segment.sync import AudienceSync

        endpoint, state, key = sys.argv[1:4]
        client = gs.Client(key, endpoint=endpoint, sync_mode=True, exit_timeout=0)
        with AudienceSync(client, "vip_customers", state=state) as audience:
            result = audience.sync(f"u{i}" for i in range(6))
        print(json.dumps([result.added, result.removed, result.unchanged, result.failed]))
        """
    )
    output = subprocess.run(
        [sys.executable, "-c", script, collector.endpoint, str(state), ACCESS_KEY],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert len(delivered) == 5
    assert json.loads(output) == [1, 0, 5, 0]
    assert set(received(collector)) == set(users("u", 6)) - delivered


def test_state_file_reopened_by_another_process_sends_nothing_for_a_repeat(
    client: gs.Client, collector: LocalCollector, state: Path
) -> None:
    with AudienceSync(client, KEY, state=state) as audience:
        audience.sync(users("u", 20))
    collector.clear()
    script = textwrap.dedent(
        """
        import sys
        import gainsight_segment as gs
        from gainsight_segment.sync import AudienceSync

        endpoint, state, key = sys.argv[1:4]
        client = gs.Client(key, endpoint=endpoint, sync_mode=True, exit_timeout=0)
        with AudienceSync(client, "VIP customers", state=state) as audience:
            print(audience.sync(f"u{i}" for i in range(20)).unchanged)
        """
    )
    output = subprocess.run(
        [sys.executable, "-c", script, collector.endpoint, str(state), ACCESS_KEY],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert output.strip() == "20"
    assert collector.requests == []


def test_a_failed_leave_is_sent_again_by_the_next_sync(
    audience: AudienceSync, collector: LocalCollector
) -> None:
    audience.sync(["u1", "u2"])
    collector.faults = Faults(statuses=(400,))
    audience.sync(["u2"])
    collector.clear()
    audience.sync(["u2"])
    assert received(collector) == {"u1": False}


# --- large audiences -----------------------------------------------------------------------


@pytest.mark.long
def test_generator_of_200_000_members_is_diffed_without_holding_it_in_memory(
    audience: AudienceSync, collector: LocalCollector
) -> None:
    count = 200_000
    seed = (StateChange(f"user-{i}", "true", None) for i in range(count))
    for batch in iter(lambda: list(itertools.islice(seed, 10_000)), []):
        audience.store.confirm(KEY, batch)
    # Users 0-4 leave, five new users join, everyone else stays.
    members = (f"user-{i}" for i in range(5, count + 5))
    tracemalloc.start()
    try:
        result = audience.sync(members)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert result == SyncResult(added=5, removed=5, unchanged=count - 5)
    assert len(collector.messages) == 10
    # A set of 200,000 ids alone would take well over 10 MB.
    assert peak < 5_000_000


# --- what a sync refuses -------------------------------------------------------------------


def test_asynchronous_client_is_refused_before_members_are_read(
    make_client: ClientFactory, state: Path
) -> None:
    read: list[str] = []

    def members() -> Iterator[str]:
        read.append("started")
        yield "u1"

    audience = AudienceSync(make_client(), KEY, state=state)
    with pytest.raises(ValueError, match="sync_mode=True"):
        audience.sync(members())
    assert read == []


def test_dry_run_client_is_refused_by_sync(make_client: ClientFactory, state: Path) -> None:
    audience = AudienceSync(make_client(send=False), KEY, state=state)
    with pytest.raises(gs.ConfigurationError, match="preview"):
        audience.sync(["u1"])


def test_invalid_member_raises_before_anything_is_sent(
    audience: AudienceSync, collector: LocalCollector
) -> None:
    with pytest.raises(gs.InvalidMessageError, match=r"members\[1\]"):
        audience.sync(["u1", None, "u3"])  # type: ignore[list-item]
    assert collector.requests == []


def test_invalid_member_leaves_the_state_as_it_was(
    audience: AudienceSync, collector: LocalCollector
) -> None:
    audience.sync(["u1"])
    with pytest.raises(gs.InvalidMessageError):
        audience.sync(["u2", ""])
    assert audience.preview(["u1"]) == SyncResult(unchanged=1)


def test_concurrency_above_the_clients_workers_is_a_configuration_error(
    make_client: ClientFactory, state: Path
) -> None:
    with pytest.raises(gs.ConfigurationError, match="workers=8"):
        AudienceSync(make_client(sync_mode=True, workers=4), KEY, state=state, concurrency=8)


def test_preview_counts_changes_and_sends_nothing(
    audience: AudienceSync, collector: LocalCollector
) -> None:
    audience.sync(["u1", "u2"])
    collector.clear()
    result = audience.preview(["u2", "u3", "u4"])
    assert result == SyncResult(added=2, removed=1, unchanged=1)
    assert collector.requests == []


def test_preview_records_nothing(audience: AudienceSync) -> None:
    audience.preview(["u1"])
    assert audience.preview(["u1"]).added == 1


def test_progress_reports_reading_then_sending(audience: AudienceSync) -> None:
    seen: list[SyncProgress] = []
    audience.sync(["u1", "u2"], progress=seen.append)
    assert seen == [
        SyncProgress("reading", 2, 2),
        SyncProgress("sending", 0, 2),
        SyncProgress("sending", 2, 2),
    ]


def test_state_given_as_a_store_is_not_closed_by_the_sync(client: gs.Client, state: Path) -> None:
    with SQLiteStore(state) as store:
        with AudienceSync(client, KEY, state=store) as audience:
            audience.sync(["u1"])
        assert list(store.items(KEY)) == [("u1", "true")]


# --- computed traits -------------------------------------------------------------------------


@pytest.fixture
def ltv(client: gs.Client, state: Path) -> Iterator[TraitSync]:
    with TraitSync(client, "Lifetime Value", state=state) as sync:
        yield sync


def test_trait_first_sync_sends_every_value(ltv: TraitSync, collector: LocalCollector) -> None:
    result = ltv.sync([("u1", 120.5), ("u2", {"tier": "gold", "seats": [1, 2]})])
    assert received(collector) == {"u1": 120.5, "u2": {"tier": "gold", "seats": [1, 2]}}
    assert result == SyncResult(added=2)


def test_trait_sync_sends_only_changed_values(ltv: TraitSync, collector: LocalCollector) -> None:
    ltv.sync([("u1", 100), ("u2", 200), ("u3", 300)])
    collector.clear()
    result = ltv.sync([("u1", 100), ("u2", 250), ("u3", 300)])
    assert received(collector) == {"u2": 250}
    assert result == SyncResult(changed=1, unchanged=2)


def test_trait_values_equal_up_to_key_order_are_not_sent_again(
    ltv: TraitSync, collector: LocalCollector
) -> None:
    ltv.sync({"u1": {"a": 1, "b": {"c": 2, "d": 3}}, "u2": {"x", "y", "z"}})
    collector.clear()
    ltv.sync({"u1": {"b": {"d": 3, "c": 2}, "a": 1}, "u2": {"z", "y", "x"}})
    assert collector.requests == []


def test_trait_sync_sends_null_to_users_missing_from_a_complete_snapshot(
    ltv: TraitSync, collector: LocalCollector
) -> None:
    ltv.sync([("u1", 1), ("u2", 2)])
    collector.clear()
    result = ltv.sync([("u1", 1)])
    assert received(collector) == {"u2": None}
    assert result.removed == 1


def test_partial_trait_sync_leaves_missing_users_alone(
    ltv: TraitSync, collector: LocalCollector
) -> None:
    ltv.sync([("u1", 1), ("u2", 2)])
    collector.clear()
    ltv.sync([("u2", 3)], partial=True)
    assert received(collector) == {"u2": 3}


def test_trait_sync_last_value_of_a_repeated_user_wins(
    ltv: TraitSync, collector: LocalCollector
) -> None:
    ltv.sync([("u1", 1), ("u1", 2)])
    assert received(collector) == {"u1": 2}


def test_trait_value_that_is_not_json_raises_naming_the_entry(ltv: TraitSync) -> None:
    with pytest.raises(gs.InvalidMessageError, match=r"values\[1\].*lifetime_value.*NaN"):
        ltv.sync([("u1", 1), ("u2", float("nan"))])


@pytest.mark.parametrize(
    ("entry", "what"),
    [
        pytest.param("u1", "a string", id="string"),
        pytest.param(5, "int", id="int"),
        pytest.param(("u1", 1, 2), "tuple", id="triple"),
    ],
)
def test_trait_entry_that_is_not_a_pair_raises(ltv: TraitSync, entry: Any, what: str) -> None:
    with pytest.raises(
        gs.InvalidMessageError,
        match=rf"values\[0\]: expected a \(user_id, value\) pair, got {what}$",
    ):
        ltv.sync([entry])


def test_trait_value_too_large_to_send_counts_as_failed(
    ltv: TraitSync, collector: LocalCollector
) -> None:
    result = ltv.sync([("u1", "x" * 40_000), ("u2", 2)])
    assert (result.added, result.failed) == (1, 1)
    assert isinstance(result.error, gs.InvalidMessageError)
    assert received(collector) == {"u2": 2}


def test_sync_result_sent_counts_the_delivered_changes() -> None:
    result = SyncResult(added=1, removed=2, unchanged=9, failed=4, changed=3)
    assert (result.sent, result.ok) == (6, False)


@pytest.mark.parametrize(
    ("make", "snapshot"),
    [
        pytest.param(AudienceSync, users("u", 5), id="audience"),
        pytest.param(TraitSync, [(user, 1) for user in users("u", 5)], id="trait"),
    ],
)
def test_progress_reports_reading_now_and_then_while_the_snapshot_is_read(
    client: gs.Client,
    monkeypatch: pytest.MonkeyPatch,
    make: Callable[..., AudienceSync | TraitSync],
    snapshot: list[Any],
) -> None:
    monkeypatch.setattr(_rows, "PROGRESS_EVERY", 2)
    seen: list[SyncProgress] = []
    make(client, KEY, state=MemoryStore()).sync(snapshot, progress=seen.append)
    assert [p for p in seen if p.phase == "reading"] == [
        SyncProgress("reading", 2),
        SyncProgress("reading", 4),
        SyncProgress("reading", 5, 5),
    ]


@pytest.mark.parametrize(
    ("value", "sent"),
    [
        pytest.param(date(2024, 1, 2), "2024-01-02T00:00:00.000Z", id="date"),
        pytest.param(
            datetime(2024, 1, 2, 3, 4, 5, tzinfo=timezone.utc),
            "2024-01-02T03:04:05.000Z",
            id="datetime",
        ),
        pytest.param(Decimal("12.5"), 12.5, id="decimal"),
        pytest.param(UUID(int=1), "00000000-0000-0000-0000-000000000001", id="uuid"),
        pytest.param(Color.RED, "red", id="enum"),
        pytest.param(MappingProxyType({"b": 2, "a": 1}), {"a": 1, "b": 2}, id="mapping"),
        pytest.param(frozenset({3, 1, 2}), [1, 2, 3], id="set"),
        pytest.param(Sizes.SMALL, ["s", "xs"], id="enum-of-a-set"),
        pytest.param(MappingProxyType({"k": {2, 1}}), {"k": [1, 2]}, id="set-in-a-mapping"),
    ],
)
def test_trait_values_are_converted_as_the_client_converts_them(
    ltv: TraitSync, collector: LocalCollector, value: Any, sent: Any
) -> None:
    ltv.sync([("u1", value)])
    assert received(collector) == {"u1": sent}


def test_trait_value_with_unsortable_keys_raises_naming_the_entry(ltv: TraitSync) -> None:
    with pytest.raises(
        gs.InvalidMessageError, match=r"values\[0\]: traits\.lifetime_value: '<' not supported"
    ):
        ltv.sync([("u1", {1: "a", "b": 2})])


def test_trait_preview_counts_changes_and_sends_nothing(
    ltv: TraitSync, collector: LocalCollector
) -> None:
    ltv.sync([("u1", 1), ("u2", 2)])
    collector.clear()
    result = ltv.preview([("u1", 10), ("u3", 3)])
    assert result == SyncResult(added=1, removed=1, changed=1)
    assert collector.requests == []


@pytest.mark.parametrize("make", [AudienceSync, TraitSync])
def test_repr_shows_the_key_and_the_store(
    client: gs.Client, make: Callable[..., AudienceSync | TraitSync]
) -> None:
    sync = make(client, "VIP customers", state=MemoryStore())
    assert repr(sync) == f"<{make.__name__} 'vip_customers' store=<MemoryStore keys=[]>>"


@pytest.mark.parametrize("setting", ["concurrency", "batch_size"])
@pytest.mark.parametrize("value", [0, -1, True, 1.5, "2"])
def test_settings_that_are_not_positive_integers_are_configuration_errors(
    client: gs.Client, setting: str, value: Any
) -> None:
    with pytest.raises(gs.ConfigurationError, match=rf"^{setting}: must be an integer >= 1"):
        AudienceSync(client, KEY, state=MemoryStore(), **{setting: value})


def test_a_receipt_other_than_sent_is_not_taken_as_a_confirmation() -> None:
    class QueueingClient(gs.Client):
        def identify(self, *args: Any, **kwargs: Any) -> gs.Receipt:
            return gs.Receipt("m-1", gs.Outcome.QUEUED)

    client = QueueingClient(ACCESS_KEY, sync_mode=True, exit_timeout=0)
    audience = AudienceSync(client, KEY, state=MemoryStore())
    result = audience.sync(["u1"])
    assert (result.added, result.failed) == (0, 1)
    assert str(result.error) == "delivery not confirmed (outcome queued)"
    assert audience.preview(["u1"]).added == 1
