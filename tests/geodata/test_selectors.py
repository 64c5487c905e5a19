import datetime as dt

import pytest
from django.contrib.gis.geos import Point

from geodata import selectors
from geodata.models import Building
from tests.factories import ORIGIN, BuildingFactory

X0, Y0 = ORIGIN
CELL = 0.002


def test_point_inside_a_grid_gets_that_grid(district):
    # Grid serial 3 is the south-west cell (row 1, col 0: serials run west->east, north->south).
    grid = selectors.grid_for_point(point=Point(X0 + 0.0005, Y0 + 0.0005, srid=4326))
    assert grid.code == "500104001001003"
    assert grid.community.street.code == "500104001"


def test_point_on_a_shared_edge_gets_the_smallest_code(district):
    on_edge = Point(X0 + CELL, Y0 + 0.0005, srid=4326)  # between serial 3 (west) and 4 (east)
    assert selectors.grid_for_point(point=on_edge).code == "500104001001003"
    corner = Point(X0 + CELL, Y0 + CELL, srid=4326)  # shared by all four grids
    assert selectors.grid_for_point(point=corner).code == "500104001001001"


def test_point_outside_every_grid_raises_a_clear_error(district):
    with pytest.raises(selectors.PointOutsideJurisdiction, match="不在本辖区任何网格内"):
        selectors.grid_for_point(point=Point(X0 - 0.01, Y0, srid=4326))


def test_grid_no_longer_valid_is_not_found(district):
    grid = district["grids"][2]
    grid.valid_to = dt.date(2024, 1, 1)
    grid.save()
    point = Point(X0 + 0.0005, Y0 + 0.0005, srid=4326)
    with pytest.raises(selectors.PointOutsideJurisdiction):
        selectors.grid_for_point(point=point)
    assert selectors.grid_for_point(point=point, day=dt.date(2023, 6, 1)).code == grid.code


def test_grid_area_is_computed_by_the_database_in_square_metres(district):
    grid = district["grids"][0]
    grid.refresh_from_db()
    # 0.002 deg x 0.002 deg at 29.4 N is about 222 m x 194 m.
    assert 42_000 < grid.area_m2 < 43_500


def test_within_metres_is_metric_and_nearest_first(db):
    centre = Point(X0, Y0, srid=4326)
    # 0.001 deg of latitude is about 110.9 m
    near = BuildingFactory(location=Point(X0, Y0 + 0.001, srid=4326))
    nearer = BuildingFactory(location=Point(X0, Y0 + 0.0005, srid=4326))
    BuildingFactory(location=Point(X0, Y0 + 0.002, srid=4326))  # about 222 m away
    found = list(selectors.within_metres(Building.objects.all(), field="location", geometry=centre, metres=150))
    assert [b.pk for b in found] == [nearer.pk, near.pk]
    assert 110 < found[1].distance_m.m < 112
