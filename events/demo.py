"""A case history for the demo district (示例案件): `manage.py load_demo_cases`.

About 800 cases of the last 120 days in the demo's dense street (跃进村街道（示例）),
generated from a fixed seed and recorded through events.services with `at=` timestamps,
exactly as the command center, the departments and the grid workers would have recorded
them: the queue, the map, the case timelines and the indicators all have real content.

- Where: clustered around a few hot spots of the street (a market, a primary school, a
  night-snack street and, for the last ten weeks, a construction site), the rest spread
  over the street in proportion to its households; facility cases (部件) are on the
  street's facilities, damaged ones most often.
- Who: grid workers report in their own grid (every grid of the street gets a demo worker
  if it has none), the demo operator records hotline and video reports and files,
  the demo dispatcher dispatches what routing does not dispatch automatically (and a
  share of the rest), one demo handler per
  department handles (demo_department_handler for 街道环卫所, demo_handler_<code> for
  the others), the demo shift leader closes, the demo leader defers and urges.
- How it went: most cases are closed, some after a 返工 (failed 核查), a 回退 (wrong
  department), an extension (延时), a 督办 or a period of 挂账; some were self-handled
  (自处理) or voided; about one in ten is still open at load time, in every open state,
  with red (overdue), yellow and green timers. Each step took a share of its time limit on
  the working calendar (a few steps ran late), so the indicators are realistic.
- Photos: small generated JPEGs (128×96, about 1 KB). The workflow requires an "after"
  photo for every 处置反馈 and a check photo for every 核查, so each closed case has at least
  two; one in seven of the grid workers' reports carries a "before" photo.

Idempotent: every demo case has the client key DEMO-<serial> and a marker (the comment of
the case table, written in the same transaction as the cases) records the version, seed,
scale and count. A second run finds them and does nothing. Case history is append-only
in the database (a trigger refuses DELETE), so `--reload` can remove the demo cases only
where that trigger admits a purge (`demo_cases_purge`); otherwise it refuses and says so.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import io
import logging
import math
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import shapely
from django.contrib.auth.hashers import make_password
from django.contrib.gis.geos import Point as GeosPoint
from django.core.files.storage import default_storage
from django.db import DatabaseError, connection, transaction
from django.db.models import Count, QuerySet
from django.utils import timezone
from PIL import Image, ImageDraw
from procrastinate.contrib.django import app as job_app
from procrastinate.testing import InMemoryConnector
from shapely.geometry import Point

from accounts.models import Role, User
from accounts.services import DEMO_PASSWORD
from events import selectors, services, workflow
from events.calendar import WorkingCalendar
from events.models import Case, CaseAlert, CaseHistory, CasePhoto, Category, UrgeLevel, Urgency
from events.workflow import Action, State, Step, Timer
from geodata.demo import store as district_store
from geodata.demo.draw import share_out, weighted
from geodata.demo.layout import Projector
from geodata.demo.plan import DemoPlan
from geodata.demo.progress import SILENT, Progress
from geodata.models import Building, Department, Facility, Grid, GridAssignment, Street

CLIENT_KEY_PREFIX = "DEMO-"
FULL_SIZE_CASES = 800
MAX_SCALE = 4.0
HISTORY_DAYS = 120
DEFAULT_SEED = 20260501
_VERSION = 1
# Serialises concurrent loaders; any constant unique to us ("demoCase").
_ADVISORY_LOCK = 0x64656D6F_43617365
_MARKER_TABLE = Case._meta.db_table
_MARKER_PREFIX = "gridmgmt-demo-cases "
_PHOTO_SIZE = (128, 96)

# The fate of each case, per 1 000 cases: terminal ones, then the states still open at load time.
_FATES = {
    State.CLOSED: 800,
    State.SELF_HANDLED: 50,
    State.VOIDED: 40,
    State.VERIFYING: 12,
    State.REPORTED: 10,
    State.FILED: 10,
    State.DISPATCHED: 45,
    State.EXTENSION_PENDING: 6,
    State.HANDLED: 14,
    State.CHECKED: 6,
    State.DEFERRED: 7,
}
OPEN_FATES = [state for state in _FATES if state in workflow.OPEN_STATES]
# How a closed case went besides the plain loop, per 1 000 closed cases (at least one each).
_VARIANTS = {"rework": 80, "return": 50, "extension": 50, "extension_refused": 15, "urge": 40, "defer": 15}
# Timer lights of the open cases with a running step, in this repeating order: red first,
# so that even a small demo has overdue and turning-yellow cases.
_LIGHTS = ("red", "yellow", "green", "red", "green", "green", "red", "yellow", "green", "green")
_SOURCES = {
    Case.Source.GRID_WORKER: 68,
    Case.Source.HOTLINE: 22,
    Case.Source.PUBLIC: 4,
    Case.Source.VIDEO: 6,
}
# Share of each step's time limit used when done on time; share past the limit when late.
_ON_TIME = {
    Step.VERIFY: 0.9,
    Step.FILE: 0.95,
    Step.DISPATCH: 0.93,
    Step.HANDLE: 0.86,
    Step.CHECK: 0.92,
    Step.CLOSE: 0.95,
}
_LONG_TERM = ("E0101", "E0204", "C0309", "E0105")  # categories that get 挂账


class DemoCasesError(Exception):
    """The demo cases cannot be loaded or removed; the message says why, in Chinese."""


@dataclasses.dataclass
class DemoCasesResult:
    status: str  # "loaded", "unchanged", or "kept" (other demo cases are there and cannot be replaced)
    counts: dict[str, int]  # demo cases per state
    seconds: float
    messages: list[str] = dataclasses.field(default_factory=list)
    photos: int = 0
    history: int = 0


# --- hot spots, places and categories -------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _HotSpot:
    name: str  # as residents say it, used in descriptions
    centre: Point  # metric
    sigma_m: float
    share: float  # of all cases
    categories: dict[str, float]  # category code -> weight
    since_days: int = HISTORY_DAYS  # active for the last this many days


_BACKGROUND = {
    "E0102": 12, "E0104": 8, "E0103": 4, "E0201": 8, "E0505": 8, "E0506": 6, "E0502": 6, "E0501": 5,
    "E0101": 3, "E0202": 3, "E0204": 2, "E0106": 3, "E0112": 2, "E0406": 2, "E0301": 2, "E0303": 2,
    "E0302": 1, "E0508": 2, "E0510": 2, "E0108": 1, "E0401": 1, "E0402": 1, "E0403": 0.3, "E0105": 0.5,
    "E0304": 0.5,
}  # fmt: skip
_COMPONENT_SHARE = 0.28
_FACILITY_STATUS_WEIGHT = {
    Facility.Status.INTACT.value: 1,
    Facility.Status.DAMAGED.value: 12,
    Facility.Status.MISSING.value: 12,
    Facility.Status.OCCUPIED.value: 4,
    Facility.Status.DECOMMISSIONED.value: 0,
}
_URGENT = {"E0403": 1.0, "E0402": 0.7, "E0401": 0.6, "E0112": 0.3, "E0406": 0.3, "C0111": 0.5}

_EVENT_TEXT = {
    "E0101": ["{place}有人在楼顶加盖彩钢棚", "{place}一楼住户占用公共绿地搭建围墙"],
    "E0102": ["{place}有成堆生活垃圾未及时清运", "{place}路边散落垃圾袋，气味较大"],
    "E0103": ["{place}堆放建筑渣土，未覆盖", "{place}装修垃圾长期堆放"],
    "E0104": ["{place}路面有油污和泥浆", "{place}人行道落叶和垃圾较多"],
    "E0105": ["{place}排水沟内漂浮垃圾"],
    "E0106": ["{place}绿化带内有生活垃圾", "{place}绿地内杂物堆积"],
    "E0108": ["{place}有人焚烧垃圾和树叶"],
    "E0112": ["{place}检查井污水外溢", "{place}路面污水横流"],
    "E0201": ["{place}墙面、电杆上张贴大量小广告", "{place}有人在地面喷涂办证广告"],
    "E0202": ["{place}商户在行道树上悬挂横幅"],
    "E0204": ["{place}商户在人行道摆放立式广告牌"],
    "E0301": ["{place}夜间施工噪声扰民", "{place}工地早上六点即开始作业"],
    "E0302": ["{place}工地未覆盖裸土，扬尘严重"],
    "E0303": ["{place}渣土车沿途遗撒泥土"],
    "E0304": ["{place}有人擅自开挖人行道"],
    "E0401": ["{place}路面出现塌陷坑"],
    "E0402": ["{place}自来水管破裂，路面冒水"],
    "E0403": ["{place}闻到明显燃气味，疑似泄漏"],
    "E0406": ["{place}下雨后路面大面积积水"],
    "E0501": ["{place}有流动摊贩占道经营", "{place}放学时段游商聚集"],
    "E0502": ["{place}商户出店经营，占用人行道", "{place}店外摆放货架和桌椅"],
    "E0505": ["{place}机动车占用人行道停放", "{place}车辆乱停堵塞消防通道"],
    "E0506": ["{place}共享单车乱停乱放", "{place}电动车堆放堵塞通道"],
    "E0508": ["{place}夜间有露天烧烤，油烟扰民"],
    "E0510": ["{place}有人占道收购废品"],
}
_COMPONENT_TEXT = {
    "01": ["{place}{name}破损", "{place}{name}缺失", "{place}{name}松动，车辆经过有异响"],
    "0115": ["{place}消防栓漏水", "{place}消防栓被杂物遮挡"],
    "0120": ["{place}路灯夜间不亮", "{place}路灯灯杆倾斜"],
    "02": ["{place}{name}损坏", "{place}{name}倾斜"],
    "0301": ["{place}公共厕所设施损坏", "{place}公共厕所卫生较差"],
    "0304": ["{place}垃圾箱满溢", "{place}垃圾箱破损"],
    "0309": ["{place}广告牌匾破损，有坠落隐患"],
    "04": ["{place}{name}损坏", "{place}{name}需要修剪"],
    "06": ["{place}{name}损坏，存在安全隐患"],
}
_HANDLED_TEXT = {
    "C": ["已安排人员维修更换完毕", "已修复，恢复正常使用"],
    "01": ["已清理完毕，恢复整洁", "已安排保洁人员清运"],
    "02": ["已清除完毕", "已清除并约谈商户"],
    "03": ["已责令施工单位整改到位", "已现场督促整改完毕"],
    "04": ["已抢修完毕", "已处置，隐患已消除"],
    "05": ["已现场劝导，当事人已整改", "已依法处置，现场恢复秩序"],
}
_SURNAMES = "王李张刘陈杨黄赵周吴徐孙马朱胡郭何罗"


def _code(category: Category) -> str:
    return f"{category.kind}{category.major_code}{category.minor_code}"


class _Places:
    """The dense street in memory (storage CRS, metric where distances matter): its grids,
    buildings and facilities, and the hot spots chosen among its buildings."""

    def __init__(self, *, street: Street, rng: random.Random) -> None:
        self.projector = Projector()
        assert street.geom is not None
        self.street = shapely.from_wkb(bytes(street.geom.wkb))
        shapely.prepare(self.street)
        self.grids = list(
            Grid.objects.filter(community__street=street, valid_to__isnull=True)
            .select_related("community__street", "responsible_unit")
            .order_by("code")
        )
        if not self.grids:
            raise DemoCasesError(f"{street.name}没有网格：请先运行 manage.py load_demo")
        self.grid_geoms = [shapely.from_wkb(bytes(g.geom.wkb)) for g in self.grids]
        self.grid_tree = shapely.STRtree(self.grid_geoms)
        buildings = list(
            Building.objects.filter(grid__community__street=street, is_demo=True, footprint__isnull=False)
            .annotate(household_count=Count("households"))
            .order_by("code")
            .values_list("address", "use", "location", "footprint", "household_count")
        )
        if not buildings:
            raise DemoCasesError(f"{street.name}没有楼栋：请先运行 manage.py load_demo")
        self.addresses = [b[0] for b in buildings]
        self.uses = [b[1] for b in buildings]
        self.locations = shapely.from_wkb([bytes(b[2].wkb) for b in buildings])
        self.footprints = shapely.from_wkb([bytes(b[3].wkb) for b in buildings if b[3] is not None])
        assert len(self.footprints) == len(buildings)  # demo buildings all have a footprint
        self.households = [b[4] for b in buildings]
        self.footprint_tree = shapely.STRtree(self.footprints)
        self.location_tree = shapely.STRtree(self.locations)
        self.locations_metric = self.projector.metric(self.locations)
        self.facilities = list(
            Facility.objects.filter(grid__community__street=street, is_demo=True)
            .select_related("facility_type", "maintainer_department")
            .order_by("code")
        )
        self.facility_points_metric = self.projector.metric(
            shapely.from_wkb([bytes(f.location.wkb) for f in self.facilities])
        )
        self.hot_spots = self._hot_spots(rng)

    def _largest(self, use: str, rng: random.Random) -> int:
        candidates = [i for i, u in enumerate(self.uses) if u == use] or list(range(len(self.uses)))
        areas = shapely.area(self.projector.metric(self.footprints[candidates]))
        ranked = sorted(zip(areas, candidates, strict=True), reverse=True)[:3]
        return rng.choice([index for _, index in ranked])

    def _hot_spots(self, rng: random.Random) -> list[_HotSpot]:
        def centre(index: int) -> Point:
            return self.locations_metric[index]

        market = self._largest(Building.Use.COMMERCIAL, rng)
        school = self._largest(Building.Use.PUBLIC, rng)
        mixed = [i for i, u in enumerate(self.uses) if u == Building.Use.MIXED] or [market]
        night = rng.choice(mixed)
        site = rng.choice([i for i in range(len(self.uses)) if i not in (market, school, night)])
        return [
            _HotSpot(
                "农贸市场",
                centre(market),
                70,
                0.16,
                {"E0502": 5, "E0501": 4, "E0102": 4, "E0104": 3, "E0510": 2, "E0505": 2, "E0201": 1, "C0304": 2},
            ),
            _HotSpot(
                "小学门口", centre(school), 60, 0.12, {"E0505": 5, "E0506": 4, "E0501": 3, "E0201": 2, "E0102": 1}
            ),
            _HotSpot("夜市街", centre(night), 90, 0.09, {"E0508": 5, "E0502": 4, "E0102": 2, "E0104": 2, "E0505": 1}),
            _HotSpot(
                "在建工地",
                centre(site),
                80,
                0.07,
                {"E0301": 4, "E0302": 3, "E0303": 4, "E0304": 1, "E0103": 2},
                since_days=75,
            ),
        ]

    def grid_at(self, point: Point) -> int | None:
        """The grid covering `point` (the smallest code on a shared edge, as grid_for_point)."""
        found = sorted(int(i) for i in self.grid_tree.query(point, predicate="covered_by"))
        return found[0] if found else None

    def nearest_address(self, point: Point) -> str:
        return self.addresses[int(self.location_tree.nearest(point))]

    def outdoor_point(self, centre: Point, sigma_m: float, rng: random.Random) -> Point | None:
        """A point (storage CRS) near `centre` (metric): in the street, in a grid, not in a building."""
        offsets = [(centre.x + rng.gauss(0, sigma_m), centre.y + rng.gauss(0, sigma_m)) for _ in range(20)]
        for candidate in self.projector.storage(shapely.points(offsets)):  # one reprojection for all
            if not self.street.contains(candidate) or self.grid_at(candidate) is None:
                continue
            if len(self.footprint_tree.query(candidate, predicate="intersects")):
                continue
            return candidate
        return None


@dataclasses.dataclass
class _Where:
    category: Category
    location: Point  # storage CRS
    grid: int  # index into _Places.grids
    facility: Facility | None
    place: str  # for the description
    address: str


class _Scenes:
    """Category and place of each case: hot spots, the households' streets, the facilities."""

    def __init__(self, *, places: _Places, categories: dict[str, Category]) -> None:
        self.places = places
        self.categories = categories
        self.background = {code: w for code, w in _BACKGROUND.items() if code in categories}
        self.facility_weights = []
        for facility in places.facilities:
            kind = facility.facility_type
            code = f"C{kind.major_code}{kind.minor_code}"
            self.facility_weights.append(_FACILITY_STATUS_WEIGHT[facility.status] if code in categories else 0)
        self.building_weights = [count + 2 for count in places.households]

    def draw(self, rng: random.Random, *, days_ago: float, codes: Sequence[str] = ()) -> _Where:
        for _ in range(50):
            where = self._draw(rng, days_ago=days_ago, codes=codes)
            if where is not None:
                return where
        raise DemoCasesError("无法在示例街道内找到案件位置：示例数据不完整，请先运行 manage.py load_demo --reload")

    def _draw(self, rng: random.Random, *, days_ago: float, codes: Sequence[str]) -> _Where | None:
        places = self.places
        if codes:
            code = rng.choice(list(codes))
            if code.startswith("C"):
                return self._on_facility(rng, code=code)
            return self._background(rng, code=code)
        draw = rng.random()
        for spot in places.hot_spots:
            if draw < spot.share:
                if days_ago > spot.since_days:
                    break
                code = weighted(rng, {c: w for c, w in spot.categories.items() if c in self.categories})
                if code.startswith("C"):
                    return self._on_facility(rng, code=code, near=spot)
                point = places.outdoor_point(spot.centre, spot.sigma_m, rng)
                if point is None:
                    return None
                address = places.nearest_address(point)
                return self._where(code, point, None, place=f"{address}{spot.name}附近", address=address)
            draw -= spot.share
        if rng.random() < _COMPONENT_SHARE:
            return self._on_facility(rng)
        return self._background(rng, code=weighted(rng, self.background))

    def _background(self, rng: random.Random, *, code: str) -> _Where | None:
        places = self.places
        building = rng.choices(range(len(self.building_weights)), weights=self.building_weights)[0]
        near = places.locations_metric[building]
        angle, distance = rng.uniform(0, 2 * math.pi), rng.uniform(12, 35)
        centre = Point(near.x + distance * math.cos(angle), near.y + distance * math.sin(angle))
        point = places.outdoor_point(centre, 3, rng)
        if point is None:
            return None
        address = places.addresses[building]
        return self._where(code, point, None, place=f"{address}附近", address=address)

    def _on_facility(self, rng: random.Random, *, code: str = "", near: _HotSpot | None = None) -> _Where | None:
        places = self.places
        weights = list(self.facility_weights)
        if code:
            weights = [
                w if f"C{f.facility_type.major_code}{f.facility_type.minor_code}" == code else 0
                for w, f in zip(weights, places.facilities, strict=True)
            ]
        if near is not None:
            distances = shapely.distance(places.facility_points_metric, near.centre)
            weights = [w * (1 if d < 3 * near.sigma_m else 0) for w, d in zip(weights, distances, strict=True)]
        if not any(weights):
            return None if code else self._background(rng, code=weighted(rng, self.background))
        facility = places.facilities[rng.choices(range(len(weights)), weights=weights)[0]]
        kind = facility.facility_type
        point = shapely.from_wkb(bytes(facility.location.wkb))
        place = f"{facility.address}（部件 {facility.code}）"
        return self._where(
            f"C{kind.major_code}{kind.minor_code}", point, facility, place=place, address=facility.address
        )

    def _where(self, code: str, point: Point, facility: Facility | None, *, place: str, address: str) -> _Where | None:
        grid = self.places.grid_at(point)
        if grid is None:
            return None
        return _Where(self.categories[code], point, grid, facility, place, address)


def _description(where: _Where, rng: random.Random) -> str:
    code = _code(where.category)
    if code.startswith("E"):
        texts = _EVENT_TEXT.get(code, ["{place}发现" + where.category.minor_name])
    else:
        minor = code[1:]
        texts = _COMPONENT_TEXT.get(minor) or _COMPONENT_TEXT.get(minor[:2]) or ["{place}{name}损坏"]
    return rng.choice(texts).format(place=where.place, name=where.category.minor_name) + "。"


def _handled_text(category: Category, rng: random.Random) -> str:
    key = "C" if category.kind == Category.Kind.COMPONENT else category.major_code
    return rng.choice(_HANDLED_TEXT.get(key, _HANDLED_TEXT["C"]))


# --- people --------------------------------------------------------------------------------------


@dataclasses.dataclass
class _Cast:
    operator: User
    shift_leader: User
    dispatcher: User
    leader: User
    workers: dict[int, User]  # grid id -> its primary grid worker
    handlers: dict[str, User]  # department code -> a handler
    password: str
    departments: dict[int, Department]

    def handler_of(self, case: Case) -> User:
        """A handler of the case's department (read from memory: one query less per action)."""
        assert case.current_department_id is not None
        return self.handler(self.departments[case.current_department_id])

    def handler(self, department: Department) -> User:
        if department.code not in self.handlers:
            username = "demo_handler_" + department.code.lower().replace("-", "_")
            user, created = User.objects.get_or_create(
                username=username,
                defaults={
                    "role": Role.DEPARTMENT_HANDLER,
                    "department": department,
                    "first_name": f"{department.name.removesuffix('（示例）')}处置员（示例）",
                    "password": self.password,
                },
            )
            if not created and (user.role, user.department_id) != (Role.DEPARTMENT_HANDLER, department.pk):
                raise DemoCasesError(f"用户 {username} 已存在，但不是{department.name}的处置人员")
            self.handlers[department.code] = user
        return self.handlers[department.code]


def _cast_ensure(*, plan: DemoPlan, grids: Sequence[Grid]) -> _Cast:
    """The demo accounts of load_demo, a demo grid worker for each grid that has none, and
    the demo handler of 街道环卫所 (more handlers are added per department when needed)."""
    names = {"operator": "demo_operator", "shift_leader": "demo_shift_leader"}
    names |= {"dispatcher": "demo_dispatcher", "leader": "demo_leader", "handler": "demo_department_handler"}
    users = {u.username: u for u in User.objects.filter(username__in=names.values())}
    missing = sorted(set(names.values()) - set(users))
    if missing:
        raise DemoCasesError(f"缺少示例账号 {'、'.join(missing)}：请先运行 manage.py load_demo")
    password = make_password(DEMO_PASSWORD)
    primary: dict[int, User] = {}
    assignments = GridAssignment.objects.filter(grid__in=grids).select_related("worker")
    for assignment in assignments.order_by("-is_primary", "since", "id"):  # as selectors.grid_worker_of
        primary.setdefault(assignment.grid_id, assignment.worker)
    workers: dict[int, User] = {}
    for grid in grids:
        worker = primary.get(grid.pk)
        if worker is None:
            worker, _ = User.objects.get_or_create(
                username=f"demo_gw_{grid.code[9:]}",
                defaults={
                    "role": Role.GRID_WORKER,
                    "first_name": f"网格员·{grid.name.removesuffix(plan.label)}（示例）",
                    "password": password,
                },
            )
            GridAssignment.objects.get_or_create(
                grid=grid, worker=worker, defaults={"is_primary": True, "since": grid.valid_from}
            )
        workers[grid.pk] = worker
    handler = users[names["handler"]]
    assert handler.department is not None
    return _Cast(
        operator=users[names["operator"]],
        shift_leader=users[names["shift_leader"]],
        dispatcher=users[names["dispatcher"]],
        leader=users[names["leader"]],
        workers=workers,
        handlers={handler.department.code: handler},
        password=password,
        departments=Department.objects.in_bulk(),
    )


# --- working time ----------------------------------------------------------------------------------


class _Clock:
    """Working-time arithmetic on the same calendar as the services, both ways."""

    def __init__(self) -> None:
        self.calendar = WorkingCalendar()

    def limit(self, category: Category, step: Step, urgency: str, area_class: str) -> int:
        amount, unit = category.step_limit(step=step, urgency=urgency, area_class=area_class)
        return self.calendar.limit_seconds(amount, unit)

    def after(self, start: dt.datetime, seconds: float) -> dt.datetime:
        return self.calendar.add_seconds(start, max(0, int(seconds)))

    def between(self, start: dt.datetime, end: dt.datetime) -> int:
        return self.calendar.seconds_between(start, end)

    def before(self, end: dt.datetime, seconds: float) -> dt.datetime:
        """The moment `seconds` of working time before `end` (the inverse of `after`)."""
        tz = self.calendar.tz
        cursor = end.astimezone(tz)
        remaining = max(0, int(seconds))
        day = cursor.date()
        for _ in range(400):
            if self.calendar.is_working_day(day):
                for start, stop in reversed(self.calendar.periods):
                    period_start = dt.datetime.combine(day, start, tzinfo=tz)
                    period_end = min(dt.datetime.combine(day, stop, tzinfo=tz), cursor)
                    available = int((period_end - period_start).total_seconds())
                    if available <= 0:
                        continue
                    if remaining <= available:
                        return period_end - dt.timedelta(seconds=remaining)
                    remaining -= available
            day -= dt.timedelta(days=1)
        raise DemoCasesError("工作日历中找不到足够的工作时间，请检查工作日调整")

    def working_moment(self, day: dt.date, rng: random.Random) -> dt.datetime:
        """A random moment of the working hours of `day` (or of the next working day)."""
        start = dt.datetime.combine(day, dt.time(0, 0), tzinfo=self.calendar.tz)
        return self.after(start, rng.uniform(60, self.calendar.day_seconds - 60))


# --- the plan of each case --------------------------------------------------------------------------


@dataclasses.dataclass
class _Act:
    action: Action
    timing: str = "on_time"  # on_time, late, quick, days
    share: float = 0.5  # of the running step's limit (on_time: of what is left; late: past it)
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    at: dt.datetime | None = None

    def actions(self) -> list[Action]:
        if self.action == Action.FILE and self.options.get("auto"):
            return [Action.FILE, Action.DISPATCH]
        return [self.action]


@dataclasses.dataclass
class _Plan:
    serial: int
    fate: State
    light: str
    source: str
    where: _Where
    urgency: str
    description: str
    reporter_name: str
    reporter_phone: str
    acts: list[_Act]
    right_department: Department
    area_class: str

    @property
    def client_key(self) -> str:
        return f"{CLIENT_KEY_PREFIX}{self.serial:05d}"


def _quotas(total: int) -> list[tuple[State, str]]:
    """(fate, variant) of every case: fates by share, at least one of each open fate, and the
    closed cases' variants (at least one of each) — the same list for the same total."""
    counts = dict(zip(_FATES, share_out(total, list(_FATES.values())), strict=True))
    for state in OPEN_FATES:
        if counts[state] == 0 and counts[State.CLOSED] > 1:
            counts[state], counts[State.CLOSED] = 1, counts[State.CLOSED] - 1
    closed = counts[State.CLOSED]
    variants = dict(
        zip(_VARIANTS, share_out(round(closed * sum(_VARIANTS.values()) / 1000), list(_VARIANTS.values())), strict=True)
    )
    for name in _VARIANTS:
        variants[name] = max(variants[name], 1) if closed > 2 * len(_VARIANTS) else variants[name]
    closed_variants = [name for name, n in variants.items() for _ in range(n)]
    closed_variants += [""] * max(0, closed - len(closed_variants))
    quotas = [(State.CLOSED, variant) for variant in closed_variants[:closed]]
    for state, count in counts.items():
        if state != State.CLOSED:
            quotas += [(state, "")] * count
    return quotas


class _Planner:
    def __init__(self, *, scenes: _Scenes, clock: _Clock, now: dt.datetime, rng: random.Random) -> None:
        self.scenes = scenes
        self.clock = clock
        self.now = now
        self.rng = rng
        self.routing: dict[tuple, Any] = {}
        self.area_classes: dict[int, str] = {}

    def plans(self, total: int) -> list[_Plan]:
        """The plans in the order of their report times (case numbers follow it)."""
        quotas = _quotas(total)
        self.rng.shuffle(quotas)
        # Each open state starts the light pattern at red, yellow or green in turn, so that
        # even a small demo has each light.
        lights: Counter[State] = Counter({state: index % 3 for index, state in enumerate(OPEN_FATES)})
        plans = []
        for serial, (fate, variant) in enumerate(quotas, start=1):
            light = ""
            if fate in workflow.TIMED_STATES:
                light = _LIGHTS[lights[fate] % len(_LIGHTS)]
                lights[fate] += 1
            plans.append(self._plan(serial, fate, variant, light))
        plans.sort(key=lambda p: (p.acts[0].at, p.serial))
        return plans

    def _source(self, fate: State) -> str:
        rng = self.rng
        if fate == State.VERIFYING:
            return Case.Source.HOTLINE if rng.random() < 0.85 else Case.Source.PUBLIC
        if fate == State.SELF_HANDLED:
            return Case.Source.GRID_WORKER
        return weighted(rng, {str(k): v for k, v in _SOURCES.items()})

    def _routing(self, where: _Where) -> Any:
        grid = self.scenes.places.grids[where.grid]
        facility = where.facility
        key = (where.category.pk, facility.maintainer_department_id if facility else None, grid.community_id)
        if key not in self.routing:
            self.routing[key] = selectors.department_routing(category=where.category, grid=grid, facility=facility)
        return self.routing[key]

    def _plan(self, serial: int, fate: State, variant: str, light: str) -> _Plan:
        rng = self.rng
        source = self._source(fate)
        days_ago = rng.uniform(1, HISTORY_DAYS - 2)
        long_term = fate == State.DEFERRED or variant == "defer"
        where = self.scenes.draw(
            rng, days_ago=days_ago, codes=[c for c in _LONG_TERM if c in self.scenes.categories] if long_term else ()
        )
        code = _code(where.category)
        urgency = Urgency.URGENT if rng.random() < _URGENT.get(code, 0.0) else Urgency.NORMAL
        routing = self._routing(where)
        right = routing.automatic or routing.suggestions[0].department
        grid = self.scenes.places.grids[where.grid]
        if grid.pk not in self.area_classes:
            self.area_classes[grid.pk] = selectors.area_class_of(grid=grid)
        description = _description(where, rng)
        reporter_name = reporter_phone = ""
        if source in (Case.Source.HOTLINE, Case.Source.PUBLIC):
            reporter_name = rng.choice(_SURNAMES) + rng.choice(["先生", "女士", "师傅"])
            reporter_phone = f"1{rng.choice('3589')}{rng.randrange(10**9):09d}"
            description = (
                "市民来电反映：" if source == Case.Source.HOTLINE else "市民通过手机应用反映："
            ) + description
        acts = self._acts(fate, variant, source, automatic=routing.automatic is not None, where=where, right=right)
        plan = _Plan(
            serial=serial,
            fate=fate,
            light=light,
            source=source,
            where=where,
            urgency=urgency,
            description=description,
            reporter_name=reporter_name,
            reporter_phone=reporter_phone,
            acts=acts,
            right_department=right,
            area_class=self.area_classes[grid.pk],
        )
        self._time(plan, days_ago=days_ago)
        return plan

    # The acts of each fate, in order. Steps done late are drawn here, once.

    def _step(self, action: Action, step: Step | None, **options: Any) -> _Act:
        rng = self.rng
        if step is not None and rng.random() >= _ON_TIME[step]:
            return _Act(action, "late", rng.uniform(0.05, 1.2), options)
        return _Act(action, "on_time", rng.uniform(0.1, 0.85), options)

    def _acts(
        self, fate: State, variant: str, source: str, *, automatic: bool, where: _Where, right: Department
    ) -> list[_Act]:
        rng = self.rng
        acts: list[_Act] = []
        if fate == State.SELF_HANDLED:
            return [_Act(Action.SELF_HANDLE)]
        registered = source in (Case.Source.HOTLINE, Case.Source.PUBLIC)
        acts.append(_Act(Action.REGISTER if registered else Action.REPORT))
        if fate == State.VERIFYING:
            return acts
        if registered:
            confirmed = fate != State.VOIDED
            acts.append(self._step(Action.VERIFY, Step.VERIFY, confirmed=confirmed))
        if fate == State.VOIDED:
            reason = "现场核实无此问题" if registered else rng.choice(["不属于城市管理范围，已告知当事人", "重复上报"])
            acts.append(self._step(Action.VOID, Step.FILE, reason=reason))
            return acts
        if fate == State.REPORTED:
            return acts
        manual = fate == State.FILED or variant == "return" or not automatic or rng.random() < 0.2
        acts.append(self._step(Action.FILE, Step.FILE, auto=not manual))
        if fate == State.FILED:
            if rng.random() < 0.4:  # returned by the wrong department, waiting to be dispatched again
                acts.append(self._step(Action.DISPATCH, Step.DISPATCH, department=_wrong(right)))
                acts.append(self._step(Action.RETURN, Step.HANDLE, reason=_RETURN_REASON))
            return acts
        if manual:
            wrong = variant == "return"
            acts.append(self._step(Action.DISPATCH, Step.DISPATCH, department=_wrong(right) if wrong else right))
            if wrong:
                acts.append(_Act(Action.RETURN, "quick", options={"reason": _RETURN_REASON}))
                acts.append(self._step(Action.DISPATCH, Step.DISPATCH, department=right))
        if fate == State.DISPATCHED:
            if rng.random() < 0.15:  # a 返工 under way
                acts.append(self._step(Action.HANDLE, Step.HANDLE))
                acts.append(self._step(Action.CHECK_FAIL, Step.CHECK, reason=_REWORK_REASON))
            if self.rng.random() < 0.5:
                acts.append(_Act(Action.URGE, options=_urge(rng)))
            return acts
        if fate == State.EXTENSION_PENDING:
            acts.append(_Act(Action.REQUEST_EXTENSION, options=_extension(rng)))
            return acts
        if fate == State.DEFERRED or variant == "defer":
            acts.append(self._step(Action.DEFER, Step.HANDLE, reason=_DEFER_REASON))
            if fate == State.DEFERRED:
                return acts
            acts.append(_Act(Action.RESUME, "days", options={"comment": "条件已具备，恢复处置"}))
        if variant in ("extension", "extension_refused"):
            acts.append(_Act(Action.REQUEST_EXTENSION, "on_time", rng.uniform(0.3, 0.7), _extension(rng)))
            if variant == "extension":
                acts.append(_Act(Action.APPROVE_EXTENSION, "quick", options={"comment": "同意延时"}))
            else:
                acts.append(_Act(Action.REFUSE_EXTENSION, "quick", options={"reason": "影响群众出行，请按原时限处置"}))
        if variant == "urge":
            acts.append(_Act(Action.URGE, "on_time", rng.uniform(0.5, 0.9), _urge(rng)))
        acts.append(self._step(Action.HANDLE, Step.HANDLE))
        if variant == "rework":
            acts.append(self._step(Action.CHECK_FAIL, Step.CHECK, reason=_REWORK_REASON))
            acts.append(self._step(Action.HANDLE, Step.HANDLE))
        if fate == State.HANDLED:
            return acts
        acts.append(self._step(Action.CHECK_PASS, Step.CHECK))
        if fate == State.CHECKED:
            return acts
        acts.append(self._step(Action.CLOSE, Step.CLOSE))
        return acts

    # When: forward from the report for finished cases, backward from now for open ones.

    def _walk(self, plan: _Plan) -> list[tuple[Step | None, bool]]:
        """After each act: the running step, and whether the act started it."""
        state, step = State.NEW, None
        walked = []
        for act in plan.acts:
            started = False
            for action in act.actions():
                transition = workflow.transition_for(state=state, action=action)
                state = transition.target
                if isinstance(transition.timer, Step):
                    step, started = transition.timer, True
                elif transition.timer is Timer.STOP:
                    step = None
            walked.append((step, started))
        if state != plan.fate:
            raise AssertionError(f"demo case plan ends in {state}, not {plan.fate}")
        return walked

    def _limit(self, plan: _Plan, step: Step) -> int:
        return self.clock.limit(plan.where.category, step, plan.urgency, plan.area_class)

    def _time(self, plan: _Plan, *, days_ago: float) -> None:
        walked = self._walk(plan)
        if plan.fate in workflow.OPEN_STATES:
            self._time_backward(plan, walked)
            return
        # Finished cases: forward from the report; a case that would still be running now
        # is moved back until it finishes before now.
        day = timezone.localdate(self.now - dt.timedelta(days=days_ago))
        for _ in range(20):
            if plan.source in (Case.Source.HOTLINE, Case.Source.PUBLIC):
                start = dt.datetime.combine(day, dt.time(7), tzinfo=self.clock.calendar.tz)
                reported = start + dt.timedelta(seconds=self.rng.uniform(0, 15 * 3600))
            else:
                reported = self.clock.working_moment(day, self.rng)
            self._time_forward(plan, walked, reported)
            finished = plan.acts[-1].at
            assert finished is not None
            if finished < self.now - dt.timedelta(minutes=10):
                return
            day -= dt.timedelta(days=max(1, (finished - self.now).days + 2))
        raise AssertionError(f"demo case {plan.serial} does not finish before now")

    def _time_forward(self, plan: _Plan, walked: list[tuple[Step | None, bool]], reported: dt.datetime) -> None:
        clock = self.clock
        previous = reported
        deadline: dt.datetime | None = None
        limit = 0
        for index, act in enumerate(plan.acts):
            if index == 0:
                at = reported
            elif act.timing == "quick" or (act.timing != "days" and deadline is None):
                at = clock.after(previous, self.rng.uniform(600, 5400))
            elif act.timing == "days":
                at = clock.after(previous + dt.timedelta(days=self.rng.uniform(4, 20)), 60)
            elif act.timing == "late":
                assert deadline is not None
                at = clock.after(max(deadline, previous), act.share * limit + 60)
            else:
                assert deadline is not None
                at = clock.after(previous, act.share * clock.between(previous, deadline) + 60)
            act.at = at
            step, started = walked[index]
            if started:
                assert step is not None
                limit = self._limit(plan, step)
                deadline = clock.after(at, limit)
            if act.action == Action.APPROVE_EXTENSION and deadline is not None:
                amount = Decimal(act.options.get("amount", plan.acts[index - 1].options["amount"]))
                deadline = clock.calendar.add(deadline, amount, plan.acts[index - 1].options["unit"])
            if step is None:
                deadline = None
            previous = at

    def _time_backward(self, plan: _Plan, walked: list[tuple[Step | None, bool]]) -> None:
        clock, rng, now = self.clock, self.rng, self.now
        last = max(index for index, (_, started) in enumerate(walked) if started)
        last_step = walked[last][0]
        if plan.fate == State.DEFERRED:
            last = len(plan.acts) - 1
            anchor = clock.after(now - dt.timedelta(days=rng.uniform(5, 30)), 60)
        else:
            assert last_step is not None
            used = {"red": rng.uniform(1.15, 2.5), "yellow": rng.uniform(0.84, 0.96), "green": rng.uniform(0.1, 0.7)}
            anchor = clock.before(now, used[plan.light] * self._limit(plan, last_step))
        plan.acts[last].at = anchor
        # Acts after the step started (督办, 申请延时) fall between its start and now.
        following = plan.acts[last + 1 :]
        elapsed = clock.between(anchor, now)
        for position, act in enumerate(following, start=1):
            act.at = clock.after(anchor, elapsed * position / (len(following) + 1))
        for index in range(last, 0, -1):
            act = plan.acts[index]
            step, _ = walked[index - 1]
            assert act.at is not None
            if step is None:
                gap = rng.uniform(4, 20) * clock.calendar.day_seconds
            elif act.timing == "quick":
                gap = rng.uniform(600, 5400)
            elif act.timing == "late":
                gap = (1 + act.share) * self._limit(plan, step)
            else:
                gap = act.share * self._limit(plan, step)
            plan.acts[index - 1].at = clock.before(act.at, max(gap, 60))


_RETURN_REASON = "经现场查看，该问题不属于本单位职责范围，请重新派遣"
_REWORK_REASON = "现场核查问题未彻底解决，请返工"
_DEFER_REASON = "涉及历史遗留问题，需多部门联合处置，暂予挂账"
_WRONG_DEPARTMENT = {
    "ZY-HW": "ZY-CG", "ZY-CG": "ZY-HW", "ZY-PS": "ZY-SZ", "ZY-SZ": "ZY-PS", "ZY-GS": "ZY-PS",
    "ZY-LD": "ZY-DL", "ZY-DL": "ZY-LD", "ZY-YL": "ZY-HW", "ZY-JJ": "ZY-CG", "ZY-JS": "ZY-CG",
    "ZY-RQ": "ZY-GS", "ZY-TX": "ZY-DL",
}  # fmt: skip


def _wrong(right: Department) -> Department:
    code = _WRONG_DEPARTMENT.get(right.code, "ZY-CG" if right.code != "ZY-CG" else "ZY-HW")
    return Department.objects.get(code=code)


def _urge(rng: random.Random) -> dict[str, Any]:
    level = weighted(rng, {UrgeLevel.NORMAL.value: 6, UrgeLevel.YELLOW.value: 3, UrgeLevel.RED.value: 1})
    return {
        "level": level,
        "comment": {"normal": "请加快处置", "yellow": "已超时，请尽快处置并反馈", "red": "群众反映强烈，限期办结"}[
            level
        ],
    }


def _extension(rng: random.Random) -> dict[str, Any]:
    reason = rng.choice(["需协调产权单位共同处置", "配件需采购，预计两个工作日到货", "需大型机械作业，须申请占道许可"])
    return {"amount": rng.choice(["1", "2", "3"]), "unit": "days", "reason": reason}


# --- photos -------------------------------------------------------------------------------------------


class _Photos:
    """Small JPEGs drawn once per stage (a street before, after, at 核查) and reused."""

    def __init__(self, rng: random.Random, variants: int = 6) -> None:
        self.pool = {
            stage: [self._draw(stage, rng) for _ in range(variants)] for stage in ("before", "after", "verify")
        }
        self.rng = rng
        self.count = 0

    @staticmethod
    def _draw(stage: str, rng: random.Random) -> bytes:
        width, height = _PHOTO_SIZE
        grey = rng.randrange(110, 160)
        image = Image.new("RGB", _PHOTO_SIZE, (grey, grey, grey + 5))
        draw = ImageDraw.Draw(image)
        draw.rectangle((0, 0, width, height // 3), fill=(150 + rng.randrange(60), 180, 220))  # sky
        draw.rectangle((0, height * 2 // 3, width, height), fill=(90, 90, 95))  # road
        if stage == "before":
            for _ in range(rng.randrange(4, 9)):
                x, y = rng.randrange(width), rng.randrange(height // 2, height)
                size = rng.randrange(5, 16)
                draw.ellipse(
                    (x, y, x + size, y + size * 2 // 3), fill=(rng.randrange(90, 200), rng.randrange(60, 120), 40)
                )
        else:
            draw.rectangle((0, height // 2, width, height // 2 + 6), fill=(60, 150, 70))  # a clean kerb and hedge
        if stage == "verify":
            draw.line((width - 30, 20, width - 20, 32, width - 6, 8), fill=(255, 255, 255), width=4)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=55)
        return buffer.getvalue()

    def take(self, stage: str) -> io.BytesIO:
        self.count += 1
        return io.BytesIO(self.rng.choice(self.pool[stage]))


# --- replaying a plan through the services -----------------------------------------------------------


def _replay(plan: _Plan, *, cast: _Cast, places: _Places, photos: _Photos, rng: random.Random) -> Case:
    where = plan.where
    grid = places.grids[where.grid]
    worker = cast.workers[grid.pk]
    location = GeosPoint(where.location.x, where.location.y, srid=4326)
    first = plan.acts[0]
    if first.action == Action.SELF_HANDLE:
        return services.case_self_handle(
            actor=worker,
            category=where.category,
            location=location,
            description=plan.description,
            before_photos=[photos.take("before")],
            after_photos=[photos.take("after")],
            address=where.address,
            facility=where.facility,
            client_key=plan.client_key,
            at=first.at,
        )
    reporter = {
        Case.Source.GRID_WORKER: worker,
        Case.Source.HOTLINE: cast.operator,
        Case.Source.VIDEO: cast.operator,
        Case.Source.PUBLIC: None,
    }[Case.Source(plan.source)]
    with_photo = plan.source == Case.Source.GRID_WORKER and rng.random() < 0.15
    case = services.case_report(
        actor=reporter,
        source=plan.source,
        category=where.category,
        location=location,
        description=plan.description,
        address=where.address,
        urgency=plan.urgency,
        facility=where.facility,
        photos=[photos.take("before")] if with_photo else [],
        reporter_name=plan.reporter_name,
        reporter_phone=plan.reporter_phone,
        client_key=plan.client_key,
        at=first.at,
    )
    for act in plan.acts[1:]:
        case = _perform(case, act, plan=plan, cast=cast, worker=worker, photos=photos, rng=rng)
    return case


def _perform(
    case: Case, act: _Act, *, plan: _Plan, cast: _Cast, worker: User, photos: _Photos, rng: random.Random
) -> Case:
    options, at = act.options, act.at
    match act.action:
        case Action.VERIFY:
            comment = "情况属实" if options["confirmed"] else "现场未发现所反映的问题"
            return services.case_verify(case=case, actor=worker, confirmed=options["confirmed"], comment=comment, at=at)
        case Action.VOID:
            return services.case_void(case=case, actor=cast.operator, reason=options["reason"], at=at)
        case Action.FILE:
            return services.case_file(case=case, actor=cast.operator, auto_dispatch=options["auto"], at=at)
        case Action.DISPATCH:
            return services.case_dispatch(case=case, actor=cast.dispatcher, department=options["department"], at=at)
        case Action.RETURN:
            handler = cast.handler_of(case)
            return services.case_return(case=case, actor=handler, reason=options["reason"], at=at)
        case Action.REQUEST_EXTENSION:
            return services.case_extension_request(
                case=case,
                actor=cast.handler_of(case),
                amount=options["amount"],
                unit=options["unit"],
                reason=options["reason"],
                at=at,
            )
        case Action.APPROVE_EXTENSION:
            return services.case_extension_approve(case=case, actor=cast.dispatcher, comment=options["comment"], at=at)
        case Action.REFUSE_EXTENSION:
            return services.case_extension_refuse(case=case, actor=cast.dispatcher, reason=options["reason"], at=at)
        case Action.HANDLE:
            return services.case_handle(
                case=case,
                actor=cast.handler_of(case),
                comment=_handled_text(plan.where.category, rng),
                photos=[photos.take("after")],
                at=at,
            )
        case Action.CHECK_PASS | Action.CHECK_FAIL:
            passed = act.action == Action.CHECK_PASS
            return services.case_check(
                case=case,
                actor=worker,
                passed=passed,
                photos=[photos.take("verify")],
                comment="已处置到位" if passed else options["reason"],
                at=at,
            )
        case Action.CLOSE:
            return services.case_close(case=case, actor=cast.shift_leader, comment="核查通过，予以结案", at=at)
        case Action.DEFER:
            return services.case_defer(case=case, actor=cast.leader, reason=options["reason"], at=at)
        case Action.RESUME:
            return services.case_resume(case=case, actor=cast.leader, comment=options["comment"], at=at)
        case Action.URGE:
            return services.case_urge(
                case=case, actor=cast.leader, level=options["level"], comment=options["comment"], at=at
            )
    raise AssertionError(f"demo cases do not use {act.action}")


# --- marker, counts, loading ------------------------------------------------------------------------


def demo_cases() -> QuerySet[Case]:
    """The demo cases (their client key starts with DEMO-)."""
    return Case.objects.filter(client_key__startswith=CLIENT_KEY_PREFIX)


def demo_case_counts() -> dict[str, int]:
    """Demo cases per state."""
    return dict(demo_cases().values_list("state").annotate(n=Count("id")).order_by("state"))


def marker_read() -> dict[str, Any] | None:
    return district_store.table_marker_read(_MARKER_TABLE, _MARKER_PREFIX)


def _marker_write(marker: dict[str, Any] | None) -> None:
    district_store.table_marker_write(_MARKER_TABLE, _MARKER_PREFIX, marker)


def _version(district: dict[str, Any]) -> str:
    """Changes with this generator and with the demo district the cases were recorded in."""
    digest = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    return f"{_VERSION}-{digest}-{district.get('version')}-{district.get('seed')}-{district.get('scale')}"


@contextmanager
def _timer_jobs_discarded() -> Iterator[None]:
    """The workflow queues two timer jobs per step it starts (on commit). For a history
    recorded after the fact they are moot — steps long finished, and the alert sweep (every
    10 minutes) covers the open cases — so they go to an in-memory queue that is dropped."""
    procrastinate_logger = logging.getLogger("procrastinate")
    level = procrastinate_logger.level
    procrastinate_logger.setLevel(logging.WARNING)  # one "Deferred 1 job" line per job otherwise
    try:
        with job_app.replace_connector(InMemoryConnector()):
            yield
    finally:
        procrastinate_logger.setLevel(level)


def demo_cases_load(
    *,
    seed: int | None = None,
    scale: float = 1.0,
    reload: bool = False,
    now: dt.datetime | None = None,
    progress: Progress = SILENT,
) -> DemoCasesResult:
    """Record the demo case history (see the module docstring); idempotent.

    `now` is the end of the history (default: the current time); `scale` multiplies the
    number of cases (800 at 1.0). Everything happens in one transaction, all or nothing; the
    timer jobs the workflow queues on commit are discarded when that transaction is the
    outermost one (as in the command), and queued for real when an outer one commits.
    """
    started = time.monotonic()
    seed = DEFAULT_SEED if seed is None else seed
    if not 0 < scale <= MAX_SCALE:
        raise DemoCasesError(f"规模（--scale）须大于 0 且不超过 {MAX_SCALE}（收到 {scale}）")
    plan = DemoPlan.load()
    district = district_store.marker_read()
    if district is None or not Street.objects.filter(code=plan.dense_street, is_demo=True).exists():
        raise DemoCasesError("尚未加载示例区：请先运行 manage.py load_demo")
    if not Category.objects.exists():
        raise DemoCasesError("案件类别目录为空：请先运行 manage.py load_case_categories")
    wanted = {"version": _version(district), "seed": seed, "scale": scale}
    with _timer_jobs_discarded(), transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK])
        existing = demo_cases().count()
        marker = marker_read() or {}
        if existing and not reload:
            if {key: marker.get(key) for key in wanted} == wanted and marker.get("count") == existing:
                return DemoCasesResult("unchanged", demo_case_counts(), time.monotonic() - started)
            return DemoCasesResult(
                "kept",
                demo_case_counts(),
                time.monotonic() - started,
                [
                    f"数据库中已有 {existing} 件其他版本（或其他规模、种子）的示例案件，保留不变；"
                    "如需重新生成，请加 --reload（须数据库允许清除示例案件，见 docs/demo.md）"
                ],
            )
        if existing:
            demo_cases_purge()
        now = now or timezone.now()
        result = _generate(plan=plan, seed=seed, scale=scale, now=now, progress=progress)
        _marker_write({**wanted, "count": sum(result.counts.values()), "now": now.isoformat()})
    result.seconds = time.monotonic() - started
    return result


@dataclasses.dataclass(frozen=True)
class PlannedCase:
    """What load_demo_cases records for one case."""

    client_key: str
    state: str
    light: str  # of the running step at `now`: red, yellow, green, or "" without one
    category: str  # C/E + 大类 + 小类
    source: str
    location: tuple[float, float]
    actions: list[tuple[str, dt.datetime]]  # every history row the workflow writes, alerts apart


def demo_case_plans(*, seed: int | None = None, scale: float = 1.0, now: dt.datetime) -> list[PlannedCase]:
    """The demo cases that `demo_cases_load` records for (seed, scale, now), in report order;
    reads the demo district and the catalogue, writes nothing. The same arguments give the
    same plans."""
    plans = _plans(plan=DemoPlan.load(), seed=DEFAULT_SEED if seed is None else seed, scale=scale, now=now)[1]
    return [
        PlannedCase(
            client_key=p.client_key,
            state=str(p.fate),
            light=p.light,
            category=_code(p.where.category),
            source=p.source,
            location=(p.where.location.x, p.where.location.y),
            actions=[(str(action), act.at) for act in p.acts for action in act.actions() if act.at is not None],
        )
        for p in plans
    ]


def _plans(*, plan: DemoPlan, seed: int, scale: float, now: dt.datetime) -> tuple[_Places, list[_Plan]]:
    street = Street.objects.get(code=plan.dense_street, is_demo=True)
    places = _Places(street=street, rng=random.Random(f"{seed}:hot-spots"))
    # With their departments loaded: routing reads them for every report.
    active = Category.objects.filter(is_active=True).select_related("default_department", "facility_type")
    categories = {_code(c): c for c in active}
    scenes = _Scenes(places=places, categories=categories)
    planner = _Planner(scenes=scenes, clock=_Clock(), now=now, rng=random.Random(f"{seed}:demo-cases"))
    return places, planner.plans(round(FULL_SIZE_CASES * scale))


def _generate(*, plan: DemoPlan, seed: int, scale: float, now: dt.datetime, progress: Progress) -> DemoCasesResult:
    with progress.stage("规划示例案件"):
        places, plans = _plans(plan=plan, seed=seed, scale=scale, now=now)
    cast = _cast_ensure(plan=plan, grids=places.grids)
    photos = _Photos(random.Random(f"{seed}:photos"))
    replay_rng = random.Random(f"{seed}:replay")
    history_before = CaseHistory.objects.count()
    with progress.bar(total=len(plans), desc="生成示例案件", unit="件") as bar:
        for case_plan in plans:
            _replay(case_plan, cast=cast, places=places, photos=photos, rng=replay_rng)
            bar.update()
        bar.set_postfix_str(f"照片 {photos.count} 张")
    _alerts_raise(now=now)
    counts = demo_case_counts()
    planned = Counter(str(p.fate) for p in plans)
    if counts != dict(planned):
        raise AssertionError(f"demo cases per state {counts} differ from the plan {dict(planned)}")
    return DemoCasesResult(
        "loaded",
        counts,
        0.0,
        photos=photos.count,
        history=CaseHistory.objects.count() - history_before,
    )


def _alerts_raise(*, now: dt.datetime) -> None:
    """The yellow and red alerts of the open demo cases, as the alert sweep would raise them now."""
    for level in (CaseAlert.Level.YELLOW, CaseAlert.Level.RED):
        for case_id in (
            selectors.cases_turning(level=level, now=now)
            .filter(pk__in=demo_cases())
            .order_by("pk")
            .values_list("pk", flat=True)
        ):
            services.case_alert_raise(case_id=case_id, level=level, at=now)


def demo_cases_purge() -> int:
    """Remove every demo case with its history, photos and alerts; returns how many.

    Case history is append-only: the trigger of migration events/0002 refuses DELETE on
    events_casehistory. A purge is attempted with the session setting
    `gridmgmt.allow_demo_purge = on` (for a trigger that admits it for demo cases); when the
    trigger refuses, nothing is removed and DemoCasesError says so.
    """
    with transaction.atomic():
        ids = list(demo_cases().values_list("pk", flat=True))
        if not ids:
            return 0
        files = list(CasePhoto.objects.filter(case_id__in=ids).values_list("image", flat=True))
        try:
            with transaction.atomic(), connection.cursor() as cursor:
                cursor.execute("SET LOCAL gridmgmt.allow_demo_purge = 'on'")
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
                for table in (CasePhoto, CaseAlert, CaseHistory):
                    cursor.execute(f"DELETE FROM {table._meta.db_table} WHERE case_id = ANY(%s)", [ids])  # noqa: S608
                cursor.execute(f"DELETE FROM {Case._meta.db_table} WHERE id = ANY(%s)", [ids])  # noqa: S608
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        except DatabaseError as error:
            raise DemoCasesError(
                f"不能删除已有的 {len(ids)} 件示例案件，数据库拒绝删除（{str(error).splitlines()[0]}）。"
                "案件流转记录只能追加，现行数据库不允许清除示例案件："
                "如需重新生成，请使用一个新的数据库（见 docs/demo.md）。"
            ) from error
        _marker_write(None)
        transaction.on_commit(lambda: _files_delete(files))
    return len(ids)


def _files_delete(names: list[str]) -> None:
    for name in names:
        default_storage.delete(name)
