"""The user's callbacks and the log: what is told about each message that settles.

Callbacks run on whichever thread settled the message: a sender thread, the caller's (a
synchronous send, a message dropped because the queue is full) or the one shutting the
client down. Whatever a callback raises is logged and goes no further, and the thread
records that it is inside a callback, so that a ``flush()`` or ``shutdown()`` called from
one returns at once instead of waiting for the message whose callback is running.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Mapping
from typing import Any, Callable

from gainsight_segment._errors import DeliveryError
from gainsight_segment.delivery._body import message_id, payload

logger = logging.getLogger("gainsight_segment")

ErrorCallback = Callable[[DeliveryError, "dict[str, Any]"], object]
SuccessCallback = Callable[["dict[str, Any]"], object]

# Undelivered messages are logged one per interval, with how many more there were since.
LOG_INTERVAL = 10.0


class Callbacks:
    """Calls ``on_success`` and ``on_error``, and logs what was not delivered.

    Args:
        on_error: Called with ``(DeliveryError, message dict)`` for each message not
            delivered.
        on_success: Called with the message dict for each message delivered.
    """

    def __init__(
        self,
        on_error: ErrorCallback | None = None,
        on_success: SuccessCallback | None = None,
    ) -> None:
        self.on_error = on_error
        self.on_success = on_success
        self._here = threading.local()
        self._lock = threading.Lock()
        self._quiet_until = 0.0
        self._unlogged = 0

    def running_here(self) -> bool:
        """Whether the current thread is inside one of this client's callbacks."""
        return bool(getattr(self._here, "depth", 0))

    def delivered(self, body: bytes) -> None:
        """Tell ``on_success`` about a delivered message (given by its JSON body)."""
        if self.on_success is not None:
            self._call(self.on_success, body)

    def undelivered(self, body: bytes, error: DeliveryError) -> None:
        """Log a message that was not delivered and tell ``on_error``."""
        self._warn(error)
        if self.on_error is not None:
            self._call(self.on_error, body, error)

    def _warn(self, error: DeliveryError) -> None:
        # An outage fails every message alike: one line per interval says so without
        # flooding the log; shutdown() logs the totals.
        with self._lock:
            now = time.monotonic()
            if now < self._quiet_until:
                self._unlogged += 1
                return
            self._quiet_until = now + LOG_INTERVAL
            unlogged, self._unlogged = self._unlogged, 0
        since = f"; {unlogged} more since the last such line" if unlogged else ""
        logger.warning(
            "message %s not delivered (%s): %s%s", error.message_id, error.kind, error, since
        )

    def _call(self, callback: Callable[..., object], body: bytes, *args: Any) -> None:
        here = self._here
        here.depth = getattr(here, "depth", 0) + 1
        try:
            callback(*args, _payload(body))
        except BaseException as exc:  # even SystemExit: a callback must not stop a sender
            logger.exception("the %r callback raised", getattr(callback, "__name__", callback))
            if isinstance(exc, KeyboardInterrupt) and not _is_sender():
                raise
        finally:
            here.depth -= 1


def _payload(body: bytes) -> dict[str, Any]:
    try:
        return payload(body)
    except (ValueError, RecursionError, MemoryError):
        # Every message that settles reaches its callback, even one this thread cannot
        # decode (nested deeper than its stack allows): with what is known of it.
        known = message_id(body)
        logger.warning("message %s could not be decoded for its callback", known)
        kind = re.match(rb'\{"type":"(identify|track|group)"', body)
        return {"type": kind.group(1).decode() if kind else None, "messageId": known}


def _is_sender() -> bool:
    return threading.current_thread().name.startswith("gainsight-segment-")


def summary(undelivered: Mapping[str, int]) -> str | None:
    """Say how many messages were not delivered, by reason; ``None`` when none."""
    total = sum(undelivered.values())
    if not total:
        return None
    reasons = ", ".join(f"{kind}: {count}" for kind, count in sorted(undelivered.items()))
    return f"{total} message{'s' * (total != 1)} not delivered ({reasons})"
