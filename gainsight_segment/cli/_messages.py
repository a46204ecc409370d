"""Segment messages from text: timestamps, JSON Lines, and one message handed to a client.

``replay`` reads a file of Segment messages line by line with :func:`read_lines`, decodes each
with :func:`parse_line` and hands it to a client with :func:`submit`; ``send`` parses its
``--timestamp`` with :func:`parse_timestamp`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import IO, Any, NoReturn

import gainsight_segment as gs

SUPPORTED_TYPES = ("identify", "track", "group")
# Far above the 32 KB message limit: a longer line cannot be a valid message, and reading it
# whole could exhaust memory. Its start is kept in the rejects file.
MAX_LINE_BYTES = 1 << 20
LINE_EXCERPT = 1000
"""Bytes kept of a line over :data:`MAX_LINE_BYTES`."""

_ISO_DATETIME = re.compile(
    r"(\d{4}-\d{2}-\d{2})"
    r"(?:[Tt ](\d{2}:\d{2}(?::\d{2})?)(?:[.,](\d+))?"
    r"\s*([Zz]|[+-]\d{2}(?::?\d{2})?)?)?"
)


class RejectedLine(Exception):
    """A line that cannot be replayed; the text is the reason written to the rejects file."""


def parse_timestamp(text: str) -> datetime:
    """Parse an ISO-8601 date or date-time, as Segment writes them, on every Python version.

    Accepts a ``Z`` or numeric offset, any number of fraction digits (``.339``,
    ``.123456789``), and a date alone. A result without an offset is naive, which the
    message builder takes as UTC.

    Args:
        text: e.g. ``"2014-05-05T08:00:00.000Z"``.

    Returns:
        The date-time.

    Raises:
        ValueError: When ``text`` is not an ISO-8601 date or date-time.
    """
    match = _ISO_DATETIME.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"not an ISO-8601 date-time: {text[:40]!r}")
    day, clock, fraction, offset = match.groups()
    iso = day
    if clock:
        iso += "T" + (clock if len(clock) == 8 else clock + ":00")
        if fraction:
            iso += "." + (fraction + "000000")[:6]
    if offset:
        if offset in ("Z", "z"):
            offset = "+00:00"
        elif len(offset) == 3:
            offset += ":00"
        elif ":" not in offset:
            offset = f"{offset[:3]}:{offset[3:]}"
        iso += offset
    try:
        return datetime.fromisoformat(iso)
    except ValueError as exc:
        raise ValueError(f"not a valid date-time: {text[:40]!r} ({exc})") from None


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def parse_line(raw: bytes) -> dict[str, Any]:
    """Decode one line of the file into a JSON object.

    Args:
        raw: The line's bytes, without its line break.

    Returns:
        The object.

    Raises:
        RejectedLine: When the line is not UTF-8, not strict JSON (``NaN`` is refused) or
            not an object.
    """
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RejectedLine(f"not valid UTF-8 (byte {exc.start})") from None
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise RejectedLine(f"not valid JSON: {exc.msg} (column {exc.colno})") from None
    except (ValueError, RecursionError) as exc:
        raise RejectedLine(f"not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise RejectedLine(f"not a JSON object but a {type(value).__name__}")
    return value


def submit(
    client: gs.Client, message: Mapping[str, Any], message_id: str | None = None
) -> gs.Receipt:
    """Hand one Segment message to a client, as the matching ``identify``/``track``/``group``.

    Fields other than ``type``, ``userId``, ``anonymousId``, ``event``, ``properties``,
    ``traits``, ``groupId``, ``context``, ``integrations`` and ``timestamp`` are ignored
    (exports carry ``receivedAt``, ``sentAt`` and the like, which are set again on sending).

    Args:
        client: The client.
        message: The Segment message.
        message_id: The ``messageId`` to send it with; the message's own by default.

    Returns:
        The client's receipt.

    Raises:
        RejectedLine: When the type is missing or not one Gainsight accepts, or the
            timestamp cannot be parsed.
        InvalidMessageError: When the client cannot build the message.
    """
    kind = message.get("type")
    if not isinstance(kind, str) or not kind:
        raise RejectedLine("type: missing; expected identify, track or group")
    kind = kind.lower()
    if kind not in SUPPORTED_TYPES:
        raise RejectedLine(
            f"type: {kind!r} is not supported; Gainsight accepts identify, track and group"
        )
    timestamp = message.get("timestamp")
    when: datetime | None = None
    if timestamp is not None:
        if not isinstance(timestamp, str):
            raise RejectedLine(
                f"timestamp: must be an ISO-8601 string, got {type(timestamp).__name__}"
            )
        try:
            when = parse_timestamp(timestamp)
        except ValueError as exc:
            raise RejectedLine(f"timestamp: {exc}") from None
    options: dict[str, Any] = {
        "anonymous_id": message.get("anonymousId"),
        "context": message.get("context"),
        "timestamp": when,
        "message_id": message.get("messageId") if message_id is None else message_id,
        "integrations": message.get("integrations"),
    }
    # Typed Any: the client validates each of them, naming the field when one is wrong.
    user_id: Any = message.get("userId")
    if kind == "identify":
        return client.identify(user_id, message.get("traits"), **options)
    if kind == "track":
        event: Any = message.get("event")
        return client.track(user_id, event, message.get("properties"), **options)
    group_id: Any = message.get("groupId")
    return client.group(user_id, group_id, message.get("traits"), **options)


def _read_line(stream: IO[bytes]) -> tuple[bytes, int, bool]:
    """Read one line without ever holding more than ``MAX_LINE_BYTES`` of it.

    Returns:
        The line (its start, if too long) without the line break, the bytes it used in the
        input, and whether it was too long.
    """
    raw = stream.readline(MAX_LINE_BYTES + 1)
    size = len(raw)
    if len(raw) <= MAX_LINE_BYTES or raw.endswith(b"\n"):
        return raw.rstrip(b"\r\n"), size, False
    while True:
        rest = stream.readline(MAX_LINE_BYTES)
        size += len(rest)
        if not rest or rest.endswith(b"\n"):
            return raw[:LINE_EXCERPT], size, True


def read_lines(source: IO[bytes]) -> Iterator[tuple[int, bytes, int, bool]]:
    """Yield each line's number, bytes (without line break), size in the input, and whether
    it was too long (then the bytes are only its start)."""
    number = 0
    while True:
        raw, size, too_long = _read_line(source)
        if not size:
            return
        number += 1
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        yield number, raw, size, too_long
