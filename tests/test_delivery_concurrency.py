"""The adaptive concurrency limit and the shared pause, with the time injected."""

from __future__ import annotations

from typing import NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gainsight_segment.delivery._concurrency import (
    LATENCY_WINDOW,
    PROBE_AFTER,
    Concurrency,
)

LATENCY = 0.1


def succeed(concurrency: Concurrency, times: int = 1, *, now: float = 0.0) -> None:
    """Successes while the limit binds: as many in flight as it allows."""
    for _ in range(times):
        concurrency.delivered(LATENCY, concurrency.allowed(), now)


def round_trip(concurrency: Concurrency, now: float = 0.0) -> None:
    """Every request the limit allows comes back delivered; each is replaced at once."""
    succeed(concurrency, concurrency.allowed(), now=now)


def grow_to(concurrency: Concurrency, limit: float, *, now: float = 0.0) -> int:
    """Successes until the limit reaches ``limit``; how many it took."""
    for count in range(1, 1000):
        succeed(concurrency, now=now)
        if concurrency.limit >= limit:
            return count
    raise AssertionError(f"the limit never reached {limit}: {concurrency.limit}")


def at_ceiling(ceiling: int, maximum: int = 16) -> Concurrency:
    """A limit that learnt ``ceiling`` from a push-back and climbed back to it."""
    concurrency = Concurrency(maximum)
    grow_to(concurrency, ceiling + 1)
    concurrency.pushed_back(ceiling + 1, now=0.0)
    grow_to(concurrency, ceiling, now=1.0)
    assert (concurrency.limit, concurrency.ceiling) == (ceiling, ceiling)
    return concurrency


def test_the_adaptive_limit_starts_at_one() -> None:
    assert Concurrency(8).allowed() == 1


def test_slow_start_doubles_the_limit_each_round_trip_up_to_the_maximum() -> None:
    concurrency = Concurrency(64)
    limits = []
    for _ in range(7):
        round_trip(concurrency)
        limits.append(concurrency.allowed())
    assert limits == [2, 4, 8, 16, 32, 64, 64]


def test_slow_start_adds_one_per_success_while_the_limit_binds() -> None:
    concurrency = Concurrency(64)
    limits = []
    for _ in range(4):
        succeed(concurrency)
        limits.append(concurrency.limit)
    assert limits == [2.0, 3.0, 4.0, 5.0]


def test_no_growth_while_fewer_are_in_flight_than_the_limit_allows() -> None:
    concurrency = Concurrency(64)
    grow_to(concurrency, 4)
    for _ in range(20):
        concurrency.delivered(LATENCY, 3, now=0.0)
    assert concurrency.allowed() == 4


@pytest.mark.parametrize(
    ("latency", "limit"),
    [
        pytest.param(0.1, 3, id="same-latency-grows"),
        pytest.param(0.5, 3, id="average-within-twice-the-minimum-grows"),
        pytest.param(0.7, 2, id="average-over-twice-the-minimum-holds"),
        pytest.param(5.0, 2, id="far-slower-holds"),
    ],
)
def test_no_growth_while_latency_is_over_twice_its_recent_minimum(
    latency: float, limit: int
) -> None:
    concurrency = Concurrency(64)
    concurrency.delivered(0.1, 1, now=0.0)  # the minimum, and the average so far
    concurrency.delivered(latency, 2, now=0.1)  # the average becomes 0.8 * 0.1 + 0.2 * latency
    assert concurrency.allowed() == limit


def test_latency_over_twice_its_minimum_ends_slow_start() -> None:
    concurrency = Concurrency(64)
    concurrency.delivered(0.1, 1, now=0.0)
    concurrency.delivered(5.0, 2, now=0.1)
    for _ in range(30):  # the average comes back down, then growth resumes
        concurrency.delivered(0.1, concurrency.allowed(), now=0.2)
    before = concurrency.limit
    round_trip(concurrency, now=0.3)
    assert 0 < concurrency.limit - before <= 1.0


@pytest.mark.parametrize(
    ("grown_to", "in_flight", "limit", "ceiling"),
    [
        pytest.param(16, 16, 7.5, 15, id="halves-within-the-new-ceiling"),
        pytest.param(16, 17, 8.0, 16, id="halves"),
        pytest.param(16, 9, 4.0, 8, id="halves-the-ceiling-when-lower"),
        pytest.param(2, 2, 1.0, 1, id="one-in-flight-was-too-much"),
        pytest.param(1, 1, 1.0, 1, id="never-below-one"),
    ],
)
def test_a_pushback_halves_the_limit_and_sets_the_ceiling_below_what_was_in_flight(
    grown_to: int, in_flight: int, limit: float, ceiling: float
) -> None:
    concurrency = Concurrency(64)
    if grown_to > 1:
        grow_to(concurrency, grown_to)
    concurrency.pushed_back(in_flight, now=1.0)
    assert (concurrency.limit, concurrency.ceiling) == (limit, ceiling)


def test_several_pushbacks_within_one_round_trip_decrease_once() -> None:
    concurrency = Concurrency(64)
    grow_to(concurrency, 16)
    for in_flight, now in [(16, 1.0), (15, 1.03), (14, 1.06), (13, 1.09)]:
        concurrency.pushed_back(in_flight, now=now)
    assert (concurrency.limit, concurrency.ceiling) == (7.5, 12)


def test_a_pushback_a_round_trip_later_decreases_again() -> None:
    concurrency = Concurrency(64)
    grow_to(concurrency, 16)
    concurrency.pushed_back(16, now=1.0)
    concurrency.pushed_back(7, now=1.0 + LATENCY)
    assert (concurrency.limit, concurrency.ceiling) == (3.0, 6)


def test_pushbacks_within_one_round_trip_never_leave_the_limit_above_the_ceiling() -> None:
    concurrency = Concurrency(64)
    grow_to(concurrency, 16)
    concurrency.pushed_back(16, now=1.0)  # limit 7.5
    concurrency.pushed_back(3, now=1.01)  # 3 in flight was too much: 2 at most
    assert concurrency.allowed() <= concurrency.ceiling == 2


def test_after_a_pushback_the_limit_grows_by_about_one_per_round_trip() -> None:
    concurrency = Concurrency(64)
    grow_to(concurrency, 16)
    concurrency.pushed_back(16, now=1.0)
    growth = []
    for trip in range(3):
        before = concurrency.limit
        round_trip(concurrency, now=2.0 + trip)
        growth.append(concurrency.limit - before)
    assert all(0.8 < step <= 1.0 for step in growth), growth


def test_after_a_pushback_growth_stops_at_the_ceiling() -> None:
    concurrency = at_ceiling(4)
    succeed(concurrency, PROBE_AFTER[0] * 4 - 1, now=2.0)
    assert (concurrency.limit, concurrency.ceiling) == (4, 4)


def test_a_probe_above_the_ceiling_comes_after_the_first_probe_wait() -> None:
    concurrency = at_ceiling(4)
    succeed(concurrency, PROBE_AFTER[0] * 4, now=2.0)
    assert (concurrency.limit, concurrency.ceiling) == (5, 5)


def test_a_pushed_back_probe_doubles_the_wait_before_the_next() -> None:
    concurrency = at_ceiling(4)
    succeed(concurrency, PROBE_AFTER[0] * 4, now=2.0)  # the probe: 5
    concurrency.pushed_back(5, now=3.0)
    grow_to(concurrency, 4, now=4.0)
    succeed(concurrency, 2 * PROBE_AFTER[0] * 4 - 1, now=5.0)
    assert concurrency.allowed() == 4
    succeed(concurrency, now=5.0)
    assert concurrency.allowed() == 5


def test_probe_waits_stop_doubling_at_the_last() -> None:
    concurrency = at_ceiling(1, maximum=2)
    for now in range(2, 20):  # many probes, each pushed back
        succeed(concurrency, PROBE_AFTER[1], now=float(now))
        concurrency.pushed_back(2, now=now + 0.5)
    succeed(concurrency, PROBE_AFTER[1] - 1, now=30.0)
    assert concurrency.allowed() == 1
    succeed(concurrency, now=30.0)
    assert concurrency.allowed() == 2


def test_a_probe_that_is_not_pushed_back_keeps_the_higher_ceiling() -> None:
    concurrency = at_ceiling(4)
    succeed(concurrency, PROBE_AFTER[0] * 4, now=2.0)
    succeed(concurrency, PROBE_AFTER[0] * 5, now=3.0)
    assert (concurrency.limit, concurrency.ceiling) == (6, 6)


def test_probes_stop_at_the_maximum() -> None:
    concurrency = at_ceiling(3, maximum=4)
    succeed(concurrency, PROBE_AFTER[0] * 3, now=2.0)
    succeed(concurrency, PROBE_AFTER[1] * 4, now=3.0)
    assert concurrency.allowed() == concurrency.ceiling == 4


@pytest.mark.parametrize("maximum", [1, 4, 16])
def test_a_fixed_limit_stays_at_the_maximum_and_ignores_pushback(maximum: int) -> None:
    concurrency = Concurrency(maximum, adaptive=False)
    assert concurrency.allowed() == maximum
    concurrency.pushed_back(maximum, now=0.0)
    concurrency.delivered(LATENCY, maximum, now=1.0)
    concurrency.pushed_back(maximum, now=2.0)
    assert concurrency.allowed() == maximum


def test_a_fixed_limit_still_pauses() -> None:
    concurrency = Concurrency(4, adaptive=False)
    concurrency.pause(2.0, now=10.0)
    assert concurrency.paused_for(10.5) == 1.5


@pytest.mark.parametrize(
    ("now", "left"),
    [(10.0, 2.0), (11.5, 0.5), (12.0, 0.0), (100.0, 0.0), (0.0, 12.0)],
)
def test_paused_for_says_what_is_left_of_a_pause(now: float, left: float) -> None:
    concurrency = Concurrency(4)
    concurrency.pause(2.0, now=10.0)
    assert concurrency.paused_for(now) == left


def test_no_pause_at_first() -> None:
    assert Concurrency(4).paused_for(0.0) == 0.0


def test_a_shorter_pause_does_not_cut_a_longer_one_short() -> None:
    concurrency = Concurrency(4)
    concurrency.pause(5.0, now=10.0)
    concurrency.pause(0.5, now=11.0)
    assert concurrency.paused_for(12.0) == 3.0


def test_a_longer_pause_extends_a_shorter_one() -> None:
    concurrency = Concurrency(4)
    concurrency.pause(1.0, now=10.0)
    concurrency.pause(5.0, now=10.5)
    assert concurrency.paused_for(11.0) == 4.5


def test_the_minimum_latency_is_kept_a_window_and_forgotten_within_two() -> None:
    # The endpoint got ten times slower: growth waits until the old minimum is forgotten.
    concurrency = Concurrency(64)
    concurrency.delivered(0.1, 1, now=0.0)
    grew_at = None
    for second in range(1, int(3 * LATENCY_WINDOW)):
        before = concurrency.limit
        concurrency.delivered(1.0, concurrency.allowed(), now=float(second))
        if concurrency.limit > before:
            grew_at = second
            break
    assert grew_at is not None
    assert LATENCY_WINDOW <= grew_at <= 2 * LATENCY_WINDOW


def test_a_minimum_from_before_an_idle_spell_longer_than_the_window_is_forgotten() -> None:
    concurrency = Concurrency(64)
    concurrency.delivered(0.1, 1, now=0.0)
    # Idle for three windows; the endpoint is slower now: 1.0 is its minimum.
    concurrency.delivered(1.0, concurrency.allowed(), now=3 * LATENCY_WINDOW)
    assert concurrency.allowed() == 3


EVENTS = st.lists(
    st.tuples(
        st.sampled_from(["delivered", "pushed_back"]),
        st.integers(min_value=0, max_value=1000),  # in flight, 1 to the maximum
        st.floats(min_value=0.001, max_value=5.0),  # latency, and time to the next event
    ),
    max_size=80,
)


@given(events=EVENTS, maximum=st.integers(min_value=1, max_value=32))
def test_the_limit_stays_between_one_and_the_maximum(
    events: list[tuple[str, int, float]], maximum: int
) -> None:
    concurrency = Concurrency(maximum)
    now = 0.0
    for event, drawn, latency in events:
        in_flight = 1 + drawn % maximum  # the engine never has more in flight
        now += latency
        if event == "delivered":
            concurrency.delivered(latency, in_flight, now)
        else:
            concurrency.pushed_back(in_flight, now)
        assert 1 <= concurrency.allowed() <= maximum
        assert 1 <= concurrency.ceiling <= maximum


class Simulation(NamedTuple):
    """How a limit fared against an endpoint admitting ``admits`` requests at once."""

    converged_after: int  # steps (round trips) until the limit settled at ``admits``
    requests: int  # sent after convergence
    pushbacks: int  # of those
    steps_at_admits: float  # share of the steps after convergence at ``admits``


def simulate(admits: int, requests: int, *, pushbacks_first: bool) -> Simulation:
    """Round trips against an endpoint that pushes back whatever is over ``admits``.

    Each step is one round trip with an endless backlog: as many requests are in flight
    as the limit allows; the first ``admits`` succeed, the rest are pushed back, all
    with the same latency (pushed-back ones first when ``pushbacks_first``, as when an
    overloaded endpoint refuses at once).
    """
    concurrency = Concurrency(16)
    now, step, converged = 0.0, 0, None
    history: list[int] = []
    sent = refused = 0
    while converged is None or sent < requests:
        step += 1
        in_flight = concurrency.allowed()
        answers = [True] * min(in_flight, admits) + [False] * max(0, in_flight - admits)
        for ok in sorted(answers) if pushbacks_first else answers:
            if ok:
                concurrency.delivered(LATENCY, in_flight, now)
            else:
                concurrency.pushed_back(in_flight, now)
        now += LATENCY
        history.append(concurrency.allowed())
        if converged is None:
            if history[-3:] == [admits] * 3:
                converged = step
        else:
            sent += in_flight
            refused += max(0, in_flight - admits)
    after = history[converged:]
    return Simulation(converged, sent, refused, after.count(admits) / len(after))


@pytest.mark.parametrize(
    "pushbacks_first", [False, True], ids=["successes-first", "refusals-first"]
)
def test_the_limit_converges_to_what_the_endpoint_admits(pushbacks_first: bool) -> None:
    result = simulate(4, 2000, pushbacks_first=pushbacks_first)
    assert result.converged_after <= 12
    assert result.steps_at_admits >= 0.9


@pytest.mark.parametrize(
    "pushbacks_first", [False, True], ids=["successes-first", "refusals-first"]
)
def test_once_converged_at_most_3_percent_of_requests_are_pushed_back(
    pushbacks_first: bool,
) -> None:
    result = simulate(4, 2000, pushbacks_first=pushbacks_first)
    assert result.requests >= 2000
    assert result.pushbacks / result.requests <= 0.03
