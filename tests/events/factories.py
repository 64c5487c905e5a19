"""Factories and helpers for the events tests."""

import datetime as dt
import io
import itertools
import zoneinfo
from decimal import Decimal

import factory
from django.contrib.gis.geos import Point
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image

from events.models import Case, Category
from tests.factories import ORIGIN

SHANGHAI = zoneinfo.ZoneInfo("Asia/Shanghai")
X0, Y0 = ORIGIN
# Inside grid serial 3 (the south-west cell of tests.factories.tiled_district).
POINT_SW = Point(X0 + 0.0005, Y0 + 0.0005, srid=4326)
# Inside grid serial 1 (north-west).
POINT_NW = Point(X0 + 0.0005, Y0 + 0.0035, srid=4326)


def local(*args: int) -> dt.datetime:
    """An aware datetime in China time: local(2026, 11, 16, 9, 0)."""
    return dt.datetime(*args, tzinfo=SHANGHAI)


def jpeg(
    *,
    size: tuple[int, int] = (64, 48),
    taken: str | None = None,
    gps: tuple[tuple[float, float, float], tuple[float, float, float]] | None = None,
    name: str = "photo.jpg",
) -> SimpleUploadedFile:
    """A real JPEG, optionally with EXIF DateTimeOriginal ("2026:11:16 08:55:00") and GPS (lat, lon as d/m/s)."""
    image = Image.new("RGB", size, (200, 80, 40))
    exif = Image.Exif()
    if taken:
        exif.get_ifd(0x8769)[36867] = taken
    if gps:
        latitude, longitude = gps
        exif.get_ifd(0x8825).update({1: "N", 2: latitude, 3: "E", 4: longitude})
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    return SimpleUploadedFile(name, buffer.getvalue(), content_type="image/jpeg")


class CategoryFactory(factory.django.DjangoModelFactory):
    """事件 01/02 暴露垃圾 with round limits: 处置 一般 A2/B4/C8 工作时, 紧急 A1/B1/C2."""

    class Meta:
        model = Category
        django_get_or_create = ("kind", "major_code", "minor_code")

    kind = Category.Kind.EVENT
    major_code = "01"
    major_name = "市容环境"
    minor_code = "02"
    minor_name = "暴露垃圾"
    filing_condition = "成堆、成片的生活垃圾"
    closing_condition = "彻底清除"
    verify_hours = Decimal("2")
    filing_hours = Decimal("1")
    dispatch_hours = Decimal("1")
    handling_unit_normal = "hours"
    handling_normal_a = Decimal("2")
    handling_normal_b = Decimal("4")
    handling_normal_c = Decimal("8")
    handling_unit_urgent = "hours"
    handling_urgent_a = Decimal("1")
    handling_urgent_b = Decimal("1")
    handling_urgent_c = Decimal("2")
    check_hours = Decimal("2")
    close_hours = Decimal("1")


_serial = itertools.count(1)


class CaseFactory(factory.django.DjangoModelFactory):
    """A case written directly in a given state (to set up tests of refusals); `grid` is required."""

    class Meta:
        model = Case

    number = factory.LazyFunction(lambda: f"E010220261116{next(_serial):04d}")
    category = factory.SubFactory(CategoryFactory)
    source = Case.Source.GRID_WORKER
    location = factory.LazyFunction(lambda: POINT_SW.clone())
    community = factory.LazyAttribute(lambda o: o.grid.community)
    street = factory.LazyAttribute(lambda o: o.grid.community.street)
    description = "路边有成堆垃圾"
    state = "reported"
    reported_at = factory.LazyFunction(lambda: local(2026, 11, 16, 9, 0))
