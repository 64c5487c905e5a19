"""The working calendar: holidays, 调休 make-up days, years beyond chinesecalendar, overrides, lights."""

import datetime as dt
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db import connection

from events import calendar, selectors, services
from events.models import Case, WorkingDayOverride
from events.workflow import State
from tests.events.factories import POINT_SW, CaseFactory, local

pytestmark = pytest.mark.django_db


@pytest.fixture
def cal():
    return calendar.WorkingCalendar()


def test_national_day_2026_is_skipped(cal):
    # chinesecalendar: 2026-10-01..10-07 off, Thursday 10-08 back at work
    assert [cal.is_working_day(dt.date(2026, 10, d)) for d in range(1, 9)] == [False] * 7 + [True]
    assert cal.day_info(dt.date(2026, 10, 1)).source == calendar.SOURCE_OFFICIAL
    # Wednesday 09-30 16:00 + 4 working hours = 1h30 that day + 2h30 on 10-08
    assert cal.add(local(2026, 9, 30, 16, 0), Decimal("4"), "hours") == local(2026, 10, 8, 11, 0)
    assert cal.seconds_between(local(2026, 9, 30, 16, 0), local(2026, 10, 8, 11, 0)) == 4 * 3600


def test_make_up_working_days_count(cal):
    # Saturday 2026-10-10 and Sunday 2026-09-20 are 调休 working days
    assert cal.is_working_day(dt.date(2026, 10, 10)) is True
    assert cal.is_working_day(dt.date(2026, 9, 20)) is True
    assert cal.is_working_day(dt.date(2026, 9, 19)) is False
    # Friday 09-18 17:00 + 2h: 30 minutes on Friday, then Sunday 09-20 08:30-10:00
    assert cal.add(local(2026, 9, 18, 17, 0), Decimal("2"), "hours") == local(2026, 9, 20, 10, 0)
    # 3 working days from 09-30 10:00: 10-08, 10-09, then Saturday 10-10 at the same time
    assert cal.add(local(2026, 9, 30, 10, 0), Decimal("3"), "days") == local(2026, 10, 10, 10, 0)


def test_start_outside_working_hours_counts_from_the_next_period(cal):
    assert cal.add(local(2026, 11, 21, 10, 0), Decimal("1"), "hours") == local(2026, 11, 23, 9, 30)  # Saturday
    assert cal.add(local(2026, 11, 16, 12, 30), Decimal("1"), "hours") == local(2026, 11, 16, 15, 0)  # lunch
    assert cal.add(local(2026, 11, 16, 7, 0), Decimal("0.5"), "hours") == local(2026, 11, 16, 9, 0)  # early
    assert cal.add(local(2026, 11, 16, 11, 0), Decimal("1"), "days") == local(2026, 11, 17, 11, 0)


def test_2027_falls_back_to_weekends_and_holidays_and_is_flagged(cal):
    # chinesecalendar 1.11 raises for 2027; the `holidays` package gives 10-01..10-05
    day = cal.day_info(dt.date(2027, 10, 1))
    assert (day.is_working_day, day.source, day.name) == (False, calendar.SOURCE_FALLBACK, "国庆节")
    assert cal.is_working_day(dt.date(2027, 10, 4)) is False  # observed holiday (Monday)
    assert cal.is_working_day(dt.date(2027, 10, 6)) is True
    assert cal.add(local(2027, 9, 30, 16, 0), Decimal("4"), "hours") == local(2027, 10, 6, 11, 0)
    coverage = {c.year: c for c in calendar.calendar_coverage(years=[2026, 2027])}
    assert (coverage[2026].source, coverage[2026].needs_attention) == (calendar.SOURCE_OFFICIAL, False)
    assert (coverage[2027].source, coverage[2027].needs_attention) == (calendar.SOURCE_FALLBACK, True)
    assert "请在“工作日调整”中录入" in coverage[2027].message


def test_admin_overrides_win_over_the_libraries():
    # A 2027 调休 Saturday entered by the admin, and a local day off on an ordinary 2026 Wednesday
    WorkingDayOverride.objects.create(day=dt.date(2027, 10, 9), is_working_day=True, note="国庆调休上班")
    WorkingDayOverride.objects.create(day=dt.date(2026, 11, 18), is_working_day=False, note="本地停工")
    cal = calendar.WorkingCalendar()
    assert cal.day_info(dt.date(2027, 10, 9)) == calendar.DayInfo(
        dt.date(2027, 10, 9), True, calendar.SOURCE_OVERRIDE, "国庆调休上班"
    )
    assert cal.add(local(2027, 10, 8, 16, 0), Decimal("4"), "hours") == local(2027, 10, 9, 11, 0)
    assert cal.add(local(2026, 11, 17, 17, 0), Decimal("1"), "hours") == local(2026, 11, 19, 9, 0)
    coverage = calendar.calendar_coverage(years=[2027])[0]
    assert (coverage.needs_attention, coverage.overrides) == (False, 1)


def test_working_hours_come_from_settings(settings):
    settings.GRIDMGMT_WORKING_HOURS = "09:00-12:00,13:30-18:00"
    cal = calendar.WorkingCalendar()
    assert cal.day_seconds == 7.5 * 3600
    assert cal.add(local(2026, 11, 16, 11, 30), Decimal("1"), "hours") == local(2026, 11, 16, 14, 0)
    settings.GRIDMGMT_WORKING_HOURS = "14:00-12:00"
    with pytest.raises(ImproperlyConfigured):
        calendar.WorkingCalendar()


def test_dispatch_before_national_day_gets_its_deadline_after_the_holiday(world):
    case = services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=POINT_SW,
        description="节前垃圾",
        at=local(2026, 9, 30, 15, 0),
    )
    case = services.case_file(case=case, actor=world.operator, at=local(2026, 9, 30, 16, 0))
    assert case.state == State.DISPATCHED
    assert case.deadline == case.due_at == local(2026, 10, 8, 11, 0)
    # 80 % of 4 working hours = 3h12: 1h30 on 09-30, 1h42 on 10-08
    assert case.warn_at == local(2026, 10, 8, 10, 12)


def test_area_class_and_urgency_choose_the_handling_limit(world):
    from events.models import GridAreaClass

    GridAreaClass.objects.create(grid=world.grid_sw, area_class="A")
    case = services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=POINT_SW,
        description="紧急",
        urgency="urgent",
        at=local(2026, 11, 16, 9, 0),
    )
    assert case.area_class == "A"
    case = services.case_file(case=case, actor=world.operator, at=local(2026, 11, 16, 9, 0))
    assert case.deadline == local(2026, 11, 16, 10, 0)  # 紧急/A = 1 working hour


def test_timer_light_in_python_and_sql_agree(world):
    started = local(2026, 11, 16, 9, 0)
    case = CaseFactory(
        grid=world.grid_sw,
        state=State.DISPATCHED,
        step="handle",
        step_started_at=started,
        warn_at=local(2026, 11, 16, 11, 0),
        deadline=local(2026, 11, 16, 11, 30),
    )
    deferred = CaseFactory(grid=world.grid_sw, state=State.DEFERRED)
    expected = [
        (local(2026, 11, 16, 10, 59), "green"),
        (local(2026, 11, 16, 11, 0), "yellow"),
        (local(2026, 11, 16, 11, 30), "yellow"),
        (local(2026, 11, 16, 11, 31), "red"),
    ]
    for now, light in expected:
        assert calendar.timer_light(warn_at=case.warn_at, deadline=case.deadline, now=now) == light
        annotated = selectors.with_timer_light(Case.objects.filter(pk__in=[case.pk, deferred.pk]), now=now)
        assert dict(annotated.values_list("pk", "timer_light")) == {case.pk: light, deferred.pk: ""}


def test_overdue_cases_are_found_through_the_partial_index(world):
    late = CaseFactory(
        grid=world.grid_sw,
        state=State.DISPATCHED,
        step_started_at=local(2026, 11, 16, 9, 0),
        warn_at=local(2026, 11, 16, 10, 0),
        deadline=local(2026, 11, 16, 10, 15),
    )
    CaseFactory(
        grid=world.grid_sw,
        state=State.HANDLED,
        step_started_at=local(2026, 11, 16, 9, 0),
        warn_at=local(2026, 11, 16, 15, 0),
        deadline=local(2026, 11, 16, 16, 0),
    )
    CaseFactory(grid=world.grid_sw, state=State.CLOSED)
    overdue = selectors.cases_overdue(now=local(2026, 11, 16, 12, 0))
    assert list(overdue) == [late]
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")  # a tiny table would be scanned anyway
    plan = overdue.explain()
    # Either partial index over the open, timed cases serves (on a tiny table the planner may
    # pick the warn-time one); what must never happen is reading every case.
    assert "case_open_deadline_idx" in plan or "case_open_warn_idx" in plan
    assert "Seq Scan" not in plan
