"""RecordingClient: records what a real client would send, validated the same way."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from typing import Any

import pytest

import gainsight_segment as gs
from gainsight_segment.testing import DEMO_ACCESS_KEY, RecordingClient

ACCOUNT = "o283h08fh2390f923uofu23"
FROZEN = gs.MessageBuilder(
    clock=lambda: datetime(2014, 5, 5, 8, tzinfo=timezone.utc), new_id=lambda: "fixed-id"
)
LIBRARY = {"name": "gainsight-segment", "version": gs.__version__}

Call = Callable[[gs.Client], gs.Receipt]


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        pytest.param(
            lambda c: c.identify("123", {"accountId": ACCOUNT, "name": "Miles Morales"}),
            {"type": "identify", "traits": {"accountId": ACCOUNT, "name": "Miles Morales"}},
            id="identify",
        ),
        pytest.param(
            lambda c: c.track("123", "Account Created", {"accountId": ACCOUNT}),
            {"type": "track", "event": "Account Created", "properties": {"accountId": ACCOUNT}},
            id="track",
        ),
        pytest.param(
            lambda c: c.group("123", "555", {"name": "Twitter"}),
            {"type": "group", "groupId": "555", "traits": {"name": "Twitter"}},
            id="group",
        ),
    ],
)
def test_records_each_call_as_the_message_it_would_send(
    call: Call, expected: dict[str, Any]
) -> None:
    client = RecordingClient(builder=FROZEN)
    call(client)
    assert client.messages == [
        {
            **expected,
            "userId": "123",
            "context": {"library": LIBRARY},
            "integrations": {},
            "messageId": "fixed-id",
            "timestamp": "2014-05-05T08:00:00.000Z",
            "channel": "server",
        }
    ]


def test_recorded_messages_have_no_sent_at() -> None:
    client = RecordingClient()
    client.identify("123")
    assert "sentAt" not in client.messages[0]


def test_receipt_says_sent_as_if_delivered() -> None:
    receipt = RecordingClient().track("123", "Account Created", message_id="my-id")
    assert (receipt.message_id, receipt.outcome, receipt.error) == ("my-id", gs.Outcome.SENT, None)


def test_messages_are_recorded_in_call_order() -> None:
    client = RecordingClient()
    client.group("1", "555")
    client.identify("1")
    client.track("1", "Signed Up")
    assert [m["type"] for m in client.messages] == ["group", "identify", "track"]


INVALID_CALLS = [
    pytest.param(lambda c: c.identify(None), "userId", id="no-user-id"),
    pytest.param(lambda c: c.track("1", ""), "event", id="empty-event"),
    pytest.param(lambda c: c.group("1", None), "groupId", id="no-group-id"),
    pytest.param(
        lambda c: c.track("1", "Bought", {"price": math.nan}), "properties.price", id="nan"
    ),
    pytest.param(lambda c: c.identify("1", {"when": object()}), "traits.when", id="not-json"),
]


@pytest.mark.parametrize(("call", "field"), INVALID_CALLS)
def test_invalid_calls_raise_exactly_what_client_raises(call: Call, field: str) -> None:
    with pytest.raises(gs.InvalidMessageError) as real:
        call(gs.Client(DEMO_ACCESS_KEY, send=False))
    with pytest.raises(gs.InvalidMessageError) as recorded:
        call(RecordingClient())
    assert str(recorded.value) == str(real.value)
    assert str(recorded.value).startswith(field)


@pytest.mark.parametrize(("call", "field"), INVALID_CALLS)
def test_invalid_calls_record_nothing(call: Call, field: str) -> None:
    client = RecordingClient()
    with pytest.raises(gs.InvalidMessageError):
        call(client)
    assert (client.messages, client.stats().queued) == ([], 0)


def test_track_skipped_by_the_whitelist_is_filtered_and_not_recorded() -> None:
    client = RecordingClient(track_whitelist=["Account Created"])
    receipt = client.track("1", "Page Scrolled")
    assert receipt.outcome is gs.Outcome.FILTERED
    assert client.messages == []


def test_whitelist_matches_as_the_client_does() -> None:
    client = RecordingClient(track_whitelist=["Account Created"])
    client.track("1", "account_created")
    assert [m["event"] for m in client.tracks()] == ["account_created"]


def test_whitelist_never_filters_identify_and_group() -> None:
    client = RecordingClient(track_whitelist=["Account Created"])
    client.identify("1")
    client.group("1", "555")
    assert len(client.messages) == 2


def test_stats_count_recorded_messages_as_queued_and_delivered() -> None:
    client = RecordingClient(track_whitelist=["Account Created"])
    client.identify("1")
    client.track("1", "Account Created")
    client.track("1", "Page Scrolled")
    client.group("1", "555")
    assert client.stats() == gs.Stats(queued=3, delivered=3, filtered=1)


def test_stats_reconcile() -> None:
    client = RecordingClient()
    for index in range(5):
        client.track(str(index), "Signed Up")
    s = client.stats()
    assert s.queued == s.delivered + s.failed + s.dropped + s.pending + s.in_flight


def test_stats_reconcile_while_a_message_is_being_recorded() -> None:
    seen: list[gs.Stats] = []
    client = RecordingClient(on_success=lambda message: seen.append(client.stats()))
    client.identify("1")
    [during] = seen
    # Being sent, synchronously, to the recording transport.
    assert (during.queued, during.delivered, during.in_flight) == (1, 0, 1)


def test_on_success_receives_each_recorded_message() -> None:
    seen: list[dict[str, Any]] = []
    client = RecordingClient(on_success=seen.append)
    client.identify("1", {"name": "Miles"})
    assert seen == client.messages


@pytest.mark.parametrize(
    ("select", "expected"),
    [
        pytest.param(lambda c: c.identifies(), [("identify", None)], id="identifies"),
        pytest.param(
            lambda c: c.tracks(), [("track", "Signed Up"), ("track", "Logged In")], id="tracks"
        ),
        pytest.param(lambda c: c.tracks("Logged In"), [("track", "Logged In")], id="by-event"),
        pytest.param(lambda c: c.tracks("logged in"), [], id="event-is-exact"),
        pytest.param(lambda c: c.groups(), [("group", None)], id="groups"),
    ],
)
def test_helpers_select_messages_by_type(
    select: Callable[[RecordingClient], list[dict[str, Any]]],
    expected: list[tuple[str, str | None]],
) -> None:
    client = RecordingClient()
    client.track("1", "Signed Up")
    client.identify("1")
    client.group("1", "555")
    client.track("1", "Logged In")
    assert [(m["type"], m.get("event")) for m in select(client)] == expected


def test_clear_forgets_messages_but_not_the_counters() -> None:
    client = RecordingClient()
    client.identify("1")
    client.clear()
    client.group("1", "555")
    assert [m["type"] for m in client.messages] == ["group"]
    assert client.stats().delivered == 2


def test_messages_are_copies() -> None:
    client = RecordingClient()
    client.identify("1", {"name": "Miles"})
    client.messages[0]["traits"]["name"] = "changed"
    assert client.messages[0]["traits"]["name"] == "Miles"


def test_later_changes_to_the_callers_dicts_change_nothing_recorded() -> None:
    client = RecordingClient()
    traits = {"name": "Miles"}
    client.identify("1", traits)
    traits["name"] = "changed"
    assert client.identifies()[0]["traits"] == {"name": "Miles"}


def test_access_key_defaults_to_the_demo_key() -> None:
    assert RecordingClient().settings.access_key.secret == DEMO_ACCESS_KEY


def test_bad_access_key_raises_configuration_error() -> None:
    with pytest.raises(gs.ConfigurationError, match="36 characters"):
        RecordingClient("short")


def test_bad_endpoint_raises_configuration_error() -> None:
    with pytest.raises(gs.ConfigurationError, match="https"):
        RecordingClient(endpoint="http://event.gainsight.com")


def test_repr_does_not_show_the_key() -> None:
    key = "35a84f9e-7084-47a1-b8a5-593444e9e862"
    assert key not in repr(RecordingClient(key))


def test_starts_no_threads() -> None:
    before = set(threading.enumerate())
    client = RecordingClient()
    for index in range(20):
        client.track(str(index), "Signed Up")
    assert set(threading.enumerate()) - before == set()


def test_calls_after_shutdown_raise_and_recorded_messages_stay_readable() -> None:
    client = RecordingClient()
    client.identify("1")
    assert client.shutdown() is True
    with pytest.raises(gs.ClientClosedError):
        client.identify("2")
    assert len(client.messages) == 1


def test_flush_returns_at_once_with_true() -> None:
    assert RecordingClient().flush(timeout=0) is True


def test_records_calls_from_many_threads() -> None:
    client = RecordingClient()

    def send(worker: int) -> None:
        for index in range(100):
            client.track(f"{worker}-{index}", "Signed Up")

    threads = [threading.Thread(target=send, args=(worker,)) for worker in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({m["userId"] for m in client.messages}) == 400
    assert client.stats().delivered == 400


def test_is_a_client() -> None:
    assert isinstance(RecordingClient(), gs.Client)
