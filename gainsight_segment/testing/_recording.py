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

import threading
from typing import Any

# TODO(public): the recording engine plugs into the client's engine seam, which is private
# until the delivery core is rebuilt; it moves to the public seam then.
from gainsight_segment._client import Client
from gainsight_segment._config import DEFAULT_ENDPOINT
from gainsight_segment._engine import DryRunEngine, Engine
from gainsight_segment._message import Message, MessageBuilder
from gainsight_segment._receipt import Outcome, Receipt
from gainsight_segment._report import ErrorCallback, Reporter, SuccessCallback
from gainsight_segment._whitelist import WhitelistSpec

from ._collector import DEMO_ACCESS_KEY

__all__ = ["RecordingClient"]


class _RecordingEngine(DryRunEngine):
    """An engine that keeps messages instead of sending them: no threads, no network.

    Each message counts as queued and delivered at once, so a client's counters reconcile
    exactly as they do for a client whose messages all got through. Flushing, shutting down
    and the counters are the dry run's: nothing is ever pending.
    """

    def __init__(self, reporter: Reporter) -> None:
        super().__init__(reporter)
        self._lock = threading.Lock()
        self._messages: list[Message] = []

    def submit(self, message: Message) -> Receipt:
        """Record the message and report it delivered."""
        # Queued with a ticket, so that a snapshot taken meanwhile shows it pending and
        # the counters reconcile at every moment.
        ticket = self._reporter.queued_one()
        with self._lock:
            self._messages.append(message)
        self._reporter.delivered_one(message, 0, ticket)
        return Receipt(message.message_id, Outcome.SENT)

    def recorded(self) -> list[Message]:
        """A copy of the recorded messages, in call order."""
        with self._lock:
            return list(self._messages)

    def clear(self) -> None:
        """Forget the recorded messages."""
        with self._lock:
            self._messages.clear()


class RecordingClient(Client):
    """A :class:`~gainsight_segment.Client` that records its messages instead of sending them.

    ``identify``, ``track`` and ``group`` build and validate each message exactly as
    ``Client`` does (the same :class:`~gainsight_segment.InvalidMessageError` for the same
    mistakes), and the track whitelist applies the same way: a skipped track returns a
    ``FILTERED`` receipt and is not recorded. Every other message is recorded and its receipt
    says :attr:`~gainsight_segment.Outcome.SENT`, as if delivered; ``on_success`` is called
    and :meth:`~gainsight_segment.Client.stats` counts it queued and delivered. Nothing is
    ever sent: there are no threads and no sockets, and ``flush()`` returns at once.

    It is safe to call from several threads. After ``shutdown()`` calls raise
    :class:`~gainsight_segment.ClientClosedError` as usual, and what was recorded stays
    readable.

    Example:
        >>> client = RecordingClient()
        >>> client.identify("123", {"accountId": "o283h08fh2390f923uofu23"}).outcome.value
        'sent'
        >>> client.identifies()[0]["traits"]
        {'accountId': 'o283h08fh2390f923uofu23'}

    Args:
        access_key: The access key, validated as ``Client`` validates it;
            :data:`DEMO_ACCESS_KEY` by default. ``None`` reads ``GAINSIGHT_ACCESS_KEY``.
        track_whitelist: Track event names to record; ``None`` or empty records every track.
            Accepts the same shapes as ``Client``.
        endpoint: Validated as ``Client`` validates it, though nothing is sent there.
        on_error: Accepted for parity with ``Client``; never called, since nothing fails.
        on_success: Called with each recorded message's dict.
        builder: Builds messages; pass one with a fixed clock and ids for exact payloads.

    Raises:
        ConfigurationError: When a setting is invalid, exactly as for ``Client``.
    """

    def __init__(
        self,
        access_key: str | None = DEMO_ACCESS_KEY,
        *,
        track_whitelist: WhitelistSpec = None,
        endpoint: str = DEFAULT_ENDPOINT,
        on_error: ErrorCallback | None = None,
        on_success: SuccessCallback | None = None,
        builder: MessageBuilder | None = None,
    ) -> None:
        super().__init__(
            access_key,
            track_whitelist=track_whitelist,
            endpoint=endpoint,
            on_error=on_error,
            on_success=on_success,
            builder=builder,
        )

    def _make_engine(self) -> Engine:
        # Kept with its own type, for the recording-specific methods the protocol lacks.
        self._recorder = _RecordingEngine(self._reporter)
        return self._recorder

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
        return [message.payload() for message in self._recorder.recorded()]

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
            message.payload()
            for message in self._recorder.recorded()
            if message.type == "track" and (event is None or message.event == event)
        ]

    def groups(self) -> list[dict[str, Any]]:
        """Return the recorded group messages, in call order.

        Returns:
            The group messages as dicts, as in :attr:`messages`.
        """
        return self._of_type("group")

    def clear(self) -> None:
        """Forget the recorded messages; the counters of :meth:`stats` keep counting."""
        self._recorder.clear()

    def _of_type(self, type: str) -> list[dict[str, Any]]:
        return [message.payload() for message in self._recorder.recorded() if message.type == type]
