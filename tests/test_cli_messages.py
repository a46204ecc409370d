"""Segment messages from text: timestamps as Segment writes them."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gainsight_segment.cli._messages import parse_timestamp

UTC = timezone.utc


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2014-05-05T08:00:00.000Z", datetime(2014, 5, 5, 8, tzinfo=UTC)),
        ("2021-03-10T17:07:07.339Z", datetime(2021, 3, 10, 17, 7, 7, 339000, tzinfo=UTC)),
        ("2021-03-10T17:07:07.123456789Z", datetime(2021, 3, 10, 17, 7, 7, 123456, tzinfo=UTC)),
        (
            "2021-03-10T17:07:07.5+02:00",
            datetime(2021, 3, 10, 17, 7, 7, 500000, tzinfo=timezone(timedelta(hours=2))),
        ),
        (
            "2021-03-10T17:07:07-0530",
            datetime(2021, 3, 10, 17, 7, 7, tzinfo=timezone(-timedelta(hours=5, minutes=30))),
        ),
        ("2021-03-10T17:07+01", datetime(2021, 3, 10, 17, 7, tzinfo=timezone(timedelta(hours=1)))),
        ("2021-03-10 17:07:07", datetime(2021, 3, 10, 17, 7, 7)),
        ("2021-03-10", datetime(2021, 3, 10)),
    ],
)
def test_parse_timestamp_reads_segment_iso_formats(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected
    assert parse_timestamp(text).tzinfo == expected.tzinfo


@pytest.mark.parametrize(
    "text", ["yesterday", "2021-13-01T00:00:00Z", "2021-03-10T25:00:00Z", "1615396027", ""]
)
def test_parse_timestamp_refuses_what_is_not_iso_8601(text: str) -> None:
    with pytest.raises(ValueError, match="date-time"):
        parse_timestamp(text)
