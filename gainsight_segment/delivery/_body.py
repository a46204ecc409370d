"""A message on its way is only its JSON body: the least memory per queued message.

Everything delivery needs is in the body; what little it needs to read from it (the id,
for errors and logs) is read only when it is needed.
"""

from __future__ import annotations

import json
import re
from typing import Any

# The builder writes the top-level messageId after all of the caller's data: only the
# timestamp, the channel and (when sent) sentAt follow, none of which can contain it. So
# its last occurrence is the top-level one.
_MESSAGE_ID = re.compile(rb'"messageId":"((?:[^"\\]|\\.)*)"')
_KEY = b'"messageId":"'


def message_id(body: bytes) -> str | None:
    """The ``messageId`` of a message body, or ``None`` when it has none."""
    start = body.rfind(_KEY)
    if start < 0:
        return None
    found = _MESSAGE_ID.match(body, start)
    if found is None:
        return None
    try:
        value: str = json.loads(b'"' + found.group(1) + b'"')
    except ValueError:
        return None
    return value


def with_sent_at(body: bytes, sent_at: str) -> bytes:
    """The body to send: ``sentAt`` added as its last field.

    Args:
        body: A JSON object, as the builder wrote it.
        sent_at: The formatted send time, e.g. ``2014-05-05T08:00:00.000Z``.
    """
    return b"".join((body[:-1], b',"sentAt":"', sent_at.encode("ascii"), b'"}'))


def payload(body: bytes) -> dict[str, Any]:
    """The message as a dict (what callbacks receive).

    Raises:
        ValueError: When the body is not a JSON object (or is nested deeper than this
            thread can decode: ``RecursionError`` is a ``RuntimeError`` and passes too).
    """
    value: dict[str, Any] = json.loads(body)
    return value
