"""Reads of the spatial register. Every spatial filter here uses a GiST index."""

import datetime as dt
import math

from django.contrib.gis.db.models.functions import Distance
from django.contrib.gis.geos import GEOSGeometry, Point
from django.db.models import Q, QuerySet
from django.utils import timezone

from geodata.models import District, Grid, Person

# Metres per degree of latitude; used only for the conservative index pre-filter below.
_METRES_PER_DEGREE = 111_000.0


class PointOutsideJurisdiction(ValueError):
    """The point lies in no grid valid at the given date."""

    def __init__(self, point: Point):
        self.point = point
        super().__init__(f"位置 ({point.x:.6f}, {point.y:.6f}) 不在本辖区任何网格内，请确认定位或联系指挥中心")


def grids_valid_on(day: dt.date | None = None) -> QuerySet[Grid]:
    """Grids valid on `day` (default today): valid_from <= day < valid_to."""
    day = day or timezone.localdate()
    return Grid.objects.filter(Q(valid_to__isnull=True) | Q(valid_to__gt=day), valid_from__lte=day)


def grid_for_point(*, point: Point, day: dt.date | None = None) -> Grid:
    """The grid containing `point` on `day`.

    A point on an edge shared by two grids belongs to the grid with the smallest code, so
    the answer is deterministic. A point in no grid raises PointOutsideJurisdiction.
    """
    grid = grids_valid_on(day).filter(geom__covers=point).order_by("code").select_related("community__street").first()
    if grid is None:
        raise PointOutsideJurisdiction(point)
    return grid


def point_in_jurisdiction(*, point: Point) -> bool:
    return District.objects.filter(geom__covers=point).exists()


def within_metres(queryset: QuerySet, *, field: str, geometry: GEOSGeometry, metres: float) -> QuerySet:
    """Objects of `queryset` whose `field` lies within `metres` of `geometry`, nearest first.

    Distances are measured on the sphere (Django's Distance on a geographic field:
    ST_DistanceSphere); a degree-based ST_DWithin that is always at least as wide comes
    first so that the GiST index on `field` is used.
    """
    centre_lat = geometry.centroid.y
    degrees = metres / (_METRES_PER_DEGREE * max(math.cos(math.radians(abs(centre_lat) + 1.0)), 0.01))
    return (
        queryset.filter(**{f"{field}__dwithin": (geometry, degrees)})
        .annotate(distance_m=Distance(field, geometry))
        .filter(distance_m__lte=metres)
        .order_by("distance_m")
    )


def persons_visible_to(*, user) -> QuerySet[Person]:
    """Persons whose records `user` may open: the whole register for the `anywhere` right,
    the user's community or street for command-center staff, else the persons living in the
    grids the user is currently assigned to (grid workers)."""
    persons = Person.objects.all()
    if user.is_superuser or user.has_perm("geodata.reveal_personal_data_anywhere"):
        return persons
    if getattr(user, "community_id", None):
        return persons.filter(household__grid__community_id=user.community_id)
    if getattr(user, "street_id", None):
        return persons.filter(household__grid__community__street_id=user.street_id)
    return persons.filter(household__grid__assignments__worker=user)
