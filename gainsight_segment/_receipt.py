"""What a call returns: the message id and what became of the message."""

from __future__ import annotations

import enum
from typing import NamedTuple

from ._errors import DeliveryError


class Outcome(str, enum.Enum):
    """What a call did with its message."""

    QUEUED = "queued"
    """Accepted and queued for background delivery."""
    SENT = "sent"
    """Delivered in the caller's thread (``sync_mode=True``)."""
    FAILED = "failed"
    """Not delivered in the caller's thread (``sync_mode=True``); see the receipt's error."""
    DROPPED = "dropped"
    """Not queued because the queue was full; reported to ``on_error``."""
    FILTERED = "filtered"
    """A track skipped by the whitelist: nothing is sent."""
    DRY_RUN = "dry_run"
    """Built and validated but not sent (``send=False``)."""


class Receipt(NamedTuple):
    """The result of an ``identify``, ``track`` or ``group`` call.

    A named tuple, cheap to make on every call.

    Attributes:
        message_id: The message's ``messageId``.
        outcome: What became of the message.
        error: Why it was not delivered, for ``FAILED`` and ``DROPPED``.
    """

    message_id: str
    outcome: Outcome
    error: DeliveryError | None = None

    @property
    def accepted(self) -> bool:
        """Whether the message was sent or is on its way (``SENT`` or ``QUEUED``)."""
        return self.outcome in (Outcome.SENT, Outcome.QUEUED)
