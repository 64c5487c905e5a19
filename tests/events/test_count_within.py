"""count_cases_within: the exact count of cases within a distance, from the cell index.

Every answer is compared with geodata.selectors.within_metres (the row-by-row question it
replaces) on the same data, at ring edges (a case exactly at the distance), on cell borders,
and after reports, voids and moves.
"""

import datetime as dt
import math
import random

import pytest
from django.contrib.gis.geos import Point
from django.db import connection, transaction

from events.models import Case
from events.selectors import MAX_COUNT_RADIUS_M, RadiusError, _cell_ranges, _Circle, count_cases_within
from events.workflow import State
from geodata.selectors import within_metres
from tests.events.factories import CaseFactory, CategoryFactory, local
from tests.factories import ORIGIN

pytestmark = pytest.mark.django_db
X0, Y0 = ORIGIN
CENTRE = Point(X0 + 0.006, Y0 + 0.006, srid=4326)


def scatter(world, n, *, seed=7, spread=0.012):
    """n cases around CENTRE (±spread degrees, ≈ ±1.2 km), a tenth of them exactly on cell borders."""
    rng = random.Random(seed)
    other = CategoryFactory(minor_code="09", minor_name="占道经营")
    cases = []
    for k in range(n):
        x, y = CENTRE.x + rng.uniform(-spread, spread), CENTRE.y + rng.uniform(-spread, spread)
        if k % 10 == 0:
            x = math.floor(x * 2000) / 2000  # on a cell's western border
        if k % 10 == 1:
            y = math.floor(y * 2000) / 2000  # on a cell's southern border
        cases.append(
            CaseFactory.build(
                grid=world.grid_sw,
                category=other if k % 3 == 0 else world.category,
                location=Point(x, y, srid=4326),
                reported_at=local(2026, 1, 1, 9, 0) + dt.timedelta(days=k % 330),
            )
        )
    return Case.objects.bulk_create(cases)


@pytest.fixture
def cases(world):
    return scatter(world, 600)


def expected(point, metres, queryset=None):
    return within_metres(queryset or Case.objects.all(), field="location", geometry=point, metres=metres).count()


def distances_from(point):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT ST_DistanceSphere(location, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) FROM events_case ORDER BY 1",
            [point.x, point.y],
        )
        return [row[0] for row in cursor.fetchall()]


def test_the_count_equals_within_metres_at_many_points_and_distances(world, cases):
    rng = random.Random(3)
    points = [CENTRE] + [
        Point(CENTRE.x + rng.uniform(-0.005, 0.005), CENTRE.y + rng.uniform(-0.005, 0.005), srid=4326) for _ in range(8)
    ]
    seen = set()
    for point in points:
        for metres in (30, 120, 333.3, 500, 900):
            count = count_cases_within(point=point, metres=metres)
            assert count == expected(point, metres), (point, metres)
            seen.add(count)
    assert len(seen) > 20  # the points and distances asked questions with many different answers
    assert max(seen) > 150


def test_a_case_exactly_at_the_distance_counts_and_one_a_hair_further_does_not(world, cases):
    for point in (CENTRE, Point(CENTRE.x + 0.0021, CENTRE.y - 0.0013, srid=4326)):
        distances = distances_from(point)
        for rank in (5, 60, 150, 300):
            ring = distances[rank]  # a case lies exactly on this ring
            assert count_cases_within(point=point, metres=ring) == expected(point, ring) == rank + 1
            just_short = math.nextafter(ring, 0)
            assert count_cases_within(point=point, metres=just_short) == expected(point, just_short) == rank


def test_a_centre_on_a_cell_corner_and_cases_on_cell_borders(world, cases):
    corner = Point(math.floor(CENTRE.x * 2000) / 2000, math.floor(CENTRE.y * 2000) / 2000, srid=4326)
    on_border = [c.location for c in cases[:20]]
    for point in [corner, *on_border]:
        for metres in (50, 250, 500):
            assert count_cases_within(point=point, metres=metres) == expected(point, metres)


def test_the_cells_are_split_into_wholly_inside_and_edge_ranges(db):
    inside, edge = _cell_ranges(_Circle(x=CENTRE.x, y=CENTRE.y, metres=500))
    assert len(inside) >= 15 and len(edge) >= 30  # about 18 rows of ≈ 55 m, each with a left and right edge
    assert all(low <= high for _, low, high in inside + edge)
    cells = {(row, cx) for row, low, high in inside + edge for cx in range(low, high + 1)}
    assert len(cells) == sum(high - low + 1 for _, low, high in inside + edge)  # no cell twice
    # a cell wholly inside lies within 500 m at all four corners
    with connection.cursor() as cursor:
        for row, low, high in inside:
            for cx in (low, high):
                cursor.execute(
                    "SELECT max(ST_DistanceSphere(ST_SetSRID(ST_MakePoint(%s, %s), 4326),"
                    " ST_SetSRID(ST_MakePoint(cx, cy), 4326))) FROM unnest(%s::float8[], %s::float8[]) c(cx, cy)",
                    [CENTRE.x, CENTRE.y, [cx / 2000, (cx + 1) / 2000] * 2, [row / 2000] * 2 + [(row + 1) / 2000] * 2],
                )
                assert cursor.fetchone()[0] < 500


def test_filters_period_category_and_incidents(world, cases):
    start, end = local(2026, 3, 1, 0, 0), local(2026, 7, 1, 0, 0)
    Case.objects.filter(pk__in=[c.pk for c in cases[::7]]).update(state=State.VOIDED)
    Case.objects.filter(pk__in=[c.pk for c in cases[3::11]]).update(state=State.MERGED, merged_into=cases[1])
    for metres in (200, 500, 800):
        period = Case.objects.filter(reported_at__gte=start, reported_at__lt=end)
        assert count_cases_within(point=CENTRE, metres=metres, reported_from=start, reported_before=end) == expected(
            CENTRE, metres, period
        )
        category = Case.objects.filter(category=world.category)
        assert count_cases_within(point=CENTRE, metres=metres, category_id=world.category.pk) == expected(
            CENTRE, metres, category
        )
        incidents = Case.objects.exclude(state__in=[State.VOIDED, State.MERGED])
        got = count_cases_within(point=CENTRE, metres=metres, incidents_only=True)
        assert got == expected(CENTRE, metres, incidents)
        assert got < expected(CENTRE, metres)  # the voided and merged ones are really left out


def test_reports_voids_and_moves_are_counted_at_once(world, cases):
    before = count_cases_within(point=CENTRE, metres=300)
    new = CaseFactory(
        grid=world.grid_sw, category=world.category, location=Point(CENTRE.x + 0.001, CENTRE.y, srid=4326)
    )
    assert count_cases_within(point=CENTRE, metres=300) == before + 1
    Case.objects.filter(pk=new.pk).update(state=State.VOIDED)
    assert count_cases_within(point=CENTRE, metres=300) == before + 1
    assert count_cases_within(point=CENTRE, metres=300, incidents_only=True) == expected(
        CENTRE, 300, Case.objects.exclude(state__in=[State.VOIDED, State.MERGED])
    )
    # moved 2 km away: no longer counted; moved back to the ring: counted again
    Case.objects.filter(pk=new.pk).update(location=Point(CENTRE.x + 0.02, CENTRE.y, srid=4326))
    assert count_cases_within(point=CENTRE, metres=300) == before == expected(CENTRE, 300)
    Case.objects.filter(pk=new.pk).update(location=Point(CENTRE.x + 0.0030, CENTRE.y, srid=4326))
    assert count_cases_within(point=CENTRE, metres=300) == expected(CENTRE, 300)


def test_distances_it_cannot_answer_are_refused(db):
    for metres in (0, -5, math.nan, MAX_COUNT_RADIUS_M + 1):
        with pytest.raises(RadiusError):
            count_cases_within(point=CENTRE, metres=metres)


def test_the_count_reads_the_cell_index(world, cases):
    """The SQL's cell expressions must match the index's, else the planner cannot use it."""
    captured = []

    def capture(execute, sql, params, many, context):
        captured.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(capture):
        count_cases_within(point=CENTRE, metres=500)
    sql, params = captured[-1]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + sql, params)
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert plan.count("Index Only Scan using case_cell_idx") == 2, plan
