"""scripts/cron.py field parsing and day matching, value by value."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from scripts.cron import FIELDS, SEARCH_LIMIT, CronSchedule, _parse_field


def test_field_ranges() -> None:
    assert FIELDS == (
        ("minute", 0, 59),
        ("hour", 0, 23),
        ("day of month", 1, 31),
        ("month", 1, 12),
        ("day of week", 0, 7),
    )
    assert dt.timedelta(days=1464) == SEARCH_LIMIT


@pytest.mark.parametrize(
    ("text", "values"),
    [
        ("*", set(range(60))),
        ("7", {7}),
        ("0", {0}),
        ("59", {59}),
        ("5-8", {5, 6, 7, 8}),
        ("1,3,59", {1, 3, 59}),
        ("*/15", {0, 15, 30, 45}),
        ("*/1", set(range(60))),
        ("5/15", {5, 20, 35, 50}),  # a/n runs from a to the end of the field
        ("50/5", {50, 55}),
        ("10-30/10", {10, 20, 30}),
        ("10-31/10", {10, 20, 30}),
        ("0-59/30,7", {0, 30, 7}),
    ],
)
def test_minute_fields(text: str, values: set[int]) -> None:
    assert _parse_field(text, "minute", 0, 59) == frozenset(values)


def test_steps_end_at_the_fields_own_high() -> None:
    assert _parse_field("20/2", "hour", 0, 23) == frozenset({20, 22})
    assert _parse_field("*/10", "day of month", 1, 31) == frozenset({1, 11, 21, 31})


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("60", "minute: '60' is outside 0-59"),
        ("-1", "invalid literal"),
        ("5-2", "minute: '5-2' is outside 0-59"),
        ("0-60", "minute: '0-60' is outside 0-59"),
        ("*/0", "minute: step must be at least 1 in '*/0'"),
        ("1/-1", "minute: step must be at least 1 in '1/-1'"),
        ("x", "invalid literal"),
    ],
)
def test_bad_fields(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        _parse_field(text, "minute", 0, 59)


def test_parse_keeps_each_field_and_maps_sunday_7_to_0() -> None:
    schedule = CronSchedule.parse("5 4 3,4 2 7")
    assert schedule == CronSchedule(
        minutes=frozenset({5}),
        hours=frozenset({4}),
        days=frozenset({3, 4}),
        months=frozenset({2}),
        weekdays=frozenset({0}),
        days_restricted=True,
        weekdays_restricted=True,
    )
    assert CronSchedule.parse("* * * * *").weekdays == frozenset(range(7))
    every = CronSchedule.parse("0 0 * * *")
    assert (every.days_restricted, every.weekdays_restricted) == (False, False)


@pytest.mark.parametrize("expression", ["0 2 * *", "0 2 * * * *", ""])
def test_five_fields_exactly(expression: str) -> None:
    with pytest.raises(ValueError) as caught:
        CronSchedule.parse(expression)
    assert str(caught.value) == (f"{expression!r}: a cron schedule has 5 fields (minute hour day month weekday)")


def test_field_errors_name_the_expression() -> None:
    with pytest.raises(ValueError) as caught:
        CronSchedule.parse("0 24 * * *")
    assert str(caught.value) == "'0 24 * * *': hour: '24' is outside 0-23"


def test_day_matching() -> None:
    # 2026-11-30 is a Monday, 2026-11-29 a Sunday.
    monday, sunday, first = dt.date(2026, 11, 30), dt.date(2026, 11, 29), dt.date(2026, 12, 1)
    weekdays_only = CronSchedule.parse("0 0 * * 1")
    assert weekdays_only.day_matches(monday) and not weekdays_only.day_matches(sunday)
    sundays = CronSchedule.parse("0 0 * * 0")
    assert sundays.day_matches(sunday) and not sundays.day_matches(monday)
    days_only = CronSchedule.parse("0 0 1 * *")
    assert days_only.day_matches(first) and not days_only.day_matches(monday)
    either = CronSchedule.parse("0 0 1 * 0")
    assert either.day_matches(first) and either.day_matches(sunday) and not either.day_matches(monday)
    december = CronSchedule.parse("0 0 * 12 *")
    assert december.day_matches(first) and not december.day_matches(monday)
    # A restricted month rules out a day even when both day fields would match.
    assert not CronSchedule.parse("0 0 30 1 1").day_matches(monday)


def test_previous_walks_back_across_days_months_and_years() -> None:
    new_year = CronSchedule.parse("30 23 31 12 *")
    assert new_year.previous_at_or_before(dt.datetime(2026, 6, 1)) == dt.datetime(2025, 12, 31, 23, 30)
    assert new_year.next_after(dt.datetime(2026, 6, 1)) == dt.datetime(2026, 12, 31, 23, 30)
    twice = CronSchedule.parse("0 6,18 * * *")
    assert twice.previous_at_or_before(dt.datetime(2026, 11, 28, 17, 59)) == dt.datetime(2026, 11, 28, 6, 0)
    assert twice.previous_at_or_before(dt.datetime(2026, 11, 28, 5, 0)) == dt.datetime(2026, 11, 27, 18, 0)
    assert twice.next_after(dt.datetime(2026, 11, 28, 6, 0)) == dt.datetime(2026, 11, 28, 18, 0)
    assert twice.next_after(dt.datetime(2026, 11, 28, 5, 59, 59)) == dt.datetime(2026, 11, 28, 6, 0)


def test_leap_days_are_found_within_the_search_limit() -> None:
    leap = CronSchedule.parse("0 0 29 2 *")
    assert leap.next_after(dt.datetime(2024, 3, 1)) == dt.datetime(2028, 2, 29)
    assert leap.previous_at_or_before(dt.datetime(2028, 2, 28)) == dt.datetime(2024, 2, 29)
