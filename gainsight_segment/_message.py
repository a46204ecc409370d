"""Building one Segment message: validate, convert and serialize. Pure: no I/O.

The clock and the message-id generator are injectable so tests can freeze them.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from datetime import date, datetime, timezone
from decimal import Decimal
from enum import Enum
from typing import Any, Callable, NamedTuple, Optional, Union
from uuid import UUID

import attrs

from ._errors import InvalidMessageError
from ._version import __version__

LIBRARY = {"name": "gainsight-segment", "version": __version__}
# Shared by every message without a caller context; only ever read.
_LIBRARY_CONTEXT = {"library": LIBRARY}
MAX_MESSAGE_BYTES = 32 * 1024
# The sentAt field is spliced in at send time; the size limit reserves its room.
_SENT_AT_TEMPLATE = ',"sentAt":"2000-01-01T00:00:00.000Z"'
_MAX_BODY_BEFORE_SENT_AT = MAX_MESSAGE_BYTES - len(_SENT_AT_TEMPLATE)
_MAX_DEPTH = 200

Id = Union[str, int, float, UUID]
Properties = Optional[Mapping[str, Any]]
Timestamp = Union[datetime, date, None]


def format_time(value: date) -> str:
    """Format a date or datetime as UTC ISO-8601 with milliseconds and ``Z``.

    Naive datetimes are taken as UTC; a date is midnight UTC.

    Args:
        value: The date or datetime.

    Returns:
        A string like ``2014-05-05T08:00:00.000Z``.
    """
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset():
            value = value.astimezone(timezone.utc)
        return (
            f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:"
            f"{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
        )
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}T00:00:00.000Z"


def utc_now() -> datetime:
    """Return the current time, timezone-aware in UTC (the default clock)."""
    return datetime.now(timezone.utc)


class TimeText:
    """The system time formatted as by :func:`format_time`, cheaply.

    Calls within the same millisecond reuse the text: formatting costs more than the rest of
    a small message's timestamp handling together.
    """

    __slots__ = ("_last",)

    def __init__(self) -> None:
        self._last = (-1, "")

    def __call__(self) -> str:
        """Return the current UTC time, e.g. ``2014-05-05T08:00:00.000Z``."""
        ms = int(time.time() * 1000)
        last = self._last
        if last[0] == ms:
            return last[1]
        seconds, millis = divmod(ms, 1000)
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
        # One tuple, swapped whole, so a concurrent reader never pairs a time with another's text.
        self._last = (ms, text)
        return text


def new_message_id() -> str:
    """Return a fresh random UUID4 string (the default message-id generator)."""
    # Cheaper than str(uuid.uuid4()) and still a valid version 4, variant 1 UUID.
    h = os.urandom(16).hex()
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


def _to_json(value: Any) -> Any:
    """Convert one value the JSON encoder does not know natively."""
    if isinstance(value, (datetime, date)):
        return format_time(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not valid JSON")
        if value != value.to_integral_value():
            return float(value)
        # int() of a Decimal like 1E+1000000 takes minutes; no such number fits a message.
        if value.adjusted() >= MAX_MESSAGE_BYTES:
            raise ValueError(f"Decimal with {value.adjusted() + 1} digits is too large")
        return int(value)
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, (set, frozenset)):
        return list(value)
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _make_encode() -> Callable[[Any], str]:
    """Return the fastest compact, strict JSON encoding function this Python has.

    ``JSONEncoder.encode`` builds a new C encoder on every call; building it once saves
    most of the cost for a small message. No circular-reference bookkeeping: a cycle ends
    in ``RecursionError``, and the slow path then says where it is.
    """
    c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
    if c_make_encoder is not None:
        try:
            encoder = c_make_encoder(
                None, _to_json, json.encoder.encode_basestring, None, ":", ",", False, False, False
            )
        except TypeError:  # pragma: no cover - a C encoder with another signature
            pass
        else:
            return lambda value: "".join(encoder(value, 0))
    fallback = json.JSONEncoder(  # pragma: no cover - Pythons without the C encoder
        ensure_ascii=False,
        allow_nan=False,
        check_circular=False,
        separators=(",", ":"),
        default=_to_json,
    )
    return fallback.encode  # pragma: no cover


_encode = _make_encode()


def _child_path(path: str, key: object) -> str:
    # A key that is not valid Unicode is escaped so the error text itself can be printed.
    text = key if isinstance(key, str) and _scalar_problem(key) is None else repr(key)
    if len(text) > 40:
        text = text[:37] + "..."
    return f"{path}.{text}" if path else text


def _scalar_problem(value: object) -> str | None:
    if isinstance(value, float) and not math.isfinite(value):
        return f"{'NaN' if value != value else 'Infinity'} is not valid JSON"
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains a lone surrogate, which is not valid Unicode"
    if isinstance(value, int) and not isinstance(value, bool):
        try:
            int.__repr__(value)
        except ValueError:  # over sys.get_int_max_str_digits()
            return "integer has too many digits to serialize"
    return None


def _key_problem(key: object) -> str | None:
    if key is None or not isinstance(key, (str, int, float)):
        return f"keys must be str, int, float or bool, not {type(key).__name__}"
    return _scalar_problem(key)


def _find_problem(payload: Mapping[str, Any]) -> str:
    """Walk a payload that failed to serialize and say where and why.

    Iterative, so that very deep nesting cannot exhaust the caller's stack.
    """
    return _first_problem(payload) or "message: cannot be serialized as JSON"


def _first_problem(payload: Mapping[str, Any]) -> str | None:
    """Return where and why the payload is not JSON, or ``None`` when it is."""
    stack: list[tuple[str, Any, int]] = [("", payload, 0)]
    on_path: set[int] = set()
    exits: list[tuple[int, int]] = []
    while stack:
        path, value, depth = stack.pop()
        while exits and exits[-1][0] >= depth:
            on_path.discard(exits.pop()[1])
        if value is None or isinstance(value, (bool, int, float, str)):
            problem = _scalar_problem(value)
            if problem:
                return f"{path}: {problem}"
            continue
        if depth >= _MAX_DEPTH:
            return f"{path}: nested more than {_MAX_DEPTH} levels deep"
        if not isinstance(value, (dict, list, tuple)):
            try:
                value = _to_json(value)
            except (TypeError, ValueError, OverflowError) as exc:
                return f"{path}: {exc}"
            stack.append((path, value, depth + 1))
            continue
        if id(value) in on_path:
            return f"{path}: circular reference"
        on_path.add(id(value))
        exits.append((depth, id(value)))
        if isinstance(value, dict):
            children = []
            for key, child in value.items():
                problem = _key_problem(key)
                if problem:
                    return f"{_child_path(path, key)}: {problem}"
                children.append((_child_path(path, key), child, depth + 1))
        else:
            children = [(f"{path}[{i}]", child, depth + 1) for i, child in enumerate(value)]
        stack.extend(reversed(children))
    return None


_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _maybe_too_deep(body: bytes) -> bool:
    """Tell, cheaply, whether the containers of a JSON body may nest past the limit.

    Keeps only the brackets, then peels off innermost pairs once per level, all in C; a
    wide but shallow message takes a few passes. Brackets inside strings blur the count,
    so a "yes" is checked exactly by the caller; a message crafted to look shallow can
    slip through, and its receiver then refuses it, which is reported like any refusal.
    """
    brackets = body.translate(None, _NOT_BRACKETS)
    for _ in range(_MAX_DEPTH):
        peeled = brackets.replace(b"[]", b"").replace(b"{}", b"")
        if not peeled or len(peeled) == len(brackets):
            return False
        brackets = peeled
    return True


def serialize(payload: Mapping[str, Any]) -> bytes:
    """Serialize a payload as compact UTF-8 JSON, converting what JSON lacks.

    Args:
        payload: The message as a mapping.

    Returns:
        The JSON document as bytes.

    Raises:
        InvalidMessageError: Naming the field path of the first value that is not JSON
            (unknown type, NaN or Infinity, lone surrogate, bad key, cycle, too deep).
    """
    try:
        text = _encode(payload)
        body = text.encode("utf-8")
    except (TypeError, ValueError, OverflowError, RecursionError):
        raise InvalidMessageError(_find_problem(payload)) from None
    # The encoder writes a None key as "null" instead of failing. Every such key shows as
    # '"null":' in the text, so one substring search keeps the walk off the common path;
    # a real "null" key or an escaped '\"null\":' in a string only costs that walk.
    # Likewise, nesting deeper than the limit encodes fine up to Python's recursion limit,
    # yet receivers refuse it; only a message with that many brackets can be that deep.
    if '"null":' in text or (
        text.count("{") + text.count("[") > _MAX_DEPTH and _maybe_too_deep(body)
    ):
        problem = _first_problem(payload)
        if problem:
            raise InvalidMessageError(problem)
    return body


def _id(field: str, value: object) -> str:
    if value.__class__ is str and value and not value[0].isspace():  # the common case
        return value
    if isinstance(value, str):
        if not value.strip():
            raise InvalidMessageError(f"{field}: must not be empty")
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float, UUID)):
        raise InvalidMessageError(
            f"{field}: must be a string, number or UUID, got {type(value).__name__}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidMessageError(f"{field}: must be a finite number")
    try:
        return str(value)
    except ValueError:  # an int over sys.get_int_max_str_digits()
        raise InvalidMessageError(f"{field}: integer has too many digits") from None


def check_event(event: object) -> str:
    """Return a track's event name, checked.

    Raises:
        InvalidMessageError: Unless it is a string with something besides white space.
    """
    if not isinstance(event, str) or not event or event.isspace():
        raise InvalidMessageError("event: must be a non-empty string")
    return event


def _mapping(field: str, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InvalidMessageError(f"{field}: must be a mapping, got {type(value).__name__}")
    return value if type(value) is dict else dict(value)


class Message(NamedTuple):
    """One validated, serialized message, ready to send.

    A named tuple rather than an attrs class: one is made for every call, on the caller's
    thread, so it must be cheap.

    Attributes:
        type: ``"identify"``, ``"track"`` or ``"group"``.
        message_id: The message's ``messageId``.
        body: The JSON body without ``sentAt``, which is added when it is sent.
        event: The event name for a track, else ``None``.
    """

    type: str
    message_id: str
    body: bytes
    event: str | None = None

    def payload(self) -> dict[str, Any]:
        """Return the message as a dict, as it is sent but without ``sentAt``."""
        result: dict[str, Any] = json.loads(self.body)
        return result

    def body_sent_at(self, sent_at: str) -> bytes:
        """Return the body to send, with ``sentAt`` set.

        Args:
            sent_at: The formatted send time (see :func:`format_time`).
        """
        return b"".join((self.body[:-1], b',"sentAt":"', sent_at.encode("ascii"), b'"}'))


@attrs.frozen
class MessageBuilder:
    """Builds messages; the clock and the id generator are injectable for tests.

    Attributes:
        clock: Returns the time used for ``timestamp`` when the caller gives none;
            ``None`` (the default) reads the system clock.
        new_id: Returns a fresh ``messageId`` when the caller gives none.
    """

    clock: Callable[[], datetime] | None = None
    new_id: Callable[[], str] = new_message_id
    _now: TimeText = attrs.field(factory=TimeText, init=False, eq=False, repr=False)

    def build(
        self,
        type: str,
        user_id: Id | None,
        fields: dict[str, Any],
        *,
        anonymous_id: Id | None = None,
        context: Properties = None,
        timestamp: Timestamp = None,
        message_id: Id | None = None,
        integrations: Properties = None,
    ) -> Message:
        """Validate, convert and serialize one message.

        Args:
            type: ``"identify"``, ``"track"`` or ``"group"``.
            user_id: The user's id; may be ``None`` when ``anonymous_id`` is given.
            fields: The type's own fields (``traits``; ``event`` and ``properties``;
                ``groupId`` and ``traits``), already validated.
            anonymous_id: The anonymous id.
            context: The caller's context; the library's name and version are added.
            timestamp: When it happened; now when ``None``.
            message_id: The message id; a fresh UUID4 when ``None``.
            integrations: The caller's integrations object.

        Returns:
            The serialized message.

        Raises:
            InvalidMessageError: Naming the field that is wrong.
        """
        payload: dict[str, Any] = {"type": type}
        if user_id is not None:
            payload["userId"] = _id("userId", user_id)
        if anonymous_id is not None:
            payload["anonymousId"] = _id("anonymousId", anonymous_id)
        elif user_id is None:
            raise InvalidMessageError("userId: a userId or an anonymousId is required")
        payload.update(fields)
        payload["context"] = (
            _LIBRARY_CONTEXT
            if context is None
            else {**_mapping("context", context), "library": LIBRARY}
        )
        payload["integrations"] = (
            {} if integrations is None else _mapping("integrations", integrations)
        )
        mid = self.new_id() if message_id is None else _id("messageId", message_id)
        payload["messageId"] = mid
        if timestamp is None:
            payload["timestamp"] = self._now() if self.clock is None else format_time(self.clock())
        elif isinstance(timestamp, date):
            payload["timestamp"] = _checked_time(timestamp)
        else:
            raise InvalidMessageError(
                # The parameter ``type`` shadows the builtin here.
                f"timestamp: must be a datetime, got {timestamp.__class__.__name__}"
            )
        payload["channel"] = "server"
        body = serialize(payload)
        if len(body) > _MAX_BODY_BEFORE_SENT_AT:
            raise InvalidMessageError(
                f"message: {len(body) + len(_SENT_AT_TEMPLATE)} bytes serialized, "
                f"over the {MAX_MESSAGE_BYTES}-byte limit"
            )
        return Message(type, mid, body, fields.get("event"))

    def identify(
        self,
        user_id: Id | None,
        traits: Properties = None,
        *,
        anonymous_id: Id | None = None,
        context: Properties = None,
        timestamp: Timestamp = None,
        message_id: Id | None = None,
        integrations: Properties = None,
    ) -> Message:
        """Build an identify message; the options as for :meth:`build`."""
        return self.build(
            "identify",
            user_id,
            {"traits": _mapping("traits", traits)},
            anonymous_id=anonymous_id,
            context=context,
            timestamp=timestamp,
            message_id=message_id,
            integrations=integrations,
        )

    def track(
        self,
        user_id: Id | None,
        event: str,
        properties: Properties = None,
        *,
        anonymous_id: Id | None = None,
        context: Properties = None,
        timestamp: Timestamp = None,
        message_id: Id | None = None,
        integrations: Properties = None,
    ) -> Message:
        """Build a track message; the options as for :meth:`build`."""
        return self.build(
            "track",
            user_id,
            {"event": check_event(event), "properties": _mapping("properties", properties)},
            anonymous_id=anonymous_id,
            context=context,
            timestamp=timestamp,
            message_id=message_id,
            integrations=integrations,
        )

    def group(
        self,
        user_id: Id | None,
        group_id: Id,
        traits: Properties = None,
        *,
        anonymous_id: Id | None = None,
        context: Properties = None,
        timestamp: Timestamp = None,
        message_id: Id | None = None,
        integrations: Properties = None,
    ) -> Message:
        """Build a group message; the options as for :meth:`build`."""
        if group_id is None:
            raise InvalidMessageError("groupId: is required")
        return self.build(
            "group",
            user_id,
            {"groupId": _id("groupId", group_id), "traits": _mapping("traits", traits)},
            anonymous_id=anonymous_id,
            context=context,
            timestamp=timestamp,
            message_id=message_id,
            integrations=integrations,
        )


def _checked_time(value: date) -> str:
    try:
        return format_time(value)
    except (OverflowError, ValueError) as exc:
        raise InvalidMessageError(f"timestamp: {exc}") from None
