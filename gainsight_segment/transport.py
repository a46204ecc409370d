"""The transport seam: one attempt of one HTTP request, and the transports that make it.

Delivery (retries, backoff, ``Retry-After``, what a status means) is decided above this
seam, by a pure policy; a :class:`Transport` only makes one attempt and says what came
back. Three implementations come with the library:

- :class:`DefaultTransport`, what a :class:`~gainsight_segment.Client` uses unless told
  otherwise: a pooled ``requests.Session`` of its own, posting straight to its connection
  pool for speed, except while ``requests`` is patched by a mock (``responses``,
  ``requests-mock``), when it goes through ``Session.send`` so that the mock sees every
  request.
- :class:`RequestsTransport`, for a session of your own (``Client(session=...)``): every
  request goes through its public ``send``, with its adapters, hooks, CA bundle and
  proxies.
- :class:`gainsight_segment.testing.MockTransport`, for tests.

Example:
    >>> from gainsight_segment.transport import Request, Response
    >>> class Accepting:
    ...     def send(self, request: Request, timeout: float) -> Response:
    ...         return Response(200)
    ...     def close(self) -> None:
    ...         pass
"""

from ._errors import TransportError
from ._exchange import Request, Response, Transport, TransportFactory
from ._http import DefaultTransport, RequestsTransport

__all__ = [
    "DefaultTransport",
    "Request",
    "RequestsTransport",
    "Response",
    "Transport",
    "TransportError",
    "TransportFactory",
]
