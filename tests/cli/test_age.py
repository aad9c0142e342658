"""``--older-than`` values: ages, ISO times, and what is refused."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from icechunk_cli.age import cutoff_from, describe_age

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("90m", dt.timedelta(minutes=90)),
        ("36h", dt.timedelta(hours=36)),
        ("7d", dt.timedelta(days=7)),
        ("2w", dt.timedelta(weeks=2)),
        ("1d12h", dt.timedelta(days=1, hours=12)),
        (" 7D ", dt.timedelta(days=7)),
        ("0s", dt.timedelta(0)),
    ],
)
def test_ages_count_back_from_now(text: str, back: dt.timedelta) -> None:
    assert cutoff_from(text, NOW) == NOW - back


def test_iso_times_without_offset_are_utc() -> None:
    assert cutoff_from("2026-11-01", NOW) == dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
    assert cutoff_from("2026-11-01T12:30:00+01:00", NOW) == dt.datetime(
        2026, 11, 1, 11, 30, tzinfo=dt.UTC
    )


@pytest.mark.parametrize("text", ["", "7", "d", "7 days", "-7d", "7y", "2026-13-01", "soon"])
def test_anything_else_is_refused_with_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match="neither an age"):
        cutoff_from(text, NOW)


def test_a_future_time_is_refused() -> None:
    with pytest.raises(ValueError, match="in the future"):
        cutoff_from("2026-12-01", NOW)


def test_an_age_before_year_one_is_refused() -> None:
    with pytest.raises(ValueError, match="before the year 1"):
        cutoff_from("999999999w", NOW)


@given(st.text(max_size=20))
def test_any_text_gives_a_past_utc_time_or_a_value_error(text: str) -> None:
    try:
        moment = cutoff_from(text, NOW)
    except ValueError:
        return
    assert moment <= NOW
    assert moment.utcoffset() == dt.timedelta(0)


def test_describe_age_echoes_the_moment_and_how_long_ago() -> None:
    assert describe_age(NOW - dt.timedelta(days=7), NOW) == "2026-11-20 12:00:00 UTC (7 days ago)"
    assert describe_age(NOW - dt.timedelta(seconds=1), NOW).endswith("(1 second ago)")
