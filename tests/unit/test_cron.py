from __future__ import annotations

import datetime as dt

import pytest

from scripts.cron import CronSchedule


def test_daily_at_two() -> None:
    daily = CronSchedule.parse("0 2 * * *")
    assert daily.next_after(dt.datetime(2026, 11, 28, 1, 59, 30)) == dt.datetime(2026, 11, 28, 2, 0)
    assert daily.next_after(dt.datetime(2026, 11, 28, 2, 0)) == dt.datetime(2026, 11, 29, 2, 0)
    assert daily.previous_at_or_before(dt.datetime(2026, 11, 28, 1, 0)) == dt.datetime(2026, 11, 27, 2, 0)
    assert daily.previous_at_or_before(dt.datetime(2026, 11, 28, 2, 0, 45)) == dt.datetime(2026, 11, 28, 2, 0)


def test_every_minute_steps_ranges_and_lists() -> None:
    assert CronSchedule.parse("* * * * *").next_after(dt.datetime(2026, 1, 1, 0, 0, 59)) == dt.datetime(
        2026, 1, 1, 0, 1
    )
    quarter = CronSchedule.parse("*/15 9-17 * * 1-5")
    assert quarter.next_after(dt.datetime(2026, 11, 27, 17, 50)) == dt.datetime(2026, 11, 30, 9, 0)  # Fri -> Mon
    assert CronSchedule.parse("5,35 * * * *").next_after(dt.datetime(2026, 1, 1, 0, 6)) == dt.datetime(
        2026, 1, 1, 0, 35
    )


def test_sunday_is_0_or_7_and_restricted_day_fields_or_together() -> None:
    assert CronSchedule.parse("0 0 * * 7").next_after(dt.datetime(2026, 11, 28)) == dt.datetime(2026, 11, 29)
    either = CronSchedule.parse("0 0 1 * 1")  # the 1st, or any Monday
    assert either.next_after(dt.datetime(2026, 11, 28)) == dt.datetime(2026, 11, 30)
    assert either.next_after(dt.datetime(2026, 11, 30)) == dt.datetime(2026, 12, 1)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("daily", "5 fields"),
        ("60 * * * *", "minute"),
        ("0 0 0 * *", "day of month"),
        ("*/0 * * * *", "step"),
        ("0 0 30 2 *", "never fires"),
    ],
)
def test_bad_schedules(expression: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        CronSchedule.parse(expression)
