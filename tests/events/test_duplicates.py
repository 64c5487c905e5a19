"""Duplicate suggestions on report, and merging that keeps every source report."""

import datetime as dt

import pytest
from django.contrib.gis.geos import Point
from django.core.exceptions import ValidationError

from events import indicators, selectors, services
from events.models import Case, CaseHistory, Category
from events.workflow import Action, State, TransitionNotAllowed
from tests.events.factories import POINT_SW, CategoryFactory, local
from tests.factories import ORIGIN

pytestmark = pytest.mark.django_db
X0, Y0 = ORIGIN


def report(world, *, at, point=POINT_SW, source=Case.Source.GRID_WORKER, actor=None, category=None):
    return services.case_report(
        actor=actor or (world.grid_worker if source == Case.Source.GRID_WORKER else world.operator),
        source=source,
        category=category or world.category,
        location=point,
        description="垃圾成堆",
        at=at,
    )


def test_open_cases_of_the_same_category_nearby_and_recent_are_suggested(world):
    first = report(world, at=local(2026, 11, 16, 9, 0))
    # ~30 m east: a duplicate candidate
    near = report(world, at=local(2026, 11, 16, 9, 5), point=Point(X0 + 0.0008, Y0 + 0.0005, srid=4326))
    # ~100 m away: too far
    report(world, at=local(2026, 11, 16, 9, 6), point=Point(X0 + 0.0015, Y0 + 0.0005, srid=4326))
    # same place, other category
    other = CategoryFactory(minor_code="04", minor_name="道路不洁")
    report(world, at=local(2026, 11, 16, 9, 7), category=other)
    # same place, but four days earlier
    report(world, at=local(2026, 11, 12, 9, 0))
    # same place, closed already
    closed = report(world, at=local(2026, 11, 16, 8, 0))
    Case.objects.filter(pk=closed.pk).update(state=State.VOIDED)

    new = report(world, at=local(2026, 11, 16, 10, 0))
    candidates = list(selectors.case_duplicate_candidates(case=new))
    assert candidates == [first, near]  # nearest first
    assert candidates[0].distance_m.m == pytest.approx(0, abs=0.01)
    assert 25 < candidates[1].distance_m.m < 35
    # A wider radius finds the far one too
    assert len(selectors.case_duplicate_candidates(case=new, radius_m=150)) == 3


def test_merge_keeps_every_source_report_and_counts_them_for_missed_reports(world):
    # The public called first; the grid worker reported the same garbage later
    hotline = report(world, at=local(2026, 11, 16, 9, 0), source=Case.Source.HOTLINE)
    services.case_verify(case=hotline, actor=world.grid_worker, confirmed=True, at=local(2026, 11, 16, 9, 20))
    own = report(world, at=local(2026, 11, 16, 9, 30))

    main = services.case_merge(
        duplicate=hotline, into=own, actor=world.operator, comment="同一堆垃圾", at=local(2026, 11, 16, 9, 40)
    )

    hotline.refresh_from_db()
    assert (hotline.state, hotline.merged_into, hotline.merged_at) == (State.MERGED, own, local(2026, 11, 16, 9, 40))
    assert (hotline.deadline, hotline.current_assignee) == (None, None)
    assert main.state == State.REPORTED
    assert list(selectors.case_source_reports(case=own)) == [hotline, own]
    assert list(CaseHistory.objects.filter(case=hotline).values_list("action", "payload")) == [
        (Action.REGISTER, {"source": "hotline"}),
        (Action.VERIFY, {"confirmed": True}),
        (Action.MERGE, {"into": own.number}),
    ]
    assert list(CaseHistory.objects.filter(case=own).values_list("action", "from_state", "to_state", "payload")) == [
        (Action.REPORT, State.NEW, State.REPORTED, {"source": "grid_worker"}),
        (Action.ABSORB, State.REPORTED, State.REPORTED, {"merged": hotline.number}),
    ]

    # When the merged case is filed, the region counts one filed case, and one 漏报:
    # its earliest source report came from the hotline, not from the grid worker
    services.case_file(case=own, actor=world.operator, auto_dispatch=False, at=local(2026, 11, 16, 10, 0))
    start, end = indicators.day_bounds(dt.date(2026, 11, 16))
    row = indicators.region_indicators(start=start, end=end, level="grid", as_of=end)[0]
    assert (row["code"], row["filed"], row["missed"], row["missed_rate"]) == (world.grid_sw.code, 1, 1, 100)


def test_merged_case_cannot_be_merged_or_absorb_again(world):
    a = report(world, at=local(2026, 11, 16, 9, 0))
    b = report(world, at=local(2026, 11, 16, 9, 1))
    c = report(world, at=local(2026, 11, 16, 9, 2))
    services.case_merge(duplicate=a, into=b, actor=world.operator, at=local(2026, 11, 16, 9, 3))
    rows = CaseHistory.objects.count()
    with pytest.raises(TransitionNotAllowed):
        services.case_merge(duplicate=c, into=a, actor=world.operator, at=local(2026, 11, 16, 9, 4))
    with pytest.raises(TransitionNotAllowed):
        services.case_merge(duplicate=a, into=c, actor=world.operator, at=local(2026, 11, 16, 9, 4))
    with pytest.raises(ValidationError):
        services.case_merge(duplicate=c, into=c, actor=world.operator, at=local(2026, 11, 16, 9, 4))
    assert CaseHistory.objects.count() == rows
    c.refresh_from_db()
    assert (c.state, c.merged_into) == (State.REPORTED, None)


def test_retried_upload_with_the_same_client_key_creates_no_second_case(world):
    kwargs = {
        "actor": world.grid_worker,
        "source": Case.Source.GRID_WORKER,
        "category": world.category,
        "location": POINT_SW,
        "description": "垃圾",
        "client_key": "phone-1:report-42",
        "at": local(2026, 11, 16, 9, 0),
    }
    first = services.case_report(**kwargs)
    again = services.case_report(**kwargs)
    assert again.pk == first.pk
    assert Case.objects.count() == 1
    assert CaseHistory.objects.count() == 1
    assert Category.objects.count() == 1
