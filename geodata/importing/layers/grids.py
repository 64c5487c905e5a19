"""网格: 15-digit code = community code (12) + serial (3), one polygon inside its community.

Grids tile their community: no overlap between grids whose validity periods overlap, and no
gap. Overlaps are problems of the rows concerned; a gap belongs to no row, so it is a
problem of the file, reported per community with its area and location.
"""

import datetime as dt

import numpy as np
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.utils import timezone

from geodata.importing import columns as c
from geodata.importing.geometry import Shape, gaps, overhang
from geodata.importing.layers.base import (
    CheckOutcome,
    LayerImporter,
    Record,
    copy_rows,
    duplicates_in_file,
    envelope,
    ewkb_hex,
    existing,
    report_overlaps,
    shapes_of,
    with_shapes,
)
from geodata.models import Community, Department, Grid, GridAssignment

MAX_GAPS_LISTED = 20


def _periods_overlap(a_from: dt.date, a_to: dt.date | None, b_from: dt.date, b_to: dt.date | None) -> bool:
    return (b_to is None or a_from < b_to) and (a_to is None or b_from < a_to)


def resolve_department(record: Record, value: str, label: str, by_code: dict, by_name: dict) -> int | None:
    """A department given by its code or its unique name; unknown or ambiguous names are problems."""
    if not value:
        return None
    if value in by_code:
        return by_code[value]["id"]
    matches = by_name.get(value, [])
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        record.problems.append(f"{label}“{value}”有 {len(matches)} 个同名部门，请改用部门编码")
    else:
        record.problems.append(f"{label}“{value}”未登记（请先在“部门/单位”中添加，或填写部门编码）")
    return None


def department_lookups(values: set[str]) -> tuple[dict, dict]:
    by_code = existing(Department, "code", values, "id")
    by_name: dict[str, list[int]] = {}
    for pk, name in Department.objects.filter(name__in=sorted(values)).values_list("id", "name"):
        by_name.setdefault(name, []).append(pk)
    return by_code, by_name


class GridImporter(LayerImporter):
    key = "grids"
    label = "网格"
    shape = Shape.POLYGON
    columns = (
        c.Column("code", "网格编码", ("编码", "网格代码", "wgbm", "gridcode"), required=True),
        c.Column("name", "网格名称", ("名称", "wgmc", "gridname")),
        c.Column("responsible_unit", "责任主体", ("责任单位", "zrzt", "zrdw")),
        c.Column("valid_from", "启用日期", ("生效日期", "qyrq")),
        c.Column("valid_to", "停用日期", ("失效日期", "tyrq")),
        c.Column("workers", "网格员", ("网格员账号", "wgy")),
    )

    def parse_all(self, records: list[Record]) -> None:
        codes = [r.values["code"] for r in records]
        registered = existing(Grid, "code", codes, "name")
        communities = existing(Community, "code", [x[:12] for x in codes], "id", "name")
        by_code, by_name = department_lookups({r.values["responsible_unit"] for r in records} - {""})
        usernames = {u for r in records for u in c.split_list(r.values["workers"])}
        users = existing(get_user_model(), "username", usernames, "id")
        today = timezone.localdate()
        for record in records:
            code = record.take(c.digits, record.values["code"], "网格编码", 15)
            community = None
            if code:
                if code.endswith("000"):
                    record.problems.append("网格编码的最后3位（网格序号）应从 001 开始")
                if code in registered:
                    record.problems.append(f"网格编码 {code} 已登记（{registered[code]['name']}）")
                community = communities.get(code[:12])
                if community is None:
                    record.problems.append(f"所属社区 {code[:12]}（网格编码前12位）未登记，请先导入区划")
            name = record.values["name"] or (f"{community['name']}第{int(code[12:])}网格" if community and code else "")
            record.data["name"] = record.take(c.max_length, name, "网格名称", 100)
            record.data["community"] = community
            record.data["responsible_unit_id"] = resolve_department(
                record, record.values["responsible_unit"], "责任主体", by_code, by_name
            )
            valid_from = record.take(c.date, record.values["valid_from"], "启用日期")
            valid_to = record.take(c.date, record.values["valid_to"], "停用日期")
            record.data["valid_from"] = valid_from or today
            record.data["valid_to"] = valid_to
            if valid_to is not None and valid_to <= record.data["valid_from"]:
                record.problems.append("停用日期应晚于启用日期")
            worker_ids = []
            for username in c.split_list(record.values["workers"]):
                if username in users:
                    worker_ids.append(users[username]["id"])
                else:
                    record.problems.append(f"网格员账号“{username}”不存在")
            record.data["worker_ids"] = worker_ids

    def check(self, records: list[Record], *, loaded_only: bool) -> CheckOutcome:
        duplicates_in_file(records, lambda r: r.values["code"], "网格编码")
        placed = [r for r in records if r.geometry is not None]
        if not placed:
            return CheckOutcome()
        shapes = np.array([r.geometry for r in placed], dtype=object)
        community_shapes = self._community_shapes({r.data["community"]["code"] for r in placed if r.data["community"]})
        for record, shape in zip(placed, shapes, strict=True):
            community = record.data["community"]
            if community is None:
                continue
            outside, where = overhang(shape, community_shapes[community["code"]], metric=self.metric)
            if outside > self.tolerance_m2:
                record.problems.append(
                    f"超出所属社区 {community['code']} {community['name']} 的边界 {outside:.1f} m²，位置 {where}"
                )
        registered, registered_shapes = with_shapes(
            Grid.objects.filter(geom__bboverlaps=envelope(r.geometry for r in placed)).order_by("code"),
            *("code", "name", "valid_from", "valid_to"),
        )

        def related(record: Record, other: Record | None, index: int | None) -> bool:
            b = other.data if other is not None else registered[index]  # type: ignore[index]
            return _periods_overlap(record.data["valid_from"], record.data["valid_to"], b["valid_from"], b["valid_to"])

        report_overlaps(
            placed,
            shapes,
            [f"网格 {g['code']} {g['name']}" for g in registered],
            np.array(registered_shapes, dtype=object),
            metric=self.metric,
            tolerance_m2=self.tolerance_m2,
            related=related,
        )
        return CheckOutcome(file_problems=self._gaps(placed, shapes, community_shapes, loaded_only=loaded_only))

    def _community_shapes(self, codes: set[str]) -> dict:
        rows, shapes = with_shapes(Community.objects.filter(code__in=sorted(codes)), "code")
        return {row["code"]: shape for row, shape in zip(rows, shapes, strict=True)}

    def _gaps(self, placed: list[Record], shapes: np.ndarray, community_shapes: dict, *, loaded_only: bool) -> list:
        problems = []
        for code, boundary in sorted(community_shapes.items()):
            members = [
                (r, s)
                for r, s in zip(placed, shapes, strict=True)
                if r.data["community"] and r.data["community"]["code"] == code and (r.ok or not loaded_only)
            ]
            if not members:
                continue
            day = max(r.data["valid_from"] for r, _ in members)
            current = [s for r, s in members if r.data["valid_to"] is None or r.data["valid_to"] > day]
            kept = Grid.objects.filter(community__code=code, valid_from__lte=day).filter(
                Q(valid_to__isnull=True) | Q(valid_to__gt=day)
            )
            pieces = np.array(current + shapes_of(kept), dtype=object)
            found = gaps(boundary, pieces, metric=self.metric, tolerance_m2=self.tolerance_m2)
            name = members[0][0].data["community"]["name"]
            for gap in found[:MAX_GAPS_LISTED]:
                problems.append(
                    f"社区 {code} {name} 有未被网格覆盖的缝隙 {gap.area_m2:.1f} m²，"
                    f"位置 {gap.where}（{day:%Y-%m-%d} 起）"
                )
            if len(found) > MAX_GAPS_LISTED:
                total = sum(g.area_m2 for g in found)
                problems.append(
                    f"社区 {code} {name} 共有 {len(found)} 处缝隙，总面积 {total:.1f} m²"
                    f"（仅列出最大的 {MAX_GAPS_LISTED} 处）"
                )
        return problems

    def write(self, records: list[Record]) -> dict[str, int]:
        count = copy_rows(
            Grid._meta.db_table,
            ["code", "name", "community_id", "responsible_unit_id", "geom", "valid_from", "valid_to", "is_demo"],
            (
                [
                    r.values["code"],
                    r.data["name"],
                    r.data["community"]["id"],
                    r.data["responsible_unit_id"],
                    ewkb_hex(r.geometry),
                    r.data["valid_from"],
                    r.data["valid_to"],
                    False,
                ]
                for r in records
            ),
        )
        grid_ids = existing(Grid, "code", [r.values["code"] for r in records if r.data["worker_ids"]], "id")
        assignments = [
            GridAssignment(grid_id=grid_ids[r.values["code"]]["id"], worker_id=worker_id)
            for r in records
            for worker_id in dict.fromkeys(r.data["worker_ids"])
        ]
        GridAssignment.objects.bulk_create(assignments, batch_size=1000)
        return {"网格": count, "网格员分配": len(assignments)}

    def assignment_area(self, records: list[Record]):
        return envelope(r.geometry for r in records)
