"""The library's errors.

::

    Exception
     +-- GainsightError                  base of everything this library raises
          +-- ConfigurationError          bad settings (also a ValueError)
          +-- InvalidMessageError         a call whose message cannot be built (also a ValueError)
          +-- DeliveryError               handed to ``on_error``: a message that was not delivered
          +-- ClientClosedError           a call on a client that was shut down
"""

from __future__ import annotations


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


class DeliveryError(GainsightError):
    """A message that was not delivered, as reported to ``on_error``.

    Never raised into the caller's thread by the asynchronous client; it is what the
    ``on_error`` callback receives and what a synchronous call's receipt carries.

    Attributes:
        reason: What went wrong, e.g. ``HTTP 400: not retried`` (also ``str(error)``).
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
        status: int | None = None,
        body: str = "",
        retried: bool = False,
        message_id: str | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.body = body
        self.retried = retried
        self.message_id = message_id

    def __repr__(self) -> str:
        return (
            f"DeliveryError({self.reason!r}, status={self.status!r}, body={self.body!r}, "
            f"retried={self.retried!r}, message_id={self.message_id!r})"
        )
