"""A transport that answers with a function of yours instead of the network."""

from __future__ import annotations

import threading
from typing import Callable

from gainsight_segment.transport import Request, Response

Handler = Callable[[Request], Response]


def _accept(request: Request) -> Response:
    return Response(200, {"Content-Type": "application/json"}, b'{"status":"ok"}')


class MockTransport:
    """A :class:`~gainsight_segment.transport.Transport` for tests: no sockets, no threads.

    Each request is recorded, then answered by ``handler``, which returns a
    :class:`~gainsight_segment.transport.Response` or raises
    :class:`~gainsight_segment.transport.TransportError` to act as a network failure.
    The client's real engine, retry policy, callbacks and counters run around it.

    Example:
        >>> import gainsight_segment as gs
        >>> from gainsight_segment.testing import MockTransport
        >>> from gainsight_segment.transport import Response
        >>> transport = MockTransport(lambda request: Response(400, body=b"bad"))
        >>> client = gs.Client(
        ...     "35a84f9e-7084-47a1-b8a5-593444e9e862",
        ...     transport=transport,
        ...     sync_mode=True,
        ... )
        >>> client.track("123", "Account Created").error.status
        400
        >>> len(transport.requests)
        1

    Args:
        handler: Answers each request; by default every request gets a 200.

    Attributes:
        closed: Whether the client that used it has shut down (see :meth:`close`).
    """

    def __init__(self, handler: Handler = _accept) -> None:
        self._handler = handler
        self._lock = threading.Lock()
        self._requests: list[Request] = []
        self.closed = False

    def send(self, request: Request, timeout: float) -> Response:
        """Record the request and return what ``handler`` answers."""
        with self._lock:
            self._requests.append(request)
        return self._handler(request)

    @property
    def requests(self) -> list[Request]:
        """The requests received so far, in order (a copy)."""
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self._requests.clear()

    def close(self) -> None:
        """Record that the client shut down (see :attr:`closed`)."""
        self.closed = True
