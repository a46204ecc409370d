"""Helpers for testing code that uses ``gainsight_segment``, without an account or a network.

Three tools, for three kinds of test:

- :class:`MockTransport` answers each request of a real ``Client`` with a function of
  yours: the client's engine, retry policy and counters run, the network does not.
- :class:`RecordingClient` is a :class:`~gainsight_segment.Client` that validates every call
  exactly as the real one does, then records the message instead of sending it. No threads, no
  sockets: use it in unit tests and assert on :attr:`RecordingClient.messages`.
- :class:`LocalCollector` is a real HTTP server on loopback that accepts what Gainsight's event
  endpoint accepts and records it, and can misbehave on demand (:class:`Faults`). Point a real
  ``Client`` at :attr:`LocalCollector.endpoint` when the HTTP exchange itself matters; each
  request it answered is a :class:`ReceivedRequest`.

Example:
    >>> from gainsight_segment.testing import RecordingClient
    >>> client = RecordingClient(track_whitelist=["Account Created"])
    >>> client.track("123", "Account Created", {"accountId": "o283h08fh2390f923uofu23"}).outcome
    <Outcome.SENT: 'sent'>
    >>> client.track("123", "Page Scrolled").outcome
    <Outcome.FILTERED: 'filtered'>
    >>> [m["event"] for m in client.tracks()]
    ['Account Created']

pytest users get both as fixtures (``gainsight_recorder`` and ``gainsight_collector``) by
adding ``pytest_plugins = ["gainsight_segment.pytest_plugin"]`` to their top-level
``conftest.py``.
"""

from __future__ import annotations

import warnings
from typing import Any

from ._collector import DEMO_ACCESS_KEY, LocalCollector
from ._faults import Faults
from ._mock import MockTransport
from ._recording import RecordingClient
from ._server import ReceivedRequest

__all__ = [
    "DEMO_ACCESS_KEY",
    "Faults",
    "LocalCollector",
    "MockTransport",
    "ReceivedRequest",
    "RecordingClient",
]


def __getattr__(name: str) -> Any:
    # `Request` was the first name of ReceivedRequest; `gainsight_segment.transport.Request`
    # is the request a client sends, and the two must not be mistaken for each other.
    if name == "Request":
        warnings.warn(
            "gainsight_segment.testing.Request is deprecated; use "
            "gainsight_segment.testing.ReceivedRequest, the same class",
            DeprecationWarning,
            stacklevel=2,
        )
        return ReceivedRequest
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
