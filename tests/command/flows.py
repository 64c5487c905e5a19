"""Cases brought to a given state through the real services, for the screen tests."""

import datetime as dt

from django.test import Client

from events import services
from events.models import Case
from tests.events.factories import POINT_SW, jpeg, local

MONDAY = local(2026, 11, 16, 9, 0)


def reported(world, *, point=POINT_SW, at: dt.datetime | None = MONDAY, description="路边有成堆垃圾") -> Case:
    """待立案: a grid worker's report."""
    return services.case_report(
        actor=world.grid_worker,
        source=Case.Source.GRID_WORKER,
        category=world.category,
        location=point,
        description=description,
        address="测试路1号",
        photos=[jpeg()],
        at=at,
    )


def filed(world, *, at: dt.datetime | None = MONDAY, **options) -> Case:
    """待派遣: filed without automatic dispatch."""
    case = reported(world, at=at, **options)
    later = at + dt.timedelta(minutes=10) if at else None
    return services.case_file(case=case, actor=world.operator, auto_dispatch=False, at=later)


def dispatched(world, *, at: dt.datetime | None = MONDAY, department=None, **options) -> Case:
    """处置中 at `department` (default: sanitation)."""
    case = filed(world, at=at, **options)
    later = at + dt.timedelta(minutes=20) if at else None
    return services.case_dispatch(
        case=case, actor=world.dispatcher, department=department or world.sanitation, at=later
    )


def logged_in(user) -> Client:
    client = Client()
    client.force_login(user)
    return client
