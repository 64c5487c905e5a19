"""Load the demo district: generate it (no database), then write it in one transaction.

Idempotent: a marker records which demo is loaded (plan version, seed, scale) and the row
counts; if the same demo is complete, nothing is done. Otherwise the older demo rows are
deleted and the new ones written in the same transaction, and whatever outside the demo
referred to demo rows (cases, users' scopes, grid assignments...) is pointed at the new
rows with the same code — or the whole replacement is refused and rolled back.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from django.db import connection, transaction
from shapely.geometry.base import BaseGeometry

from geodata.catalogue import catalogue_entries
from geodata.demo import store
from geodata.demo.design import dense_grids_design
from geodata.demo.facilities import facilities_build
from geodata.demo.layout import layout_build
from geodata.demo.plan import DemoPlan
from geodata.demo.population import buildings_place, population_build
from geodata.demo.progress import SILENT, Progress
from geodata.grid_design import GridDesignError
from geodata.models import District
from geodata.services import register_assign_grids

MAX_SCALE = 4.0
# Serialises concurrent loaders (two `make demo` at once); any constant unique to us.
_ADVISORY_LOCK = 0x67726964_64656D6F  # "griddemo"


class DemoLoadError(Exception):
    """The demo cannot be loaded; the message says why, in Chinese."""


@dataclass
class DemoLoadResult:
    status: str  # "loaded", "unchanged", or "kept" (a different demo is loaded and may not be replaced)
    counts: dict[str, int]
    seconds: float
    messages: list[str] = field(default_factory=list)


def district_boundary(plan: DemoPlan) -> BaseGeometry:
    """The real boundary of the demo district, shipped offline by cnmaps."""
    from cnmaps import get_adm_maps  # imported late: it loads its map database on import

    district = plan["district"]
    shape = get_adm_maps(city=district["city"], district=district["name"], record="first", only_polygon=True)
    return shape.geom


def demo_load(
    *, seed: int | None = None, scale: float = 1.0, reload: bool = False, progress: Progress = SILENT
) -> DemoLoadResult:
    """Make the database hold the demo for (`seed`, `scale`); see the module docstring.

    A different demo that cannot be replaced (something outside it refers to demo rows the
    new one does not have) raises DemoLoadError with `reload`, and is kept otherwise, so
    that `make demo` still starts.
    """
    started = time.monotonic()
    plan = DemoPlan.load()
    seed = plan["seed"] if seed is None else seed
    if not 0 < scale <= MAX_SCALE:
        raise DemoLoadError(f"规模（--scale）须大于 0 且不超过 {MAX_SCALE}（收到 {scale}）")
    wanted = {"version": plan.version, "seed": seed, "scale": scale}
    if not reload and _is_loaded(wanted):
        return DemoLoadResult("unchanged", store.demo_counts(), time.monotonic() - started)
    if District.objects.filter(code=plan.district_code, is_demo=False).exists():
        raise DemoLoadError(
            f"数据库中已有真实的区县 {plan.district_code}：示例数据不能与真实数据混用，请使用单独的数据库演示"
        )

    with progress.stage("划分街道、社区和街区"):
        layout = layout_build(plan=plan, boundary=district_boundary(plan), seed=seed)
    # Buildings and households first: the dense street's grids are designed around them.
    placement = buildings_place(plan=plan, layout=layout, seed=seed, scale=scale, progress=progress)
    try:
        design = dense_grids_design(plan=plan, layout=layout, placement=placement, scale=scale, progress=progress)
    except GridDesignError as error:
        raise DemoLoadError(f"示例街道的网格无法按当前规模划分：{error}") from error
    layout = design.layout
    population = population_build(plan=plan, placement=placement, grid_of=design.grid_of, seed=seed, progress=progress)
    type_names = {entry.code: entry.minor_name for entry in catalogue_entries()}
    facilities = facilities_build(
        plan=plan,
        layout=layout,
        population=population,
        type_names=type_names,
        seed=seed,
        scale=scale,
        progress=progress,
    )
    try:
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_ADVISORY_LOCK])
            if not reload and _is_loaded(wanted):  # another loader finished while we generated
                return DemoLoadResult("unchanged", store.demo_counts(), time.monotonic() - started)
            with progress.stage("清除旧的示例数据"):
                references = store.outside_references()
                store.demo_delete()
            departments = store.departments_ensure(plan=plan, layout=layout)
            store.regions_write(plan=plan, layout=layout, departments=departments)
            building_ids = store.buildings_write(population=population, progress=progress)
            household_ids = store.households_write(population=population, building_ids=building_ids, progress=progress)
            store.persons_write(population=population, household_ids=household_ids, progress=progress)
            store.facilities_write(facilities=facilities, departments=departments, progress=progress)
            store.references_restore(references)
            with progress.stage("按网格归属楼栋、住户和部件"):
                register_assign_grids(area=District.objects.get(code=plan.district_code).geom)
            counts = store.demo_counts()
            store.marker_write({**wanted, "counts": counts})
    except store.DemoReplaceRefused as refused:
        if reload:
            raise DemoLoadError("不能替换示例数据：" + "；".join(refused.problems)) from refused
        return DemoLoadResult(
            "kept",
            store.demo_counts(),
            time.monotonic() - started,
            ["已加载的示例数据与当前版本不同，但不能替换，保留现有示例数据：", *refused.problems],
        )
    except store.CatalogueIncomplete as error:
        raise DemoLoadError(str(error)) from error
    return DemoLoadResult("loaded", counts, time.monotonic() - started)


def _is_loaded(wanted: dict[str, Any]) -> bool:
    marker = store.marker_read()
    if marker is None or {key: marker.get(key) for key in wanted} != wanted:
        return False
    # Someone may have deleted demo rows by hand: only a complete demo counts as loaded.
    return marker.get("counts") == store.demo_counts()
