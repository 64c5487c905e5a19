"""The grid cells behind the point → grid look-up: same answers as the exact test, kept by triggers.

`exact` is the rule itself (ST_Covers, grid valid on the day, smallest code on a shared
edge); `looked_up` is geodata.services' statement, which answers from geodata_gridcell
where it can.
"""

import datetime as dt
import random

import pytest
from django.contrib.gis.geos import Point, Polygon
from django.db import connection

from geodata.models import Grid, GridCell
from geodata.services import _GRID_OF_POINT
from tests.factories import ORIGIN

pytestmark = pytest.mark.django_db
X0, Y0 = ORIGIN
DAY = dt.date(2026, 11, 16)

EXACT = """
    SELECT g.id FROM geodata_grid g
    WHERE ST_Covers(g.geom, {point})
      AND g.valid_from <= %(day)s AND (g.valid_to IS NULL OR g.valid_to > %(day)s)
    ORDER BY g.code LIMIT 1
"""


def answers(sql, points, day):
    with connection.cursor() as cursor:
        look_up = sql.format(point="ST_SetSRID(ST_MakePoint(p.x, p.y), 4326)")
        cursor.execute(
            "SELECT f.id FROM unnest(%(xs)s::float8[], %(ys)s::float8[]) WITH ORDINALITY p(x, y, k)"  # noqa: S608
            f" LEFT JOIN LATERAL ({look_up}) f ON true ORDER BY p.k",
            {"xs": [p[0] for p in points], "ys": [p[1] for p in points], "day": day},
        )
        return [row[0] for row in cursor.fetchall()]


def cell_answers(points, day):
    """The grid the cell table alone gives (None where it has no row for the day)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT (SELECT c.grid_id FROM geodata_gridcell c WHERE c.cell_y = floor(p.y * 8000)::int"
            " AND c.cell_x = floor(p.x * 8000)::int AND c.valid_from <= %(day)s"
            " AND (c.valid_to IS NULL OR c.valid_to > %(day)s))"
            " FROM unnest(%(xs)s::float8[], %(ys)s::float8[]) WITH ORDINALITY p(x, y, k) ORDER BY p.k",
            {"xs": [p[0] for p in points], "ys": [p[1] for p in points], "day": day},
        )
        return [row[0] for row in cursor.fetchall()]


def probe_points(seed=1):
    """Random points over the 2 × 2 block and around it, every corner, and points on every shared edge."""
    rng = random.Random(seed)
    points = [(X0 + rng.uniform(-0.001, 0.005), Y0 + rng.uniform(-0.001, 0.005)) for _ in range(1500)]
    for i in range(3):
        for j in range(3):
            points.append((X0 + 0.002 * i, Y0 + 0.002 * j))  # corners, the middle one shared by four grids
    for _ in range(60):
        t = rng.uniform(0, 0.004)
        points += [(X0 + 0.002, Y0 + t), (X0 + t, Y0 + 0.002), (X0 + t, Y0), (X0 + 0.004, Y0 + t)]
    return points


def assert_same_answers(points, day=DAY):
    expected = answers(EXACT, points, day)
    assert answers(_GRID_OF_POINT, points, day) == expected
    # where the cell table answers, it answers the exact rule's grid
    for cell, grid in zip(cell_answers(points, day), expected, strict=True):
        assert cell is None or cell == grid
    return expected


def test_the_look_up_equals_the_exact_rule_on_edges_corners_and_inside(district):
    grids = district["grids"]
    points = probe_points()
    found = assert_same_answers(points)
    assert set(found) == {g.pk for g in grids} | {None}
    # the middle corner belongs to the grid with the smallest code, as do shared edges
    middle = answers(_GRID_OF_POINT, [(X0 + 0.002, Y0 + 0.002)], DAY)
    assert middle == [min(grids, key=lambda g: g.code).pk]
    # most points inside were answered by a cell, none on an edge
    cells = cell_answers(points, DAY)
    in_block = sum(grid is not None for grid in found[:1500])
    assert sum(c is not None for c in cells[:1500]) > 0.7 * in_block > 400  # 14² of 16² cells a grid
    assert all(c is None for c in cells[1500:])


def test_a_grid_has_a_cell_for_every_cell_strictly_inside_it(district):
    # 0.002° squares on cell borders: 16 × 16 cells, of which the outer ring touches the edge
    for grid in district["grids"]:
        assert GridCell.objects.filter(grid=grid).count() == 14 * 14
        assert set(GridCell.objects.filter(grid=grid).values_list("valid_from", "valid_to")) == {
            (dt.date(2020, 1, 1), None)
        }


def test_validity_dates_a_redrawn_grid_hands_its_cells_over_on_the_day(district):
    old = district["grids"][0]
    Grid.objects.filter(pk=old.pk).update(valid_to=dt.date(2024, 1, 1))
    new = Grid.objects.create(
        code=old.code[:-3] + "099",
        name="新网格",
        community=old.community,
        geom=old.geom,
        valid_from=dt.date(2024, 1, 1),
    )
    inside = (old.geom.centroid.x, old.geom.centroid.y)
    for day, grid in ((dt.date(2023, 12, 31), old), (dt.date(2024, 1, 1), new), (DAY, new)):
        assert answers(_GRID_OF_POINT, [inside], day) == [grid.pk]
        assert cell_answers([inside], day) == [grid.pk]
        assert_same_answers(probe_points(seed=2), day)
    assert answers(_GRID_OF_POINT, [inside], dt.date(2019, 12, 31)) == [None]  # before any grid
    assert set(GridCell.objects.filter(grid=old).values_list("valid_to", flat=True)) == {dt.date(2024, 1, 1)}


def test_an_overlapping_grid_takes_the_shared_cells_out_of_the_table(district):
    first = district["grids"][0]  # the north-west square
    x0, y0 = first.geom.extent[:2]
    overlapping = Grid.objects.create(
        code=first.code[:-3] + "000",  # the smallest code: it wins where both cover
        name="重叠网格",
        community=first.community,
        geom=Polygon.from_bbox((x0 + 0.001, y0 + 0.001, x0 + 0.003, y0 + 0.003)),
        valid_from=dt.date(2025, 1, 1),
    )
    points = probe_points(seed=3)
    assert_same_answers(points)
    assert_same_answers(points, dt.date(2024, 6, 1))  # before the overlap began: the old answers
    overlap_cell = (x0 + 0.0015, y0 + 0.0015)
    assert answers(_GRID_OF_POINT, [overlap_cell], DAY) == [overlapping.pk]
    assert cell_answers([overlap_cell], DAY) == [None]
    # an overlap in another period takes nothing: before 2025 the cell is the first grid's
    assert cell_answers([overlap_cell], dt.date(2024, 6, 1)) == [None]  # conservative: the periods overlap


def test_moving_a_grid_and_deleting_one_keep_the_table_true(district):
    moved = district["grids"][3]  # the south-east square
    x0, y0 = moved.geom.extent[:2]
    moved.geom = Polygon.from_bbox((x0 + 0.0005, y0, x0 + 0.0025, y0 + 0.002))  # 50 m further east
    moved.save()
    assert_same_answers(probe_points(seed=4))
    assert not GridCell.objects.filter(grid=moved, cell_x__lt=int((x0 + 0.0005) * 8000)).exists()

    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM geodata_grid WHERE id = %s", [moved.pk])
    assert not GridCell.objects.filter(grid_id=moved.pk).exists()
    assert_same_answers(probe_points(seed=5))
    district["grids"][2].delete()
    assert not GridCell.objects.filter(grid_id=district["grids"][2].pk).exists()


def test_renaming_a_grid_leaves_its_cells_alone(district):
    grid = district["grids"][1]
    before = set(GridCell.objects.filter(grid=grid).values_list("id", flat=True))
    Grid.objects.filter(pk=grid.pk).update(name="改名")
    assert set(GridCell.objects.filter(grid=grid).values_list("id", flat=True)) == before


def test_a_point_lands_in_the_right_grid_through_grid_for_point_and_register_assignment(district):
    from geodata.selectors import grid_for_point

    for x, y in [(X0 + 0.0005, Y0 + 0.0005), (X0 + 0.002, Y0 + 0.001), (X0 + 0.0035, Y0 + 0.0035)]:
        expected = answers(EXACT, [(x, y)], DAY)[0]
        assert grid_for_point(point=Point(x, y, srid=4326), day=DAY).pk == expected
        assert answers(_GRID_OF_POINT, [(x, y)], DAY) == [expected]
