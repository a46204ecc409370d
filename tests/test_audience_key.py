"""audience_key: the snake_case Gainsight trait name of an audience's or trait's name."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import gainsight_segment as gs
from gainsight_segment.sync import audience_key


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Order Completed Last 30 Days", "order_completed_last_30_days"),
        ("VIP customers", "vip_customers"),
        ("NPS >= 9", "nps_9"),
        ("orderCompletedLast30Days", "order_completed_last30_days"),
        ("OrderCompleted", "order_completed"),
        ("VIPCustomers", "vip_customers"),
        ("Clientes élite", "clientes_elite"),
        ("Straße Kunden", "strasse_kunden"),
        ("Ærø Øresund", "aero_oresund"),
        ("ﬁnance team", "finance_team"),
        ("30 Day Actives", "30_day_actives"),
        ("  churn--risk!! ", "churn_risk"),
        ("Top 10% (by ARR)", "top_10_by_arr"),
        ("order_completed_last_30days", "order_completed_last_30days"),
        ("already_snake_case", "already_snake_case"),
        ("ORDER-COMPLETED", "order_completed"),
        ("trial.users", "trial_users"),
        ("顧客 VIP", "vip"),
    ],
)
def test_audience_key_snake_cases_the_name(name: str, key: str) -> None:
    assert audience_key(name) == key


@pytest.mark.parametrize("name", ["", "   ", "!!! >= ???", "顧客"])
def test_audience_key_without_letters_or_digits_is_a_configuration_error(name: str) -> None:
    with pytest.raises(gs.ConfigurationError, match="no ASCII letters or digits"):
        audience_key(name)


def test_audience_key_of_a_non_string_is_a_configuration_error() -> None:
    with pytest.raises(gs.ConfigurationError, match="must be a string"):
        audience_key(42)  # type: ignore[arg-type]


@given(st.from_regex(r"[a-z0-9]+(_[a-z0-9]+)*", fullmatch=True))
def test_audience_key_returns_a_snake_case_key_unchanged(key: str) -> None:
    assert audience_key(key) == key


@given(st.text(min_size=1))
def test_audience_key_is_idempotent(name: str) -> None:
    try:
        key = audience_key(name)
    except gs.ConfigurationError:
        return
    assert audience_key(key) == key
