"""Tests of ``gainsight_segment._whitelist``: accepted shapes, normalization and matching."""

from __future__ import annotations

from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gainsight_segment import ConfigurationError
from gainsight_segment._whitelist import TrackWhitelist, normalize_event_name

# --- accepted shapes ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "names"),
    [
        pytest.param(None, set(), id="none"),
        pytest.param([], set(), id="empty-list"),
        pytest.param({}, set(), id="empty-mapping"),
        pytest.param(["Order Completed"], {"order completed"}, id="list"),
        pytest.param(
            ("Order Completed", "Signed Up"), {"order completed", "signed up"}, id="tuple"
        ),
        pytest.param(frozenset({"Signed Up"}), {"signed up"}, id="frozenset"),
        pytest.param({"Signed Up", "signed_up"}, {"signed up"}, id="set-with-duplicates"),
        pytest.param((n for n in ["Signed Up"]), {"signed up"}, id="generator"),
        pytest.param(
            [{"key": "Order Completed", "value": True}, {"key": "signedUp", "value": "x"}],
            {"order completed", "signed up"},
            id="segment-mixed-list",
        ),
        pytest.param([{"key": "Signed Up"}], {"signed up"}, id="mixed-item-without-value"),
        pytest.param(
            ["Order Completed", {"key": "Signed Up", "value": ""}],
            {"order completed", "signed up"},
            id="names-and-mixed-items",
        ),
        pytest.param(
            {"Order Completed": True, "Signed Up": False},
            {"order completed", "signed up"},
            id="mapping",
        ),
        pytest.param(
            MappingProxyType({"Order Completed": None}), {"order completed"}, id="read-only-mapping"
        ),
    ],
)
def test_from_spec_accepts_segment_shapes(spec: object, names: set[str]) -> None:
    assert TrackWhitelist.from_spec(spec).names == frozenset(names)  # type: ignore[arg-type]


def test_from_spec_returns_a_whitelist_unchanged() -> None:
    whitelist = TrackWhitelist.from_spec(["Signed Up"])
    assert TrackWhitelist.from_spec(whitelist) is whitelist  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        pytest.param(
            "Order Completed",
            "track_whitelist: expected a list of event names, got a single string",
            id="bare-string",
        ),
        pytest.param(
            b"Order Completed",
            "track_whitelist: expected a list of event names, got a single string",
            id="bytes",
        ),
        pytest.param(
            42, "track_whitelist: expected a list or mapping of event names, got int", id="int"
        ),
        pytest.param(
            True, "track_whitelist: expected a list or mapping of event names, got bool", id="bool"
        ),
        pytest.param(
            ["Order Completed", 7],
            "track_whitelist[1]: event names must be strings, got int",
            id="number-item",
        ),
        pytest.param(
            [b"Order Completed"],
            "track_whitelist[0]: event names must be strings, got bytes",
            id="bytes-item",
        ),
        pytest.param(
            [None], "track_whitelist[0]: event names must be strings, got NoneType", id="none-item"
        ),
        pytest.param(
            [{"value": True}],
            "track_whitelist[0]: a whitelist object needs a 'key'",
            id="mixed-item-without-key",
        ),
        pytest.param(
            [{"key": 3, "value": True}],
            "track_whitelist[0]: event names must be strings, got int",
            id="mixed-item-non-string-key",
        ),
        pytest.param(
            {1: True}, "track_whitelist[1]: event names must be strings, got int", id="int-key"
        ),
        pytest.param([""], "track_whitelist[0]: event name is empty", id="empty-name"),
        pytest.param(["ok", "   "], "track_whitelist[1]: event name is empty", id="blank-name"),
        pytest.param(["_-."], "track_whitelist[0]: event name is empty", id="separators-only"),
        pytest.param(
            [{"key": ""}], "track_whitelist[0]: event name is empty", id="mixed-empty-name"
        ),
        pytest.param({"": 1}, "track_whitelist['']: event name is empty", id="mapping-empty-key"),
    ],
)
def test_from_spec_refuses(spec: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as info:
        TrackWhitelist.from_spec(spec)  # type: ignore[arg-type]
    assert str(info.value) == message


# --- normalization and matching -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("Order Completed", "order completed", id="title-case"),
        pytest.param("order_completed", "order completed", id="snake"),
        pytest.param("ORDER-COMPLETED", "order completed", id="upper-kebab"),
        pytest.param("order.completed", "order completed", id="dotted"),
        pytest.param("orderCompleted", "order completed", id="camel"),
        pytest.param("OrderCompleted", "order completed", id="pascal"),
        pytest.param("  Order   Completed \t", "order completed", id="padded-and-repeated"),
        pytest.param("order _-. completed", "order completed", id="mixed-separators"),
        pytest.param("HTTPRequestSent", "http request sent", id="acronym-boundary"),
        pytest.param("userID", "user id", id="trailing-acronym"),
        pytest.param("step2Done", "step2 done", id="digit-before-capital"),
        pytest.param("", "", id="empty"),
    ],
)
def test_normalize_event_name(name: str, expected: str) -> None:
    assert normalize_event_name(name) == expected


@pytest.mark.parametrize(
    "event",
    [
        pytest.param("Order Completed", id="exact"),
        pytest.param("order completed", id="lower"),
        pytest.param("ORDER COMPLETED", id="upper"),
        pytest.param("order_completed", id="snake"),
        pytest.param("order-completed", id="kebab"),
        pytest.param("order.completed", id="dotted"),
        pytest.param("orderCompleted", id="camel"),
        pytest.param("OrderCompleted", id="pascal"),
        pytest.param("ORDER_COMPLETED", id="screaming-snake"),
        pytest.param("  Order Completed  ", id="padded"),
        pytest.param("Order  Completed", id="double-space"),
    ],
)
def test_allows_variants_of_a_whitelisted_name(event: str) -> None:
    assert TrackWhitelist.from_spec(["Order Completed"]).allows(event)


def test_allows_acronym_boundary_variants() -> None:
    whitelist = TrackWhitelist.from_spec(["HTTP Request Sent"])
    assert whitelist.allows("HTTPRequestSent")
    assert whitelist.allows("http_request_sent")


@pytest.mark.parametrize(
    "event",
    [
        pytest.param("Order Complete", id="prefix"),
        pytest.param("Orders Completed", id="plural-word"),
        pytest.param("OrderCompletedX", id="extra-camel-word"),
        pytest.param("Order Completed Twice", id="extra-word"),
        pytest.param("ordercompleted", id="no-word-break"),
        pytest.param("Completed Order", id="word-order"),
        pytest.param("", id="empty"),
    ],
)
def test_refuses_near_misses(event: str) -> None:
    assert not TrackWhitelist.from_spec(["Order Completed"]).allows(event)


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(None, id="none"),
        pytest.param([], id="empty-list"),
        pytest.param({}, id="empty"),
    ],
)
def test_empty_whitelist_allows_every_event(spec: object) -> None:
    whitelist = TrackWhitelist.from_spec(spec)  # type: ignore[arg-type]
    assert whitelist.allows("Anything At All")
    assert whitelist.allows("")


def test_whitelist_matches_any_of_several_names() -> None:
    whitelist = TrackWhitelist.from_spec({"Signed Up": True, "Order Completed": True})
    assert whitelist.allows("signed_up")
    assert whitelist.allows("orderCompleted")
    assert not whitelist.allows("Logged In")


# --- properties ---------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_normalize_event_name_is_idempotent(name: str) -> None:
    once = normalize_event_name(name)
    assert normalize_event_name(once) == once


WORDS = st.lists(st.text("abcdefghijklmnopqrstuvwxyz", min_size=2, max_size=8), min_size=1)
SEPARATORS = st.sampled_from([" ", "_", "-", ".", "  ", " _ ", "--", "\t"])


@st.composite
def spellings(draw: st.DrawFn, words: list[str]) -> str:
    """Spell ``words`` with random per-word casing and random separators or camelCase joins."""
    out = ""
    for index, word in enumerate(words):
        camel = index > 0 and draw(st.booleans())
        if camel:
            # A camelCase join only marks a break when the next word starts with a capital
            # followed by lower case.
            out += word[0].upper() + word[1:]
            continue
        if index > 0:
            out += draw(SEPARATORS)
        out += draw(st.sampled_from([word, word.upper(), word[0].upper() + word[1:]]))
    return draw(SEPARATORS | st.just("")) + out + draw(SEPARATORS | st.just(""))


@settings(max_examples=200, deadline=None)
@given(st.data(), WORDS)
def test_whitelisted_name_matches_itself_respelled(data: st.DataObject, words: list[str]) -> None:
    name = " ".join(word.capitalize() for word in words)
    event = data.draw(spellings(words))
    assert TrackWhitelist.from_spec([name]).allows(event)


def test_answers_stay_right_past_the_remembered_names() -> None:
    whitelist = TrackWhitelist.from_spec(["Order Completed"])
    names = [f"Event {n}" for n in range(5000)] + ["order_completed", "Order Complete"]
    first = [whitelist.allows(name) for name in names]
    again = [whitelist.allows(name) for name in names]
    assert first == again
    assert first[-2:] == [True, False]
    assert not any(first[:-2])
