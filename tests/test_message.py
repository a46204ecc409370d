"""Tests of ``gainsight_segment._message``: building, converting and serializing messages."""

from __future__ import annotations

import copy
import enum
import json
import math
from collections import OrderedDict
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone, tzinfo
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gainsight_segment
from gainsight_segment import GainsightError, InvalidMessageError, MessageBuilder
from gainsight_segment._json import _MAX_DEPTH, _encode, _has_duplicate_key, _too_deep
from gainsight_segment._message import (
    _SENT_AT_TEMPLATE,
    MAX_MESSAGE_BYTES,
    Message,
    format_time,
    new_message_id,
)

NOW = datetime(2014, 5, 5, 8, 0, 0, 123456, tzinfo=timezone.utc)
NOW_TEXT = "2014-05-05T08:00:00.123Z"
MESSAGE_ID = "6f1e2d3c-4b5a-4978-8a9b-acbdcedf0f1e"
LIBRARY = {"name": "gainsight-segment", "version": gainsight_segment.__version__}
ACCOUNT_ID = "o283h08fh2390f923uofu23"


def frozen_builder() -> MessageBuilder:
    return MessageBuilder(clock=lambda: NOW, new_id=lambda: MESSAGE_ID)


def strict_loads(body: bytes) -> Any:
    """Parse JSON refusing the NaN/Infinity extensions Python's parser accepts."""

    def refuse(constant: str) -> Any:
        raise ValueError(f"{constant} in body")

    return json.loads(body, parse_constant=refuse)


def track_properties(properties: Mapping[str, Any]) -> Any:
    return strict_loads(frozen_builder().track("u1", "Tested", properties).body)["properties"]


def build_or_error(build: Any) -> Message | InvalidMessageError:
    """Build with a frozen builder, returning the InvalidMessageError instead of raising it."""
    try:
        message: Message = build(frozen_builder())
    except InvalidMessageError as error:
        return error
    return message


def invalid(call: Any, *args: Any, **kwargs: Any) -> str:
    """Run a call that must fail and return its error text."""
    with pytest.raises(InvalidMessageError) as info:
        call(*args, **kwargs)
    return str(info.value)


# --- golden payloads ----------------------------------------------------------------------


def test_identify_golden_payload() -> None:
    message = frozen_builder().identify("123", {"accountId": ACCOUNT_ID, "name": "Miles Morales"})
    assert json.loads(message.body) == {
        "type": "identify",
        "userId": "123",
        "traits": {"accountId": ACCOUNT_ID, "name": "Miles Morales"},
        "context": {"library": LIBRARY},
        "integrations": {},
        "messageId": MESSAGE_ID,
        "timestamp": NOW_TEXT,
        "channel": "server",
    }


def test_track_golden_payload() -> None:
    message = frozen_builder().track(
        "123", "Account Created", {"accountId": ACCOUNT_ID, "source": "Invite"}
    )
    assert json.loads(message.body) == {
        "type": "track",
        "userId": "123",
        "event": "Account Created",
        "properties": {"accountId": ACCOUNT_ID, "source": "Invite"},
        "context": {"library": LIBRARY},
        "integrations": {},
        "messageId": MESSAGE_ID,
        "timestamp": NOW_TEXT,
        "channel": "server",
    }


def test_group_golden_payload() -> None:
    message = frozen_builder().group("123", "555", {"name": "Twitter"})
    assert json.loads(message.body) == {
        "type": "group",
        "userId": "123",
        "groupId": "555",
        "traits": {"name": "Twitter"},
        "context": {"library": LIBRARY},
        "integrations": {},
        "messageId": MESSAGE_ID,
        "timestamp": NOW_TEXT,
        "channel": "server",
    }


def test_track_golden_payload_with_every_option() -> None:
    message = frozen_builder().track(
        None,
        "Order Completed",
        {"total": 10},
        anonymous_id="anon-1",
        context={"ip": "203.0.113.9"},
        timestamp=datetime(2020, 1, 2, 3, 4, 5, 678000, tzinfo=timezone.utc),
        message_id="m-1",
        integrations={"All": False},
    )
    assert json.loads(message.body) == {
        "type": "track",
        "anonymousId": "anon-1",
        "event": "Order Completed",
        "properties": {"total": 10},
        "context": {"ip": "203.0.113.9", "library": LIBRARY},
        "integrations": {"All": False},
        "messageId": "m-1",
        "timestamp": "2020-01-02T03:04:05.678Z",
        "channel": "server",
    }


def test_message_attributes_describe_the_message() -> None:
    message = frozen_builder().track("123", "Signed Up")
    assert (message.type, message.message_id, message.event) == ("track", MESSAGE_ID, "Signed Up")


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda b: b.identify("1"), id="identify"),
        pytest.param(lambda b: b.group("1", "2"), id="group"),
    ],
)
def test_message_event_is_none_unless_track(build: Any) -> None:
    assert build(frozen_builder()).event is None


def test_body_is_compact_utf8_json() -> None:
    message = frozen_builder().identify("1", {"name": "Zoë 東京"})
    assert "Zoë 東京".encode() in message.body
    assert b", " not in message.body
    assert b": " not in message.body


def test_payload_parses_the_body() -> None:
    message = frozen_builder().identify("1", {"a": 1})
    assert message.payload() == json.loads(message.body)


def test_body_has_no_sent_at() -> None:
    assert "sentAt" not in json.loads(frozen_builder().identify("1").body)


def test_body_sent_at_adds_sent_at_as_last_key() -> None:
    message = frozen_builder().track("1", "E", {"a": [1, {"b": None}]})
    sent = strict_loads(message.body_sent_at("2014-05-05T08:00:01.000Z"))
    assert list(sent)[-1] == "sentAt"
    assert sent.pop("sentAt") == "2014-05-05T08:00:01.000Z"
    assert sent == json.loads(message.body)


def test_default_clock_and_id_are_used() -> None:
    message = MessageBuilder().identify("1")
    payload = json.loads(message.body)
    assert UUID(payload["messageId"]).version == 4
    sent = datetime.strptime(payload["timestamp"], "%Y-%m-%dT%H:%M:%S.%fZ")
    assert abs(sent - datetime.now(timezone.utc).replace(tzinfo=None)) < timedelta(minutes=1)


def test_new_message_id_is_a_random_uuid4() -> None:
    ids = {new_message_id() for _ in range(100)}
    assert len(ids) == 100
    for text in ids:
        parsed = UUID(text)
        assert (parsed.version, parsed.variant) == (4, "specified in RFC 4122")
        assert str(parsed) == text


# --- ids ----------------------------------------------------------------------------------


def test_top_level_none_keys_are_omitted() -> None:
    payload = json.loads(frozen_builder().identify("1").body)
    assert "anonymousId" not in payload
    assert None not in payload.values()


def test_only_anonymous_id_omits_user_id() -> None:
    payload = json.loads(frozen_builder().identify(None, anonymous_id="a-1").body)
    assert "userId" not in payload
    assert payload["anonymousId"] == "a-1"


def test_both_ids_are_sent() -> None:
    payload = json.loads(frozen_builder().identify("u", anonymous_id="a").body)
    assert (payload["userId"], payload["anonymousId"]) == ("u", "a")


def test_none_inside_traits_is_sent_as_null() -> None:
    payload = json.loads(frozen_builder().identify("1", {"email": None}).body)
    assert payload["traits"] == {"email": None}
    assert b'"email":null' in frozen_builder().identify("1", {"email": None}).body


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("abc", "abc", id="str"),
        pytest.param(" abc ", " abc ", id="str-kept-as-is"),
        pytest.param(42, "42", id="int"),
        pytest.param(0, "0", id="zero"),
        pytest.param(4.5, "4.5", id="float"),
        pytest.param(
            UUID("35a84f9e-7084-47a1-b8a5-593444e9e862"),
            "35a84f9e-7084-47a1-b8a5-593444e9e862",
            id="uuid",
        ),
    ],
)
@pytest.mark.parametrize("field", ["userId", "anonymousId"])
def test_ids_are_stringified(field: str, given: object, expected: str) -> None:
    if field == "userId":
        message = frozen_builder().identify(given)  # type: ignore[arg-type]
    else:
        message = frozen_builder().identify(None, anonymous_id=given)
    assert json.loads(message.body)[field] == expected


@pytest.mark.parametrize(
    ("user_id", "anonymous_id", "message"),
    [
        pytest.param(None, None, "userId: a userId or an anonymousId is required", id="none"),
        pytest.param("", None, "userId: must not be empty", id="empty-user-id"),
        pytest.param("  ", None, "userId: must not be empty", id="blank-user-id"),
        pytest.param("", "a", "userId: must not be empty", id="empty-user-id-with-anonymous"),
        pytest.param(None, "", "anonymousId: must not be empty", id="empty-anonymous-id"),
        pytest.param(None, "\t", "anonymousId: must not be empty", id="blank-anonymous-id"),
        pytest.param(
            True, None, "userId: must be a string, number or UUID, got bool", id="bool-user-id"
        ),
        pytest.param(
            None,
            False,
            "anonymousId: must be a string, number or UUID, got bool",
            id="bool-anonymous-id",
        ),
        pytest.param(float("nan"), None, "userId: must be a finite number", id="nan"),
        pytest.param(float("inf"), None, "userId: must be a finite number", id="inf"),
        pytest.param(
            b"123", None, "userId: must be a string, number or UUID, got bytes", id="bytes"
        ),
        pytest.param(["1"], None, "userId: must be a string, number or UUID, got list", id="list"),
        pytest.param(10**5000, None, "userId: integer has too many digits", id="huge-int"),
    ],
)
def test_bad_ids_are_refused(user_id: object, anonymous_id: object, message: str) -> None:
    assert invalid(frozen_builder().identify, user_id, anonymous_id=anonymous_id) == message


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        pytest.param("m-1", "m-1", id="str"),
        pytest.param(7, "7", id="int"),
        pytest.param(UUID(MESSAGE_ID), MESSAGE_ID, id="uuid"),
    ],
)
def test_given_message_id_is_used(given: object, expected: str) -> None:
    message = frozen_builder().identify("1", message_id=given)
    assert message.message_id == expected
    assert json.loads(message.body)["messageId"] == expected


def test_empty_message_id_is_refused() -> None:
    assert invalid(frozen_builder().identify, "1", message_id="") == "messageId: must not be empty"


@pytest.mark.parametrize(
    ("event", "message"),
    [
        pytest.param("", "event: must be a non-empty string", id="empty"),
        pytest.param("   ", "event: must be a non-empty string", id="blank"),
        pytest.param(None, "event: must be a non-empty string", id="none"),
        pytest.param(42, "event: must be a non-empty string", id="int"),
    ],
)
def test_track_event_must_be_a_non_empty_string(event: object, message: str) -> None:
    assert invalid(frozen_builder().track, "1", event) == message


@pytest.mark.parametrize(
    ("group_id", "message"),
    [
        pytest.param(None, "groupId: is required", id="none"),
        pytest.param("", "groupId: must not be empty", id="empty"),
        pytest.param(True, "groupId: must be a string, number or UUID, got bool", id="bool"),
    ],
)
def test_group_id_is_required(group_id: object, message: str) -> None:
    assert invalid(frozen_builder().group, "1", group_id) == message


class Signal(str, enum.Enum):
    SIGNED_UP = "Signed Up"


def test_str_enum_event_and_ids_are_sent_as_their_values() -> None:
    message = frozen_builder().track(
        Signal.SIGNED_UP, Signal.SIGNED_UP, message_id=Signal.SIGNED_UP
    )
    payload = json.loads(message.body)
    assert payload["event"] == payload["userId"] == payload["messageId"] == "Signed Up"
    assert type(message.event) is str
    assert type(message.message_id) is str


@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda b, v: b.identify(v), id="userId"),
        pytest.param(lambda b, v: b.identify(None, anonymous_id=v), id="anonymousId"),
        pytest.param(lambda b, v: b.group("1", v), id="groupId"),
        pytest.param(lambda b, v: b.identify("1", message_id=v), id="messageId"),
        pytest.param(lambda b, v: b.track("1", v), id="event"),
    ],
)
def test_str_subclass_whose_methods_raise_is_sent_as_its_characters(build: Any) -> None:
    payload = json.loads(build(frozen_builder(), HostileStr(" k")).body)
    assert " k" in payload.values()


@pytest.mark.parametrize(
    ("build", "message"),
    [
        pytest.param(lambda b: b.identify(Classless()), "userId: Boom: no class", id="user-id"),
        pytest.param(
            lambda b: b.identify("1", message_id=Classless()),
            "messageId: Boom: no class",
            id="message-id",
        ),
        pytest.param(
            lambda b: b.track("1", Classless()), "event: must be a non-empty string", id="event"
        ),
    ],
)
def test_id_whose_class_raises_is_refused(build: Any, message: str) -> None:
    assert invalid(build, frozen_builder()) == message


def test_group_id_number_is_stringified() -> None:
    assert json.loads(frozen_builder().group("1", 555).body)["groupId"] == "555"


# --- mappings -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        pytest.param(lambda b, v: b.identify("1", v), "traits", id="identify-traits"),
        pytest.param(lambda b, v: b.group("1", "2", v), "traits", id="group-traits"),
        pytest.param(lambda b, v: b.track("1", "E", v), "properties", id="properties"),
        pytest.param(lambda b, v: b.identify("1", context=v), "context", id="context"),
        pytest.param(
            lambda b, v: b.identify("1", integrations=v), "integrations", id="integrations"
        ),
    ],
)
@pytest.mark.parametrize(
    "value",
    [
        pytest.param([("a", 1)], id="list"),
        pytest.param("a=1", id="str"),
        pytest.param(5, id="int"),
    ],
)
def test_non_mapping_fields_are_refused(build: Any, field: str, value: object) -> None:
    text = invalid(build, frozen_builder(), value)
    assert text == f"{field}: must be a mapping, got {type(value).__name__}"


@pytest.mark.parametrize(
    ("build", "field"),
    [
        pytest.param(lambda b, v: b.identify("1", v), "traits", id="traits"),
        pytest.param(lambda b, v: b.track("1", "E", v), "properties", id="properties"),
        pytest.param(lambda b, v: b.identify("1", context=v), "context", id="context"),
        pytest.param(lambda b, v: b.identify("1", integrations=v), "integrations", id="integ"),
    ],
)
def test_read_only_mappings_are_accepted(build: Any, field: str) -> None:
    value = MappingProxyType({"a": {"b": 1}})
    assert json.loads(build(frozen_builder(), value).body)[field]["a"] == {"b": 1}


def test_callers_context_is_not_mutated() -> None:
    context = {"ip": "203.0.113.9", "traits": {"plan": "pro"}}
    before = copy.deepcopy(context)
    message = frozen_builder().identify("1", context=context)
    assert context == before
    assert json.loads(message.body)["context"] == {**before, "library": LIBRARY}


def test_callers_dicts_are_not_mutated() -> None:
    traits = {"name": "Ann", "tags": {"b", "a"}, "when": date(2020, 1, 1)}
    integrations = {"All": True}
    before = copy.deepcopy((traits, integrations))
    frozen_builder().identify("1", traits, integrations=integrations)
    assert (traits, integrations) == before


def test_later_mutation_does_not_change_the_message() -> None:
    properties: dict[str, Any] = {"items": [1, 2], "total": 3}
    context: dict[str, Any] = {"ip": "203.0.113.9"}
    message = frozen_builder().track("1", "E", properties, context=context)
    properties["items"].append(99)
    properties["total"] = 0
    context["ip"] = "0.0.0.0"
    payload = json.loads(message.body)
    assert payload["properties"] == {"items": [1, 2], "total": 3}
    assert payload["context"]["ip"] == "203.0.113.9"


def test_callers_context_library_is_replaced() -> None:
    context = {"library": {"name": "analytics-python", "version": "2.0"}, "ip": "203.0.113.9"}
    payload = json.loads(frozen_builder().identify("1", context=context).body)
    assert payload["context"] == {"ip": "203.0.113.9", "library": LIBRARY}
    assert context["library"] == {"name": "analytics-python", "version": "2.0"}


# --- conversions --------------------------------------------------------------------------


class Color(enum.Enum):
    RED = "red"


class Level(enum.IntEnum):
    HIGH = 3


class Plan(str, enum.Enum):
    PRO = "pro"


class Nested(enum.Enum):
    WHEN = date(2020, 2, 3)


PLUS_TWO = timezone(timedelta(hours=2))
MINUS_FIVE_THIRTY = timezone(-timedelta(hours=5, minutes=30))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(
            datetime(2014, 5, 5, 10, 0, tzinfo=PLUS_TWO), "2014-05-05T08:00:00.000Z", id="aware"
        ),
        pytest.param(
            datetime(2014, 5, 4, 23, 0, tzinfo=MINUS_FIVE_THIRTY),
            "2014-05-05T04:30:00.000Z",
            id="aware-negative-offset-next-day",
        ),
        pytest.param(datetime(2014, 5, 5, 8, 0), "2014-05-05T08:00:00.000Z", id="naive-is-utc"),
        pytest.param(date(2014, 5, 5), "2014-05-05T00:00:00.000Z", id="date-is-midnight"),
        pytest.param(
            datetime(2014, 5, 5, 8, 0, 0, 999999), "2014-05-05T08:00:00.999Z", id="truncated-ms"
        ),
        pytest.param(datetime(5, 1, 2, 3, 4, 5), "0005-01-02T03:04:05.000Z", id="small-year"),
        pytest.param(Decimal("12"), 12, id="decimal-integral"),
        pytest.param(Decimal("12.000"), 12, id="decimal-integral-with-zeros"),
        pytest.param(Decimal("1E+3"), 1000, id="decimal-exponent"),
        pytest.param(Decimal("12.5"), 12.5, id="decimal-fractional"),
        pytest.param(Decimal("-0.1"), -0.1, id="decimal-negative"),
        pytest.param(
            UUID("35a84f9e-7084-47a1-b8a5-593444e9e862"),
            "35a84f9e-7084-47a1-b8a5-593444e9e862",
            id="uuid",
        ),
        pytest.param(Color.RED, "red", id="enum"),
        pytest.param(Level.HIGH, 3, id="int-enum"),
        pytest.param(Plan.PRO, "pro", id="str-enum"),
        pytest.param(Nested.WHEN, "2020-02-03T00:00:00.000Z", id="enum-of-date"),
        pytest.param(frozenset({"only"}), ["only"], id="frozenset"),
        pytest.param((1, "a", None), [1, "a", None], id="tuple"),
        pytest.param(
            MappingProxyType({"when": date(2014, 5, 5)}),
            {"when": "2014-05-05T00:00:00.000Z"},
            id="nested-mapping",
        ),
        pytest.param(OrderedDict([("b", 1), ("a", 2)]), {"b": 1, "a": 2}, id="ordered-dict"),
        pytest.param(
            [[Decimal("1.5")], {"x": (UUID(int=0),)}],
            [[1.5], {"x": [str(UUID(int=0))]}],
            id="nested-containers",
        ),
        pytest.param(True, True, id="bool"),
        pytest.param(None, None, id="none"),
        pytest.param(-0.0, -0.0, id="negative-zero"),
        pytest.param(10**300, 10**300, id="big-int"),
    ],
)
def test_values_are_converted(value: object, expected: object) -> None:
    assert track_properties({"v": value}) == {"v": expected}


def test_set_is_converted_to_list() -> None:
    assert sorted(track_properties({"v": {3, 1, 2}})["v"]) == [1, 2, 3]


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        pytest.param(1, "1", id="int"),
        pytest.param(1.5, "1.5", id="float"),
        pytest.param(True, "true", id="bool"),
        pytest.param(Plan.PRO, "pro", id="str-enum"),
        pytest.param("null", "null", id="string-null"),
    ],
)
def test_json_compatible_keys_are_written_as_strings(key: object, expected: str) -> None:
    assert track_properties({key: "x"}) == {expected: "x"}  # type: ignore[dict-item]


def test_string_value_that_looks_like_a_null_key_is_kept() -> None:
    value = 'say "null": and {"null":1}'
    assert track_properties({"q": value}) == {"q": value}


@pytest.mark.parametrize(
    ("timestamp", "expected"),
    [
        pytest.param(
            datetime(2020, 6, 1, 14, 30, 15, 250999, tzinfo=PLUS_TWO),
            "2020-06-01T12:30:15.250Z",
            id="aware",
        ),
        pytest.param(datetime(2020, 6, 1, 14, 30), "2020-06-01T14:30:00.000Z", id="naive"),
        pytest.param(date(2020, 6, 1), "2020-06-01T00:00:00.000Z", id="date"),
    ],
)
def test_given_timestamp_is_used_and_formatted(timestamp: date, expected: str) -> None:
    message = frozen_builder().identify("1", timestamp=timestamp)
    assert json.loads(message.body)["timestamp"] == expected


@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param("2020-06-01T00:00:00Z", id="iso-string"),
        pytest.param(1591000000, id="epoch-int"),
        pytest.param(1591000000.5, id="epoch-float"),
    ],
)
def test_timestamp_that_is_not_a_date_is_refused(timestamp: object) -> None:
    text = invalid(frozen_builder().identify, "1", timestamp=timestamp)
    assert text == f"timestamp: must be a datetime, got {type(timestamp).__name__}"


def test_timestamp_out_of_range_after_utc_conversion_is_refused() -> None:
    timestamp = datetime(1, 1, 1, 0, 0, tzinfo=PLUS_TWO)
    assert invalid(frozen_builder().identify, "1", timestamp=timestamp).startswith("timestamp: ")


class Boom(RuntimeError):
    """What the hostile objects of these tests raise."""


class RaisingOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        raise Boom("no offset")


class IntOffset(tzinfo):
    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return 5  # type: ignore[return-value]


class YearlessDate(date):
    @property
    def year(self) -> int:  # type: ignore[override]
        raise Boom("no year")


@pytest.mark.parametrize(
    ("timestamp", "message"),
    [
        pytest.param(
            datetime(2020, 1, 1, tzinfo=IntOffset()),
            "timestamp: tzinfo.utcoffset() must return None or timedelta, not 'int'",
            id="offset-is-an-int",
        ),
        pytest.param(
            datetime(2020, 1, 1, tzinfo=RaisingOffset()),
            "timestamp: Boom: no offset",
            id="offset-raises",
        ),
        pytest.param(YearlessDate(2020, 1, 1), "timestamp: Boom: no year", id="field-raises"),
    ],
)
def test_timestamp_that_cannot_be_formatted_is_refused(timestamp: date, message: str) -> None:
    assert invalid(frozen_builder().identify, "1", timestamp=timestamp) == message


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param(
            datetime(2020, 1, 1, tzinfo=RaisingOffset()),
            "properties.when: Boom: no offset",
            id="offset-raises",
        ),
        pytest.param(YearlessDate(2020, 1, 1), "properties.when: Boom: no year", id="field-raises"),
    ],
)
def test_date_value_that_cannot_be_formatted_is_refused(value: date, message: str) -> None:
    assert invalid(frozen_builder().track, "1", "E", {"when": value}) == message


def test_format_time_matches_segment_format() -> None:
    assert format_time(datetime(2014, 5, 5, 8, 0, tzinfo=timezone.utc)) == (
        "2014-05-05T08:00:00.000Z"
    )


# --- invalid values -----------------------------------------------------------------------


class Opaque:
    pass


def circular_dict() -> dict[str, Any]:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    return {"loop": loop}


def circular_list() -> dict[str, Any]:
    items: list[Any] = [1]
    items.append(items)
    return {"items": items}


def nested(depth: int) -> dict[str, Any]:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return {"deep": value}


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        pytest.param({"price": float("nan")}, "properties.price: NaN is not valid JSON", id="nan"),
        pytest.param(
            {"price": float("inf")}, "properties.price: Infinity is not valid JSON", id="inf"
        ),
        pytest.param(
            {"price": -float("inf")}, "properties.price: Infinity is not valid JSON", id="-inf"
        ),
        pytest.param(
            {"price": Decimal("NaN")}, "properties.price: NaN is not valid JSON", id="decimal-nan"
        ),
        pytest.param(
            {"price": Decimal("Infinity")},
            "properties.price: Infinity is not valid JSON",
            id="decimal-infinity",
        ),
        pytest.param(
            {"price": Decimal("9" * 400 + ".5")},
            "properties.price: Infinity is not valid JSON",
            id="decimal-fractional-overflow",
        ),
        pytest.param(
            {"price": Decimal("1E+1000000")},
            "properties.price: Decimal with 1000001 digits is too large",
            id="decimal-huge-exponent",
        ),
        pytest.param(
            {"n": 10**5000},
            "properties.n: integer has too many digits to serialize",
            id="int-over-str-digits-limit",
        ),
        pytest.param(
            {"thing": Opaque()},
            "properties.thing: Opaque is not JSON serializable",
            id="unknown-object",
        ),
        pytest.param(
            {"raw": b"\x00\x01"}, "properties.raw: bytes is not JSON serializable", id="bytes"
        ),
        pytest.param({"z": 1j}, "properties.z: complex is not JSON serializable", id="complex"),
        pytest.param(
            {"items": [1, 2, Opaque()]},
            "properties.items[2]: Opaque is not JSON serializable",
            id="list-index",
        ),
        pytest.param(
            {"a": {"b": [{"c": float("nan")}]}},
            "properties.a.b[0].c: NaN is not valid JSON",
            id="nested-path",
        ),
        pytest.param(
            {"t": ("x", float("nan"))}, "properties.t[1]: NaN is not valid JSON", id="tuple-index"
        ),
        pytest.param(
            {"m": MappingProxyType({"x": Opaque()})},
            "properties.m.x: Opaque is not JSON serializable",
            id="inside-read-only-mapping",
        ),
        pytest.param(
            {("a", "b"): 1},
            "properties.('a', 'b'): keys must be str, int, float or bool, not tuple",
            id="tuple-key",
        ),
        pytest.param(
            {None: 1},
            "properties.None: keys must be str, int, float or bool, not NoneType",
            id="none-key",
        ),
        pytest.param(
            {"a": [{"ok": 1, None: 2}]},
            "properties.a[0].None: keys must be str, int, float or bool, not NoneType",
            id="nested-none-key",
        ),
        pytest.param({float("nan"): 1}, "properties.nan: NaN is not valid JSON", id="nan-key"),
        pytest.param(
            {"name": "ab\ud800"},
            "properties.name: contains a lone surrogate, which is not valid Unicode",
            id="surrogate-value",
        ),
        pytest.param(
            {"k\udfff": 1},
            "properties.'k\\udfff': contains a lone surrogate, which is not valid Unicode",
            id="surrogate-key",
        ),
        pytest.param(circular_dict(), "properties.loop.self: circular reference", id="cycle-dict"),
        pytest.param(circular_list(), "properties.items[1]: circular reference", id="cycle-list"),
        pytest.param(
            {"when": datetime(9999, 12, 31, 23, 0, tzinfo=MINUS_FIVE_THIRTY)},
            "properties.when: date value out of range",
            id="datetime-overflow",
        ),
    ],
)
def test_invalid_value_error_names_its_path(properties: dict[Any, Any], message: str) -> None:
    assert invalid(frozen_builder().track, "1", "E", properties) == message


@pytest.mark.parametrize(
    ("build", "prefix"),
    [
        pytest.param(lambda b: b.identify("1", {"x": float("nan")}), "traits.x: ", id="traits"),
        pytest.param(lambda b: b.group("1", "2", {"x": Opaque()}), "traits.x: ", id="group"),
        pytest.param(
            lambda b: b.identify("1", context={"x": {"y": b""}}), "context.x.y: ", id="context"
        ),
        pytest.param(
            lambda b: b.identify("1", integrations={"x": Opaque()}), "integrations.x: ", id="integ"
        ),
    ],
)
def test_invalid_value_error_names_its_top_level_field(build: Any, prefix: str) -> None:
    assert invalid(build, frozen_builder()).startswith(prefix)


def test_invalid_message_error_is_a_value_error() -> None:
    with pytest.raises(InvalidMessageError) as info:
        frozen_builder().track("1", "E", {"price": float("nan")})
    assert isinstance(info.value, ValueError)
    assert isinstance(info.value, GainsightError)


def test_error_text_is_valid_unicode_even_for_surrogate_keys() -> None:
    text = invalid(frozen_builder().track, "1", "E", {"\ud800" * 3: 1})
    assert text.encode("utf-8")


def test_long_key_is_shortened_in_the_path() -> None:
    text = invalid(frozen_builder().track, "1", "E", {"k" * 100: float("nan")})
    assert text == f"properties.{'k' * 37}...: NaN is not valid JSON"


def test_shared_reference_is_not_circular() -> None:
    shared = {"a": 1}
    assert track_properties({"x": shared, "y": [shared, shared]}) == {
        "x": {"a": 1},
        "y": [{"a": 1}, {"a": 1}],
    }


def test_nesting_within_the_limit_is_accepted() -> None:
    depth = _MAX_DEPTH - 10
    value = track_properties(nested(depth))["deep"]
    for _ in range(depth):
        value = value[0]
    assert value == 1


def test_nesting_deeper_than_the_encoder_can_go_is_refused() -> None:
    # Deeper than any recursion limit, yet small enough to fit the size limit.
    text = invalid(frozen_builder().track, "1", "E", nested(8000))
    assert text.startswith("properties.deep[0][0]")
    assert text.endswith(f"nested more than {_MAX_DEPTH} levels deep")


def hidden_nesting(depth: int) -> dict[str, Any]:
    """Nesting whose strings hold brackets that pair up with the real ones."""
    value: Any = 1
    for _ in range(depth):
        value = ["]", value, "["]
    return {"deep": value}


def alternating_nesting(depth: int) -> dict[str, Any]:
    """Nesting of lists and dicts in turn."""
    value: Any = 1
    for level in range(depth):
        value = [value] if level % 2 else {"a": value}
    return {"deep": value}


def bracketed_nesting(depth: int) -> dict[str, Any]:
    """Nesting beside strings full of unpaired brackets."""
    value: Any = 1
    for _ in range(depth):
        value = ["[[[[", value, "}}"]
    return {"deep": value}


NESTINGS = [
    pytest.param(nested, id="lists"),
    pytest.param(hidden_nesting, id="brackets-in-strings-pair-up"),
    pytest.param(alternating_nesting, id="lists-and-dicts-in-turn"),
    pytest.param(bracketed_nesting, id="unpaired-brackets-in-strings"),
]
# The message object and ``properties`` are the first two levels.
DEEPEST = _MAX_DEPTH - 2


@pytest.mark.parametrize("nesting", NESTINGS)
@pytest.mark.parametrize("depth", [DEEPEST + 1, 600])
def test_nesting_deeper_than_the_limit_is_refused(nesting: Any, depth: int) -> None:
    text = invalid(frozen_builder().track, "1", "E", nesting(depth))
    assert text.startswith("properties.deep")
    assert text.endswith(f"nested more than {_MAX_DEPTH} levels deep")


@pytest.mark.parametrize("nesting", NESTINGS)
def test_nesting_at_the_limit_is_accepted_and_decodes(nesting: Any) -> None:
    message = frozen_builder().track("1", "E", nesting(DEEPEST))
    assert message.payload()["properties"] == json.loads(json.dumps(nesting(DEEPEST)))


# Strings made of what could confuse a count of brackets: brackets, quotes and escapes.
TRICKY_TEXT = st.text(st.sampled_from('[]{}"\\/\n\tu0a'), max_size=6)
TRICKY_JSON = st.recursive(
    st.none() | st.integers() | TRICKY_TEXT,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(TRICKY_TEXT, children, max_size=3)
    ),
    max_leaves=30,
)


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, list):
        return 1 + max(map(depth_of, value), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(TRICKY_JSON, st.integers(min_value=0, max_value=8))
def test_depth_count_is_exact_whatever_the_strings_hold(value: Any, limit: int) -> None:
    body = _encode(value).encode()
    assert _too_deep(body, limit) == (depth_of(value) > limit)


def test_duplicate_check_leaves_to_the_walk_what_it_cannot_decode() -> None:
    assert _has_duplicate_key(b"[" * 5000 + b"]" * 5000) is None


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[" * 1000, id="openers"),
        pytest.param("[{" * 300 + "}]" * 300, id="paired"),
        pytest.param('\\"[' * 300, id="escapes"),
    ],
)
def test_brackets_in_strings_do_not_count_as_nesting(text: str) -> None:
    assert track_properties({"s": text, "k": [text]}) == {"s": text, "k": [text]}


# --- hostile input ------------------------------------------------------------------------
# Containers, keys and values whose methods raise or lie. Whatever they do, the builder
# raises InvalidMessageError naming the field, or builds a message that decodes.


class Unprintable:
    def __repr__(self) -> str:
        raise Boom("no repr")


class Classless:
    @property  # type: ignore[misc]
    def __class__(self) -> type:
        raise Boom("no class")


class Mute(Exception):
    def __str__(self) -> str:
        raise Boom("no text")


class PairlessDict(dict[Any, Any]):
    def items(self) -> Any:
        return [1, 2]


class ItemlessDict(dict[Any, Any]):
    def items(self) -> Any:
        raise Boom("no items")


class IterlessList(list[Any]):
    def __iter__(self) -> Any:
        raise Boom("no iteration")


class FakeMapping(Mapping[Any, Any]):
    """A mapping of ``keys``, whose ``iterate`` and ``get`` may raise or lie."""

    def __init__(self, keys: Any = ("a",), iterate: Any = None, get: Any = None) -> None:
        self._keys, self._iterate, self._get = keys, iterate, get

    def __getitem__(self, key: Any) -> Any:
        if self._get is not None:
            raise self._get
        return 1

    def __iter__(self) -> Any:
        if self._iterate is not None:
            raise self._iterate
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)


class UnhashableKey:
    def __hash__(self) -> int:
        raise Boom("no hash")


class UncomparableKey:
    def __hash__(self) -> int:
        return 1

    def __eq__(self, other: object) -> bool:
        raise Boom("no eq")


class RaisingDecimal(Decimal):
    def is_finite(self) -> bool:
        raise Boom("no finiteness")


class HostileStr(str):
    """A key whose own methods all raise; JSON sees only its characters."""

    def encode(self, *args: Any, **kwargs: Any) -> bytes:
        raise Boom("no encode")

    def __len__(self) -> int:
        raise Boom("no len")

    def __getitem__(self, index: Any) -> str:
        raise Boom("no slicing")

    def __format__(self, spec: str) -> str:
        raise Boom("no format")


class LyingSet(frozenset[Any]):
    def __len__(self) -> int:
        return 2**62


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        pytest.param(
            {10**5000: 1},
            "properties.<int>: integer has too many digits to serialize",
            id="huge-int-key",
        ),
        pytest.param(
            {Unprintable(): 1},
            "properties.<Unprintable>: keys must be str, int, float or bool, not Unprintable",
            id="unprintable-key",
        ),
        pytest.param(
            {(10**5000,): 1},
            "properties.<tuple>: keys must be str, int, float or bool, not tuple",
            id="key-with-unprintable-part",
        ),
        pytest.param({"x": Classless()}, "properties.x: Boom: no class", id="class-raises"),
        pytest.param(
            {"m": PairlessDict(a=1)},
            "properties.m: items() must give (key, value) pairs, got int",
            id="dict-items-not-pairs",
        ),
        pytest.param(
            {"m": ItemlessDict(a=1)}, "properties.m: Boom: no items", id="dict-items-raises"
        ),
        pytest.param(
            {"m": IterlessList([1])}, "properties.m: Boom: no iteration", id="list-iter-raises"
        ),
        pytest.param(
            {"m": FakeMapping(iterate=Boom("no iteration"))},
            "properties.m: Boom: no iteration",
            id="mapping-iter-raises",
        ),
        pytest.param(
            {"m": FakeMapping(get=KeyError("a"))},
            "properties.m: KeyError: 'a'",
            id="mapping-lists-a-missing-key",
        ),
        pytest.param(
            {"m": FakeMapping(iterate=Mute())},
            "properties.m: Mute",
            id="error-without-text",
        ),
        pytest.param(
            {"m": FakeMapping(keys=[UnhashableKey()])},
            "properties.m: Boom: no hash",
            id="key-hash-raises",
        ),
        pytest.param(
            {"m": FakeMapping(keys=[UncomparableKey(), UncomparableKey()])},
            "properties.m: Boom: no eq",
            id="key-eq-raises",
        ),
        pytest.param(
            {"d": RaisingDecimal("1.5")}, "properties.d: Boom: no finiteness", id="decimal-raises"
        ),
    ],
)
def test_hostile_value_error_names_its_path(properties: dict[Any, Any], message: str) -> None:
    assert invalid(frozen_builder().track, "1", "E", properties) == message


@pytest.mark.parametrize(
    ("traits", "message"),
    [
        pytest.param(Classless(), "traits: Boom: no class", id="class-raises"),
        pytest.param(
            FakeMapping(iterate=Boom("no iteration")),
            "traits: Boom: no iteration",
            id="iter-raises",
        ),
        pytest.param(FakeMapping(get=KeyError("a")), "traits: KeyError: 'a'", id="missing-key"),
        pytest.param(
            FakeMapping(keys=5), "traits: 'int' object is not iterable", id="keys-not-iterable"
        ),
    ],
)
def test_hostile_mapping_as_a_field_is_refused(traits: Any, message: str) -> None:
    assert invalid(frozen_builder().identify, "1", traits) == message


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        pytest.param(
            {HostileStr("k"): 1, "price": float("nan")},
            "properties.price: NaN is not valid JSON",
            id="str-key-whose-methods-raise",
        ),
        pytest.param(
            {"l": IterlessList(), "price": float("nan")},
            "properties.l: Boom: no iteration",
            id="list-iter-raises",
        ),
    ],
)
def test_hostile_object_does_not_derail_the_search_for_the_first_problem(
    properties: dict[Any, Any], message: str
) -> None:
    assert invalid(frozen_builder().track, "1", "E", properties) == message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({HostileStr("k"): 1}, {"k": 1}, id="str-key-whose-methods-raise"),
        pytest.param(LyingSet({1}), [1], id="set-whose-length-lies"),
    ],
)
def test_hostile_but_json_value_is_sent(value: Any, expected: Any) -> None:
    assert track_properties({"v": value}) == {"v": expected}


class Loop(enum.Enum):
    SELF = 1

    def __repr__(self) -> str:  # the default would show the value, which is itself
        return "Loop.SELF"


Loop.SELF._value_ = Loop.SELF  # an Enum whose value is itself: converting it never ends


class OnceRaising(FakeMapping):
    """Raises the first time it is read, and behaves afterwards."""

    def __iter__(self) -> Any:
        if self._iterate is not None:
            error, self._iterate = self._iterate, None
            raise error
        return iter(self._keys)


def test_value_that_never_converts_to_json_is_refused() -> None:
    text = invalid(frozen_builder().track, "1", "E", {"e": Loop.SELF})
    assert text == "properties.e: still not JSON after 200 conversions"


def test_error_that_does_not_recur_is_reported_with_the_encoders_error() -> None:
    value = OnceRaising(iterate=Boom("once"))
    text = invalid(frozen_builder().track, "1", "E", {"m": value})
    assert text == "message: cannot be serialized as JSON: Boom: once"


def test_long_error_text_is_shortened() -> None:
    value = FakeMapping(iterate=Boom("x" * 500))
    text = invalid(frozen_builder().track, "1", "E", {"m": value})
    assert text == f"properties.m: Boom: {'x' * 197}..."


def test_build_accepts_fields_in_any_mapping() -> None:
    message = frozen_builder().build("identify", "1", MappingProxyType({"traits": {"a": 1}}))
    assert json.loads(message.body)["traits"] == {"a": 1}


# --- keys that collide once stringified ---------------------------------------------------


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        pytest.param({1: "a", "1": "b"}, "properties.1", id="int-then-str"),
        pytest.param({"1": "a", 1: "b"}, "properties.1", id="str-then-int"),
        pytest.param({-7: "a", "-7": "b"}, "properties.-7", id="negative-int"),
        pytest.param({True: "x", "true": "y"}, "properties.true", id="true"),
        pytest.param({"false": "x", False: "y"}, "properties.false", id="false"),
        pytest.param({1.0: "a", "1.0": "b"}, "properties.1.0", id="float"),
        pytest.param({-0.0: "a", "-0.0": "b"}, "properties.-0.0", id="negative-zero"),
        pytest.param({1e16: "a", "1e+16": "b"}, "properties.1e+16", id="float-exponent"),
        pytest.param({Level.HIGH: "a", "3": "b"}, "properties.3", id="int-enum"),
        pytest.param({"a": [{"x": 0, 2: 1, "2": 2}]}, "properties.a[0].2", id="nested"),
        pytest.param(
            {"m": MappingProxyType({5: 1, "5": 2})}, "properties.m.5", id="read-only-mapping"
        ),
    ],
)
def test_keys_that_collide_once_stringified_are_refused(
    properties: dict[Any, Any], message: str
) -> None:
    text = invalid(frozen_builder().track, "1", "E", properties)
    assert text == f"{message}: duplicate key once converted to a string"


@pytest.mark.parametrize(
    ("build", "path"),
    [
        pytest.param(lambda b, v: b.identify("1", v), "traits.1", id="traits"),
        pytest.param(lambda b, v: b.identify("1", context=v), "context.1", id="context"),
        pytest.param(
            lambda b, v: b.identify("1", integrations=v), "integrations.1", id="integrations"
        ),
    ],
)
def test_colliding_keys_are_refused_in_every_field(build: Any, path: str) -> None:
    text = invalid(build, frozen_builder(), {1: "a", "1": "b"})
    assert text == f"{path}: duplicate key once converted to a string"


def test_build_refuses_fields_whose_keys_collide() -> None:
    text = invalid(frozen_builder().build, "identify", "1", {1: "a", "1": "b"})
    assert text == "1: duplicate key once converted to a string"


def test_non_string_keys_that_do_not_collide_are_sent() -> None:
    properties = {1: "a", "2": "b", False: "c", 1.5: "d", "1.0": "e"}
    assert track_properties(properties) == {
        "1": "a",
        "2": "b",
        "false": "c",
        "1.5": "d",
        "1.0": "e",
    }


def test_string_keys_that_look_like_numbers_are_sent() -> None:
    properties = {"1": "a", "-2": [{"3": 1}], "true": "b", "false": "c", "4.5": "d", "null": 0}
    assert track_properties(properties) == properties


def no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    assert len(keys) == len(set(keys)), f"duplicate keys in {keys}"
    return dict(pairs)


MIXED_KEYS = (
    st.integers(min_value=-3, max_value=3)
    | st.sampled_from([0.5, -0.0, 1.0, 1e16, 2.5e-7])
    | st.booleans()
    | st.sampled_from(["0", "1", "-1", "true", "false", "0.5", "1.0", "-0.0", "1e+16", "x"])
)


MIXED_VALUES = st.recursive(
    st.integers(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(MIXED_KEYS, children, max_size=5)
    ),
    max_leaves=15,
)
FIELD_BUILDS = {
    "traits": lambda b, v: b.identify("1", v),
    "properties": lambda b, v: b.track("1", "E", v),
    "context": lambda b, v: b.group("1", "2", context=v),
    "integrations": lambda b, v: b.identify("1", integrations=v),
}


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(FIELD_BUILDS)), st.dictionaries(MIXED_KEYS, MIXED_VALUES, max_size=5))
def test_a_built_message_never_repeats_a_key(field: str, value: dict[Any, Any]) -> None:
    result = build_or_error(lambda b: FIELD_BUILDS[field](b, value))
    if isinstance(result, InvalidMessageError):
        assert str(result).startswith(field)
        assert str(result).endswith(": duplicate key once converted to a string")
    else:
        json.loads(result.body, object_pairs_hook=no_duplicate_keys)


# --- size limit ---------------------------------------------------------------------------


def padded_track(padding: int) -> Message:
    return frozen_builder().track("1", "E", {"pad": "x" * padding})


def limit_padding() -> int:
    """The padding that makes the body, plus room for sentAt, exactly the size limit."""
    base = len(padded_track(0).body)
    return MAX_MESSAGE_BYTES - len(_SENT_AT_TEMPLATE) - base


def test_message_exactly_at_the_size_limit_is_accepted() -> None:
    message = padded_track(limit_padding())
    sent = message.body_sent_at(format_time(NOW))
    assert len(sent) == MAX_MESSAGE_BYTES
    assert strict_loads(sent)["sentAt"] == NOW_TEXT


def test_message_one_byte_over_the_size_limit_is_refused() -> None:
    text = invalid(padded_track, limit_padding() + 1)
    assert text == (
        f"message: {MAX_MESSAGE_BYTES + 1} bytes serialized, "
        f"over the {MAX_MESSAGE_BYTES}-byte limit"
    )


def test_size_limit_counts_utf8_bytes_not_characters() -> None:
    # Each "é" is 2 bytes: this many characters fit as ASCII but not as UTF-8.
    characters = limit_padding() // 2 + 1
    assert padded_track(characters).body
    with pytest.raises(InvalidMessageError):
        frozen_builder().track("1", "E", {"pad": "é" * characters})


# --- properties ---------------------------------------------------------------------------

SIMPLE_OFFSETS: st.SearchStrategy[Any] = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
TIMEZONES: st.SearchStrategy[Any] = st.none() | st.just(timezone.utc) | SIMPLE_OFFSETS
# Within a day of the ends of the calendar, conversion to UTC would overflow.
DATETIMES = st.datetimes(
    min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31), timezones=TIMEZONES
)
JSON_LIKE_LEAVES = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | DATETIMES
    | st.dates()
    | st.decimals(allow_nan=False, allow_infinity=False, min_value=-(10**30), max_value=10**30)
    | st.uuids()
)
JSON_LIKE = st.recursive(
    JSON_LIKE_LEAVES,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=25,
)


def expected_json(value: Any) -> Any:
    """An independent model of the conversions the builder promises."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds") + "Z"
    if isinstance(value, date):
        return value.isoformat() + "T00:00:00.000Z"
    if isinstance(value, Decimal):
        return int(value) if value == int(value) else float(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {key: expected_json(child) for key, child in value.items()}
    if isinstance(value, list):
        return [expected_json(child) for child in value]
    return value


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=10), JSON_LIKE, max_size=5))
def test_json_like_properties_round_trip(properties: dict[str, Any]) -> None:
    result = build_or_error(lambda b: b.track("1", "E", properties))
    if isinstance(result, InvalidMessageError):
        assert "byte limit" in str(result)
    else:
        assert strict_loads(result.body)["properties"] == expected_json(properties)


class Weird:
    def __repr__(self) -> str:
        return "Weird()"


ANY_LEAVES = (
    JSON_LIKE_LEAVES
    | st.floats()
    | st.binary(max_size=5)
    | st.text(st.characters(codec=None, categories=["Cs", "Lu", "Ll"]), max_size=5)
    | st.datetimes(timezones=st.none() | SIMPLE_OFFSETS)
    | st.decimals()
    | st.just(Decimal("1E+100000"))
    | st.just(5000).map(lambda digits: 10**digits)
    | st.builds(Weird)
    | st.builds(object)
    | st.complex_numbers(max_magnitude=10)
    | st.sampled_from([Color.RED, Level.HIGH, Plan.PRO, Nested.WHEN])
)
ANY_KEYS = (
    st.text(st.characters(codec=None, categories=["Cs", "Ll"]), max_size=5)
    | st.integers()
    | st.floats()
    | st.booleans()
    | st.none()
    | st.tuples(st.integers())
    | st.binary(max_size=3)
)
ANY_VALUE = st.recursive(
    ANY_LEAVES,
    lambda children: (
        st.lists(children, max_size=4)
        | st.tuples(children, children)
        | st.frozensets(st.integers() | st.text(max_size=3), max_size=3)
        | st.dictionaries(ANY_KEYS, children, max_size=4)
        | st.builds(MappingProxyType, st.dictionaries(st.text(max_size=3), children, max_size=3))
    ),
    max_leaves=20,
)


@settings(max_examples=200, deadline=None)
@given(ANY_VALUE, st.sampled_from(["track", "identify", "group"]))
def test_builder_only_raises_invalid_message_error(value: Any, kind: str) -> None:
    data = {"value": value}
    builds = {
        "track": lambda b: b.track("1", "E", data, context={"c": value}),
        "identify": lambda b: b.identify("1", data, integrations={"i": value}),
        "group": lambda b: b.group("1", "2", data),
    }
    # Anything but InvalidMessageError escapes build_or_error and fails the test.
    result = build_or_error(builds[kind])
    if isinstance(result, InvalidMessageError):
        text = str(result)
        assert text.encode("utf-8")
        assert ": " in text
    else:
        payload = strict_loads(result.body)
        assert result.payload() == payload
        assert payload["type"] == kind
        assert not any(isinstance(v, float) and not math.isfinite(v) for v in _leaves(payload))


HONEST = object()


class Fault:
    """What a hostile method does: raise ``error``, return ``lie``, or behave."""

    def __init__(self, error: Exception | None, lie: Any) -> None:
        self.error, self.lie = error, lie

    def __call__(self, honest: Any) -> Any:
        if self.error is not None:
            raise self.error
        return honest() if self.lie is HONEST else self.lie


def failing_generator() -> Any:
    yield ("a", 1)
    raise Boom("mid-iteration")


ERRORS = st.sampled_from(
    [
        *[Boom("x"), KeyError("k"), TypeError("t"), ValueError("v"), AttributeError("a")],
        *[RecursionError("r"), StopIteration(), OverflowError("o"), UnicodeError("u"), Mute()],
    ]
)
LIES = (
    st.sampled_from(
        [HONEST, 5, -1, 2**62, "x", None, [1, 2], [("a", 1, 2)], [("a", 1), ("a", 2)], [(1, 2)]]
    )
    | st.builds(failing_generator)
    | st.builds(lambda: iter([("b", 2)]))
)
FAULTS = st.builds(Fault, st.none() | ERRORS, LIES)


class HostileDict(dict[Any, Any]):
    def __init__(self, pairs: Any, fault: Fault) -> None:
        super().__init__(pairs)
        self.fault = fault

    def items(self) -> Any:
        return self.fault(lambda: dict.items(self))


class HostileMapping(Mapping[Any, Any]):
    def __init__(self, pairs: list[tuple[Any, Any]], faults: list[Fault]) -> None:
        self.pairs, self.faults = pairs, faults

    def __getitem__(self, key: Any) -> Any:
        found = [value for known, value in self.pairs if known is key]
        return self.faults[0](lambda: found[0] if found else 0)

    def __iter__(self) -> Any:
        return self.faults[1](lambda: iter([key for key, _ in self.pairs]))

    def __len__(self) -> Any:
        return self.faults[2](lambda: len(self.pairs))


class HostileList(list[Any]):
    def __init__(self, items: Any, fault: Fault) -> None:
        super().__init__(items)
        self.fault = fault

    def __iter__(self) -> Any:
        return self.fault(lambda: list.__iter__(self))


# Built, not sampled: Hypothesis hashes and prints the values it samples from.
HOSTILE_LEAVES = st.one_of(
    st.builds(Classless),
    st.builds(Unprintable),
    st.builds(RaisingDecimal, st.just("2")),
    st.builds(LyingSet, st.just({1, 2})),
    st.builds(YearlessDate, st.just(2020), st.just(1), st.just(1)),
    st.builds(lambda: datetime(2020, 1, 1, tzinfo=RaisingOffset())),
    st.builds(lambda: datetime(2020, 1, 1, tzinfo=IntOffset())),
)
HOSTILE_KEYS = (
    ANY_KEYS
    | st.builds(HostileStr, st.sampled_from(["k", "1", "true"]))
    | st.builds(Unprintable)
    | st.just(5000).map(lambda digits: 10**digits)
    | st.just(5000).map(lambda digits: (10**digits,))
)
# Keys a dict cannot even hold; only a Mapping of its own can list them.
UNHOLDABLE_KEYS = HOSTILE_KEYS | st.builds(UnhashableKey) | st.builds(UncomparableKey)


def hostile_containers(children: Any) -> Any:
    pairs = st.lists(st.tuples(HOSTILE_KEYS, children), max_size=3)
    any_pairs = st.lists(st.tuples(UNHOLDABLE_KEYS, children), max_size=3)
    return (
        st.builds(HostileDict, pairs, FAULTS)
        | st.builds(HostileMapping, any_pairs, st.lists(FAULTS, min_size=3, max_size=3))
        | st.builds(HostileList, st.lists(children, max_size=3), FAULTS)
        | st.dictionaries(HOSTILE_KEYS, children, max_size=3)
        | st.lists(children, max_size=3)
    )


HOSTILE_VALUE = st.recursive(ANY_LEAVES | HOSTILE_LEAVES, hostile_containers, max_leaves=12)
FIELDS = ("traits", "properties", "context", "integrations")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(FIELDS),
    st.booleans(),
    HOSTILE_VALUE,
)
def test_hostile_input_only_raises_invalid_message_error(
    field: str, whole: bool, value: Any
) -> None:
    data = value if whole else {"v": value}
    builds = {
        "traits": lambda b: b.identify("1", data),
        "properties": lambda b: b.track("1", "E", data),
        "context": lambda b: b.group("1", "2", context=data),
        "integrations": lambda b: b.identify("1", integrations=data),
    }
    # Anything but InvalidMessageError escapes build_or_error and fails the test.
    result = build_or_error(builds[field])
    if isinstance(result, InvalidMessageError):
        text = str(result)
        assert text.encode("utf-8")
        assert text.startswith((field, "message: ")), text
    else:
        assert result.payload() == strict_loads(result.body)


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for child in value.values() for leaf in _leaves(child)]
    if isinstance(value, list):
        return [leaf for child in value for leaf in _leaves(child)]
    return [value]
