"""One message's attempts: through a transport, retried and paced as the policy says."""

from __future__ import annotations

import random
import threading
import time
import traceback
from collections.abc import Mapping
from typing import Callable, NamedTuple, Protocol

from gainsight_segment._errors import DeliveryError, TransportError
from gainsight_segment._exchange import Request, Response, Transport

from ._body import message_id, with_sent_at
from ._callbacks import logger
from ._policy import RetryPolicy, Scrubber, Verdict, judge


class Result(NamedTuple):
    """How one message's delivery ended.

    Attributes:
        retries: Retries it took.
        error: ``None`` when delivered, else why not.
    """

    retries: int
    error: DeliveryError | None


class Gate(Protocol):
    """What an engine shares between the attempts of all its senders."""

    def wait_turn(self, interrupt: threading.Event) -> bool:
        """Wait out a pause every sender must respect; ``False`` if interrupted."""

    def finished(self, verdict: Verdict, latency: float) -> None:
        """Learn from an attempt's verdict and how long it took."""

    def admitted(self) -> int:
        """How many attempts the endpoint has accepted so far, all senders together."""


# A message pushed back (429, 503) while the endpoint went on accepting other messages lost
# a race for a slot; such retries do not count against max_retries, up to this many in all.
FREE_RETRIES = 100


class Attempts:
    """Delivers messages one at a time through a transport, with the retry policy.

    Args:
        url: Where messages go.
        headers: The request headers (the access key among them).
        timeout: Seconds one attempt may take.
        policy: The retry policy.
        scrub: Masks the access key in what comes back.
        sent_at: Returns the current time as ``sentAt`` text.
        jitter: Returns a random number in ``[0, 1)`` for the backoff; by default a
            generator of the client's own, so that the app's seeded ``random`` state is
            neither used nor disturbed.
    """

    def __init__(
        self,
        *,
        url: str,
        headers: Mapping[str, str],
        timeout: float,
        policy: RetryPolicy,
        scrub: Scrubber,
        sent_at: Callable[[], str],
        jitter: Callable[[], float] | None = None,
    ) -> None:
        self._url = url
        self._headers = headers
        self._timeout = timeout
        self._policy = policy
        self._scrub = scrub
        self._sent_at = sent_at
        self._jitter = jitter or random.Random().random

    def deliver(
        self, transport: Transport, body: bytes, interrupt: threading.Event, gate: Gate
    ) -> Result:
        """Send one message until it is delivered, given up or interrupted; never raises.

        Args:
            transport: Makes each attempt.
            body: The message's JSON body; ``sentAt`` is set at its first attempt.
            interrupt: Set at shutdown: waits end at once and the message is given up.
            gate: Pauses shared by the engine's senders, and what they learn.
        """
        # sentAt is the first attempt's time; retries send the very same body.
        request = Request("POST", self._url, self._headers, with_sent_at(body, self._sent_at()))
        retries = charged = 0  # retries made, and those counted against max_retries
        while True:
            if not gate.wait_turn(interrupt):
                return Result(retries, _given_up(body, "before it could be sent", retries))
            admitted = gate.admitted()
            started = time.monotonic()
            try:
                outcome: Response | TransportError = transport.send(request, self._timeout)
            except TransportError as exc:
                outcome = exc
            except Exception as exc:
                return Result(retries, self._unexpected(body, exc, retries))
            verdict = judge(
                outcome,
                retries=charged,
                policy=self._policy,
                jitter=self._jitter(),
                now=time.time(),
                scrub=self._scrub,
            )
            gate.finished(verdict, time.monotonic() - started)
            if verdict.wait is None:
                if verdict.error is not None:
                    # Read from the body only now: a delivered message never needs it.
                    verdict.error.message_id = message_id(body)
                return Result(retries, verdict.error)
            if interrupt.wait(verdict.wait):
                return Result(retries, _given_up(body, "while waiting to retry", retries))
            retries += 1
            raced = verdict.pushback and gate.admitted() > admitted
            if not raced or retries > FREE_RETRIES:
                charged += 1

    def _unexpected(self, body: bytes, exc: Exception, retries: int) -> DeliveryError:
        # A bug, or a custom transport breaking its contract: the message still settles,
        # or flush() would wait for it in vain.
        # The traceback is masked too: an exception's text may quote the headers.
        logger.error(
            "unexpected error while sending message %s:\n%s",
            message_id(body),
            self._scrub("".join(traceback.format_exception(type(exc), exc, exc.__traceback__))),
        )
        return DeliveryError(
            f"unexpected error while sending: {type(exc).__name__}",
            kind="unexpected",
            retried=retries > 0,
            message_id=message_id(body),
        )


def _given_up(body: bytes, when: str, retries: int) -> DeliveryError:
    return DeliveryError(
        f"given up at shutdown {when}",
        kind="shutdown",
        retried=retries > 0,
        message_id=message_id(body),
    )
