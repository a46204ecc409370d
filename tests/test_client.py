"""The Client: its calls, receipts, modes, whitelist, closing and key secrecy."""

from __future__ import annotations

import logging
from datetime import datetime, timezone
from typing import Any

import pytest

import gainsight_segment as gs
from gainsight_segment.testing import Faults, LocalCollector

from .conftest import ACCESS_KEY, ClientFactory

ACCOUNT = "o283h08fh2390f923uofu23"
FROZEN = gs.MessageBuilder(
    clock=lambda: datetime(2014, 5, 5, 8, tzinfo=timezone.utc), new_id=lambda: "fixed-id"
)


def test_identify_track_group_arrive_as_segment_messages(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    client = make_client(sync_mode=True, builder=FROZEN)
    client.identify("123", {"accountId": ACCOUNT, "name": "Miles Morales"})
    client.track("123", "Account Created", {"accountId": ACCOUNT, "source": "Invite"})
    client.group("123", "555", {"name": "Twitter"})
    received = collector.messages
    assert [m["type"] for m in received] == ["identify", "track", "group"]
    assert received[0]["traits"] == {"accountId": ACCOUNT, "name": "Miles Morales"}
    assert received[1]["properties"] == {"accountId": ACCOUNT, "source": "Invite"}
    assert (received[2]["groupId"], received[2]["traits"]) == ("555", {"name": "Twitter"})
    assert all(m["timestamp"] == "2014-05-05T08:00:00.000Z" for m in received)


def test_access_key_may_be_passed_by_keyword() -> None:
    client = gs.Client(access_key=ACCESS_KEY, send=False)
    assert client.settings.access_key.secret == ACCESS_KEY


def test_access_key_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAINSIGHT_ACCESS_KEY", ACCESS_KEY)
    assert gs.Client(send=False).settings.access_key.secret == ACCESS_KEY


def test_bad_settings_raise_configuration_error_at_construction() -> None:
    with pytest.raises(gs.ConfigurationError, match="36 characters"):
        gs.Client("short")


@pytest.mark.parametrize(
    ("options", "outcome"),
    [
        pytest.param({}, gs.Outcome.QUEUED, id="async"),
        pytest.param({"sync_mode": True}, gs.Outcome.SENT, id="sync"),
        pytest.param({"send": False}, gs.Outcome.DRY_RUN, id="dry-run"),
    ],
)
def test_receipt_tells_the_message_id_and_outcome(
    make_client: ClientFactory, options: dict[str, Any], outcome: gs.Outcome
) -> None:
    receipt = make_client(**options).track("1", "Signed Up", message_id="my-id")
    assert (receipt.message_id, receipt.outcome) == ("my-id", outcome)


def test_dry_run_sends_nothing(make_client: ClientFactory, collector: LocalCollector) -> None:
    client = make_client(send=False)
    client.track("1", "Signed Up")
    client.flush()
    assert collector.requests == []


def test_dry_run_still_validates(make_client: ClientFactory) -> None:
    with pytest.raises(gs.InvalidMessageError, match="userId"):
        make_client(send=False).identify(None)


def test_sync_mode_reports_a_failure_in_the_receipt_and_to_on_error(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    errors: list[tuple[gs.DeliveryError, dict[str, Any]]] = []
    collector.faults = Faults(statuses=(400,))
    client = make_client(sync_mode=True, on_error=lambda e, m: errors.append((e, m)))
    receipt = client.track("1", "Signed Up")
    assert receipt.outcome is gs.Outcome.FAILED
    assert receipt.error is not None
    assert receipt.error.status == 400
    assert [(e.status, m["messageId"]) for e, m in errors] == [(400, receipt.message_id)]


def test_sync_mode_counts_delivered(make_client: ClientFactory) -> None:
    client = make_client(sync_mode=True)
    client.track("1", "Signed Up")
    assert client.stats() == gs.Stats(queued=1, delivered=1)


def test_whitelisted_track_is_sent_and_others_are_filtered(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    client = make_client(sync_mode=True, track_whitelist=["Order Completed"])
    sent = client.track("1", "order_completed")
    skipped = client.track("1", "Order Complete")
    assert (sent.outcome, skipped.outcome) == (gs.Outcome.SENT, gs.Outcome.FILTERED)
    assert [m["event"] for m in collector.messages] == ["order_completed"]
    assert client.stats().filtered == 1


def test_whitelist_never_filters_identify_or_group(make_client: ClientFactory) -> None:
    client = make_client(sync_mode=True, track_whitelist=["Order Completed"])
    assert client.identify("1", {}).outcome is gs.Outcome.SENT
    assert client.group("1", "g").outcome is gs.Outcome.SENT


def test_a_filtered_track_is_skipped_before_it_is_built(make_client: ClientFactory) -> None:
    client = make_client(track_whitelist=["Order Completed"])
    receipt = client.track("1", "Skipped", {"price": float("nan")}, message_id="m-1")
    assert (receipt.message_id, receipt.outcome) == ("m-1", gs.Outcome.FILTERED)


def test_a_filtered_track_still_needs_an_event_name(make_client: ClientFactory) -> None:
    client = make_client(track_whitelist=["Order Completed"])
    with pytest.raises(gs.InvalidMessageError, match="event"):
        client.track("1", "")


def test_a_filtered_track_after_shutdown_raises_client_closed(make_client: ClientFactory) -> None:
    client = make_client(track_whitelist=["Order Completed"])
    client.shutdown()
    with pytest.raises(gs.ClientClosedError):
        client.track("1", "Skipped")


def test_a_second_shutdown_returns_the_first_ones_answer(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    collector.faults = Faults(stall=True)
    client = make_client(workers=1)
    client.track("1", "Signed Up")
    assert client.shutdown(timeout=0.2) is False
    assert client.shutdown(timeout=0.2) is False
    collector.release()


def test_later_mutation_of_the_callers_dict_does_not_change_what_is_sent(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    properties = {"plan": "free"}
    client = make_client()
    client.track("1", "Upgraded", properties)
    properties["plan"] = "enterprise"
    client.flush()
    assert collector.messages[0]["properties"] == {"plan": "free"}


def test_context_manager_shuts_down_and_delivers(
    make_client: ClientFactory, collector: LocalCollector
) -> None:
    with make_client() as client:
        client.track("1", "Signed Up")
    assert len(collector.messages) == 1
    with pytest.raises(gs.ClientClosedError):
        client.track("1", "Signed Up")


@pytest.mark.parametrize("options", [{}, {"sync_mode": True}, {"send": False}])
def test_calls_after_shutdown_raise_client_closed(
    make_client: ClientFactory, options: dict[str, Any]
) -> None:
    client = make_client(**options)
    client.shutdown()
    with pytest.raises(gs.ClientClosedError, match="shut down"):
        client.identify("1")


def test_shutdown_is_idempotent(make_client: ClientFactory) -> None:
    client = make_client()
    client.track("1", "Signed Up")
    assert client.shutdown(timeout=5) is True
    assert client.shutdown(timeout=5) is True


def test_repr_masks_the_key() -> None:
    client = gs.Client(ACCESS_KEY, send=False)
    assert ACCESS_KEY not in repr(client)
    assert ACCESS_KEY[-4:] in repr(client)
    assert ACCESS_KEY not in repr(client.settings)
    assert ACCESS_KEY not in str(client.settings.access_key)


def test_the_key_appears_in_no_log_record_or_error_text(
    make_client: ClientFactory, collector: LocalCollector, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[str] = []
    collector.faults = Faults(statuses=(503, 400, 401))
    client = make_client(on_error=lambda e, m: errors.append(f"{e} {e!r} {m}"), max_retries=1)
    with caplog.at_level(logging.DEBUG):
        client.track("1", "Signed Up")
        client.track("1", "Signed Up")
        client.flush()
        client.shutdown()
    texts = [record.getMessage() for record in caplog.records] + errors
    assert len(errors) == 2
    assert not [text for text in texts if ACCESS_KEY in text]


@pytest.mark.parametrize(
    "message_id",
    [
        pytest.param(10**5000, id="int-too-long-to-print"),
        pytest.param(["not", "an", "id"], id="list"),
        pytest.param(float("nan"), id="nan"),
    ],
)
def test_a_filtered_track_checks_its_message_id_like_any_call(message_id: object) -> None:
    client = gs.Client(ACCESS_KEY, track_whitelist=["Signed Up"], send=False)
    with pytest.raises(gs.InvalidMessageError, match=r"^messageId: "):
        client.track("u", "Page Viewed", message_id=message_id)  # type: ignore[arg-type]
