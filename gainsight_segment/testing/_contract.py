"""What Gainsight's event endpoint accepts, as the collector checks it.

The collector keeps its own copy of the contract rather than the client's constants: a fake
endpoint that read the client's path or header names would agree with a client bug instead of
catching it.
"""

from __future__ import annotations

import json
from typing import Any, NoReturn

EVENT_PATH = "/clickstream/segmentio/event"
MESSAGE_TYPES = ("identify", "track", "group")
# Far above the client's 32 KB message limit, so the collector never rejects what the client
# considers valid, yet small enough that a runaway test cannot exhaust memory.
MAX_BODY_BYTES = 1 << 20


class Rejected(Exception):
    """A request that breaks the endpoint contract or HTTP framing."""

    def __init__(self, status: int, reason: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers or {}


def _reject_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not valid JSON")


def body_length(transfer_encoding: str | None, content_length: str | None) -> int:
    """Return the body length a request announces.

    Raises:
        Rejected: The body cannot be framed, or is too large.
    """
    if transfer_encoding is not None:
        raise Rejected(411, "send the body with a Content-Length header")
    if content_length is None:
        # RFC 9112: a request with neither header has no body.
        return 0
    text = content_length.strip()
    # isdigit() alone accepts non-ASCII digits that int() then refuses or misreads.
    if not (text.isascii() and text.isdigit()):
        raise Rejected(400, "malformed Content-Length header")
    length = int(text)
    if length > MAX_BODY_BYTES:
        raise Rejected(413, f"body over {MAX_BODY_BYTES} bytes")
    return length


def check_request(
    method: str,
    path: str,
    content_type: str | None,
    access_key: str | None,
    body: bytes,
    expected_key: str,
) -> dict[str, Any]:
    """Apply the endpoint contract to one request and return the message it carries.

    Raises:
        Rejected: The request breaks the contract.
    """
    if path.partition("?")[0] != EVENT_PATH:
        raise Rejected(404, "not found")
    if method != "POST":
        raise Rejected(405, "method not allowed", {"Allow": "POST"})
    if access_key != expected_key:
        raise Rejected(401, "missing or wrong accessKey header")
    media_type = (content_type or "").partition(";")[0].strip().lower()
    if media_type != "application/json":
        raise Rejected(415, "Content-Type must be application/json")
    try:
        message = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise Rejected(400, "body is not valid UTF-8") from None
    except (ValueError, RecursionError) as error:
        raise Rejected(400, f"body is not valid JSON: {error}") from None
    if not isinstance(message, dict):
        raise Rejected(400, "body must be a JSON object")
    if message.get("type") not in MESSAGE_TYPES:
        raise Rejected(400, "type must be identify, track or group")
    return message


def error_body(reason: str) -> bytes:
    return json.dumps({"status": "error", "error": reason}).encode()
