"""What one attempt's outcome means: deliver, retry after a wait, or give up. No I/O.

Every engine asks :func:`judge` after each attempt; time, randomness and the access key
come in as arguments, so that the whole policy is a table of cases in its tests.
"""

from __future__ import annotations

import email.utils
import math
import re
from typing import Union

import attrs

from gainsight_segment._errors import DeliveryError, DeliveryErrorKind, TransportError
from gainsight_segment._exchange import Response

RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
"""Statuses retried with backoff; every other non-2xx status is permanent."""

PUSHBACK_STATUSES = frozenset({429, 503})
"""Statuses that say the endpoint is overloaded: the client lowers its concurrency."""

BODY_EXCERPT = 200
"""Characters of a response body kept in a :class:`DeliveryError`."""

Outcome = Union[Response, TransportError]


@attrs.frozen
class RetryPolicy:
    """How often and how patiently to retry.

    Attributes:
        max_retries: Retries after the first attempt.
        backoff_factor: The first retry waits between 1x and 2x this; each later one
            doubles it.
        backoff_max: Longest wait between two attempts, ``Retry-After`` included.
    """

    max_retries: int = 3
    backoff_factor: float = 0.5
    backoff_max: float = 30.0

    def backoff(self, retry: int, jitter: float) -> float:
        """Seconds to wait before a retry.

        Jitter spreads the retries of many senders (and processes) after an outage, so
        that they do not all come back at once.

        Args:
            retry: Which retry this is: 1 for the first.
            jitter: A random number in ``[0, 1)``.
        """
        if retry > 60:  # 2**60 times any factor is far past any backoff_max
            return self.backoff_max
        return float(min(self.backoff_max, self.backoff_factor * (2 ** (retry - 1) + jitter)))


@attrs.frozen
class Verdict:
    """What to do after an attempt.

    Attributes:
        error: Why the message is given up; ``None`` when delivered or to be retried.
        wait: Seconds to wait before retrying; ``None`` when done.
        pause: Seconds every sender of the client should pause (from ``Retry-After``).
        pushback: Whether the endpoint said it is overloaded (429 or 503).
    """

    error: DeliveryError | None = None
    wait: float | None = None
    pause: float | None = None
    pushback: bool = False

    @property
    def delivered(self) -> bool:
        """Whether the message was delivered."""
        return self.error is None and self.wait is None


DELIVERED = Verdict()


class Scrubber:
    """Masks the access key in text that came from elsewhere, in any letter case.

    A server or proxy may echo request headers back; what it says is kept in errors and
    logs, where the key must never appear.

    Args:
        secret: The access key.
    """

    def __init__(self, secret: str) -> None:
        self._pattern = re.compile(re.escape(secret), re.IGNORECASE)
        self._mask = "****" + secret[-4:]

    def __call__(self, text: str) -> str:
        """Return ``text`` with every occurrence of the key masked."""
        return self._pattern.sub(self._mask, text)


def retry_after_seconds(value: str | None, now: float) -> float | None:
    """Read a ``Retry-After`` header: seconds, or an HTTP date.

    Args:
        value: The header's value, if any.
        now: The current time, in seconds since the epoch (for a date).

    Returns:
        Seconds to wait (0 or more), or ``None`` when absent or unreadable.
    """
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        seconds = when.timestamp() - now
    return max(0.0, seconds) if math.isfinite(seconds) else None


def excerpt(body: bytes, scrub: Scrubber) -> str:
    """The start of a response body, as text, with the key masked.

    Masked before it is cut, so that no part of an echoed key survives the cut.
    """
    return scrub(body.decode("utf-8", "replace"))[:BODY_EXCERPT]


def judge(
    outcome: Outcome,
    *,
    retries: int,
    policy: RetryPolicy,
    jitter: float,
    now: float,
    scrub: Scrubber,
    message_id: str | None = None,
) -> Verdict:
    """Decide what an attempt's outcome means.

    Args:
        outcome: The response, or the transport's error.
        retries: Retries made before this attempt.
        policy: The retry policy.
        jitter: A random number in ``[0, 1)`` for the backoff.
        now: Seconds since the epoch, for a ``Retry-After`` date.
        scrub: Masks the access key in what the endpoint said.
        message_id: The message's id, for the error.

    Returns:
        The verdict: delivered, retry after a wait, or give up with an error.
    """
    if isinstance(outcome, Response):
        if 200 <= outcome.status < 300:
            return DELIVERED
        return _judge_status(outcome, retries, policy, jitter, now, scrub, message_id)
    kind = outcome.kind
    if kind != "tls" and retries < policy.max_retries:
        return Verdict(wait=policy.backoff(retries + 1, jitter))
    what = {"timeout": "timeout", "tls": "TLS error", "invalid_response": "invalid response"}
    reason = f"{what.get(kind, 'network error')}: {scrub(str(outcome))}"
    if kind != "tls":
        reason += f" (after {retries} retries)"
    return Verdict(error=_error(reason, kind, retries, message_id))


def _judge_status(
    response: Response,
    retries: int,
    policy: RetryPolicy,
    jitter: float,
    now: float,
    scrub: Scrubber,
    message_id: str | None,
) -> Verdict:
    """The verdict on an answer that is not a 2xx."""
    status = response.status
    retryable = status in RETRYABLE_STATUSES
    pushback = status in PUSHBACK_STATUSES
    pause = None
    if retryable:
        pause = retry_after_seconds(response.header("Retry-After"), now)
        if pause is not None:
            pause = min(pause, policy.backoff_max)
    if retryable and retries < policy.max_retries:
        wait = policy.backoff(retries + 1, jitter)
        return Verdict(
            wait=wait if pause is None else max(wait, pause), pause=pause, pushback=pushback
        )
    if retryable:
        reason = f"HTTP {status} after {retries} retries"
    elif 300 <= status < 400:
        reason = f"HTTP {status}: redirects are not followed"
    else:
        reason = f"HTTP {status}: not retried"
    body = excerpt(response.body, scrub)
    error = _error(reason, "http_status", retries, message_id, status, body)
    return Verdict(error=error, pause=pause, pushback=pushback)


def _error(
    reason: str,
    kind: DeliveryErrorKind,
    retries: int,
    message_id: str | None,
    status: int | None = None,
    body: str = "",
) -> DeliveryError:
    return DeliveryError(
        reason, kind=kind, status=status, body=body, retried=retries > 0, message_id=message_id
    )
