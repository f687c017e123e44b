"""A five-field cron schedule (minute hour day-of-month month day-of-week), standard library only.

Supports `*`, numbers, ranges `a-b`, lists `a,b` and steps `*/n` or `a-b/n`; day-of-week 0-7
with 0 and 7 both Sunday. When both day fields are restricted, either may match (as cron does).
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass

FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
# Four years cover every leap-day combination; a schedule that never fires (Feb 31) is refused.
SEARCH_LIMIT = datetime.timedelta(days=366 * 4)


def _parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if step < 1:
            raise ValueError(f"{name}: step must be at least 1 in {part!r}")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, last = body.split("-", 1)
            start, end = int(first), int(last)
        else:
            start = end = int(body)
            if step_text:
                end = high
        if not (low <= start <= end <= high):
            raise ValueError(f"{name}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step))
    return frozenset(values)


@dataclass(frozen=True)
class CronSchedule:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]
    days_restricted: bool
    weekdays_restricted: bool

    @classmethod
    def parse(cls, expression: str) -> CronSchedule:
        parts = expression.split()
        if len(parts) != 5:
            raise ValueError(f"{expression!r}: a cron schedule has 5 fields (minute hour day month weekday)")
        try:
            sets = [_parse_field(p, name, low, high) for p, (name, low, high) in zip(parts, FIELDS, strict=True)]
        except ValueError as exc:
            raise ValueError(f"{expression!r}: {exc}") from None
        weekdays = frozenset(0 if d == 7 else d for d in sets[4])
        schedule = cls(sets[0], sets[1], sets[2], sets[3], weekdays, parts[2] != "*", parts[4] != "*")
        schedule.next_after(datetime.datetime(2000, 1, 1))  # proves it fires at all
        return schedule

    def day_matches(self, day: datetime.date) -> bool:
        if day.month not in self.months:
            return False
        day_ok = day.day in self.days
        weekday_ok = (day.isoweekday() % 7) in self.weekdays
        if self.days_restricted and self.weekdays_restricted:
            return day_ok or weekday_ok
        return day_ok and weekday_ok

    def _times(self, reverse: bool) -> list[datetime.time]:
        return sorted(
            (datetime.time(h, m) for h in self.hours for m in self.minutes),
            reverse=reverse,
        )

    def _walk(self, start: datetime.datetime, forward: bool) -> datetime.datetime:
        """The first firing strictly after (forward) or at-or-before (backward) `start`."""
        step = datetime.timedelta(days=1 if forward else -1)
        day = start.date()
        for _ in range(SEARCH_LIMIT.days):
            if self.day_matches(day):
                for at in self._times(reverse=not forward):
                    moment = datetime.datetime.combine(day, at)
                    if (moment > start) if forward else (moment <= start):
                        return moment
            day += step
        raise ValueError("the schedule never fires")

    def next_after(self, moment: datetime.datetime) -> datetime.datetime:
        """The first firing time strictly after `moment`."""
        return self._walk(moment, forward=True)

    def previous_at_or_before(self, moment: datetime.datetime) -> datetime.datetime:
        """The last firing time at or before `moment`."""
        return self._walk(moment, forward=False)
