"""Building one Segment message: validate the call, assemble and serialize it. Pure: no I/O.

Converting values and serializing them is :mod:`._json`'s. The clock and the message-id
generator are injectable so tests can freeze them.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any, Callable, NamedTuple, Optional, Union
from uuid import UUID

import attrs

from ._errors import InvalidMessageError
from ._json import MAX_MESSAGE_BYTES as MAX_MESSAGE_BYTES
from ._json import _to_json as _to_json
from ._json import error_reason
from ._json import format_time as format_time
from ._json import serialize as serialize
from ._version import __version__

LIBRARY = {"name": "gainsight-segment", "version": __version__}
# Shared by every message without a caller context; only ever read.
_LIBRARY_CONTEXT = {"library": LIBRARY}
# The sentAt field is spliced in at send time; the size limit reserves its room.
_SENT_AT_TEMPLATE = ',"sentAt":"2000-01-01T00:00:00.000Z"'
_MAX_BODY_BEFORE_SENT_AT = MAX_MESSAGE_BYTES - len(_SENT_AT_TEMPLATE)

Id = Union[str, int, float, UUID]
Properties = Optional[Mapping[str, Any]]
Timestamp = Union[datetime, date, None]


class TimeText:
    """The system time formatted as by :func:`format_time`, cheaply.

    Calls within the same millisecond reuse the text, and calls within the same second its
    date and time of day: formatting them costs more than the rest of a small message's
    timestamp handling together.
    """

    __slots__ = ("_last", "_second")

    def __init__(self) -> None:
        self._last = (-1, "")
        self._second = (-1, "")

    def __call__(self) -> str:
        """Return the current UTC time, e.g. ``2014-05-05T08:00:00.000Z``."""
        ms = int(time.time() * 1000)
        last = self._last
        if last[0] == ms:
            return last[1]
        seconds, millis = divmod(ms, 1000)
        second = self._second
        if second[0] != seconds:
            second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)))
            self._second = second
        text = f"{second[1]}.{millis:03d}Z"
        # Tuples, swapped whole, so a concurrent reader never pairs a time with another's text.
        self._last = (ms, text)
        return text


def new_message_id() -> str:
    """Return a fresh random UUID4 string (the default message-id generator)."""
    # Cheaper than str(uuid.uuid4()) and still a valid version 4, variant 1 UUID.
    h = os.urandom(16).hex()
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


def _id(field: str, value: object) -> str:
    if type(value) is str and value and not value[0].isspace():  # the common case
        return value
    try:
        return _id_text(field, value)
    except InvalidMessageError:
        raise
    except Exception as error:  # a hostile __str__, __class__, ...
        raise InvalidMessageError(f"{field}: {error_reason(error)}") from None


def _id_text(field: str, value: object) -> str:
    if issubclass(type(value), str):
        # Its characters, as the encoder writes them, in an exact str: a subclass's methods
        # could raise or compare oddly later, and its __str__ (a str Enum's) says otherwise.
        text = str.__str__(value)
        if not text.strip():
            raise InvalidMessageError(f"{field}: must not be empty")
        return text
    if isinstance(value, bool) or not isinstance(value, (int, float, UUID)):
        raise InvalidMessageError(
            f"{field}: must be a string, number or UUID, got {type(value).__name__}"
        )
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidMessageError(f"{field}: must be a finite number")
    try:
        return str.__str__(str(value))
    except ValueError:  # an int over sys.get_int_max_str_digits()
        raise InvalidMessageError(f"{field}: integer has too many digits") from None


def check_event(event: object) -> str:
    """Return a track's event name, checked.

    Returns:
        The name, as an exact ``str`` even when a subclass was given.

    Raises:
        InvalidMessageError: Unless it is a string with something besides white space.
    """
    if type(event) is str and event and not event.isspace():  # the common case
        return event
    # A subclass's characters (a str Enum's value), in an exact str, as for ids.
    text = str.__str__(event) if issubclass(type(event), str) else ""
    if not text or text.isspace():
        raise InvalidMessageError("event: must be a non-empty string")
    return text


def _mapping(field: str, value: object) -> dict[str, Any]:
    if value is None:
        return {}
    if type(value) is dict:
        return value
    try:
        if isinstance(value, Mapping):
            return dict(value)
    except Exception as error:  # its iteration, item access or keys' __hash__ raised
        raise InvalidMessageError(f"{field}: {error_reason(error)}") from None
    raise InvalidMessageError(f"{field}: must be a mapping, got {type(value).__name__}")


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
        """Return the message as a dict, as it is sent but without ``sentAt``.

        Never raises for a message the builder made: its body is strict JSON nested at
        most 200 levels, which decodes well within Python's recursion limit.
        """
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
        foreign = _add_context(payload, fields, context, integrations)
        mid = self.new_id() if message_id is None else _id("messageId", message_id)
        payload["messageId"] = mid
        if timestamp is None:
            payload["timestamp"] = self._now() if self.clock is None else format_time(self.clock())
        else:
            payload["timestamp"] = _timestamp_text(timestamp)
        payload["channel"] = "server"
        # Ours, with keys of our own: the library, and the context and the integrations
        # unless the caller gave them.
        own = 1 + (context is None) + (integrations is None)
        body = serialize(payload, own=own, foreign=foreign)
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


def _add_context(
    payload: dict[str, Any], fields: dict[str, Any], context: object, integrations: object
) -> list[dict[str, Any]]:
    """Add the context and the integrations to a payload.

    Returns:
        The dicts whose keys came from the caller, one for each container of the payload
        that holds such keys: ``fields`` for the payload itself (its other keys are ours),
        the dicts among the fields, and the context and the integrations if given.
    """
    foreign = [fields]
    for value in fields.values():  # a loop costs less than a comprehension for so few
        if value.__class__ is dict:
            foreign.append(value)
    if context is None:
        payload["context"] = _LIBRARY_CONTEXT
    else:
        payload["context"] = {**_mapping("context", context), "library": LIBRARY}
        foreign.append(payload["context"])
    if integrations is None:
        payload["integrations"] = {}
    else:
        payload["integrations"] = _mapping("integrations", integrations)
        foreign.append(payload["integrations"])
    return foreign


def _timestamp_text(value: object) -> str:
    try:
        if isinstance(value, date):
            return format_time(value)
    except Exception as error:  # out of range in UTC, or a tzinfo that raises or lies
        raise InvalidMessageError(f"timestamp: {error_reason(error)}") from None
    raise InvalidMessageError(f"timestamp: must be a datetime, got {type(value).__name__}")
