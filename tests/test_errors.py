"""The error tree."""

from __future__ import annotations

import pytest

import gainsight_segment as gs
from gainsight_segment.transport import TransportError


@pytest.mark.parametrize(
    ("error", "bases"),
    [
        pytest.param(gs.ConfigurationError, (gs.GainsightError, ValueError), id="configuration"),
        pytest.param(gs.InvalidMessageError, (gs.GainsightError, ValueError), id="invalid"),
        pytest.param(gs.DeliveryError, (gs.GainsightError,), id="delivery"),
        pytest.param(gs.ClientClosedError, (gs.GainsightError, RuntimeError), id="closed"),
        pytest.param(TransportError, (gs.GainsightError,), id="transport"),
    ],
)
def test_every_error_derives_from_gainsight_error_and_its_builtin(
    error: type[Exception], bases: tuple[type[Exception], ...]
) -> None:
    assert all(issubclass(error, base) for base in bases)


def test_delivery_error_carries_status_body_retried_and_message_id() -> None:
    error = gs.DeliveryError("HTTP 503", status=503, body="down", retried=True, message_id="m")
    assert (error.reason, error.status, error.body, error.retried, error.message_id) == (
        "HTTP 503",
        503,
        "down",
        True,
        "m",
    )
    assert str(error) == "HTTP 503"


def test_delivery_error_repr_shows_its_fields() -> None:
    error = gs.DeliveryError("queue full", kind="queue_full", message_id="m")
    assert repr(error) == (
        "DeliveryError('queue full', kind='queue_full', status=None, body='', retried=False, "
        "message_id='m')"
    )


def test_delivery_error_kind_defaults_to_unexpected() -> None:
    assert gs.DeliveryError("?").kind == "unexpected"


@pytest.mark.parametrize("kind", ["network", "timeout", "tls", "invalid_response"])
def test_transport_error_carries_its_kind(kind: str) -> None:
    error = TransportError("refused", kind=kind)  # type: ignore[arg-type]
    assert (str(error), error.kind) == ("refused", kind)


def test_delivery_error_defaults_to_no_status_and_not_retried() -> None:
    error = gs.DeliveryError("network error")
    assert (error.status, error.body, error.retried, error.message_id) == (None, "", False, None)
