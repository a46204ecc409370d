"""The ledger: counters, tickets and flush()'s waits."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

import gainsight_segment as gs
from gainsight_segment.delivery._ledger import Ledger, Settled

# Cross-thread waits give up after this long: far more than any of them needs, and far
# less than the ledger's own 5-second recheck, so a missed wake-up fails the test.
WAKE = 2.0


def queue(ledger: Ledger) -> None:
    """Put a message on the queue, as an engine does."""
    with ledger.lock:
        ledger.queued_locked()


def take_queued(ledger: Ledger) -> int:
    """Take the oldest queued message, as a sender does; its ticket."""
    with ledger.lock:
        return ledger.taken_locked()


def reconciles(stats: gs.Stats) -> bool:
    settled = stats.delivered + stats.failed + stats.dropped
    return stats.queued == settled + stats.pending + stats.in_flight


def waiters(ledger: Ledger) -> int:
    with ledger.lock:
        return len(ledger._waiters)


def until_waiting(ledger: Ledger, count: int) -> None:
    """Return once ``count`` flushes wait (they have counted what came before them)."""
    give_up = time.monotonic() + WAKE
    while waiters(ledger) < count:
        assert time.monotonic() < give_up, "the waiter never registered"
        threading.Event().wait(0.001)


class Waiting:
    """A ``wait()`` running in a thread of its own."""

    def __init__(self, ledger: Ledger, deadline: float | None) -> None:
        self.result: list[bool] = []
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ledger, deadline), daemon=True)
        self._thread.start()

    def _run(self, ledger: Ledger, deadline: float | None) -> None:
        self.result.append(ledger.wait(deadline))
        self.done.set()


def test_counters_add_up_by_outcome() -> None:
    ledger = Ledger()
    delivered, failed, dropped = ledger.take(), ledger.take(), ledger.take()
    queue(ledger)
    ledger.settle("delivered", delivered, retries=2)
    ledger.settle("failed", failed, retries=1, kind="http_status")
    ledger.settle("dropped", dropped, kind="shutdown")
    ledger.count_filtered()
    assert ledger.snapshot() == gs.Stats(
        queued=4, delivered=1, failed=1, dropped=1, filtered=1, retried=3, pending=1
    )


def test_pending_and_in_flight_follow_each_message() -> None:
    ledger = Ledger()
    queue(ledger)
    queue(ledger)
    assert ledger.snapshot() == gs.Stats(queued=2, pending=2)
    ticket = take_queued(ledger)
    assert ledger.snapshot() == gs.Stats(queued=2, pending=1, in_flight=1)
    ledger.settle("delivered", ticket)
    assert ledger.snapshot() == gs.Stats(queued=2, delivered=1, pending=1)


def test_undelivered_counts_by_kind() -> None:
    ledger = Ledger()
    settled: list[tuple[Settled, str]] = [
        ("failed", "http_status"),
        ("failed", "http_status"),
        ("dropped", "shutdown"),
        ("failed", "timeout"),
        ("delivered", ""),
    ]
    for outcome, kind in settled:
        ledger.settle(outcome, ledger.take(), kind=kind)
    ledger.refused("queue_full")
    assert ledger.undelivered == Counter(
        {"http_status": 2, "shutdown": 1, "timeout": 1, "queue_full": 1}
    )


OPERATIONS = st.lists(
    st.sampled_from(["queue", "take_queued", "take", "settle", "refused", "filtered"]),
    max_size=60,
)


@given(operations=OPERATIONS, outcomes=st.randoms(use_true_random=False))
def test_every_snapshot_reconciles(operations: list[str], outcomes: random.Random) -> None:
    ledger = Ledger()
    taken: list[int] = []
    for operation in operations:
        if operation == "queue":
            queue(ledger)
        elif operation == "take_queued" and ledger.pending:
            taken.append(take_queued(ledger))
        elif operation == "take":
            taken.append(ledger.take())
        elif operation == "settle" and taken:
            outcome: Settled = outcomes.choice(["delivered", "failed", "dropped"])
            ledger.settle(outcome, taken.pop(0), retries=1, kind="network")
        elif operation == "refused":
            ledger.refused("queue_full")
        elif operation == "filtered":
            ledger.count_filtered()
        assert reconciles(ledger.snapshot())


def test_wait_returns_true_at_once_when_nothing_is_outstanding() -> None:
    ledger = Ledger()
    ledger.settle("delivered", ledger.take())
    assert ledger.wait(deadline=time.monotonic() - 1) is True


def test_wait_returns_false_at_its_deadline() -> None:
    ledger = Ledger()
    ledger.take()
    started = time.monotonic()
    assert ledger.wait(deadline=started + 0.05) is False
    assert 0.05 <= time.monotonic() - started < WAKE


def test_wait_returns_false_at_once_when_its_deadline_has_passed() -> None:
    ledger = Ledger()
    queue(ledger)
    assert ledger.wait(deadline=time.monotonic() - 1) is False
    assert waiters(ledger) == 0  # and it does not linger


def test_wait_wakes_when_what_was_taken_settles() -> None:
    ledger = Ledger()
    ticket = ledger.take()
    waiting = Waiting(ledger, deadline=None)
    until_waiting(ledger, 1)
    ledger.settle("failed", ticket, kind="http_status")
    assert waiting.done.wait(WAKE)
    assert waiting.result == [True]


def test_wait_also_waits_for_what_is_still_queued() -> None:
    ledger = Ledger()
    queue(ledger)
    waiting = Waiting(ledger, deadline=None)
    until_waiting(ledger, 1)
    ledger.settle("delivered", take_queued(ledger))
    assert waiting.done.wait(WAKE)
    assert waiting.result == [True]


def test_messages_queued_later_do_not_stand_in_for_earlier_ones() -> None:
    ledger = Ledger()
    first = ledger.take()
    waiting = Waiting(ledger, deadline=None)
    until_waiting(ledger, 1)
    ledger.settle("delivered", ledger.take())
    assert not waiting.done.wait(0.05)
    ledger.settle("delivered", first)
    assert waiting.done.wait(WAKE)
    assert waiting.result == [True]


def test_a_waiter_timing_out_leaves_an_equal_waiter_waiting() -> None:
    # Both waiters have the same numbers. Were they told apart by equality, the one that
    # times out would remove the other, which would then never hear the message settle.
    ledger = Ledger()
    ticket = ledger.take()
    patient = Waiting(ledger, deadline=None)
    until_waiting(ledger, 1)
    assert ledger.wait(deadline=time.monotonic() - 1) is False
    assert waiters(ledger) == 1
    ledger.settle("delivered", ticket)
    assert patient.done.wait(WAKE)
    assert patient.result == [True]


def test_two_waiters_are_both_woken() -> None:
    ledger = Ledger()
    ticket = ledger.take()
    first, second = Waiting(ledger, deadline=None), Waiting(ledger, deadline=None)
    until_waiting(ledger, 2)
    ledger.settle("dropped", ticket, kind="shutdown")
    assert first.done.wait(WAKE)
    assert second.done.wait(WAKE)
    assert first.result == second.result == [True]


def test_take_raises_client_closed_error_once_closed() -> None:
    ledger = Ledger()
    ledger.closed = True
    with pytest.raises(gs.ClientClosedError):
        ledger.take()
    assert ledger.snapshot() == gs.Stats()


def test_refused_counts_a_queued_and_dropped_message_without_a_ticket() -> None:
    ledger = Ledger()
    ledger.refused("queue_full")
    assert ledger.snapshot() == gs.Stats(queued=1, dropped=1)
    assert ledger.take() == 1


def test_refused_does_not_affect_waits() -> None:
    ledger = Ledger()
    ledger.refused("queue_full")
    assert ledger.wait(deadline=time.monotonic() - 1) is True
    ledger.take()
    ledger.refused("shutdown")
    assert ledger.wait(deadline=time.monotonic() - 1) is False


def test_reset_zeroes_the_counters_and_keeps_closed() -> None:
    ledger = Ledger()
    ledger.settle("failed", ledger.take(), retries=3, kind="timeout")
    ledger.refused("queue_full")
    ledger.count_filtered()
    queue(ledger)
    ledger.closed = True
    ledger.reset()
    assert ledger.snapshot() == gs.Stats()
    assert ledger.undelivered == Counter()
    assert ledger.closed is True


def test_reset_starts_the_tickets_afresh_with_a_new_lock() -> None:
    ledger = Ledger()
    ledger.take()
    lock = ledger.lock
    ledger.reset()
    assert ledger.lock is not lock
    assert ledger.take() == 1
    assert ledger.wait(deadline=time.monotonic() - 1) is False
