"""Hostile input: whatever the app passes, a call builds a message or raises a library error.

Every argument of ``identify``, ``track`` and ``group`` and every ``Client`` setting is fed
arbitrary values: all JSON types, datetimes, Decimals, UUIDs, Enums, bytes, sets, NaN and
Infinity, lone surrogates, deep nesting, huge strings, non-string keys, odd ids. Each call
either builds a message or raises ``InvalidMessageError`` / ``ConfigurationError``; nothing else
escapes. Every message built is sent, through one long-lived client, to a real collector, whose
raw request bodies must be strict UTF-8, strict JSON, at most 32 KB, and say exactly what was
passed (checked against an independent model of the conversions); the sender threads survive.
"""

from __future__ import annotations

import collections
import json
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from enum import Enum, IntEnum
from types import MappingProxyType
from typing import Any, NoReturn
from uuid import UUID

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gainsight_segment as gs
from gainsight_segment.testing import Faults, LocalCollector

from .conftest import ACCESS_KEY
from .test_reliability import reconciles, record_figures, sender_threads

MAX_BODY = 32 * 1024
LIBRARY = {"name": "gainsight-segment", "version": gs.__version__}

# --------------------------------------------------------------------------------------------
# Strategies
# --------------------------------------------------------------------------------------------


class Color(Enum):
    RED = "red"
    TWO = 2


class Level(IntEnum):
    LOW = 1


class Name(str, Enum):
    ALICE = "alice"


class Odd(Enum):
    NAN = float("nan")
    NESTED = ("a", 1.5)
    BYTES = b"raw"
    OBJECT = object()


class Opaque(Mapping[Any, Any]):
    """A Mapping that is not a dict."""

    def __init__(self, data: dict[Any, Any]) -> None:
        self._data = data

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __repr__(self) -> str:
        return f"Opaque({self._data!r})"


def deep_list(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = [value]
    return value


def deep_dict(depth: int) -> Any:
    value: Any = "bottom"
    for _ in range(depth):
        value = {"d": value}
    return value


def cycle(kind: str) -> Any:
    if kind == "list":
        loop: list[Any] = []
        loop.append(loop)
        return loop
    d: dict[str, Any] = {}
    d["self"] = d
    return d


SURROGATES = ["\ud800", "\udbff", "\udc00", "\udfff"]
clean_text = st.text(max_size=30)
surrogate_text = st.builds(
    lambda a, s, b: a + s + b,
    st.text(max_size=5),
    st.sampled_from(SURROGATES),
    st.text(max_size=5),
)
texts = st.one_of(clean_text, clean_text, clean_text, surrogate_text)
# Repeated characters that serialize to 1, 2, 4 and 6 bytes, around and past the size limit.
huge_text = st.builds(
    lambda ch, n: ch * n,
    st.sampled_from(["x", "é", "😀", "\n", "\x00", '"', "\\"]),
    st.integers(5_000, 40_000),
) | st.just("x" * 1_000_000)
# Built lazily: Hypothesis shows its strategies' elements, and ints over 4300 digits have no
# repr.
huge_ints = st.sampled_from([(1, 4299), (-1, 4299), (1, 4300), (1, 5000), (1, 19), (-1, 19)]).map(
    lambda sign_digits: sign_digits[0] * 10 ** sign_digits[1]
)
decimals = st.decimals(allow_nan=True, allow_infinity=True) | st.sampled_from(
    [
        Decimal("1E+100000"),
        Decimal("-1E-100000"),
        Decimal("sNaN"),
        Decimal("1" * 400 + ".5"),
        Decimal("1E+32767"),
        Decimal("1.5E+400"),
        Decimal("-0"),
    ]
)
offsets = st.builds(
    timezone, st.timedeltas(min_value=timedelta(hours=-23), max_value=timedelta(hours=23))
)
datetimes = st.datetimes(timezones=st.none() | st.just(timezone.utc) | offsets) | st.sampled_from(
    [
        datetime.min.replace(tzinfo=timezone(timedelta(hours=1))),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-1))),
        datetime.min,
        datetime.max,
    ]
)
dates = st.dates()
enums = st.sampled_from([*Color, *Level, *Name, *Odd])
non_json = st.one_of(
    st.binary(max_size=8),
    st.binary(max_size=8).map(bytearray),
    st.sampled_from([object(), complex(1, 2), Ellipsis, len, type, NotImplemented]),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    huge_ints,
    st.floats(),  # NaN, ±Infinity, -0.0, subnormals
    texts,
    decimals,
    datetimes,
    dates,
    st.uuids(),
    enums,
    non_json,
)
keys = st.one_of(
    texts,
    texts,
    st.integers(),
    st.floats(),
    st.booleans(),
    st.none(),
    st.uuids(),
    st.sampled_from([*Color, *Level, *Name]),
    st.tuples(st.integers()),
    st.binary(max_size=3),
    st.frozensets(st.integers(), max_size=2),
    dates,
)
hashables = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), texts, st.uuids())


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    mappings = st.dictionaries(keys, children, max_size=5)
    return st.one_of(
        st.lists(children, max_size=5),
        st.tuples(children, children),
        mappings,
        mappings.map(MappingProxyType),
        mappings.map(Opaque),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
    )


values = st.one_of(
    st.recursive(scalars, containers, max_leaves=25),
    huge_text,
    # Deeper nesting is test_nesting_deeper_than_200_levels_is_refused's, while it fails.
    st.integers(1, 190).map(deep_list),
    st.integers(1, 190).map(deep_dict),
    st.sampled_from(["list", "dict"]).map(cycle),
)
mappings = st.one_of(st.dictionaries(keys, values, max_size=6), values)

# Plain, valid arguments: each call makes one or two arguments hostile and keeps the others
# sane, so that most calls test one thing and many messages get built and sent.
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**6), 10**6)
    | st.floats(allow_nan=False, allow_infinity=False)
    | clean_text,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(clean_text, children, max_size=3)
    ),
    max_leaves=8,
)
SANE: dict[str, st.SearchStrategy[Any]] = {
    "user_id": st.text(min_size=1, max_size=10).filter(str.strip) | st.integers() | st.uuids(),
    "anonymous_id": st.none(),
    "group_id": st.just("555"),
    "event": st.sampled_from(["Account Created", "Clicked"]),
    "payload": st.none() | st.dictionaries(clean_text, json_values, max_size=4),
    "context": st.none(),
    "integrations": st.none(),
    "timestamp": st.none(),
    "message_id": st.none(),
}
ids = st.one_of(
    st.none(),
    texts,
    st.sampled_from(["", "   ", "\t\n"]),
    st.integers(),
    huge_ints,
    st.floats(),
    st.uuids(),
    st.booleans(),
    values,
)
HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "user_id": ids,
    "anonymous_id": ids,
    "group_id": ids,
    "event": st.one_of(texts, st.sampled_from(["", "   "]), huge_text, values),
    "payload": mappings,
    "context": mappings,
    "integrations": mappings,
    "timestamp": st.one_of(datetimes, dates, values),
    "message_id": ids,
}
CALL_ARGUMENTS = {
    "identify": ["user_id", "payload"],
    "track": ["user_id", "event", "payload"],
    "group": ["user_id", "group_id", "payload"],
}
OPTIONS = ["anonymous_id", "context", "timestamp", "message_id", "integrations"]


@st.composite
def calls(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    method = draw(st.sampled_from(sorted(CALL_ARGUMENTS)))
    names = CALL_ARGUMENTS[method] + OPTIONS
    hostile = draw(st.sets(st.sampled_from(names), min_size=1, max_size=2))
    arguments = {name: draw(HOSTILE[name] if name in hostile else SANE[name]) for name in names}
    return method, arguments


def invoke(client: gs.Client, method: str, arguments: dict[str, Any]) -> gs.Receipt:
    positional = [arguments[name] for name in CALL_ARGUMENTS[method]]
    options = {name: arguments[name] for name in OPTIONS}
    result: gs.Receipt = getattr(client, method)(*positional, **options)
    return result


# --------------------------------------------------------------------------------------------
# An independent model of the conversions the design fixes (DESIGN.md section 4).
# --------------------------------------------------------------------------------------------


def expected_time(value: date) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"
    return value.isoformat() + "T00:00:00.000Z"


def expected_key(key: Any) -> str:
    if isinstance(key, str):
        return str.__str__(key)
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, int):
        return int.__repr__(key)
    if isinstance(key, float):
        return float.__repr__(key)
    raise AssertionError(f"a message was built with a {type(key).__name__} key")


def expected(value: Any) -> Any:
    """What a value must read as on the wire, once parsed back."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, Mapping):
        return {expected_key(k): expected(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [expected(v) for v in value]
    if isinstance(value, date):
        return expected_time(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return expected(value.value)
    raise AssertionError(f"a message was built with a {type(value).__name__} value")


def expected_id(value: Any) -> str:
    return str.__str__(value) if isinstance(value, str) else str(value)


def expected_message(method: str, arguments: dict[str, Any]) -> dict[str, Any]:
    """The message as the collector must parse it, without the fields the client picks."""
    message: dict[str, Any] = {"type": method, "channel": "server"}
    for name, field in (("user_id", "userId"), ("anonymous_id", "anonymousId")):
        if arguments[name] is not None:
            message[field] = expected_id(arguments[name])
    payload = expected(arguments["payload"] or {})
    if method == "track":
        message.update(event=str.__str__(arguments["event"]), properties=payload)
    elif method == "group":
        message.update(groupId=expected_id(arguments["group_id"]), traits=payload)
    else:
        message["traits"] = payload
    message["context"] = {**expected(arguments["context"] or {}), "library": LIBRARY}
    message["integrations"] = expected(arguments["integrations"] or {})
    if arguments["message_id"] is not None:
        message["messageId"] = expected_id(arguments["message_id"])
    if arguments["timestamp"] is not None:
        message["timestamp"] = expected_time(arguments["timestamp"])
    return message


def reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not strict JSON")


def strict_json(body: bytes) -> Any:
    """Parse a request body as strict UTF-8 and strict JSON (no NaN, no Infinity)."""
    return json.loads(body.decode("utf-8", errors="strict"), parse_constant=reject_constant)


# --------------------------------------------------------------------------------------------
# Scenario 7: hostile arguments to identify, track and group.
# --------------------------------------------------------------------------------------------

EXAMPLES = 800


def test_hostile_calls_build_or_raise_and_every_body_sent_is_strict_json(
    collector: LocalCollector,
) -> None:
    before = set(sender_threads())
    errors: list[gs.DeliveryError] = []
    # One long-lived client for the whole run; one sender keeps requests in call order.
    client = gs.Client(
        ACCESS_KEY,
        endpoint=collector.endpoint,
        exit_timeout=0,
        workers=1,
        max_queue_size=100_000,
        on_error=lambda error, message: errors.append(error),
    )
    built: list[tuple[str, dict[str, Any], str]] = []
    refused: collections.Counter[str] = collections.Counter()

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )
    @given(call=calls())
    def run(call: tuple[str, dict[str, Any]]) -> None:
        method, arguments = call
        try:
            receipt = invoke(client, method, arguments)
        except (gs.InvalidMessageError, gs.ConfigurationError) as error:
            # The text names a field and can be logged anywhere: valid Unicode, bounded.
            text = str(error)
            text.encode("utf-8")
            assert 0 < len(text) <= 10_000
            refused[type(error).__name__] += 1
            return
        assert receipt.outcome is gs.Outcome.QUEUED
        built.append((method, arguments, receipt.message_id))

    try:
        run()
        senders = set(sender_threads()) - before
        # The senders survived whatever they were given: a plain message still goes through.
        assert senders
        final = client.track("u", "Still Alive", {"accountId": "o283"})
        assert client.flush(timeout=60)
        assert all(thread.is_alive() for thread in senders)
    finally:
        client.shutdown(timeout=10)

    requests = collector.requests
    assert errors == []
    assert len(requests) == len(built) + 1
    for (method, arguments, message_id), request in zip(built, requests):
        assert request.status == 200, request
        assert len(request.body) <= MAX_BODY
        sent = strict_json(request.body)
        assert isinstance(sent, dict)
        assert sent["messageId"] == message_id
        assert sent.pop("sentAt").endswith("Z")
        if arguments["timestamp"] is None:
            assert sent.pop("timestamp").endswith("Z")
        if arguments["message_id"] is None:
            del sent["messageId"]
        assert sent == expected_message(method, arguments)
    assert strict_json(requests[-1].body)["messageId"] == final.message_id
    record_figures(
        "hostile-input",
        examples=EXAMPLES,
        built_and_delivered=len(built),
        refused=dict(refused),
        delivered=len(requests),
        duplicated=0,
        reported=len(errors),
        lost=len(built) + 1 - len(requests),
        largest_body=max(len(r.body) for r in requests),
    )


@pytest.mark.parametrize(
    "char", ["x", "é", "😀", "\n", "\x00"], ids=["1-byte", "2-byte", "4-byte", "escape", "u-escape"]
)
def test_the_largest_message_that_builds_is_sent_and_at_most_32_kb(
    collector: LocalCollector, char: str
) -> None:
    def build(n: int) -> gs.Receipt | None:
        try:
            return client.track("u", "Big", {"blob": char * n})
        except gs.InvalidMessageError:
            return None

    with gs.Client(ACCESS_KEY, endpoint=collector.endpoint, exit_timeout=0, send=False) as client:
        low, high = 0, MAX_BODY  # builds with `low` characters, not with `high`
        while high - low > 1:
            middle = (low + high) // 2
            low, high = (middle, high) if build(middle) else (low, middle)
    with gs.Client(ACCESS_KEY, endpoint=collector.endpoint, exit_timeout=0) as client:
        assert build(low) is not None
        assert build(low + 1) is None
        assert client.flush(timeout=10)
    ((request),) = collector.requests
    assert request.status == 200
    assert strict_json(request.body)["properties"]["blob"] == char * low
    # The limit is used to the byte (a multi-byte character may leave a few unused).
    assert MAX_BODY - len(char.encode("utf-8")) * 6 < len(request.body) <= MAX_BODY


@pytest.mark.parametrize("depth", [250, 600])
@pytest.mark.parametrize("shape", [deep_list, deep_dict], ids=["lists", "dicts"])
def test_nesting_deeper_than_200_levels_is_refused(shape: Any, depth: int) -> None:
    # Python's own json.loads gives up near 1,000 levels (the collector answers 400). Today
    # the limit applies only when the encoder runs out of stack, so whether a message of
    # about 1,000 levels builds depends on how deep the caller's stack is.
    client = gs.Client(ACCESS_KEY, send=False)  # a dry run: nothing to shut down
    with pytest.raises(gs.InvalidMessageError, match="levels deep"):
        client.identify("u", {"nested": shape(depth)})


def test_nesting_of_190_levels_is_delivered(collector: LocalCollector) -> None:
    with gs.Client(ACCESS_KEY, endpoint=collector.endpoint, exit_timeout=0) as client:
        client.identify("u", {"nested": deep_dict(190)})
        assert client.flush(timeout=10)
    ((request),) = collector.requests
    assert request.status == 200


# --------------------------------------------------------------------------------------------
# Scenario 7 (settings): hostile Client settings.
# --------------------------------------------------------------------------------------------

numbers = st.one_of(
    st.integers(),
    # Ints over 4300 digits are test_a_setting_over_4300_digits_is_refused_or_shown's, while it
    # fails.
    huge_ints.filter(lambda n: abs(n) < 10**4300),
    st.floats(),
    st.sampled_from([0, -1, 1e-300, 1e300, 10**400, True, False]),
    decimals,
    st.fractions(),
    st.text(max_size=5),
    st.none(),
)
access_keys = st.one_of(
    st.none(),
    texts,
    st.just(ACCESS_KEY),
    st.sampled_from(
        [
            " " + ACCESS_KEY + "\n",
            ACCESS_KEY.upper(),
            ACCESS_KEY[:-1],
            ACCESS_KEY + "0",
            ACCESS_KEY.replace("-", "_"),
            ACCESS_KEY.replace("0", "g"),
            ACCESS_KEY.replace("0", "\uff10"),  # a fullwidth digit
            ACCESS_KEY.replace("0", "\u0660"),  # an Arabic-Indic digit
            ACCESS_KEY[:-1] + "\ud800",
        ]
    ),
    values,
)
endpoints = st.one_of(
    texts,
    st.sampled_from(
        [
            "https://event.gainsight.com",
            "https://event.gainsight.com/",
            "http://event.gainsight.com",
            "http://localhost:1",
            "http://127.0.0.1:1",
            "http://[::1]:1",
            "https://user:pass@event.gainsight.com",
            "https://event.gainsight.com?x",
            "https://event.gainsight.com#x",
            "https://event.gainsight.com:99999",
            "ftp://event.gainsight.com",
            "https://",
            "//event.gainsight.com",
            "https://[::1",
            "http://127.0.0.1\\@evil.example",
            "http://127.0.0.1#@evil.example",
            "http://evil.example\\@127.0.0.1",
        ]
    ),
    values,
)
SETTINGS: dict[str, st.SearchStrategy[Any]] = {
    "track_whitelist": st.one_of(
        st.none(),
        st.lists(st.one_of(texts, st.dictionaries(texts, values, max_size=2), values), max_size=4),
        st.dictionaries(keys, values, max_size=3),
        texts,
        values,
    ),
    "endpoint": endpoints,
    "timeout": numbers,
    "max_retries": numbers,
    "backoff_factor": numbers,
    "backoff_max": numbers,
    "workers": numbers,
    "max_queue_size": numbers,
    "on_queue_full": st.one_of(st.sampled_from(["drop", "block", "DROP", ""]), values),
    "block_timeout": numbers,
    "exit_timeout": numbers,
    "sync_mode": st.one_of(st.booleans(), values),
    "send": st.one_of(st.booleans(), values),
    "verify": st.one_of(st.booleans(), texts, values),
    "proxies": st.one_of(st.none(), st.dictionaries(texts, texts, max_size=2), values),
    "on_error": st.one_of(st.none(), values),
    "on_success": st.one_of(st.none(), values),
}


@st.composite
def client_settings(draw: st.DrawFn) -> tuple[Any, dict[str, Any]]:
    names = draw(st.sets(st.sampled_from(sorted(SETTINGS)), max_size=5))
    return draw(access_keys), {name: draw(SETTINGS[name]) for name in sorted(names)}


@settings(
    max_examples=400,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(setup=client_settings())
def test_hostile_settings_build_a_client_or_raise_configuration_error(
    setup: tuple[Any, dict[str, Any]],
) -> None:
    access_key, options = setup
    refused: gs.ConfigurationError | None = None
    try:
        client = gs.Client(access_key, **options)
    except gs.ConfigurationError as error:
        refused = error
    if refused is not None:
        text = str(refused)
        text.encode("utf-8")
        if isinstance(access_key, str) and len(access_key.strip()) >= 8:
            assert access_key.strip() not in text + repr(refused)
        return
    try:
        # Nothing is sent: the endpoint may be anywhere. The key never shows.
        secret = client.settings.access_key.secret
        for shown in (repr(client), str(client), repr(client.settings), repr(client.stats())):
            assert secret not in shown
    finally:
        assert client.shutdown(timeout=0) is True


@pytest.mark.parametrize("name", ["timeout", "backoff_max", "workers", "max_queue_size"])
@pytest.mark.parametrize("sign", [1, -1], ids=["huge", "huge-negative"])
def test_a_setting_over_4300_digits_is_refused_or_shown(name: str, sign: int) -> None:
    value = sign * 10**5000
    try:
        client = gs.Client(ACCESS_KEY, send=False, **{name: value})
    except gs.ConfigurationError as error:
        str(error)
        return
    repr(client.settings)


@pytest.mark.parametrize("value", [1e10, 1e300, 10**400], ids=["1e10", "1e300", "10**400"])
@pytest.mark.parametrize("name", ["timeout", "backoff_max"])
def test_every_accepted_wait_can_be_timed_by_the_platform(name: str, value: float) -> None:
    try:
        client = gs.Client(ACCESS_KEY, send=False, **{name: value})
    except gs.ConfigurationError:
        return
    accepted = getattr(client.settings, name)
    # What the transport does with them: a socket timeout per attempt, and a timed wait
    # between retries (a server's Retry-After may ask for up to backoff_max).
    if name == "timeout":
        with socket.socket() as probe:
            probe.settimeout(accepted)
    else:
        assert threading.Lock().acquire(timeout=accepted)


# Values every check above accepts, at the far end of the range, against a live collector.
EXTREME_SETTINGS = [
    pytest.param({"timeout": 1e-9}, id="timeout=1e-9"),
    pytest.param(
        {"block_timeout": 86_400, "on_queue_full": "block", "max_queue_size": 1},
        id="block_timeout=a-day",
    ),
    pytest.param({"max_retries": 100}, id="max_retries=100"),
    pytest.param({"backoff_factor": 86_400}, id="backoff_factor=a-day"),
    pytest.param({"exit_timeout": 86_400}, id="exit_timeout=a-day"),
    pytest.param({"max_queue_size": 10_000_000}, id="max_queue_size=10**7"),
]


@pytest.mark.parametrize("options", EXTREME_SETTINGS)
def test_extreme_valid_settings_never_raise_in_the_caller_nor_leave_a_message_unsettled(
    collector: LocalCollector, options: dict[str, Any]
) -> None:
    collector.faults = Faults(failure_rate=0.5, failure_statuses=(503,), seed=1)
    delivered: list[str] = []
    reported: list[gs.DeliveryError] = []
    client = gs.Client(
        ACCESS_KEY,
        endpoint=collector.endpoint,
        on_success=lambda m: delivered.append(m["messageId"]),
        on_error=lambda e, m: reported.append(e),
        **{"exit_timeout": 0, "workers": 1, "backoff_factor": 0.001, "backoff_max": 0.01} | options,
    )
    sent = [client.track("u", "Extreme", {"n": n}).message_id for n in range(20)]
    # Every message settles: delivered, or reported as not delivered. None stays "in
    # flight" on a sender that hit an error and moved on.
    settled_in_time = client.flush(timeout=10)
    started = time.monotonic()
    client.shutdown(timeout=2)
    assert time.monotonic() - started < 2.5
    stats = client.stats()
    assert settled_in_time, stats
    assert (stats.pending, stats.in_flight) == (0, 0)
    assert reconciles(stats)
    assert sorted(delivered + [e.message_id for e in reported]) == sorted(sent)
    assert not [e for e in reported if "unexpected" in e.reason]
