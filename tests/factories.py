"""Factories for tests. Spatial factories tile an extent so that geometries never collide.

`tiled_district()` builds a small district: one street, one community, and a rows x cols
block of square grids (each `cell` degrees wide) whose union is exactly the community.
"""

import datetime as dt
import itertools

import factory
from django.contrib.gis.geos import MultiPolygon, Point, Polygon

from accounts.models import Role, User
from geodata import pii
from geodata.models import Building, Department, District, Facility, FacilityType, Grid, Household, Person

ORIGIN = (106.40, 29.40)  # inside the real 大渡口区 extent, south-west corner of the test block


def square(x0: float, y0: float, size: float) -> Polygon:
    return Polygon.from_bbox((x0, y0, x0 + size, y0 + size))


def tiled_district(rows: int = 2, cols: int = 2, cell: float = 0.002, origin: tuple[float, float] = ORIGIN) -> dict:
    x0, y0 = origin
    extent = Polygon.from_bbox((x0, y0, x0 + cols * cell, y0 + rows * cell))
    district = District.objects.create(code="500104", name="测试区", geom=MultiPolygon(extent))
    street = district.streets.create(code="500104001", name="测试街道", geom=MultiPolygon(extent))
    community = street.communities.create(code="500104001001", name="测试社区", geom=MultiPolygon(extent))
    grids = []
    # Serials west->east, north->south: row 0 is the northern row.
    for serial, (row, col) in enumerate(itertools.product(range(rows), range(cols)), start=1):
        grids.append(
            Grid.objects.create(
                code=f"{community.code}{serial:03d}",
                name=f"第{serial}网格",
                community=community,
                geom=square(x0 + col * cell, y0 + (rows - 1 - row) * cell, cell),
                valid_from=dt.date(2020, 1, 1),
            )
        )
    return {"district": district, "street": street, "community": community, "grids": grids}


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User

    username = factory.Sequence(lambda n: f"user{n}")
    role = Role.GRID_WORKER
    password = factory.django.Password("correct-horse-battery")


class DepartmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Department

    code = factory.Sequence(lambda n: f"D{n:04d}")
    name = factory.Sequence(lambda n: f"部门{n}")


class FacilityTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FacilityType
        django_get_or_create = ("major_code", "minor_code")

    major_code = "01"
    major_name = "公用设施"
    minor_code = "01"
    minor_name = "上水井盖"


_building_serial = itertools.count(1)


class BuildingFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Building

    code = factory.LazyFunction(lambda: f"B{next(_building_serial):06d}")
    address = factory.Sequence(lambda n: f"测试路{n}号")
    floors = 6
    location = factory.LazyFunction(lambda: Point(ORIGIN[0] + 0.001, ORIGIN[1] + 0.001, srid=4326))


class HouseholdFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Household

    code = factory.Sequence(lambda n: f"H{n:08d}")
    building = factory.SubFactory(BuildingFactory)
    room = factory.Sequence(lambda n: f"{n:04d}")


def valid_id_number(serial: int, birth: dt.date = dt.date(1950, 3, 7), area: str = "500104") -> str:
    first17 = f"{area}{birth:%Y%m%d}{serial % 1000:03d}"
    return first17 + pii.id_number_check_char(first17)


class PersonFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Person

    household = factory.SubFactory(HouseholdFactory)
    name = factory.Sequence(lambda n: f"居民{n}")
    sex = "F"
    birth_date = dt.date(1950, 3, 7)

    @factory.lazy_attribute_sequence
    def id_number_encrypted(self, n):
        return pii.encrypt(valid_id_number(n, self.birth_date))

    @factory.lazy_attribute_sequence
    def id_number_hash(self, n):
        return pii.lookup_hash(valid_id_number(n, self.birth_date))

    @factory.lazy_attribute_sequence
    def id_number_masked(self, n):
        return pii.mask_id_number(valid_id_number(n, self.birth_date))


class FacilityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Facility

    code = factory.Sequence(lambda n: f"5001040101{n:06d}")
    facility_type = factory.SubFactory(FacilityTypeFactory)
    location = factory.LazyFunction(lambda: Point(ORIGIN[0] + 0.001, ORIGIN[1] + 0.001, srid=4326))
