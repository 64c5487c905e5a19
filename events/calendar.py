"""The working calendar (工作日历) that every time limit is counted on.

A day is a working day according to, in this order:

1. a WorkingDayOverride entered by an administrator (local changes, and the 调休 days of
   years the libraries do not know yet);
2. `chinesecalendar`, which knows the official holidays and make-up working days (调休)
   for the years it covers (2004–2026 in version 1.11);
3. for later years, a fallback: Monday–Friday minus the public holidays computed by the
   `holidays` package. That package knows no 调休 days, so such years are flagged
   (`calendar_coverage`) until an administrator has entered them as overrides.

Working hours are the periods of settings.GRIDMGMT_WORKING_HOURS (default
"08:30-12:00,14:00-17:30"), in settings.TIME_ZONE. N working hours is N hours of those
periods; N working days is N times the length of a working day, which lands at the same
clock time N working days later.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import zoneinfo
from decimal import Decimal

import chinese_calendar
import holidays
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEFAULT_WORKING_HOURS = "08:30-12:00,14:00-17:30"
# The calendar never searches further than this for the next working time.
_MAX_DAYS_WITHOUT_WORK = 60

SOURCE_OVERRIDE = "override"
SOURCE_OFFICIAL = "chinesecalendar"
SOURCE_FALLBACK = "fallback"


@dataclasses.dataclass(frozen=True)
class DayInfo:
    day: dt.date
    is_working_day: bool
    source: str  # SOURCE_OVERRIDE, SOURCE_OFFICIAL or SOURCE_FALLBACK
    name: str  # holiday name or the override's note


@dataclasses.dataclass(frozen=True)
class YearCoverage:
    year: int
    source: str  # SOURCE_OFFICIAL or SOURCE_FALLBACK
    overrides: int
    needs_attention: bool  # fallback year without any override: 调休 days are probably missing
    message: str


def parse_working_hours(value: str) -> tuple[tuple[dt.time, dt.time], ...]:
    """ "08:30-12:00,14:00-17:30" -> ordered, non-overlapping periods; fails loudly."""
    periods: list[tuple[dt.time, dt.time]] = []
    for part in value.split(","):
        try:
            start_text, end_text = part.strip().split("-")
            start, end = dt.time.fromisoformat(start_text.strip()), dt.time.fromisoformat(end_text.strip())
        except ValueError:
            raise ImproperlyConfigured(f"GRIDMGMT_WORKING_HOURS={value!r}: use e.g. 08:30-12:00,14:00-17:30") from None
        if end <= start or (periods and start < periods[-1][1]):
            raise ImproperlyConfigured(f"GRIDMGMT_WORKING_HOURS={value!r}: periods must be ordered and not overlap")
        periods.append((start, end))
    if not periods:
        raise ImproperlyConfigured("GRIDMGMT_WORKING_HOURS is empty")
    return tuple(periods)


@functools.lru_cache(maxsize=8)
def _cn_holidays(year: int) -> dict[dt.date, str]:
    return dict(holidays.country_holidays("CN", years=year, language="zh_CN"))


@functools.lru_cache(maxsize=8192)
def official_day(day: dt.date) -> DayInfo:
    """What the libraries say about `day`, without local overrides."""
    try:
        working = chinese_calendar.is_workday(day)
        _, name = chinese_calendar.get_holiday_detail(day)
        return DayInfo(day, working, SOURCE_OFFICIAL, name or "")
    except NotImplementedError:
        name = _cn_holidays(day.year).get(day, "")
        return DayInfo(day, day.weekday() < 5 and not name, SOURCE_FALLBACK, name)


def official_source(year: int) -> str:
    return official_day(dt.date(year, 6, 1)).source


class WorkingCalendar:
    """Working-time arithmetic. Overrides are read once per year and instance."""

    def __init__(self, *, working_hours: str | None = None, overrides: dict[dt.date, DayInfo] | None = None):
        text = working_hours or str(getattr(settings, "GRIDMGMT_WORKING_HOURS", DEFAULT_WORKING_HOURS))
        self.periods = parse_working_hours(text)
        self.tz = zoneinfo.ZoneInfo(settings.TIME_ZONE)
        self.day_seconds = sum(
            (dt.datetime.combine(dt.date.min, end) - dt.datetime.combine(dt.date.min, start)).seconds
            for start, end in self.periods
        )
        self._fixed_overrides = overrides
        self._overrides: dict[int, dict[dt.date, DayInfo]] = {}

    def _overrides_of(self, year: int) -> dict[dt.date, DayInfo]:
        if self._fixed_overrides is not None:
            return self._fixed_overrides
        if year not in self._overrides:
            from events.models import WorkingDayOverride

            self._overrides[year] = {
                o.day: DayInfo(o.day, o.is_working_day, SOURCE_OVERRIDE, o.note)
                for o in WorkingDayOverride.objects.filter(day__year=year)
            }
        return self._overrides[year]

    def day_info(self, day: dt.date) -> DayInfo:
        return self._overrides_of(day.year).get(day) or official_day(day)

    def is_working_day(self, day: dt.date) -> bool:
        return self.day_info(day).is_working_day

    def _periods_on(self, day: dt.date) -> list[tuple[dt.datetime, dt.datetime]]:
        if not self.is_working_day(day):
            return []
        return [
            (dt.datetime.combine(day, start, tzinfo=self.tz), dt.datetime.combine(day, end, tzinfo=self.tz))
            for start, end in self.periods
        ]

    def add_seconds(self, start: dt.datetime, seconds: int) -> dt.datetime:
        """The moment when `seconds` of working time have passed since `start`."""
        if seconds < 0:
            raise ValueError("seconds must not be negative")
        cursor = start.astimezone(self.tz)
        day = cursor.date()
        remaining = seconds
        idle_days = 0
        while idle_days <= _MAX_DAYS_WITHOUT_WORK:
            periods = self._periods_on(day)
            idle_days = 0 if periods else idle_days + 1
            for period_start, period_end in periods:
                if cursor >= period_end:
                    continue
                segment_start = max(cursor, period_start)
                available = int((period_end - segment_start).total_seconds())
                if remaining <= available:
                    return segment_start + dt.timedelta(seconds=remaining)
                remaining -= available
            day += dt.timedelta(days=1)
        raise ImproperlyConfigured(
            f"工作日历中 {start:%Y-%m-%d} 之后连续 {_MAX_DAYS_WITHOUT_WORK} 天没有工作日，请检查工作日调整"
        )

    def seconds_between(self, start: dt.datetime, end: dt.datetime) -> int:
        """Working seconds in [start, end); 0 when end is not after start."""
        if end <= start:
            return 0
        start, end = start.astimezone(self.tz), end.astimezone(self.tz)
        total = 0.0
        day = start.date()
        while day <= end.date():
            for period_start, period_end in self._periods_on(day):
                overlap = (min(end, period_end) - max(start, period_start)).total_seconds()
                if overlap > 0:
                    total += overlap
            day += dt.timedelta(days=1)
        return int(total)

    def limit_seconds(self, amount: Decimal, unit: str) -> int:
        hours = Decimal(amount) * (Decimal(self.day_seconds) / 3600 if unit == "days" else 1)
        return int((hours * 3600).to_integral_value())

    def add(self, start: dt.datetime, amount: Decimal, unit: str) -> dt.datetime:
        """start + `amount` working hours (unit "hours") or working days (unit "days")."""
        return self.add_seconds(start, self.limit_seconds(amount, unit))

    def warn_time(self, start: dt.datetime, deadline: dt.datetime) -> dt.datetime:
        """The moment 80 % of the working time between start and deadline is used (yellow light)."""
        return self.add_seconds(start, math.ceil(self.seconds_between(start, deadline) * 0.8))


def timer_light(*, warn_at: dt.datetime | None, deadline: dt.datetime | None, now: dt.datetime) -> str:
    """green below 80 % of the step's working time, yellow from 80 % up to the deadline, red after it.

    warn_at is WorkingCalendar.warn_time(step start, deadline); the same rule runs in SQL
    in events.selectors.with_timer_light.
    """
    if deadline is None or warn_at is None:
        return ""
    if now > deadline:
        return "red"
    if now >= warn_at:
        return "yellow"
    return "green"


def calendar_coverage(*, years: list[int]) -> list[YearCoverage]:
    """Which source decides each year, and whether an administrator should enter 调休 days."""
    from events.models import WorkingDayOverride

    result = []
    for year in years:
        source = official_source(year)
        overrides = WorkingDayOverride.objects.filter(day__year=year).count()
        needs_attention = source == SOURCE_FALLBACK and overrides == 0
        if source == SOURCE_OFFICIAL:
            message = f"{year} 年：采用 chinesecalendar 的法定节假日和调休安排"
        elif overrides:
            message = f"{year} 年：chinesecalendar 尚无数据，按周末和法定节假日推算，并已录入 {overrides} 条调整"
        else:
            message = (
                f"{year} 年：chinesecalendar 尚无数据，暂按周末和法定节假日推算（不含调休上班日），"
                "请在“工作日调整”中录入国务院公布的放假调休安排"
            )
        result.append(YearCoverage(year, source, overrides, needs_attention, message))
    return result
