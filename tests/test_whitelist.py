"""Tests of ``gainsight_segment._whitelist``: accepted shapes, both matching rules."""

from __future__ import annotations

import re
from types import MappingProxyType

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gainsight_segment import ConfigurationError
from gainsight_segment._whitelist import TrackWhitelist, _legacy_no_case, normalize_event_name

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


def test_from_spec_keeps_the_legacy_form_of_each_name() -> None:
    whitelist = TrackWhitelist.from_spec(
        ["iOS App Opened", {"key": "orderCompleted_v2"}, "Order Completed", "order_completed"]
    )
    assert whitelist.legacy_names == {"ios app opened", "ordercompleted v2", "order completed"}


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


# --- the legacy rule: Segment's to-no-case 0.1.3 -------------------------------------------
#
# Segment's destination sent a track when to-no-case 0.1.3 gave the event name and a
# whitelisted name the same form. The expected forms below are worked out by hand from its
# rule, with JavaScript's character classes: (1) a name holding whitespace (JavaScript's set:
# no \x1c-\x1f or \x85, but \ufeff) is only lower-cased; (2) otherwise, if it holds anything
# but an ASCII letter or digit, each run of such characters becomes one space, or nothing at
# the end of the name (a name left empty stays as it was), and the result is lower-cased with
# no camelCase split; (3) otherwise each run of capitals after a character gets a space
# before it and between its letters, then all is lower-cased.


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("", "", id="empty"),
        pytest.param("Order Completed", "order completed", id="space-lower-cased"),
        pytest.param("Order  Completed", "order  completed", id="spaces-kept"),
        pytest.param(" Order Completed ", " order completed ", id="padding-kept"),
        pytest.param("Order _ Completed", "order _ completed", id="space-keeps-separators"),
        pytest.param("iOS App Opened", "ios app opened", id="space-no-camel-split"),
        pytest.param("Order\tCompleted", "order\tcompleted", id="tab"),
        pytest.param("Order\u00a0Completed", "order\u00a0completed", id="no-break-space"),
        pytest.param("Order\ufeffCompleted", "order\ufeffcompleted", id="bom-is-js-space"),
        pytest.param("Order\u3000Completed", "order\u3000completed", id="ideographic-space"),
        pytest.param("order\x1cCompleted", "order completed", id="x1c-not-js-space"),
        pytest.param("order\x85Completed", "order completed", id="nel-not-js-space"),
        pytest.param("order_completed", "order completed", id="snake"),
        pytest.param("ORDER-COMPLETED", "order completed", id="upper-kebab"),
        pytest.param("order.completed", "order completed", id="dotted"),
        pytest.param("checkout:started", "checkout started", id="colon"),
        pytest.param("order/completed", "order completed", id="slash"),
        pytest.param("a+b", "a b", id="plus"),
        pytest.param("a++b", "a b", id="separator-run"),
        pytest.param("order__completed", "order completed", id="underscore-run"),
        pytest.param("_order_completed", " order completed", id="leading-separator-spaced"),
        pytest.param("order_completed_", "order completed", id="trailing-separator-dropped"),
        pytest.param("page:viewed:", "page viewed", id="trailing-colon-dropped"),
        pytest.param("SignedUp!", "signedup", id="separator-stops-camel-split"),
        pytest.param("orderCompleted_v2", "ordercompleted v2", id="camel-beside-separator"),
        pytest.param("eBay_Listing_Viewed", "ebay listing viewed", id="snake-with-capitals"),
        pytest.param("___", "___", id="separators-only-kept"),
        pytest.param("orderCompleted", "order completed", id="camel"),
        pytest.param("OrderCompleted", "order completed", id="pascal"),
        pytest.param("ordercompleted", "ordercompleted", id="one-word"),
        pytest.param("A", "a", id="single-capital"),
        pytest.param("AB", "a b", id="two-capitals"),
        pytest.param("aB", "a b", id="camel-single-letters"),
        pytest.param("iOS", "i o s", id="acronym-letters-split"),
        pytest.param("IOS", "i o s", id="upper-acronym-letters-split"),
        pytest.param("iOSAppOpened", "i o s app opened", id="acronym-run-takes-next-capital"),
        pytest.param("HTTPRequestSent", "h t t p request sent", id="leading-acronym"),
        pytest.param("ABTestViewed", "a b test viewed", id="two-letter-acronym"),
        pytest.param("userID", "user i d", id="trailing-acronym"),
        pytest.param("YouTube", "you tube", id="brand-camel"),
        pytest.param("eBay", "e bay", id="brand-lower-first"),
        pytest.param("step2Done", "step2 done", id="digit-before-capital"),
        pytest.param("Level2", "level2", id="digit-after-capital"),
        pytest.param("CaféOpened", "caf opened", id="non-ascii-letter-is-separator"),
        pytest.param("CAFÉOPENED", "caf opened", id="non-ascii-capital-is-separator"),
        pytest.param("Café Opened", "café opened", id="non-ascii-with-space"),
        pytest.param("Über_Ride", " ber ride", id="leading-non-ascii-letter"),
        pytest.param("naïveMode", "na vemode", id="non-ascii-inside-camel"),
        pytest.param("Order完了", "order", id="trailing-non-ascii-dropped"),
        pytest.param("ORDER😀COMPLETED", "order completed", id="emoji-is-separator"),
        pytest.param("注文完了", "注文完了", id="no-ascii-kept"),
        pytest.param("注文_完了", "注文_完了", id="no-ascii-with-separator-kept"),
        pytest.param("ارژنگ", "ارژنگ", id="arabic-kept"),
        pytest.param("ΟΔΟΣ", "οδος", id="greek-final-sigma"),
    ],
)
def test_legacy_no_case(name: str, expected: str) -> None:
    assert _legacy_no_case(name) == expected


# --- which events are sent: either rule ---------------------------------------------------
#
# Each row: a whitelisted name, an event name, whether the friendly rule matches them, and
# whether Segment's rule (the legacy forms above) does. The event is sent when either does.

SENT_BY = [
    # Brand names and acronyms that camelCase splitting breaks apart.
    ("iOS App Opened", "iOS App Opened", True, True),
    ("iOS App Opened", "ios_app_opened", False, True),
    ("iOS App Opened", "IOS App Opened", False, True),
    ("iOS App Opened", "ios app opened", False, True),
    ("iOS App Opened", "IOS_APP_OPENED", False, True),
    ("iOS App Opened", "iOSAppOpened", True, False),
    ("iOS", "IOS", False, True),
    ("iOS", "i_o_s", False, True),
    ("YouTube Video Played", "youtube-video-played", False, True),
    ("YouTube Video Played", "youtube_video_played", False, True),
    ("YouTube Video Played", "YOUTUBE VIDEO PLAYED", False, True),
    ("YouTube Video Played", "YouTubeVideoPlayed", True, False),
    ("YouTube Video Played", "you_tube_video_played", True, False),
    ("eBay Listing Viewed", "ebay_listing_viewed", False, True),
    ("eBay Listing Viewed", "Ebay Listing Viewed", False, True),
    ("eBay Listing Viewed", "EBAY-LISTING-VIEWED", False, True),
    ("eBay Listing Viewed", "ebay.listing.viewed", False, True),
    ("eBay Listing Viewed", "eBay_Listing_Viewed", True, True),
    ("eBay Listing Viewed", "eBayListingViewed", True, False),
    ("eBay Listing Viewed", "e_bay_listing_viewed", True, False),
    ("ABTestViewed", "a_b_test_viewed", False, True),
    ("HTTP Request Sent", "HTTPRequestSent", True, False),
    ("HTTP Request Sent", "http_request_sent", True, True),
    ("User ID Set", "userIDSet", True, False),
    # Punctuation is a word break for Segment's rule.
    ("Checkout Started", "checkout:started", False, True),
    ("Checkout Started", "Checkout:Started", False, True),
    ("Checkout Started", "checkout::started", False, True),
    ("Order Completed", "order/completed", False, True),
    ("Order Completed", "ORDER/COMPLETED", False, True),
    ("Order Completed", "order+completed", False, True),
    ("Page Viewed", "page:viewed:", False, True),
    ("a+b", "a+b", True, True),
    ("a+b", "a b", False, True),
    ("a+b", "a_b", False, True),
    ("a+b", "A-B", False, True),
    ("a+b", "a++b", False, True),
    ("a+b", "aB", False, True),
    ("a+b", "AB", False, True),
    ("Order", "Order!", False, True),
    # A separator turns Segment's camelCase split off.
    ("orderCompleted_v2", "ordercompleted_v2", False, True),
    ("orderCompleted_v2", "ORDERCOMPLETED-V2", False, True),
    ("orderCompleted_v2", "order_completed_v2", True, False),
    ("orderCompleted_v2", "Order Completed V2", True, False),
    ("orderCompleted\x1fv2", "ordercompleted v2", False, True),
    # Non-ASCII letters are separators for Segment's rule; whitespace is JavaScript's.
    ("CaféOpened", "caf_opened", False, True),
    ("CaféOpened", "Caf Opened", False, True),
    ("CaféOpened", "CAFÉOPENED", True, True),
    ("Café Opened", "CAFÉ OPENED", True, True),
    ("Café Opened", "café_opened", True, False),
    ("Über Ride Booked", "über_ride_booked", True, False),
    ("naïveMode", "na_vemode", False, True),
    ("Order完了", "order", False, True),
    ("注文完了", "注文完了", True, True),
    ("Order\u00a0Completed", "ORDER\u00a0COMPLETED", True, True),
    ("Order Completed", "Order\u00a0Completed", True, False),
    ("orderCompleted\ufeffV2", "ORDERCOMPLETED\ufeffV2", False, True),
    # Variants both rules match.
    ("Order Completed", "Order Completed", True, True),
    ("Order Completed", "order_completed", True, True),
    ("Order Completed", "ORDER_COMPLETED", True, True),
    ("Order Completed", "order.completed", True, True),
    ("Order Completed", "orderCompleted", True, True),
    ("Order Completed", "OrderCompleted", True, True),
    ("Order Completed", "order-Completed", True, True),
    ("Order Completed", "order__completed", True, True),
    ("Order Completed", "order_completed_", True, True),
    ("order_completed", "Order Completed", True, True),
    ("Step2Done", "step2_done", True, True),
    ("v1.2 Released", "V1.2 RELEASED", True, True),
    # Variants only the friendly rule matches.
    ("Order Completed", "Order  Completed", True, False),
    ("Order Completed", " Order Completed ", True, False),
    ("Order Completed", "_order_completed", True, False),
    ("Order Completed", "order completed.", True, False),
    ("Order Completed", "order _ completed", True, False),
    ("Plan: Upgraded", "plan:_upgraded", True, False),
    # Neither rule matches: the event is skipped.
    ("Order Completed", "Order Complete", False, False),
    ("Order Completed", "Orders Completed", False, False),
    ("Order Completed", "Completed Order", False, False),
    ("Order Completed", "Order Completed Twice", False, False),
    ("Order Completed", "ordercompleted", False, False),
    ("Order Completed", "ORDERCOMPLETED", False, False),
    ("Order Completed", "order completed!", False, False),
    ("Order Completed", "order\ufeffcompleted", False, False),
    ("Order Completed", "", False, False),
    ("Signed Up", "Signed Up!", False, False),
    ("SignedUp", "SignedUp!", False, False),
    ("a+b", "ab", False, False),
    ("注文完了", "注文_完了", False, False),
    ("Straße Viewed", "STRASSE VIEWED", False, False),
    ("iOS App Opened", "Android App Opened", False, False),
]
SENT_BY_IDS = [f"{name!a}~{event!a}" for name, event, _, _ in SENT_BY]


@pytest.mark.parametrize(("name", "event", "friendly", "legacy"), SENT_BY, ids=SENT_BY_IDS)
def test_sends_an_event_when_either_rule_matches(
    name: str, event: str, friendly: bool, legacy: bool
) -> None:
    assert TrackWhitelist.from_spec([name]).allows(event) is (friendly or legacy)


@pytest.mark.parametrize(("name", "event", "friendly", "legacy"), SENT_BY, ids=SENT_BY_IDS)
def test_friendly_rule_matches_as_the_table_says(
    name: str, event: str, friendly: bool, legacy: bool
) -> None:
    assert (normalize_event_name(name) == normalize_event_name(event)) is friendly


@pytest.mark.parametrize(("name", "event", "friendly", "legacy"), SENT_BY, ids=SENT_BY_IDS)
def test_legacy_rule_matches_as_the_table_says(
    name: str, event: str, friendly: bool, legacy: bool
) -> None:
    assert (_legacy_no_case(name) == _legacy_no_case(event)) is legacy


def test_sends_legacy_matches_in_a_segment_mixed_list() -> None:
    whitelist = TrackWhitelist.from_spec(
        [{"key": "iOS App Opened", "value": True}, {"key": "Checkout Started", "value": True}]
    )
    assert whitelist.allows("ios_app_opened")
    assert whitelist.allows("checkout:started")
    assert not whitelist.allows("checkout:completed")


def test_answers_stay_right_when_asked_again() -> None:
    whitelist = TrackWhitelist.from_spec(["YouTube Video Played"])
    events = ["youtube-video-played", "YouTubeVideoPlayed", "youtube-video-paused"]
    assert [whitelist.allows(event) for event in events] == [True, True, False]
    assert [whitelist.allows(event) for event in events] == [True, True, False]


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


# Names as apps write them: ASCII letters of both cases, digits, spaces, the punctuation
# Segment's rule breaks words on, and some non-ASCII letters and spaces.
NAME_CHARS = (
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    " _-.:/+" + "éÉßüÜΣς注文\u00a0\ufeff"
)
PLAIN_NAMES = st.text(NAME_CHARS, min_size=1, max_size=16).filter(normalize_event_name)
_PUNCTUATION = re.compile(r"[ _\-.:/+]")


@st.composite
def events_like(draw: st.DrawFn, names: list[str]) -> str:
    """An event name: any plain name, or a whitelisted one re-cased or re-punctuated."""
    name = draw(st.sampled_from(names))
    separator = draw(st.sampled_from([" ", "_", "-", ".", ":", "/", "+"]))
    return draw(
        st.sampled_from([name, name.upper(), name.lower(), _PUNCTUATION.sub(separator, name)])
        | PLAIN_NAMES
    )


@settings(max_examples=300, deadline=None)
@given(st.data(), st.lists(PLAIN_NAMES, min_size=1, max_size=4))
def test_sends_every_event_segments_rule_matches(data: st.DataObject, names: list[str]) -> None:
    event = data.draw(events_like(names))
    if any(_legacy_no_case(name) == _legacy_no_case(event) for name in names):
        assert TrackWhitelist.from_spec(names).allows(event)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.lists(PLAIN_NAMES, min_size=1, max_size=4))
def test_sends_every_event_the_friendly_rule_matches(data: st.DataObject, names: list[str]) -> None:
    event = data.draw(events_like(names))
    if any(normalize_event_name(name) == normalize_event_name(event) for name in names):
        assert TrackWhitelist.from_spec(names).allows(event)


@settings(max_examples=300, deadline=None)
@given(st.data(), st.lists(PLAIN_NAMES, min_size=1, max_size=4))
def test_skips_every_event_neither_rule_matches(data: st.DataObject, names: list[str]) -> None:
    event = data.draw(events_like(names))
    matched = any(
        normalize_event_name(name) == normalize_event_name(event)
        or _legacy_no_case(name) == _legacy_no_case(event)
        for name in names
    )
    assert TrackWhitelist.from_spec(names).allows(event) is matched


def test_answers_stay_right_past_the_remembered_names() -> None:
    whitelist = TrackWhitelist.from_spec(["Order Completed"])
    names = [f"Event {n}" for n in range(5000)] + ["order_completed", "Order Complete"]
    first = [whitelist.allows(name) for name in names]
    again = [whitelist.allows(name) for name in names]
    assert first == again
    assert first[-2:] == [True, False]
    assert not any(first[:-2])
