"""Tests of ``gainsight_segment._message``: building, converting and serializing messages."""

from __future__ import annotations

import copy
import enum
import json
import math
from collections import OrderedDict
from collections.abc import Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from types import MappingProxyType
from typing import Any
from uuid import UUID

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gainsight_segment
from gainsight_segment import GainsightError, InvalidMessageError, MessageBuilder
from gainsight_segment._message import (
    _MAX_DEPTH,
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
        assert payload["type"] == kind
        assert not any(isinstance(v, float) and not math.isfinite(v) for v in _leaves(payload))


def _leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for child in value.values() for leaf in _leaves(child)]
    if isinstance(value, list):
        return [leaf for child in value for leaf in _leaves(child)]
    return [value]
