"""Faults: how a LocalCollector misbehaves, validated once."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import attrs

__all__ = ["Faults"]


def _to_statuses(values: Iterable[int]) -> tuple[int, ...]:
    return tuple(values)


def _check_statuses(_: object, attribute: attrs.Attribute[Any], value: tuple[int, ...]) -> None:
    for status in value:
        # bool is an int subclass, but True is never a meaningful status.
        if isinstance(status, bool) or not isinstance(status, int) or not 200 <= status <= 599:
            raise ValueError(
                f"{attribute.name}: must hold final HTTP statuses (200-599), got {status!r}"
            )


def _check_rate(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    # Written so that NaN fails too.
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{attribute.name}: must be a probability between 0 and 1, got {value!r}")


def _check_seconds(_: object, attribute: attrs.Attribute[Any], value: float | None) -> None:
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise ValueError(
            f"{attribute.name}: must be a finite number of seconds >= 0, got {value!r}"
        )


def _check_not_empty(_: object, attribute: attrs.Attribute[Any], value: tuple[int, ...]) -> None:
    if not value:
        raise ValueError(f"{attribute.name}: must name at least one status")


@attrs.frozen(kw_only=True)
class Faults:
    """How a `LocalCollector` misbehaves; the defaults are flawless service.

    Faults apply only to requests that honour the endpoint contract. For each such request the
    collector first holds it if `stall` is set, then waits `latency` (or `slow_latency`), then
    either closes the connection (`drop_rate`) or answers with a fault status (`statuses`, then
    `failure_rate`), or accepts the message. A request answered with a 2xx status, scripted or
    not, is accepted and recorded; any other outcome records no message.

    Attributes:
        statuses: Statuses answered, in order, to the first ``len(statuses)`` requests; normal
            service follows. Scripted requests are never dropped nor randomly failed, so a test
            can rely on the exact sequence. 1xx statuses are refused: they are not final answers
            and a client would wait forever for one.
        failure_rate: Probability that a request is answered with one of `failure_statuses`.
        failure_statuses: The statuses a random failure picks from, uniformly.
        retry_after: Seconds sent in a ``Retry-After`` header on every fault answer with status
            429 or 503. Whole numbers are written as integers (``"2"``), the only form RFC 9110
            allows; fractions are written as decimals to the millisecond (``"0.5"``) to keep
            tests fast, which a client must parse itself: urllib3's ``Retry`` rejects them.
        latency: Seconds waited before answering each request.
        slow_rate: Probability that a request waits `slow_latency` instead of `latency`, to
            simulate answers slower than the client's timeout.
        slow_latency: Seconds waited by the slow requests.
        drop_rate: Probability that the connection is closed without any answer.
        stall: Hold every request unanswered until `LocalCollector.release` is called, `faults`
            is reassigned, or the collector stops; then answer it normally.
        seed: Seed of the random generator behind the rates, for reproducible runs.

    Raises:
        ValueError: A rate outside [0, 1], a negative or infinite delay, a status outside
            200-599, or an empty `failure_statuses`.
    """

    statuses: tuple[int, ...] = attrs.field(
        default=(), converter=_to_statuses, validator=_check_statuses
    )
    failure_rate: float = attrs.field(default=0.0, validator=_check_rate)
    failure_statuses: tuple[int, ...] = attrs.field(
        default=(500,), converter=_to_statuses, validator=[_check_statuses, _check_not_empty]
    )
    retry_after: float | None = attrs.field(default=None, validator=_check_seconds)
    latency: float = attrs.field(default=0.0, validator=_check_seconds)
    slow_rate: float = attrs.field(default=0.0, validator=_check_rate)
    slow_latency: float = attrs.field(default=0.0, validator=_check_seconds)
    drop_rate: float = attrs.field(default=0.0, validator=_check_rate)
    stall: bool = False
    seed: int | None = None
