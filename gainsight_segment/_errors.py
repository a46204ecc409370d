"""The library's errors.

::

    Exception
     +-- GainsightError                  base of everything this library raises
          +-- ConfigurationError     bad settings (also a ValueError)
          +-- InvalidMessageError    a call whose message cannot be built (also a ValueError)
          +-- ClientClosedError      a call on a client that was shut down (also a RuntimeError)
          +-- DeliveryError          handed to ``on_error``: a message that was not delivered
          +-- TransportError         one attempt failed below HTTP (raised by a Transport)
"""

from __future__ import annotations

from typing import Literal

DeliveryErrorKind = Literal[
    "queue_full",
    "shutdown",
    "network",
    "timeout",
    "tls",
    "http_status",
    "invalid_response",
    "outbox",
    "unexpected",
]
"""Why a message was not delivered, in a word a program can branch on:

- ``queue_full``: dropped because the queue (or the outbox) was full.
- ``shutdown``: given up by ``shutdown()`` or the exit flush at their deadline.
- ``network``: the connection failed or was cut (after the retries).
- ``timeout``: no complete answer within ``timeout`` (after the retries).
- ``tls``: the TLS handshake or the certificate check failed (never retried).
- ``http_status``: the endpoint answered with a status that is not 2xx.
- ``invalid_response``: the answer was not valid HTTP.
- ``outbox``: the durable outbox could not keep or return the message.
- ``unexpected``: a bug or an error from a custom transport; the log has its traceback.
"""

TransportErrorKind = Literal["network", "timeout", "tls", "invalid_response"]


class GainsightError(Exception):
    """Base class of every error this library raises or reports."""


class ConfigurationError(GainsightError, ValueError):
    """A setting is invalid: access key, track whitelist, endpoint, timeouts, ..."""


class InvalidMessageError(GainsightError, ValueError):
    """A call's message cannot be built.

    The text names the offending field path first, e.g.
    ``properties.price: NaN is not valid JSON``.
    """


class ClientClosedError(GainsightError, RuntimeError):
    """A call was made on a client after :meth:`Client.shutdown`."""


class TransportError(GainsightError):
    """One attempt failed below HTTP: no usable response was received.

    Raised by a :class:`~gainsight_segment.transport.Transport`; the delivery policy decides
    whether to retry (every kind but ``tls`` is retried).

    Args:
        reason: What went wrong, for people; it must not contain the access key.
        kind: ``network``, ``timeout``, ``tls`` or ``invalid_response``.

    Attributes:
        kind: ``network``, ``timeout``, ``tls`` or ``invalid_response``.
    """

    def __init__(self, reason: str, *, kind: TransportErrorKind = "network") -> None:
        super().__init__(reason)
        self.kind: TransportErrorKind = kind


class DeliveryError(GainsightError):
    """A message that was not delivered, as reported to ``on_error``.

    Never raised into the caller's thread by the asynchronous client; it is what the
    ``on_error`` callback receives and what a synchronous call's receipt carries.

    Attributes:
        reason: What went wrong, e.g. ``HTTP 400: not retried`` (also ``str(error)``).
        kind: Why, in one word (see :data:`DeliveryErrorKind`), e.g. ``"http_status"``.
        status: The final HTTP status, or ``None`` when no response was received
            (network error, timeout, queue full, shutdown deadline).
        body: A short excerpt of the response body (empty when there was none).
        retried: Whether the message was retried before being given up.
        message_id: The ``messageId`` of the message concerned, when known.
    """

    def __init__(
        self,
        reason: str,
        *,
        kind: DeliveryErrorKind = "unexpected",
        status: int | None = None,
        body: str = "",
        retried: bool = False,
        message_id: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind: DeliveryErrorKind = kind
        self.status = status
        self.body = body
        self.retried = retried
        self.message_id = message_id

    def __repr__(self) -> str:
        return (
            f"DeliveryError({self.reason!r}, kind={self.kind!r}, status={self.status!r}, "
            f"body={self.body!r}, retried={self.retried!r}, message_id={self.message_id!r})"
        )
