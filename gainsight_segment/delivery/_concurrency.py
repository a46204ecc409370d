"""How many requests may be in flight, and when every sender must pause. No I/O.

Gainsight takes one message per request, so a client's throughput is its concurrency
divided by the latency. The limit here adapts, as TCP's congestion window does:

- It starts at one and doubles each round trip while the backlog needs more (slow
  start), then grows by one per round trip (additive increase).
- It stops growing while latency is more than twice its recent minimum: more requests in
  flight would only queue, at the endpoint or for this process's CPU.
- A 429 or 503 (push-back) halves it (multiplicative decrease) and remembers the level
  that was too much: the limit climbs back to just under it, and only probes above it
  after a quiet spell that doubles each time a probe is pushed back again.
- A ``Retry-After`` pauses every sender of the client until it has passed.

The object is not thread-safe: its owner calls it under its own lock, with the time.
"""

from __future__ import annotations

import math

# Latency this many times its recent minimum counts as queueing.
LATENCY_TOLERANCE = 2.0
# The minimum latency is forgotten after this long, so that a slower endpoint is learnt.
LATENCY_WINDOW = 30.0
# Successes at the learnt ceiling before probing above it: this many times the ceiling at
# first, doubling (up to the last) each time a probe is pushed back.
PROBE_AFTER = (8, 256)
DECREASE = 0.5


class Concurrency:
    """An adaptive limit on requests in flight, with a pause shared by every sender.

    Args:
        maximum: The most requests in flight.
        adaptive: ``False`` keeps the limit at ``maximum`` (pauses still apply).
    """

    def __init__(self, maximum: int, *, adaptive: bool = True) -> None:
        # A fixed limit (``workers=N``) only honours pauses: the user chose the number.
        self.maximum = maximum
        self.adaptive = adaptive
        self.limit = 1.0 if adaptive else float(maximum)
        self.ceiling = float(maximum)
        self.paused_until = 0.0
        self._slow_start = adaptive
        self._latency = 0.0
        self._min_latency = math.inf
        self._previous_min = math.inf
        self._window_ends = 0.0
        self._last_decrease = -math.inf
        self._at_ceiling = 0
        self._probe_after = PROBE_AFTER[0]
        self._probing = False

    def allowed(self) -> int:
        """How many requests may be in flight now."""
        return int(self.limit)

    def pause(self, seconds: float, now: float) -> None:
        """Pause every sender for ``seconds`` from ``now`` (a ``Retry-After``)."""
        self.paused_until = max(self.paused_until, now + seconds)

    def paused_for(self, now: float) -> float:
        """Seconds left of the pause (0 when none)."""
        return max(0.0, self.paused_until - now)

    def _observe(self, latency: float, now: float) -> float:
        """Record a latency; return the recent minimum."""
        if now >= self._window_ends:
            # The last window's minimum is kept for one more window, unless it ended long ago.
            recent = now < self._window_ends + LATENCY_WINDOW
            self._previous_min = self._min_latency if recent else math.inf
            self._min_latency = math.inf
            self._window_ends = now + LATENCY_WINDOW
        self._min_latency = min(self._min_latency, latency)
        self._latency = latency if self._latency == 0.0 else 0.8 * self._latency + 0.2 * latency
        return min(self._min_latency, self._previous_min)

    def delivered(self, latency: float, in_flight: int, now: float) -> None:
        """Count a request that succeeded after ``latency`` seconds.

        Args:
            latency: How long it took.
            in_flight: Requests in flight when it ended, itself included.
            now: The time (any monotonic clock).
        """
        floor = self._observe(latency, now)
        if not self.adaptive:
            return
        if in_flight < int(self.limit):
            return  # the limit was not what held the client back: no evidence to grow on
        if self.adaptive and self._latency > LATENCY_TOLERANCE * floor:
            self._slow_start = False
            return
        if self.limit < self.ceiling:
            step = 1.0 if self._slow_start else 1.0 / self.limit
            self.limit = min(self.ceiling, self.limit + step)
            return
        if self.ceiling >= self.maximum:
            return
        self._at_ceiling += 1
        if self._at_ceiling >= self._probe_after * self.ceiling:
            # Quiet at the ceiling for long enough: try one more. A probe that lasted
            # until this next one was not pushed back, so probes may come sooner again.
            if self._probing:
                self._probe_after = PROBE_AFTER[0]
            self._probing = True
            self._at_ceiling = 0
            self.ceiling = min(float(self.maximum), self.ceiling + 1.0)
            self.limit = self.ceiling

    def pushed_back(self, in_flight: int, now: float) -> None:
        """Count a 429 or 503: the endpoint admitted fewer requests than were in flight.

        Args:
            in_flight: Requests in flight when it came back, itself included.
            now: The time (any monotonic clock).
        """
        if not self.adaptive:
            return
        self._slow_start = False
        self._at_ceiling = 0
        if self._probing:
            self._probe_after = min(PROBE_AFTER[1], self._probe_after * 2)
            self._probing = False
        ceiling = float(max(1, in_flight - 1))
        if now - self._last_decrease < max(self._latency, 0.001):
            # The same congestion as the last decrease: one decrease per round trip, but
            # never more in flight than the endpoint just admitted.
            self.ceiling = min(self.ceiling, ceiling)
            self.limit = max(1.0, min(self.limit, self.ceiling))
            return
        self._last_decrease = now
        self.ceiling = ceiling
        self.limit = max(1.0, min(self.limit, ceiling) * DECREASE)
