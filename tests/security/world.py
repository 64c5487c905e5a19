"""The world of the access matrix: two streets, three communities, four grids, one user per role
(and some scope variants), cases in every grid with photos, residents with ID numbers and
phones, buildings, facilities, patrols and an Open311 report.

    street A (500104001)                                     street B (500104002)
    ├─ community A1: grid a1g1 (worker_a), grid a1g2          └─ community B1: grid b1g1 (worker_b)
    └─ community A2: grid a2g1

Grids are 0.001° squares in a row, west to east: a1g1, a1g2, a2g1, b1g1, all inside the
web-mercator tile z15/26068/13582, so that one tile shows the whole world.

Residents: one per grid (followed: 独居老人), and more in two of them so that small counts are
seen suppressed and a count of five or more is seen exact (RESIDENTS): a1g2 has 7, a2g1 3.

Cases (all reported ten days ago, so every open step is overdue):
    c1  a1g1  worker_a reports, the operator files: dispatched to 环卫所 (sanitation)
    c2  a1g2  worker_b reports outside his own grid (a reporter sees his own report)
    c3  a1g1  the operator registers a hotline call, reporter named with a phone: 核实 by worker_a
    c4  b1g1  worker_b reports
    c5  a1g1  worker_a reports, the dispatcher sends it to 园林所 (greening)
    c6  a2g1  a member of the public through Open311, named with a phone
"""

from __future__ import annotations

import datetime as dt
import types
from pathlib import Path

from django.contrib.gis.geos import MultiPolygon, Point, Polygon
from django.utils import timezone
from knox.models import AuthToken

from accounts.models import Role, User
from events import services
from events.models import Case
from geodata import pii
from geodata.models import Building, Community, District, Grid, GridAssignment, Household, Person, PersonTag, Street
from patrol import services as patrol_services
from patrol.models import PatrolSession
from patrol_api import services as api_services
from tests.events.factories import CategoryFactory, jpeg
from tests.factories import DepartmentFactory, FacilityFactory, FacilityTypeFactory, valid_id_number

X0, Y0 = 106.3925, 29.3925
CELL = 0.001
TILE = (15, 26068, 13582)  # contains every grid of the world
GRID_KEYS = ("a1g1", "a1g2", "a2g1", "b1g1")
# Residents per grid (and per building: one building per grid); counts under five are suppressed
# for users who may not see the residents (maps.access.suppress).
RESIDENTS = {"a1g1": 1, "a1g2": 7, "a2g1": 3, "b1g1": 1}
CASE_KEYS = ("c1", "c2", "c3", "c4", "c5", "c6")

# Every identity of the matrix; "anonymous" is nobody signed in.
IDENTITIES = (
    "anonymous",
    "grid_worker",
    "grid_worker_b",
    "operator",
    "community_operator",
    "shift_leader",
    "dispatcher",
    "department_handler",
    "leader",
    "planner",
    "admin",
    "staff_operator",
)
STREET_A_STAFF = ("operator", "shift_leader", "dispatcher", "leader", "staff_operator")

HOTLINE_PHONE = "13912345678"
PUBLIC_PHONE = "13698765432"
HOTLINE_CALLER = "王热线"
PUBLIC_CALLER = "李公众"


def cell(index: int) -> Polygon:
    return Polygon.from_bbox((X0 + index * CELL, Y0, X0 + (index + 1) * CELL, Y0 + CELL))


def inside(index: int, dx: float = 0.5, dy: float = 0.5) -> Point:
    return Point(X0 + (index + dx) * CELL, Y0 + dy * CELL, srid=4326)


def _union(*indexes: int) -> MultiPolygon:
    return MultiPolygon(Polygon.from_bbox((X0 + min(indexes) * CELL, Y0, X0 + (max(indexes) + 1) * CELL, Y0 + CELL)))


def _user(username: str, role: str, **scope) -> User:
    user = User.objects.create(username=username, role=role, first_name=username, **scope)
    user.set_unusable_password()
    user.save(update_fields=["password"])
    return user


def build_world(media: Path) -> types.SimpleNamespace:
    district = District.objects.create(code="500104", name="矩阵区", geom=_union(0, 3))
    street_a = Street.objects.create(code="500104001", name="甲街道", district=district, geom=_union(0, 2))
    street_b = Street.objects.create(code="500104002", name="乙街道", district=district, geom=_union(3))
    community_a1 = Community.objects.create(code="500104001001", name="甲一社区", street=street_a, geom=_union(0, 1))
    community_a2 = Community.objects.create(code="500104001002", name="甲二社区", street=street_a, geom=_union(2))
    community_b1 = Community.objects.create(code="500104002001", name="乙一社区", street=street_b, geom=_union(3))
    homes = {"a1g1": community_a1, "a1g2": community_a1, "a2g1": community_a2, "b1g1": community_b1}
    grids = {
        key: Grid.objects.create(
            code=f"{homes[key].code}{key[-1]:0>3}",
            name=f"{key}网格",
            community=homes[key],
            geom=cell(index),
            valid_from=dt.date(2020, 1, 1),
        )
        for index, key in enumerate(GRID_KEYS)
    }
    sanitation = DepartmentFactory(code="ZY-HW", name="环卫所")
    greening = DepartmentFactory(code="ZY-YL", name="园林所")
    category = CategoryFactory(default_department=sanitation)

    users = {
        "grid_worker": _user("worker_a", Role.GRID_WORKER),
        "grid_worker_b": _user("worker_b", Role.GRID_WORKER),
        "operator": _user("operator_a", Role.OPERATOR, street=street_a),
        "community_operator": _user("operator_a1", Role.OPERATOR, community=community_a1),
        "shift_leader": _user("shift_a", Role.SHIFT_LEADER, street=street_a),
        "dispatcher": _user("dispatcher_a", Role.DISPATCHER, street=street_a),
        "department_handler": _user("handler_sanitation", Role.DEPARTMENT_HANDLER, department=sanitation),
        "leader": _user("leader_a", Role.LEADER, street=street_a),
        "planner": _user("planner", Role.PLANNER),
        "admin": _user("admin", Role.ADMIN, is_staff=True, is_superuser=True),
        # An operator given the admin site (is_staff) to keep catalogues, with no model permission.
        "staff_operator": _user("staff_operator_a", Role.OPERATOR, street=street_a, is_staff=True),
    }
    GridAssignment.objects.create(grid=grids["a1g1"], worker=users["grid_worker"], is_primary=True)
    GridAssignment.objects.create(grid=grids["b1g1"], worker=users["grid_worker_b"], is_primary=True)

    # --- the register: one building, household, resident and facility per grid
    residents, clear = {}, []
    facility_type = FacilityTypeFactory()
    buildings, facilities = {}, {}
    for index, (key, grid) in enumerate(grids.items()):
        buildings[key] = Building.objects.create(
            code=f"B-{key}", address=f"{key}路1号", floors=6, location=inside(index, 0.3, 0.3), grid=grid
        )
        phone = f"1380000{index:04d}"
        household = Household.objects.create(
            code=f"H-{key}",
            building=buildings[key],
            room="101",
            head_name=f"户主{key}",
            phone_encrypted=pii.encrypt(phone),
            phone_masked=pii.mask_phone(phone),
            grid=grid,
        )
        id_number = valid_id_number(index + 1, dt.date(1940, 1, 1 + index))
        residents[key] = Person.objects.create(
            household=household,
            name=f"居民{key}",
            sex="F",
            birth_date=dt.date(1940, 1, 1 + index),
            id_number_encrypted=pii.encrypt(id_number),
            id_number_hash=pii.lookup_hash(id_number),
            id_number_masked=pii.mask_id_number(id_number),
            phone_encrypted=pii.encrypt(phone),
            phone_masked=pii.mask_phone(phone),
            tags=[PersonTag.ELDERLY_ALONE],
        )
        clear += [id_number, phone]
        for extra in range(1, RESIDENTS[key]):  # housemates, not followed
            extra_id = valid_id_number(100 * (index + 1) + extra, dt.date(1985, 1 + extra, 1))
            Person.objects.create(
                household=household,
                name=f"居民{key}-{extra}",
                sex="M" if extra % 2 else "F",
                birth_date=dt.date(1985, 1 + extra, 1),
                id_number_encrypted=pii.encrypt(extra_id),
                id_number_hash=pii.lookup_hash(extra_id),
                id_number_masked=pii.mask_id_number(extra_id),
            )
            clear.append(extra_id)
        facilities[key] = FacilityFactory(
            code=f"500104010100000{index + 1}",
            facility_type=facility_type,
            location=inside(index, 0.8, 0.8),
            grid=grid,
            maintainer_department=sanitation,
        )

    # --- cases
    at = timezone.now() - dt.timedelta(days=10)

    def report(actor, index, dx, **extra):
        return services.case_report(
            actor=actor,
            source=Case.Source.GRID_WORKER,
            category=category,
            location=inside(index, dx, 0.5),
            description="路边有成堆垃圾",
            photos=[jpeg()],
            at=at,
            **extra,
        )

    c1 = report(users["grid_worker"], 0, 0.5)
    c1 = services.case_file(case=c1, actor=users["operator"], at=at)
    c2 = report(users["grid_worker_b"], 1, 0.5)
    c3 = services.case_report(
        actor=users["operator"],
        source=Case.Source.HOTLINE,
        category=category,
        location=inside(0, 0.6, 0.6),
        description="热线：小区门口垃圾堆放",
        photos=[jpeg()],
        reporter_name=HOTLINE_CALLER,
        reporter_phone=HOTLINE_PHONE,
        at=at,
    )
    c4 = report(users["grid_worker_b"], 3, 0.5)
    c5 = report(users["grid_worker"], 0, 0.4)
    c5 = services.case_file(case=c5, actor=users["operator"], auto_dispatch=False, at=at)
    c5 = services.case_dispatch(case=c5, actor=users["dispatcher"], department=greening, at=at)
    api_key, raw_key = api_services.api_key_issue(name="市民App")
    c6 = api_services.open311_request_create(
        api_key=api_key,
        category=category,
        location=inside(2),
        description="公众反映：井盖缺失",
        reporter_name=PUBLIC_CALLER,
        reporter_phone=PUBLIC_PHONE,
    ).case
    cases = {key: Case.objects.get(pk=case.pk) for key, case in zip(CASE_KEYS, (c1, c2, c3, c4, c5, c6), strict=True)}
    photos = {key: case.photos.get() for key, case in cases.items() if case.photos.exists()}
    clear += [HOTLINE_PHONE, PUBLIC_PHONE]

    # --- patrols today: the last known position of both grid workers
    now = timezone.now()
    stamps = [(now - dt.timedelta(minutes=minutes)).isoformat() for minutes in (9, 8)]
    for key, index in (("grid_worker", 0), ("grid_worker_b", 3)):
        walk = [inside(index, 0.2, 0.2), inside(index, 0.2, 0.8)]
        session, _ = patrol_services.patrol_start(worker=users[key], at=now - dt.timedelta(minutes=10))
        patrol_services.patrol_points_record(
            worker=users[key],
            session_id=session.pk,
            points=[{"lon": p.x, "lat": p.y, "recorded_at": stamp} for p, stamp in zip(walk, stamps, strict=True)],
        )
    sessions = {key: PatrolSession.objects.get(worker=users[key]) for key in ("grid_worker", "grid_worker_b")}

    tokens = {name: AuthToken.objects.create(user=user)[1] for name, user in users.items()}
    return types.SimpleNamespace(
        media=media,
        district=district,
        streets={"A": street_a, "B": street_b},
        communities={"A1": community_a1, "A2": community_a2, "B1": community_b1},
        grids=grids,
        users=users,
        tokens=tokens,
        sanitation=sanitation,
        greening=greening,
        category=category,
        buildings=buildings,
        facilities=facilities,
        residents=residents,
        cases=cases,
        photos=photos,
        sessions=sessions,
        open311_key=raw_key,
        clear_personal_data=clear,
        at=at,
    )
