"""Receipts: what a call returns."""

from __future__ import annotations

import pytest

import gainsight_segment as gs


@pytest.mark.parametrize(
    ("outcome", "accepted"),
    [
        (gs.Outcome.QUEUED, True),
        (gs.Outcome.SENT, True),
        (gs.Outcome.FAILED, False),
        (gs.Outcome.DROPPED, False),
        (gs.Outcome.FILTERED, False),
        (gs.Outcome.DRY_RUN, False),
    ],
)
def test_accepted_means_sent_or_on_its_way(outcome: gs.Outcome, accepted: bool) -> None:
    assert gs.Receipt("m", outcome).accepted is accepted


def test_outcomes_compare_equal_to_their_string_values() -> None:
    assert gs.Outcome.FILTERED == "filtered"
