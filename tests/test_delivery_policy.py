"""The retry policy: what each attempt's outcome means, backoff, Retry-After, scrubbing."""

from __future__ import annotations

import email.utils
from typing import Callable, NamedTuple

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gainsight_segment._errors import TransportErrorKind
from gainsight_segment.delivery._policy import (
    BODY_EXCERPT,
    RetryPolicy,
    Scrubber,
    Verdict,
    excerpt,
    judge,
    retry_after_seconds,
)
from gainsight_segment.transport import Response, TransportError

KEY = "35a84f9e-7084-47a1-b8a5-593444e9e862"
MASK = "****e862"
SCRUB = Scrubber(KEY)
POLICY = RetryPolicy(max_retries=3, backoff_factor=0.5, backoff_max=30.0)
NOW = 1_700_000_000.0  # a whole second: HTTP dates have one-second resolution

RETRYABLE = (408, 429, 500, 502, 503, 504)
PUSHBACK = (429, 503)
PERMANENT = (400, 401, 403, 404, 409, 410, 413, 422, 451, 501, 505, 599, 100)
REDIRECTS = (300, 301, 302, 303, 304, 307, 308)


def decide(
    outcome: Response | TransportError,
    retries: int = 0,
    *,
    policy: RetryPolicy = POLICY,
    jitter: float = 0.0,
    now: float = NOW,
) -> Verdict:
    return judge(
        outcome,
        retries=retries,
        policy=policy,
        jitter=jitter,
        now=now,
        scrub=SCRUB,
        message_id="m-1",
    )


def retry_after(value: str) -> dict[str, str]:
    return {"Retry-After": value}


def http_date(when: float) -> str:
    return email.utils.formatdate(when, usegmt=True)


def leaks(text: str) -> bool:
    """Whether any 9 characters of the key survive in ``text``, in any letter case."""
    lowered = text.lower()
    return any(KEY[i : i + 9] in lowered for i in range(len(KEY) - 8))


class Expected(NamedTuple):
    """What a verdict says, flattened so that a table row reads as one line."""

    delivered: bool
    wait: float | None
    kind: str | None = None
    reason: str | None = None
    status: int | None = None
    pushback: bool = False
    pause: float | None = None


def flatten(verdict: Verdict) -> Expected:
    error = verdict.error
    return Expected(
        delivered=verdict.delivered,
        wait=verdict.wait,
        kind=None if error is None else error.kind,
        reason=None if error is None else error.reason,
        status=None if error is None else error.status,
        pushback=verdict.pushback,
        pause=verdict.pause,
    )


DELIVERED = Expected(delivered=True, wait=None)


def retried(status: int, retries: int) -> Expected:
    # jitter 0: the (retries + 1)-th retry waits factor * 2**retries
    return Expected(False, 0.5 * 2**retries, pushback=status in PUSHBACK)


def exhausted(status: int) -> Expected:
    reason = f"HTTP {status} after 3 retries"
    return Expected(False, None, "http_status", reason, status, status in PUSHBACK)


def permanent(status: int) -> Expected:
    reason = f"HTTP {status}: not retried"
    return Expected(False, None, "http_status", reason, status)


def redirect(status: int) -> Expected:
    reason = f"HTTP {status}: redirects are not followed"
    return Expected(False, None, "http_status", reason, status)


STATUS_CASES = [
    *[pytest.param(s, 0, DELIVERED, id=f"{s}-delivered") for s in (200, 201, 202, 204, 299)],
    *[pytest.param(s, 3, DELIVERED, id=f"{s}-delivered-after-retries") for s in (200, 204)],
    *[
        pytest.param(s, r, retried(s, r), id=f"{s}-retry-{r + 1}")
        for s in RETRYABLE
        for r in (0, 1, 2)
    ],
    *[pytest.param(s, 3, exhausted(s), id=f"{s}-exhausted") for s in RETRYABLE],
    *[pytest.param(s, 0, permanent(s), id=f"{s}-permanent") for s in PERMANENT],
    *[pytest.param(s, 0, redirect(s), id=f"{s}-redirect") for s in REDIRECTS],
]


@pytest.mark.parametrize(("status", "retries", "expected"), STATUS_CASES)
def test_judge_classifies_each_status(status: int, retries: int, expected: Expected) -> None:
    assert flatten(decide(Response(status), retries)) == expected


@pytest.mark.parametrize(
    ("max_retries", "retries", "expected"),
    [
        (0, 0, Expected(False, None, "http_status", "HTTP 503 after 0 retries", 503, True)),
        (1, 0, Expected(False, 0.5, pushback=True)),
        (1, 1, Expected(False, None, "http_status", "HTTP 503 after 1 retries", 503, True)),
        (5, 4, Expected(False, 8.0, pushback=True)),
        (5, 5, Expected(False, None, "http_status", "HTTP 503 after 5 retries", 503, True)),
    ],
)
def test_retries_stop_at_max_retries(max_retries: int, retries: int, expected: Expected) -> None:
    policy = RetryPolicy(max_retries=max_retries)
    assert flatten(decide(Response(503), retries, policy=policy)) == expected


def test_a_given_up_error_says_whether_it_was_retried_and_names_the_message() -> None:
    first, last = decide(Response(400)).error, decide(Response(500), 3).error
    assert first is not None
    assert last is not None
    assert (first.retried, last.retried) == (False, True)
    assert (first.message_id, last.message_id) == ("m-1", "m-1")


@pytest.mark.parametrize("status", [413, 400, 501])
def test_retry_after_does_not_make_a_permanent_status_retryable(status: int) -> None:
    verdict = decide(Response(status, retry_after("1")))
    assert flatten(verdict) == permanent(status)


TRANSPORT_NAMES = {
    "network": "network error",
    "timeout": "timeout",
    "invalid_response": "invalid response",
}


@pytest.mark.parametrize("kind", sorted(TRANSPORT_NAMES))
@pytest.mark.parametrize("retries", [0, 1, 2])
def test_transport_errors_are_retried(kind: TransportErrorKind, retries: int) -> None:
    verdict = decide(TransportError("boom", kind=kind), retries)
    assert flatten(verdict) == Expected(False, 0.5 * 2**retries)


@pytest.mark.parametrize("kind", sorted(TRANSPORT_NAMES))
def test_transport_errors_are_given_up_with_their_kind_after_max_retries(
    kind: TransportErrorKind,
) -> None:
    verdict = decide(TransportError("boom", kind=kind), 3)
    reason = f"{TRANSPORT_NAMES[kind]}: boom (after 3 retries)"
    assert flatten(verdict) == Expected(False, None, kind, reason)


def test_tls_errors_are_never_retried() -> None:
    verdict = decide(TransportError("certificate verify failed", kind="tls"))
    expected = Expected(False, None, "tls", "TLS error: certificate verify failed")
    assert flatten(verdict) == expected


def test_the_key_is_masked_in_a_transport_errors_text() -> None:
    text = f"connection reset; headers were {{'accessKey': '{KEY.upper()}'}}"
    verdict = decide(TransportError(text, kind="network"), 3)
    assert verdict.error is not None
    assert not leaks(verdict.error.reason)
    assert MASK in verdict.error.reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("2", 2.0),
        ("0.5", 0.5),
        ("0", 0.0),
        (" 3 ", 3.0),
        ("soon", None),
        ("", None),
        ("-5", 0.0),
        ("inf", None),
        ("nan", None),
        (http_date(NOW + 120), 120.0),
        (http_date(NOW - 120), 0.0),
        ("Wed, 21 Oct 2015 07:28:00 -0000", None),  # no known time zone
    ],
)
def test_retry_after_seconds_reads_seconds_and_http_dates(
    value: str | None, expected: float | None
) -> None:
    assert retry_after_seconds(value, NOW) == expected


@pytest.mark.parametrize(
    ("header", "retries", "wait", "pause"),
    [
        pytest.param("2", 0, 2.0, 2.0, id="longer-than-backoff"),
        pytest.param("0.1", 2, 2.0, 0.1, id="shorter-than-backoff"),
        pytest.param(http_date(NOW + 7), 0, 7.0, 7.0, id="http-date"),
        pytest.param("3600", 0, 30.0, 30.0, id="capped-at-backoff-max"),
        pytest.param(http_date(NOW + 3600), 0, 30.0, 30.0, id="date-capped"),
        pytest.param("-3", 1, 1.0, 0.0, id="negative-is-zero"),
        pytest.param("soon", 1, 1.0, None, id="unparsable-ignored"),
    ],
)
def test_the_wait_after_a_retry_after_is_the_longer_of_it_and_the_backoff(
    header: str, retries: int, wait: float, pause: float | None
) -> None:
    verdict = decide(Response(429, retry_after(header)), retries)
    assert (verdict.wait, verdict.pause) == (wait, pause)


def test_retry_after_is_found_whatever_the_case_of_its_name() -> None:
    verdict = decide(Response(503, {"retry-after": "4"}))
    assert (verdict.wait, verdict.pause) == (4.0, 4.0)


def test_a_final_pushback_still_pauses_the_other_senders() -> None:
    verdict = decide(Response(503, retry_after("5")), 3)
    assert verdict.error is not None
    assert (verdict.pause, verdict.pushback, verdict.wait) == (5.0, True, None)


def test_the_body_excerpt_is_at_most_200_characters() -> None:
    verdict = decide(Response(400, body=b"x" * 1000))
    assert verdict.error is not None
    assert verdict.error.body == "x" * BODY_EXCERPT


def test_the_body_excerpt_is_decoded_leniently() -> None:
    verdict = decide(Response(400, body=b'{"error": "bad \xff input"}'))
    assert verdict.error is not None
    assert verdict.error.body == '{"error": "bad \ufffd input"}'


@pytest.mark.parametrize("echoed", [KEY, KEY.upper(), KEY.title()])
def test_the_key_is_masked_in_the_body_excerpt_in_any_letter_case(echoed: str) -> None:
    body = f'{{"message": "bad request", "accessKey": "{echoed}"}}'.encode()
    verdict = decide(Response(400, body=body))
    assert verdict.error is not None
    assert not leaks(verdict.error.body)
    assert MASK in verdict.error.body


def test_the_key_is_masked_before_the_excerpt_is_cut() -> None:
    # Cut first, the excerpt would end with the key's first 20 characters: no longer a
    # match for the whole key, so it would not be masked.
    body = ("x" * (BODY_EXCERPT - 20) + KEY).encode()
    assert excerpt(body, SCRUB) == "x" * (BODY_EXCERPT - 20) + MASK


@given(
    padding=st.integers(min_value=0, max_value=BODY_EXCERPT + 50),
    case=st.sampled_from([str.lower, str.upper, str.swapcase]),
)
def test_no_part_of_an_echoed_key_survives_the_excerpt(
    padding: int, case: Callable[[str], str]
) -> None:
    echoed = case(KEY)
    text = excerpt(("y" * padding + echoed + " and again " + echoed).encode(), SCRUB)
    assert len(text) <= BODY_EXCERPT
    assert not leaks(text)


def test_the_scrubber_keeps_only_the_keys_last_four_characters() -> None:
    assert SCRUB(f"a {KEY} b {KEY.upper()} c") == f"a {MASK} b {MASK} c"


@pytest.mark.parametrize(
    ("retry", "jitter", "expected"),
    [
        (1, 0.0, 0.5),
        (1, 0.5, 0.75),
        (2, 0.0, 1.0),
        (3, 0.0, 2.0),
        (4, 0.5, 4.25),
        (6, 0.0, 16.0),
        (7, 0.0, 30.0),  # 32 capped
        (60, 0.999, 30.0),
        (61, 0.0, 30.0),
        (10**9, 0.5, 30.0),
    ],
)
def test_backoff_doubles_from_the_factor_and_is_capped(
    retry: int, jitter: float, expected: float
) -> None:
    assert POLICY.backoff(retry, jitter) == expected


@given(jitter=st.floats(min_value=0.0, max_value=1.0, exclude_max=True))
def test_the_first_retry_waits_between_the_factor_and_twice_it(jitter: float) -> None:
    # 1 + a jitter just under 1 may round to 2: twice the factor is reachable.
    assert 0.5 <= POLICY.backoff(1, jitter) <= 1.0


@given(
    retry=st.integers(min_value=1, max_value=20),
    jitter=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
)
def test_each_retry_waits_twice_as_long_as_the_one_before_up_to_jitter(
    retry: int, jitter: float
) -> None:
    uncapped = RetryPolicy(backoff_factor=0.5, backoff_max=1e9)
    before, after = uncapped.backoff(retry, jitter), uncapped.backoff(retry + 1, jitter)
    # The exponential part doubles; the jitter part (under one factor) does not.
    assert after == pytest.approx(2 * before - 0.5 * jitter, rel=1e-12, abs=1e-12)


@given(
    retry=st.integers(min_value=1, max_value=1000),
    jitter=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    factor=st.floats(min_value=0.0, max_value=1e6),
    cap=st.floats(min_value=0.0, max_value=1e6),
)
def test_backoff_is_between_zero_and_backoff_max(
    retry: int, jitter: float, factor: float, cap: float
) -> None:
    policy = RetryPolicy(backoff_factor=factor, backoff_max=cap)
    assert 0.0 <= policy.backoff(retry, jitter) <= cap
