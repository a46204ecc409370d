"""The Gainsight contract in one place: where messages go, with which headers, how big."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ._version import __version__

EVENT_PATH = "/clickstream/segmentio/event"
"""Appended to the endpoint: every message is one ``POST`` to this path."""

USER_AGENT = f"gainsight-segment-python/{__version__}"

MAX_MESSAGE_BYTES = 32 * 1024
"""The largest serialized message, ``sentAt`` included, that is sent."""

MAX_RESPONSE_BODY = 4096
"""How much of a response body is read; the rest is never read nor decompressed."""

ACCESS_KEY_HEADER = "accessKey"


def event_url(endpoint: str) -> str:
    """Return the URL messages are posted to, for a validated endpoint base URL."""
    return endpoint + EVENT_PATH


def request_headers(access_key: str) -> Mapping[str, str]:
    """Return the headers of every request, read-only: built once per client.

    Args:
        access_key: The Gainsight access key.
    """
    return MappingProxyType(
        {
            ACCESS_KEY_HEADER: access_key,
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Accept": "*/*",
            # Only the first 4 KB of an answer is ever read; asking for no compression keeps
            # a hostile endpoint from making even that expensive.
            "Accept-Encoding": "identity",
        }
    )
