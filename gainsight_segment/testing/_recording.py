"""RecordingClient: a Client that records its messages instead of sending them.

Example:
    >>> from gainsight_segment.testing import RecordingClient
    >>> client = RecordingClient(track_whitelist=["Account Created"])
    >>> client.track("123", "Account Created", {"accountId": "o283h08fh2390f923uofu23"}).outcome
    <Outcome.SENT: 'sent'>
    >>> client.track("123", "Page Scrolled").outcome
    <Outcome.FILTERED: 'filtered'>
    >>> [m["event"] for m in client.tracks()]
    ['Account Created']
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Union

import attrs

from gainsight_segment import Client, DeliveryError, MessageBuilder, Settings

from ._collector import DEMO_ACCESS_KEY
from ._mock import MockTransport

__all__ = ["RecordingClient"]

_DEFAULT_ENDPOINT = str(attrs.fields(Settings).endpoint.default)
WhitelistSpec = Union[Iterable[Any], Mapping[str, Any], None]
ErrorCallback = Callable[[DeliveryError, "dict[str, Any]"], object]
SuccessCallback = Callable[["dict[str, Any]"], object]


class RecordingClient(Client):
    """A :class:`~gainsight_segment.Client` that records its messages instead of sending them.

    ``identify``, ``track`` and ``group`` build and validate each message exactly as
    ``Client`` does (the same :class:`~gainsight_segment.InvalidMessageError` for the same
    mistakes), and the track whitelist applies the same way: a skipped track returns a
    ``FILTERED`` receipt and is not recorded. Every other message goes through the real
    synchronous engine, retry policy and counters to a :class:`MockTransport` that records
    it and answers 200: its receipt says :attr:`~gainsight_segment.Outcome.SENT`,
    ``on_success`` is called and :meth:`~gainsight_segment.Client.stats` counts it queued
    and delivered. Nothing is sent over a network: there are no threads and no sockets,
    and ``flush()`` returns at once.

    It is safe to call from several threads. After ``shutdown()`` calls raise
    :class:`~gainsight_segment.ClientClosedError` as usual, and what was recorded stays
    readable.

    Example:
        >>> client = RecordingClient()
        >>> client.identify("123", {"accountId": "o283h08f"}).outcome.value
        'sent'
        >>> client.identifies()[0]["traits"]
        {'accountId': 'o283h08f'}

    Args:
        access_key: The access key, validated as ``Client`` validates it;
            :data:`DEMO_ACCESS_KEY` by default. ``None`` reads ``GAINSIGHT_ACCESS_KEY``.
        track_whitelist: Track event names to record; ``None`` or empty records every track.
            Accepts the same shapes as ``Client``.
        endpoint: Validated as ``Client`` validates it, though nothing is sent there.
        on_error: Accepted for parity with ``Client``; never called, since nothing fails.
        on_success: Called with each recorded message's dict.
        builder: Builds messages; pass one with a fixed clock and ids for exact payloads.

    Attributes:
        transport: The :class:`MockTransport` every request went to, with its raw
            requests (``sentAt`` and headers included).

    Raises:
        ConfigurationError: When a setting is invalid, exactly as for ``Client``.
    """

    def __init__(
        self,
        access_key: str | None = DEMO_ACCESS_KEY,
        *,
        track_whitelist: WhitelistSpec = None,
        endpoint: str = _DEFAULT_ENDPOINT,
        on_error: ErrorCallback | None = None,
        on_success: SuccessCallback | None = None,
        builder: MessageBuilder | None = None,
    ) -> None:
        self.transport = MockTransport()
        super().__init__(
            access_key,
            track_whitelist=track_whitelist,
            endpoint=endpoint,
            on_error=on_error,
            on_success=on_success,
            builder=builder,
            sync_mode=True,
            exit_timeout=0,
            transport=self.transport,
        )

    def __repr__(self) -> str:
        s = self.settings
        return f"<gainsight_segment.testing.RecordingClient {s.access_key} recording>"

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The recorded messages as dicts, in call order.

        Each is the message as it would be sent, without ``sentAt`` (which is only set
        when a message is sent). Every access returns fresh copies: changing them changes
        nothing recorded.
        """
        return [_recorded(request.body) for request in self.transport.requests]

    def identifies(self) -> list[dict[str, Any]]:
        """Return the recorded identify messages, in call order.

        Returns:
            The identify messages as dicts, as in :attr:`messages`.
        """
        return self._of_type("identify")

    def tracks(self, event: str | None = None) -> list[dict[str, Any]]:
        """Return the recorded track messages, in call order.

        Args:
            event: Only the tracks of this event name (compared exactly); all by default.

        Returns:
            The track messages as dicts, as in :attr:`messages`.
        """
        return [
            message
            for message in self._of_type("track")
            if event is None or message.get("event") == event
        ]

    def groups(self) -> list[dict[str, Any]]:
        """Return the recorded group messages, in call order.

        Returns:
            The group messages as dicts, as in :attr:`messages`.
        """
        return self._of_type("group")

    def clear(self) -> None:
        """Forget the recorded messages; the counters of :meth:`stats` keep counting."""
        self.transport.clear()

    def _of_type(self, type: str) -> list[dict[str, Any]]:
        return [message for message in self.messages if message.get("type") == type]


def _recorded(body: bytes) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(body)
    message.pop("sentAt", None)
    return message
